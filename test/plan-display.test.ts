// Issue 11 item 4: what will run is shown whole, in characters that cannot hide anything, and the card's limit on it
// is computed from what Slack's section text can hold. Pure functions; the card and the API use them.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { asciiJson } from "../src/lib/ascii-json.ts";
import { SLACK_LIMITS } from "../src/slack/mrkdwn.ts";
import { PARAMS_HEAD, PLAN_MAX_CHARS, paramsSectionText, planProblems, planText } from "../src/slack/plan.ts";

/** What Slack shows for mrkdwn text: the three entities as characters. */
const slackShows = (text: string) => text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

/** Characters that hide or disguise what they are: controls, zero-width, bidi overrides, look-alikes, a backtick. */
const SNEAKY = "tab\t nul\u0000 del\u007f zwsp\u200b rlo\u202eevil\u202c nbsp\u00a0 cyrillic-а bom\ufeff tick` 😀 é";

describe("asciiJson: JSON anyone can read byte for byte", () => {
  it("writes only printable ASCII, and no backtick", () => {
    const out = asciiJson({ [SNEAKY]: SNEAKY, list: [SNEAKY, 1, null, true] });
    expect(out).toMatch(/^[\x20-\x5f\x61-\x7e]*$/);
    expect(out).toContain("\\u202e");
    expect(out).toContain("\\u0430"); // Cyrillic а, not a Latin a
    expect(out).toContain("\\u0060");
    expect(out).toContain("\\ud83d\\ude00");
  });

  it("parses back to exactly the value, for any JSON value", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(JSON.parse(asciiJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
        expect(JSON.parse(asciiJson(value, 1))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 300 },
    );
  });

  it("keeps the line feeds of indentation, and only those", () => {
    expect(asciiJson({ a: "x\ny" }, 1)).toBe('{\n "a": "x\\ny"\n}');
  });
});

describe("the card's room for params (issue 11 item 4)", () => {
  it("is Slack's section text limit less the label and the code fences", () => {
    expect(PLAN_MAX_CHARS).toBe(SLACK_LIMITS.sectionText - PARAMS_HEAD.length - 6);
    expect(PLAN_MAX_CHARS).toBe(2985);
  });

  it("counts the plan as the card writes it: after escaping, not in bytes of the request", () => {
    // 600 bytes of request, but 5 characters each on the card: refused.
    expect(planText({ a: "&".repeat(600) })).toHaveLength(600 * 5 + 8);
    expect(planProblems({ a: "&".repeat(600) })).toEqual([{ path: "action.params", message: expect.any(String) }]);
    // 500 non-ASCII characters become 3,000 characters of \u escapes: refused too.
    expect(planProblems({ a: "é".repeat(500) })).toHaveLength(1);
  });

  it("accepts the largest plan that fits and refuses one character more", () => {
    const padding = PLAN_MAX_CHARS - '{"blob":""}'.length;
    expect(planText({ blob: "x".repeat(padding) })).toHaveLength(PLAN_MAX_CHARS);
    expect(planProblems({ blob: "x".repeat(padding) })).toEqual([]);
    expect(planProblems({ blob: "x".repeat(padding + 1) })[0]?.message).toContain(`holds ${PLAN_MAX_CHARS}`);
  });

  it("a plan that fits fills the section exactly, whole, in one code block", () => {
    const params = { blob: "x".repeat(PLAN_MAX_CHARS - 11) };
    const { text, whole } = paramsSectionText(params);
    expect(whole).toBe(true);
    expect(text).toHaveLength(SLACK_LIMITS.sectionText);
    expect(text).toBe(`${PARAMS_HEAD}\`\`\`${JSON.stringify(params)}\`\`\``);
  });

  it("a plan that does not fit (a proposal from before the check) says so and is not called whole", () => {
    const { text, whole } = paramsSectionText({ blob: "x".repeat(5000) });
    expect(whole).toBe(false);
    expect(text.length).toBeLessThanOrEqual(SLACK_LIMITS.sectionText);
    expect(text).toContain("too long to show whole");
  });

  it("what Slack shows of the params parses to the params, sneaky characters and all", () => {
    const params = { cmd: SNEAKY, "<!channel>": "& <b>", nested: { list: [SNEAKY] } };
    const shown = slackShows(planText(params));
    expect(JSON.parse(shown)).toEqual(params);
    expect(shown).toMatch(/^[\x20-\x5f\x61-\x7e]*$/);
  });
});
