// SPEC 5: proposer strings are escaped for mrkdwn and cut to Slack's limits without breaking.
import { describe, expect, it } from "vitest";
import {
  CUT_NOTE,
  codeBlock,
  codeSpan,
  ELLIPSIS,
  escapeMrkdwn,
  fit,
  quote,
  SLACK_LIMITS,
  truncate,
} from "../src/slack/mrkdwn.ts";

/** True when `text` has an `&` that does not start one of the three entities escapeMrkdwn writes. */
function hasBrokenEntity(text: string): boolean {
  return /&(?!amp;|lt;|gt;)/.test(text);
}

function hasLoneSurrogate(text: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

describe("escapeMrkdwn", () => {
  it.each([
    ["<!channel>", "&lt;!channel&gt;"],
    ["<!here> and <!everyone>", "&lt;!here&gt; and &lt;!everyone&gt;"],
    ["<https://evil.example|https://bank.example>", "&lt;https://evil.example|https://bank.example&gt;"],
    ["<@U123ABC>", "&lt;@U123ABC&gt;"],
    ["<!subteam^S0ONCALL>", "&lt;!subteam^S0ONCALL&gt;"],
    ["<#C0GENERAL>", "&lt;#C0GENERAL&gt;"],
    ["a & b", "a &amp; b"],
    ["&amp; stays visible", "&amp;amp; stays visible"],
    ["&lt;!channel&gt;", "&amp;lt;!channel&amp;gt;"],
    ["@here @channel", "@here @channel"],
  ])("escapes %j", (input, expected) => {
    expect(escapeMrkdwn(input)).toBe(expected);
  });

  it("leaves no raw control character behind", () => {
    const out = escapeMrkdwn("<<&>>&&<><!channel|x>");
    expect(out).not.toMatch(/[<>]/);
    expect(hasBrokenEntity(out)).toBe(false);
  });
});

describe("truncate", () => {
  it("leaves text within the limit alone", () => {
    expect(truncate("hello", 5)).toBe("hello");
    expect(truncate("", 0)).toBe("");
  });

  it("cuts to the limit and ends with an ellipsis", () => {
    const out = truncate("a".repeat(200), SLACK_LIMITS.headerText);
    expect(out).toHaveLength(SLACK_LIMITS.headerText);
    expect(out.endsWith(ELLIPSIS)).toBe(true);
  });

  it("never splits an escape entity", () => {
    const escaped = escapeMrkdwn("&".repeat(100));
    for (let max = 1; max < 60; max++) {
      const out = truncate(escaped, max);
      expect(out.length).toBeLessThanOrEqual(max);
      expect(hasBrokenEntity(out)).toBe(false);
      expect(out.replace(ELLIPSIS, "")).toMatch(/^(&amp;)*$/);
    }
  });

  it("never splits entities mixed with text at any cut point", () => {
    const escaped = escapeMrkdwn("x<y>&z ".repeat(30));
    for (let max = 1; max <= escaped.length; max++) {
      const out = truncate(escaped, max);
      expect(out.length).toBeLessThanOrEqual(max);
      expect(hasBrokenEntity(out)).toBe(false);
    }
  });

  it("never splits a surrogate pair", () => {
    const text = "😀".repeat(50);
    for (let max = 1; max < 40; max++) {
      const out = truncate(text, max);
      expect(out.length).toBeLessThanOrEqual(max);
      expect(hasLoneSurrogate(out)).toBe(false);
    }
  });

  it("never splits a grapheme cluster (ZWJ family, flags, skin tones, combining marks)", () => {
    const family = "👨‍👩‍👧‍👦"; // 11 UTF-16 units, one grapheme
    const text = `${family}${family}abc`;
    expect(truncate(text, 12)).toBe(`${family}${ELLIPSIS}`);
    expect(truncate(text, 11)).toBe(ELLIPSIS);
    expect(truncate("🇨🇭🇨🇭🇨🇭", 5)).toBe(`🇨🇭${ELLIPSIS}`);
    expect(truncate("👍🏽👍🏽", 5)).toBe(`👍🏽${ELLIPSIS}`);
    expect(truncate("e\u0301e\u0301e\u0301", 4)).toBe(`e\u0301${ELLIPSIS}`);
  });

  it("handles multi-byte text at Slack's limits", () => {
    const text = escapeMrkdwn("Größe & Übermaß — 日本語のテキスト 🎉 ".repeat(200));
    for (const limit of [
      SLACK_LIMITS.headerText,
      SLACK_LIMITS.sectionField,
      SLACK_LIMITS.sectionText,
      SLACK_LIMITS.confirmText,
    ]) {
      const out = truncate(text, limit);
      expect(out.length).toBeLessThanOrEqual(limit);
      expect(out.length).toBeGreaterThan(limit - 12);
      expect(out.endsWith(ELLIPSIS)).toBe(true);
      expect(hasBrokenEntity(out)).toBe(false);
      expect(hasLoneSurrogate(out)).toBe(false);
    }
  });

  it("returns nothing when not even the ellipsis fits", () => {
    expect(truncate("abc", 0)).toBe("");
  });
});

describe("fit, codeSpan, codeBlock", () => {
  it("fit escapes first and counts the limit on the escaped text", () => {
    const out = fit("<".repeat(10), 10);
    expect(out).toBe(`&lt;&lt;${ELLIPSIS}`);
    expect(out.length).toBeLessThanOrEqual(10);
  });

  it("codeSpan keeps the span closed whatever the text", () => {
    const out = codeSpan("a`b`<!channel>", 100);
    expect(out).toMatch(/^`[^`]*`$/);
    expect(out).toContain("&lt;!channel&gt;");
    expect(codeSpan("x".repeat(500), 50)).toHaveLength(50);
    expect(codeSpan("", 10)).toBe("` `");
  });

  it("codeBlock keeps the block closed and the content within its limit", () => {
    const out = codeBlock(`\`\`\`\nrm -rf <x>\n\`\`\`${"y".repeat(1000)}`, 500);
    expect(out.startsWith("```")).toBe(true);
    expect(out.endsWith("```")).toBe(true);
    const inner = out.slice(3, -3);
    expect(inner).not.toContain("`");
    expect(inner.length).toBeLessThanOrEqual(500);
    expect(inner).toContain("&lt;x&gt;");
  });
});

describe("quote: proposer text as a block quote (issue 11 item 4)", () => {
  it("quotes every line, however the proposer breaks lines", () => {
    const text = "ok\n:white_check_mark: Approved by @alice\r\n*Params*\r```{}```\u2028Nothing ran.";
    const out = quote(text, 3000);
    for (const line of out.split("\n")) expect(line.startsWith("> ")).toBe(true);
    expect(out.split("\n")).toHaveLength(5);
  });

  it("escapes as it quotes", () => {
    expect(quote("<!channel> & <@U0ALICE>", 3000)).toBe("> &lt;!channel&gt; &amp; &lt;@U0ALICE&gt;");
  });

  it("when cut, ends in … and says so below the quote, within the limit", () => {
    const out = quote("word ".repeat(1000), 500);
    expect(out.length).toBeLessThanOrEqual(500);
    expect(out.endsWith(CUT_NOTE)).toBe(true);
    expect(out.slice(0, -CUT_NOTE.length).endsWith("…")).toBe(true);
    expect(CUT_NOTE.startsWith("\n_")).toBe(true); // its own line, not quoted
  });
});
