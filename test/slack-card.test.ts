// SPEC 5: the card shows what a human needs to judge, escapes every proposer string, and is clickable only while pending.
import type { Button, KnownBlock } from "@slack/types";
import { describe, expect, it } from "vitest";
import type { Proposal, Status } from "../src/proposal/types.ts";
import {
  ACTION_IDS,
  CARD_BLOCK_IDS,
  DENY_MODAL,
  refusalMessage,
  refusalText,
  renderCard,
  renderDenyModal,
} from "../src/slack/card.ts";
import { CUT_NOTE, SLACK_LIMITS } from "../src/slack/mrkdwn.ts";
import { EXPIRES_AT, makeProposal, PLAN_SHA256 } from "./helpers/proposal-factory.ts";

const HOSTILE = "<!channel> <!here> <https://evil.example|https://bank.example> <@U0MALLORY> <!subteam^S0ALL> & @here";
const APPROVED_AT = "2026-03-01T12:03:00.000Z";

type TextObject = { type: string; text: string };

/** Every text object in the blocks, with where it sits (for limit checks). */
function texts(blocks: readonly KnownBlock[]): Array<{ where: string; text: string }> {
  const out: Array<{ where: string; text: string }> = [];
  const walk = (value: unknown, where: string) => {
    if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) walk(item, `${where}[${i}]`);
      return;
    }
    if (typeof value !== "object" || value === null) return;
    const record = value as Record<string, unknown>;
    if ((record.type === "mrkdwn" || record.type === "plain_text") && typeof record.text === "string") {
      out.push({ where, text: record.text });
      return;
    }
    for (const [key, child] of Object.entries(record)) walk(child, `${where}.${key}`);
  };
  walk(blocks, "blocks");
  return out;
}

function allText(rendered: { text: string; blocks: KnownBlock[] }): string {
  return [rendered.text, ...texts(rendered.blocks).map((t) => t.text)].join("\n");
}

/** Control sequences signoff itself writes; anything else in angle brackets came from a proposer. */
function withoutOwnSequences(text: string): string {
  return text
    .replace(/<!date\^\d+\^\{date_short_pretty\} at \{time\}\|[0-9T:.Z-]+>/g, "")
    .replace(/<@(U0BOB|U0ALICE|U0DAVE|U0LEAD)>/g, "")
    .replace(/<!subteam\^(S0SRELEADS|S0ONCALL)>/g, "")
    .replace(/<#C0ESCALATE>/g, "")
    .replace(/^> /gm, ""); // the quote marker signoff puts before each line of proposer text
}

function hasBrokenEntity(text: string): boolean {
  return /&(?!amp;|lt;|gt;)/.test(text);
}

function hasLoneSurrogate(text: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

function actionsBlock(blocks: readonly KnownBlock[]) {
  return blocks.find((b) => b.type === "actions");
}

function buttons(blocks: readonly KnownBlock[]): Button[] {
  const block = actionsBlock(blocks);
  return block && block.type === "actions" ? (block.elements as Button[]) : [];
}

function statusLine(blocks: readonly KnownBlock[]): string {
  const block = blocks.find((b) => b.block_id === CARD_BLOCK_IDS.status);
  return block && block.type === "section" ? (block.text as TextObject).text : "";
}

/** Asserts every Block Kit length limit that the card can reach. */
function expectWithinLimits(blocks: readonly KnownBlock[]) {
  expect(blocks.length).toBeLessThanOrEqual(SLACK_LIMITS.blocksPerMessage);
  for (const block of blocks) {
    if (block.type === "header") expect(block.text.text.length).toBeLessThanOrEqual(SLACK_LIMITS.headerText);
    if (block.type === "section") {
      if (block.text) expect(block.text.text.length).toBeLessThanOrEqual(SLACK_LIMITS.sectionText);
      expect(block.fields?.length ?? 0).toBeLessThanOrEqual(SLACK_LIMITS.sectionFields);
      for (const field of block.fields ?? []) expect(field.text.length).toBeLessThanOrEqual(SLACK_LIMITS.sectionField);
    }
    if (block.type === "context") {
      for (const element of block.elements)
        expect((element as TextObject).text.length).toBeLessThanOrEqual(SLACK_LIMITS.contextElement);
    }
  }
  for (const button of buttons(blocks)) {
    expect(button.text.text.length).toBeLessThanOrEqual(SLACK_LIMITS.buttonText);
    expect(button.value?.length ?? 0).toBeLessThanOrEqual(SLACK_LIMITS.buttonValue);
    expect(button.action_id?.length ?? 0).toBeLessThanOrEqual(SLACK_LIMITS.actionId);
    if (button.confirm) {
      expect(button.confirm.title?.text.length ?? 0).toBeLessThanOrEqual(SLACK_LIMITS.confirmTitle);
      expect(button.confirm.text.text.length).toBeLessThanOrEqual(SLACK_LIMITS.confirmText);
    }
  }
  for (const { where, text } of texts(blocks)) {
    expect(text.length, where).toBeGreaterThan(0);
    expect(hasBrokenEntity(text), where).toBe(false);
    expect(hasLoneSurrogate(text), where).toBe(false);
  }
}

const approvedBase = {
  approvals: [{ user: "U0ALICE", at: APPROVED_AT }],
  decision: { by: "slack:U0ALICE", at: APPROVED_AT, outcome: "approved" as const },
};

describe("what the card shows (SPEC 5)", () => {
  const p = makeProposal({ metadata: { incident: "INC-7" } });
  const card = renderCard(p, { role: "card" });
  const everything = allText(card);

  it("shows summary, action type and params, why, blast radius, back-out, requester, proposal id and created_by", () => {
    const header = card.blocks[0];
    expect(header?.type).toBe("header");
    expect(header && header.type === "header" ? header.text.text : "").toBe("Approval needed");
    expect(everything).toContain(`> ${p.summary}`);
    expect(everything).toContain("`k8s.rollout_restart`");
    expect(everything).toContain('*Params*\n```{"deployment":"api"}```');
    expect(everything).toContain(`*Why*\n> ${p.reason}`);
    expect(everything).toContain(`*Blast radius*\n> ${p.blast_radius}`);
    expect(everything).toContain(`*Back-out*\n> ${p.rollback}`);
    expect(everything).toContain("*Requested by*\n<@U0BOB>");
    expect(everything).toContain(`\`${p.id}\``);
    expect(everything).toContain("`alertmanager`");
  });

  it("shows the deadline with Slack date formatting and an ISO fallback", () => {
    const unix = Date.parse(EXPIRES_AT) / 1000;
    expect(everything).toContain(`<!date^${unix}^{date_short_pretty} at {time}|${EXPIRES_AT}>`);
  });

  it("shows the first 12 hex digits of the plan hash, not the whole hash", () => {
    expect(everything).toContain(`\`${PLAN_SHA256.slice(0, 12)}\``);
    expect(everything).not.toContain(PLAN_SHA256);
  });

  it("shows approvals so far as M of N with who", () => {
    const twoOfThree = makeProposal({
      rule: { required_approvals: 3 },
      approvals: [
        { user: "U0ALICE", at: APPROVED_AT },
        { user: "slack:U0DAVE", at: APPROVED_AT },
      ],
    });
    expect(allText(renderCard(twoOfThree, { role: "card" }))).toContain("*Approvals*\n2 of 3: <@U0ALICE>, <@U0DAVE>");
    expect(everything).toContain("*Approvals*\n0 of 1");
  });

  it("says when only the requester can decide", () => {
    const mine = makeProposal({ rule: { approvers: [], requester_only: true, escalation: null } });
    expect(allText(renderCard(mine, { role: "card" }))).toContain("*Can approve:* <@U0BOB>, the requester, alone");
  });

  it("has a notification fallback text naming the summary", () => {
    expect(card.text).toBe("Approval needed: Restart deployment api (rolling) (k8s.rollout_restart)");
  });

  it("stays within every Block Kit limit", () => {
    expectWithinLimits(card.blocks);
  });
});

describe("escaping every proposer string (SPEC 5)", () => {
  const hostile = makeProposal({
    action: { type: "k8s.<!channel>", params: { deployment: HOSTILE, note: "`code` & <b>" } },
    summary: HOSTILE,
    reason: HOSTILE,
    blast_radius: HOSTILE,
    rollback: HOSTILE,
    requested_by: "<!channel>",
    created_by: "<@U0MALLORY>",
    id: "prp_<!here>",
  });

  it.each(["card", "escalation"] as const)("forms no mention, broadcast or link from proposer text (%s)", (role) => {
    const text = allText(renderCard(hostile, { role }));
    expect(withoutOwnSequences(text)).not.toMatch(/[<>]/);
    expect(text).toContain("&lt;!channel&gt;");
    expect(text).toContain("&lt;https://evil.example|https://bank.example&gt;");
    expect(text).toContain("&lt;@U0MALLORY&gt;");
    expect(text).toContain("&amp;");
    expect(hasBrokenEntity(text)).toBe(false);
  });

  it.each<[Status, Partial<Proposal>]>([
    ["denied", { decision: { by: "slack:U0ALICE", at: APPROVED_AT, outcome: "denied", reason: HOSTILE } }],
    ["failed", { ...approvedBase, result: { status: "failed", output: HOSTILE, at: APPROVED_AT } }],
    ["dispatch_failed", { ...approvedBase, dispatch: { attempts: 8, last_error: HOSTILE, dispatched_at: null } }],
    [
      "dispatch_failed",
      {
        ...approvedBase,
        dispatch: { attempts: 1, last_error: "x", dispatched_at: null, refusal: { http_status: 422, reason: HOSTILE } },
      },
    ],
    ["approved", { ...approvedBase, dispatch: { attempts: 2, last_error: HOSTILE, dispatched_at: null } }],
    ["cancelled", { decision: { by: "key:<!channel>", at: APPROVED_AT, outcome: "cancelled" } }],
  ])("escapes what the status line quotes (%s)", (status, extra) => {
    const text = allText(renderCard({ ...hostile, ...extra, status }, { role: "card" }));
    expect(withoutOwnSequences(text)).not.toMatch(/[<>]/);
  });

  it("mentions the requester only when it is a valid Slack user id", () => {
    const shown = (requested_by: string | null) =>
      allText(renderCard(makeProposal({ requested_by }), { role: "card" })).match(/\*Requested by\*\n([^\n]*)/)?.[1];
    expect(shown("U0BOB")).toBe("<@U0BOB>");
    expect(shown("W0ENTERPRISE")).toBe("<@W0ENTERPRISE>");
    expect(shown("u0bob")).toBe("u0bob");
    expect(shown("S0ONCALL")).toBe("S0ONCALL");
    expect(shown("U0BOB|everyone")).toBe("U0BOB|everyone");
    expect(shown("bob@example.com")).toBe("bob@example.com");
    expect(shown(null)).toBe("not given");
  });

  it("keeps the params' code block closed when params contain backticks", () => {
    const text = allText(renderCard(hostile, { role: "card" }));
    const params = text.match(/\*Params\*\n(.*)/)?.[1] ?? "";
    expect(params).toMatch(/^```[^`]+```$/);
    expect(params).toContain("\\u0060code\\u0060");
  });
});

describe("cutting to Slack's limits (SPEC 5)", () => {
  const long = "Ünïcödé & <tags> 日本語 👨‍👩‍👧‍👦 🇨🇭 ".repeat(400);
  const huge = makeProposal({
    action: {
      type: "k8s.rollout_restart",
      params: { blob: long, list: Array.from({ length: 200 }, (_, i) => `item-${i}&`) },
    },
    summary: long,
    reason: long,
    blast_radius: long,
    rollback: long,
    created_by: long,
    requested_by: long,
  });

  it.each<[Status, Partial<Proposal>]>([
    ["pending", {}],
    ["denied", { decision: { by: "slack:U0ALICE", at: APPROVED_AT, outcome: "denied", reason: long } }],
    ["succeeded", { ...approvedBase, result: { status: "succeeded", output: long, at: APPROVED_AT } }],
    ["dispatch_failed", { ...approvedBase, dispatch: { attempts: 8, last_error: long, dispatched_at: null } }],
  ])("keeps every text within its limit, ending in … and whole (%s)", (status, extra) => {
    const card = renderCard({ ...huge, ...extra, status }, { role: "card" });
    expectWithinLimits(card.blocks);
    const summary = card.blocks.find((b) => b.block_id === CARD_BLOCK_IDS.summary);
    const text = summary && summary.type === "section" ? (summary.text as TextObject).text : "";
    expect(text.endsWith(`…${CUT_NOTE}`)).toBe(true);
    expect(card.text.length).toBeLessThanOrEqual(SLACK_LIMITS.messageText);
  });

  it("keeps the confirm dialog within 300 characters and still shows the plan hash", () => {
    // Params that fit: a plan the card cannot show whole gets no Approve button, so no confirm dialog.
    const approvable = { ...huge, action: makeProposal().action };
    const approve = buttons(renderCard(approvable, { role: "card" }).blocks).find(
      (b) => b.action_id === ACTION_IDS.approve,
    );
    const text = approve?.confirm?.text.text ?? "";
    expect(text.length).toBeLessThanOrEqual(SLACK_LIMITS.confirmText);
    expect(text).toContain(`\`${PLAN_SHA256.slice(0, 12)}\``);
    expect(hasBrokenEntity(text)).toBe(false);
  });

  it("shows at most 500 characters of output", () => {
    const card = renderCard(
      {
        ...huge,
        ...approvedBase,
        status: "succeeded",
        result: { status: "succeeded", output: "x".repeat(5000), at: APPROVED_AT },
      },
      { role: "card" },
    );
    const block = statusLine(card.blocks).match(/```([\s\S]*)```/)?.[1] ?? "";
    expect(block.length).toBeLessThanOrEqual(500);
    expect(block.length).toBeGreaterThan(400);
  });
});

describe("buttons (SPEC 5)", () => {
  it("while pending: Approve (primary, confirm), Deny (danger), Escalate — each value exactly the id", () => {
    const p = makeProposal();
    const [approve, deny, escalate, ...rest] = buttons(renderCard(p, { role: "card" }).blocks);
    expect(rest).toEqual([]);
    expect(approve).toMatchObject({ type: "button", action_id: "signoff.approve", style: "primary", value: p.id });
    expect(deny).toMatchObject({ type: "button", action_id: "signoff.deny", style: "danger", value: p.id });
    expect(escalate).toMatchObject({ type: "button", action_id: "signoff.escalate", value: p.id });
    expect(escalate?.style).toBeUndefined();
    for (const button of [approve, deny, escalate]) expect(button?.value).toBe(p.id);
  });

  it("the actions block has a stable block id", () => {
    expect(actionsBlock(renderCard(makeProposal(), { role: "card" }).blocks)?.block_id).toBe("signoff.actions");
  });

  it("Approve asks for confirmation, restating the summary and plan hash", () => {
    const p = makeProposal();
    const approve = buttons(renderCard(p, { role: "card" }).blocks)[0];
    expect(approve?.confirm?.title?.text).toBe("Approve this action?");
    expect(approve?.confirm?.text.text).toContain(p.summary);
    expect(approve?.confirm?.text.text).toContain(PLAN_SHA256.slice(0, 12));
    expect(approve?.confirm?.confirm?.text).toBe("Approve");
    expect(approve?.confirm?.deny?.text).toBe("Cancel");
  });

  it("no confirm dialog when the policy says confirm: false", () => {
    const approve = buttons(renderCard(makeProposal({ rule: { confirm: false } }), { role: "card" }).blocks)[0];
    expect(approve?.action_id).toBe(ACTION_IDS.approve);
    expect(approve?.confirm).toBeUndefined();
  });

  it("no Escalate button when the policy has no escalation", () => {
    const ids = buttons(renderCard(makeProposal({ rule: { escalation: null } }), { role: "card" }).blocks).map(
      (b) => b.action_id,
    );
    expect(ids).toEqual([ACTION_IDS.approve, ACTION_IDS.deny]);
  });

  it("once escalated, the original card shows who escalated to whom and has no buttons", () => {
    const p = makeProposal({ escalated: { by: "slack:U0ALICE", at: APPROVED_AT, prior_approvals: [] } });
    const card = renderCard(p, { role: "card" });
    expect(actionsBlock(card.blocks)).toBeUndefined();
    expect(statusLine(card.blocks)).toMatch(
      /^:arrow_heading_up: Escalated by <@U0ALICE> <!date\^\d+\^.*> to <!subteam\^S0SRELEADS> in <#C0ESCALATE>\./,
    );
    expect(statusLine(card.blocks)).toContain("escalation message");
  });

  it("the escalated card names the approvals given before escalation", () => {
    const p = makeProposal({
      escalated: { by: "slack:U0ALICE", at: APPROVED_AT, prior_approvals: [{ user: "U0DAVE", at: APPROVED_AT }] },
    });
    expect(statusLine(renderCard(p, { role: "card" }).blocks)).toContain("Approvals before escalation: <@U0DAVE>.");
  });

  it("the escalation card has Approve and Deny but no second Escalate", () => {
    const p = makeProposal({ escalated: { by: "slack:U0ALICE", at: APPROVED_AT, prior_approvals: [] } });
    const card = renderCard(p, { role: "escalation" });
    expect(buttons(card.blocks).map((b) => [b.action_id, b.value])).toEqual([
      [ACTION_IDS.approve, p.id],
      [ACTION_IDS.deny, p.id],
    ]);
    const header = card.blocks[0];
    expect(header && header.type === "header" ? header.text.text : "").toBe("Escalated, approval needed");
    expect(card.text.startsWith("Escalated, approval needed:")).toBe(true);
  });

  it("no buttons once the deadline has passed, even before the expiry alarm has run", () => {
    const p = makeProposal();
    const card = renderCard(p, { role: "card", nowMs: Date.parse(EXPIRES_AT) });
    expect(actionsBlock(card.blocks)).toBeUndefined();
    expect(statusLine(card.blocks)).toContain("Nothing will run");
    expect(buttons(renderCard(p, { role: "card", nowMs: Date.parse(EXPIRES_AT) - 1 }).blocks)).toHaveLength(3);
  });
});

describe("the status line tells the truth, and decided cards keep no buttons (SPEC 5)", () => {
  const cases: Array<[Status, Partial<Proposal>, RegExp[]]> = [
    ["approved", approvedBase, [/^:white_check_mark: Approved by <@U0ALICE> <!date\^\d+\^/, /Running…/]],
    [
      "approved",
      { ...approvedBase, dispatch: { attempts: 3, last_error: "HTTP 503", dispatched_at: null } },
      [/Running…/, /attempt 3; last error `HTTP 503`/],
    ],
    [
      "dispatched",
      { ...approvedBase, dispatch: { attempts: 1, last_error: null, dispatched_at: APPROVED_AT } },
      [/Approved by <@U0ALICE>/, /Running… the runner accepted the job since <!date/],
    ],
    [
      "succeeded",
      { ...approvedBase, result: { status: "succeeded", output: "deployment.apps/api restarted", at: APPROVED_AT } },
      [/Approved by <@U0ALICE>/, /:large_green_circle: Succeeded <!date/, /```deployment\.apps\/api restarted```/],
    ],
    [
      "failed",
      { ...approvedBase, result: { status: "failed", output: "error: <forbidden> & more", at: APPROVED_AT } },
      [/:red_circle: Failed <!date/, /```error: &lt;forbidden&gt; &amp; more```/],
    ],
    [
      "dispatch_failed",
      { ...approvedBase, dispatch: { attempts: 8, last_error: "HTTP 403 from runner", dispatched_at: null } },
      [/the runner refused or could not be reached; nothing ran\./, /Last error: `HTTP 403 from runner`/],
    ],
    [
      "denied",
      {
        decision: { by: "slack:U0ALICE", at: APPROVED_AT, outcome: "denied", reason: "Not during the <freeze> & peak" },
      },
      [
        /^:no_entry: Denied by <@U0ALICE> <!date\^\d+\^/,
        /Nothing ran\./,
        /\*Reason:\* Not during the &lt;freeze&gt; &amp; peak/,
      ],
    ],
    ["denied", { decision: { by: "slack:U0ALICE", at: APPROVED_AT, outcome: "denied" } }, [/No reason given\./]],
    [
      "expired",
      { rule: makeProposal().rule, decision: { by: "system", at: EXPIRES_AT, outcome: "expired" } },
      [/^:hourglass: Expired <!date\^\d+\^.*> with 0 of 1 approvals\. Nothing ran\.$/],
    ],
    [
      "cancelled",
      { decision: { by: "key:alertmanager", at: APPROVED_AT, outcome: "cancelled" } },
      [/^:heavy_multiplication_x: Cancelled by key `alertmanager` <!date\^\d+\^.*>\. Nothing ran\.$/],
    ],
  ];

  it.each(cases)("%s", (status, extra, patterns) => {
    const p = makeProposal({ ...extra, status } as Partial<Proposal>);
    for (const role of ["card", "escalation"] as const) {
      const card = renderCard(p, { role });
      expect(actionsBlock(card.blocks)).toBeUndefined();
      expect(JSON.stringify(card.blocks)).not.toContain('"type":"button"');
      const line = statusLine(card.blocks);
      for (const pattern of patterns) expect(line).toMatch(pattern);
      expectWithinLimits(card.blocks);
    }
  });

  it("every status other than pending renders without buttons", () => {
    const statuses: Status[] = [
      "approved",
      "dispatched",
      "succeeded",
      "failed",
      "dispatch_failed",
      "denied",
      "expired",
      "cancelled",
    ];
    for (const status of statuses) {
      expect(actionsBlock(renderCard(makeProposal({ status }), { role: "card" }).blocks), status).toBeUndefined();
    }
  });

  it("fallback text follows the status", () => {
    expect(renderCard(makeProposal({ status: "expired" }), { role: "card" }).text).toMatch(/^Expired, nothing ran: /);
    expect(renderCard(makeProposal({ status: "denied" }), { role: "card" }).text).toMatch(/^Denied: /);
  });
});

describe("deny modal and refusals (SPEC 5)", () => {
  it("asks for an optional multiline reason of at most 500 characters", () => {
    const view = renderDenyModal("prp_abc", "Restart <!channel>");
    expect(view).toMatchObject({
      type: "modal",
      callback_id: "signoff.deny_reason",
      private_metadata: "prp_abc",
      submit: { type: "plain_text", text: "Deny" },
      close: { type: "plain_text", text: "Cancel" },
    });
    expect(view.title.text.length).toBeLessThanOrEqual(SLACK_LIMITS.modalTitle);
    const input = view.blocks.find((b) => b.type === "input");
    expect(input).toMatchObject({
      block_id: DENY_MODAL.reasonBlockId,
      optional: true,
      element: { type: "plain_text_input", action_id: DENY_MODAL.reasonActionId, multiline: true, max_length: 500 },
    });
    expect(DENY_MODAL).toMatchObject({ reasonBlockId: "reason", reasonActionId: "reason" });
    const shown = JSON.stringify(view.blocks);
    expect(shown).toContain("&lt;!channel&gt;");
    expect(shown).not.toContain("<!channel>");
  });

  it("refusal text is escaped", () => {
    expect(refusalText("You may not approve <!channel> & co")).toBe(
      ":no_entry_sign: You may not approve &lt;!channel&gt; &amp; co",
    );
  });
});

describe("what will run is shown whole, and proposer text cannot pass for signoff's (issue 11 item 4)", () => {
  const FORGED = ":white_check_mark: Approved by @alice";

  function blockOf(blocks: readonly KnownBlock[], id: string) {
    return blocks.find((b) => b.block_id === id);
  }

  function blockText(blocks: readonly KnownBlock[], id: string): string {
    const block = blockOf(blocks, id);
    if (block?.type === "section") return (block.text as TextObject | undefined)?.text ?? "";
    if (block?.type === "context") return (block.elements as TextObject[]).map((e) => e.text).join("\n");
    return "";
  }

  /** What Slack shows for mrkdwn text: the three entities as characters. */
  const slackShows = (text: string) => text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

  /** Every line of every text on the card that contains `needle` (in text objects, the fallback aside). */
  function linesWith(blocks: readonly KnownBlock[], needle: string): string[] {
    return texts(blocks).flatMap(({ text }) => text.split("\n").filter((line) => line.includes(needle)));
  }

  it("shows the params whole in a code block, as JSON that parses to exactly what the runner receives", () => {
    const params = { cmd: "restart`; echo \u202eevil\u202c & <b>", pad: "x".repeat(2500), real: "the real change" };
    const card = renderCard(makeProposal({ action: { type: "db.failover", params } }), { role: "card" });
    const shown = /^\*Params\*\n```([^`]*)```$/.exec(blockText(card.blocks, CARD_BLOCK_IDS.params))?.[1];
    expect(shown).toBeDefined();
    expect(shown).toMatch(/^[\x20-\x7e]*$/);
    expect(JSON.parse(slackShows(shown!))).toEqual(params);
    expect(buttons(card.blocks)[0]?.action_id).toBe(ACTION_IDS.approve);
    expectWithinLimits(card.blocks);
  });

  it("a plan the card cannot show whole (a proposal from before the check) is never offered for approval", () => {
    const params = { pad: "x".repeat(4000), real: "DROP TABLE users" };
    const p = makeProposal({ action: { type: "db.failover", params } });
    for (const role of ["card", "escalation"] as const) {
      const card = renderCard(p, { role });
      expect(buttons(card.blocks).map((b) => b.action_id)).not.toContain(ACTION_IDS.approve);
      expect(buttons(card.blocks).map((b) => b.action_id)).toContain(ACTION_IDS.deny);
      expect(blockText(card.blocks, CARD_BLOCK_IDS.params)).toContain("too long to show whole");
      expectWithinLimits(card.blocks);
    }
  });

  it.each([
    ["card", "Approval needed"],
    ["escalation", "Escalated, approval needed"],
  ] as const)("the header is signoff's own words, never the proposer's (%s)", (role, expected) => {
    const card = renderCard(makeProposal({ summary: FORGED }), { role });
    const header = card.blocks[0];
    expect(header?.type).toBe("header");
    expect(header && header.type === "header" ? header.text.text : "").toBe(expected);
  });

  it("the header follows the status, as the status line does", () => {
    const header = (p: Proposal) => {
      const block = renderCard(p, { role: "card" }).blocks[0];
      return block && block.type === "header" ? block.text.text : "";
    };
    expect(header(makeProposal({ ...approvedBase, status: "succeeded" }))).toBe("Succeeded");
    expect(header(makeProposal({ status: "denied" }))).toBe("Denied");
    expect(header(makeProposal({ status: "expired" }))).toBe("Expired, nothing ran");
  });

  it("a summary imitating a status line is quoted under an attribution to the proposer, not shown as a status", () => {
    const card = renderCard(makeProposal({ summary: FORGED }), { role: "card" });
    expect(blockText(card.blocks, CARD_BLOCK_IDS.summary)).toBe(`> ${FORGED}`);
    expect(blockOf(card.blocks, CARD_BLOCK_IDS.attribution)?.type).toBe("context");
    expect(blockText(card.blocks, CARD_BLOCK_IDS.attribution)).toMatch(
      /^Proposed by key `alertmanager` · requested by <@U0BOB>\./,
    );
    // The attribution comes before anything the proposer wrote.
    const ids = card.blocks.map((b) => b.block_id);
    expect(ids.indexOf(CARD_BLOCK_IDS.attribution)).toBeLessThan(ids.indexOf(CARD_BLOCK_IDS.summary));
    expect(statusLine(card.blocks)).toBe("");
    // Wherever the forged line shows (the summary, the confirm dialog), it is a quoted line.
    const forged = linesWith(card.blocks, "Approved by");
    expect(forged.length).toBeGreaterThan(0);
    for (const line of forged) expect(line.startsWith("> "), line).toBe(true);
  });

  it.each([
    ["reason", CARD_BLOCK_IDS.reason],
    ["blast_radius", CARD_BLOCK_IDS.blastRadius],
    ["rollback", CARD_BLOCK_IDS.rollback],
  ] as const)("every line of %s is quoted, so none passes for a status line, a label or a plan", (field, id) => {
    const forged = 'fine\n\n:white_check_mark: Approved by <@U0ALICE>\r\n*Params*\r```{"deployment":"api"}```';
    const card = renderCard(makeProposal({ [field]: forged }), { role: "card" });
    const [label, ...lines] = blockText(card.blocks, id).split("\n");
    expect(label).toMatch(/^\*[A-Z][a-z -]+\*$/);
    expect(lines).toHaveLength(5);
    for (const line of lines) expect(line.startsWith("> "), line).toBe(true);
    for (const line of linesWith(card.blocks, "Approved by")) expect(line.startsWith("> "), line).toBe(true);
  });

  it("a proposer text cut to fit says so, below the quote", () => {
    const card = renderCard(makeProposal({ reason: "<&>".repeat(1000) }), { role: "card" });
    const text = blockText(card.blocks, CARD_BLOCK_IDS.reason);
    expect(text.length).toBeLessThanOrEqual(SLACK_LIMITS.sectionText);
    expect(text.endsWith(CUT_NOTE)).toBe(true);
    expect(blockText(renderCard(makeProposal(), { role: "card" }).blocks, CARD_BLOCK_IDS.reason)).not.toContain(
      CUT_NOTE.trim(),
    );
  });

  it("a verification prompt quotes and attributes the proposer's texts too", () => {
    const p = makeProposal({
      kind: "verify",
      summary: FORGED,
      reason: "Chrome on Windows\n:white_check_mark: Answered “Yes, that was me” by <@U0BOB>",
      action: { type: "verify.login", params: { ip: "203.0.113.7" } },
    });
    const card = renderCard(p, { role: "card" });
    const header = card.blocks[0];
    expect(header && header.type === "header" ? header.text.text : "").toBe("Was this you?");
    expect(blockText(card.blocks, CARD_BLOCK_IDS.summary)).toBe(`> ${FORGED}`);
    expect(blockText(card.blocks, CARD_BLOCK_IDS.attribution)).toMatch(/^Proposed by key `alertmanager`/);
    for (const line of [...linesWith(card.blocks, "Approved by"), ...linesWith(card.blocks, "Answered")])
      expect(line.startsWith("> "), line).toBe(true);
    expect(blockText(card.blocks, CARD_BLOCK_IDS.params)).toBe('*Params*\n```{"ip":"203.0.113.7"}```');
  });

  it("the confirm dialog and the deny modal quote the summary", () => {
    const approve = buttons(renderCard(makeProposal({ summary: FORGED }), { role: "card" }).blocks)[0];
    expect(approve?.confirm?.text.text.startsWith(`> ${FORGED}\n`)).toBe(true);
    const modal = JSON.stringify(renderDenyModal("prp_abc", FORGED).blocks);
    expect(modal).toContain(JSON.stringify(`You are denying:\n> ${FORGED}`).slice(1, -1));
  });
});

describe("who may decide: the card and the refusals say who (issue 13)", () => {
  function deciders(p: Proposal, role: "card" | "escalation" = "card", nowMs?: number): string | null {
    const card = renderCard(p, { role, ...(nowMs === undefined ? {} : { nowMs }) });
    const block = card.blocks.find((b) => b.block_id === CARD_BLOCK_IDS.deciders);
    return block && block.type === "section" ? (block.text as TextObject).text : null;
  }
  const escalated = { escalated: { by: "slack:U0ALICE", at: APPROVED_AT, prior_approvals: [] } };

  it("a pending card names its approvers, users and groups as mentions, how many are needed, and that the requester does not count", () => {
    expect(deciders(makeProposal())).toBe(
      "*Can approve:* <@U0ALICE>, <!subteam^S0ONCALL> — 1 needed, not the requester <@U0BOB>",
    );
    expect(deciders(makeProposal({ rule: { required_approvals: 2 }, requested_by: null }))).toBe(
      "*Can approve:* <@U0ALICE>, <!subteam^S0ONCALL> — 2 needed",
    );
    // The block sits between the facts and the plan, in signoff's words (not quoted).
    const ids = renderCard(makeProposal(), { role: "card" }).blocks.map((b) => b.block_id);
    expect(ids.indexOf(CARD_BLOCK_IDS.deciders)).toBe(ids.indexOf(CARD_BLOCK_IDS.facts) + 1);
  });

  it("with allow_self_approval the requester counts like anyone listed", () => {
    expect(deciders(makeProposal({ rule: { allow_self_approval: true } }))).toBe(
      "*Can approve:* <@U0ALICE>, <!subteam^S0ONCALL> — 1 needed",
    );
  });

  it("a requester_only card names the requester alone", () => {
    const mine = makeProposal({ rule: { approvers: [], requester_only: true, escalation: null } });
    expect(deciders(mine)).toBe("*Can approve:* <@U0BOB>, the requester, alone");
  });

  it("once escalated: the escalation message names the escalation approvers and their own count; neither the escalator nor the requester counts", () => {
    const p = makeProposal({
      ...escalated,
      rule: {
        escalation: {
          approvers: ["S0SRELEADS", "U0LEAD"],
          channel: "C0ESCALATE",
          extend_ttl_seconds: 0,
          required_approvals: 2,
        },
      },
    });
    expect(deciders(p, "escalation")).toBe(
      "*Can approve:* <!subteam^S0SRELEADS>, <@U0LEAD> — 2 needed, not <@U0ALICE> (who escalated) nor the requester <@U0BOB>",
    );
    expect(allText(renderCard(p, { role: "escalation" }))).toContain("*Approvals*\n0 of 2");
    // The original card says where the decision went instead.
    expect(deciders(p, "card")).toBeNull();
  });

  it("link recipients are named by their address, as signoff mails them (or as the opaque id they are)", () => {
    const p = makeProposal({
      rule: {
        approvers: ["U0ALICE"],
        required_approvals: 2,
        links: { recipients: ["dave@example.com", "+15550100"], teams_recipient: null },
      },
    });
    expect(deciders(p)).toBe(
      "*Can approve:* <@U0ALICE>, dave@example.com (by mailed link), +15550100 (by link) — 2 needed, not the requester <@U0BOB>",
    );
  });

  it("only while a decision is possible: not once decided, nor after the deadline", () => {
    for (const status of ["approved", "succeeded", "denied", "expired", "cancelled", "dispatch_failed"] as const) {
      expect(deciders({ ...makeProposal(), ...approvedBase, status }), status).toBeNull();
    }
    expect(deciders(makeProposal(), "card", Date.parse(EXPIRES_AT))).toBeNull();
    expect(deciders(makeProposal(), "card", Date.parse(EXPIRES_AT) - 1)).not.toBeNull();
  });

  it("a long list is cut at ten names and stays within Slack's limits", () => {
    const many = Array.from({ length: 25 }, (_, i) => `U0PERSON${String(i).padStart(2, "0")}`);
    const p = makeProposal({ rule: { approvers: many } });
    expect(deciders(p)).toMatch(/<@U0PERSON09> and 15 more — 1 needed/);
    expectWithinLimits(renderCard(p, { role: "card" }).blocks);
  });

  it("a runner's refusal is shown with its HTTP status and its reason, in a code block, escaped and within limits", () => {
    const refused = (reason: string | null) =>
      statusLine(
        renderCard(
          {
            ...makeProposal(),
            ...approvedBase,
            status: "dispatch_failed",
            dispatch: {
              attempts: 1,
              last_error: "runner refused with HTTP 422",
              dispatched_at: null,
              refusal: { http_status: 422, reason },
            },
          },
          { role: "card" },
        ).blocks,
      );
    const reason = `{"error":{"code":"params_rejected","message":"argument 1 ({message}) may not start with '-'"}}`;
    expect(refused(reason)).toMatch(
      /\n:warning: Dispatch failed: the runner refused \(HTTP 422\): ```\{"error":\{"code":"params_rejected",.*'-'"\}\}```\nNothing ran\.$/,
    );
    expect(refused(null)).toMatch(/Dispatch failed: the runner refused \(HTTP 422\)\.\nNothing ran\.$/);
    // At its longest (300 characters that each escape to five) it still fits the section.
    const card = renderCard(
      {
        ...makeProposal(),
        ...approvedBase,
        status: "dispatch_failed",
        dispatch: {
          attempts: 1,
          last_error: "x",
          dispatched_at: null,
          refusal: { http_status: 400, reason: "&".repeat(300) },
        },
      },
      { role: "card" },
    );
    expectWithinLimits(card.blocks);
    expect(statusLine(card.blocks)).toContain("&amp;".repeat(300));
  });

  it("an outsider's refusal names who may approve; a refusal that is not about who decides does not", () => {
    const p = makeProposal();
    expect(refusalMessage(p, "not_an_approver", "You are not among the approvers for k8s.rollout_restart.")).toBe(
      "You are not among the approvers for k8s.rollout_restart.\n" +
        "Can approve: <@U0ALICE>, <!subteam^S0ONCALL> — 1 needed, not the requester <@U0BOB>.",
    );
    expect(refusalMessage(p, "self_approval", "You requested this action.")).toContain("Can approve: <@U0ALICE>");
    expect(refusalMessage(p, "already_approved", "You already approved.")).toBe("You already approved.");
    // Refused on the escalation message: the escalation approvers, not the first ones.
    const up = makeProposal(escalated);
    expect(refusalMessage(up, "not_an_approver", "You are not among the escalation approvers.")).toContain(
      "Can approve: <!subteam^S0SRELEADS> — 1 needed, not <@U0ALICE> (who escalated) nor the requester <@U0BOB>.",
    );
  });
});
