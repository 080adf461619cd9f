// Break-glass (issue 17): one listed person approves alone with a reason, in a change freeze or not; never the
// requester; one person, one vote; the approvers and the escalation channel are told at once, and the approvers'
// review ("Was this break-glass approval justified?") is audited. A proposal created in a freeze is only break-glass's.
import { describe, expect, it } from "vitest";
import { BREAK_GLASS_ACTIONS } from "./fixtures.ts";
import { auditOf, click, getProposal, runAlarm, settle, slackRequest } from "./helpers/api.ts";
import { actionProblems, createIn, createUnder, policyEnv } from "./helpers/policy-env.ts";
import { peer } from "./peer/client.ts";

const HOUR = 3600_000;
const now = Date.now();
const FREEZE = {
  name: "incident review",
  actions: ["k8s.*"],
  start: new Date(now - HOUR).toISOString(),
  end: new Date(now + HOUR).toISOString(),
};
const frozen = policyEnv(BREAK_GLASS_ACTIONS, { freezes: [FREEZE] });
const open = policyEnv(BREAK_GLASS_ACTIONS);
const hotfix = (extra: Record<string, unknown> = {}) => ({
  action: { type: "k8s.hotfix", params: { service: "api" } },
  summary: "Hotfix api: roll back the bad config",
  ...extra,
});

function button(actionId: string, proposalId: string, user: string) {
  return slackRequest({
    type: "block_actions",
    user: { id: user },
    trigger_id: "123.456.abc",
    channel: { id: "C0INCIDENT" },
    container: { type: "message", channel_id: "C0INCIDENT" },
    actions: [{ action_id: actionId, value: proposalId, type: "button" }],
  });
}

async function breakGlass(proposalId: string, user: string, reason: string | null) {
  await button("signoff.break_glass", proposalId, user);
  const res = await slackRequest({
    type: "view_submission",
    user: { id: user },
    view: {
      callback_id: "signoff.break_glass_reason",
      private_metadata: proposalId,
      state: { values: { reason: { reason: { type: "plain_text_input", value: reason } } } },
    },
  });
  expect(res.status).toBe(200);
  const text = await res.text();
  return text === "" ? null : (JSON.parse(text) as { response_action: string; errors: Record<string, string> });
}

describe("break_glass in the policy", () => {
  const problems = actionProblems;

  it("is checked strictly: a reason is always required, a typo is named, a verification prompt has none", () => {
    expect(
      problems({ approvers: ["U0ALICE"], break_glass: { approvers: ["U0LEAD"], reason_required: false } }),
    ).toEqual([
      {
        path: 'POLICY.actions["k8s.x"].break_glass.reason_required',
        message: "must be true: a break-glass approval always records why",
      },
    ]);
    expect(problems({ approvers: ["U0ALICE"], break_glass: { aprovers: ["U0LEAD"] } })).toContainEqual({
      path: 'POLICY.actions["k8s.x"].break_glass.aprovers',
      message: 'unknown field (did you mean "approvers"? "approvers" is required)',
    });
    expect(problems({ kind: "verify", break_glass: { approvers: ["U0LEAD"] } })).toContainEqual({
      path: 'POLICY.actions["k8s.x"].break_glass',
      message: 'does not apply to kind: "verify": nothing is approved',
    });
  });
});

describe("in a change freeze", () => {
  it("an action without break-glass is refused with 422 frozen; one with it is created, marked frozen", async () => {
    const refused = await createUnder(frozen, {});
    expect(refused.status).toBe(422);
    const p = await createIn(frozen, hotfix());
    expect(p.rule.freeze).toEqual({ name: "incident review", ends_at: FREEZE.end });
  });

  it("no normal approval counts, the card offers Break glass instead of Approve, and says why", async () => {
    const p = await createIn(frozen, hotfix());
    await settle(p.id);
    const [post] = await peer.slackCalls("chat.postMessage");
    const blocks = JSON.stringify(post!.blocks);
    expect(blocks).toContain("signoff.break_glass");
    expect(blocks).not.toContain("signoff.approve");
    expect(blocks).toContain("Created during the change freeze “incident review”");
    expect(blocks).toContain("*Can approve:* <@U0LEAD>, <@U0ALICE>, <@U0BOB>, by break-glass alone with a reason");
    await click("approve", p.id, "U0ALICE");
    await click("approve", p.id, "U0DAVE");
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    expect((await auditOf(p.id)).filter((e) => e.type === "click.refused").map((e) => e.details.code)).toEqual([
      "frozen",
      "frozen",
    ]);
  });

  it("break-glass approves alone with a reason: dispatched exactly once, every approver and the escalation told", async () => {
    const p = await createIn(frozen, hotfix({ requested_by: "U0BOB" }));
    await settle(p.id);
    expect(await breakGlass(p.id, "U0LEAD", "Outage: config push took api down")).toBeNull();
    expect((await peer.slackCalls("views.open"))[0]).toMatchObject({
      view: { callback_id: "signoff.break_glass_reason" },
    });
    await settle(p.id);
    await runAlarm(p.id);
    await settle(p.id);
    const after = await getProposal(p.id);
    expect(after.status).toBe("succeeded");
    expect(after.decision).toMatchObject({ by: "slack:U0LEAD", outcome: "approved", break_glass: true });
    expect(after.break_glass).toMatchObject({
      by: "slack:U0LEAD",
      reason: "Outage: config push took api down",
      freeze: "incident review",
    });
    expect((await peer.requests("/runner")).length).toBe(1);

    const posts = await peer.slackCalls("chat.postMessage");
    const review = posts.find((m) => JSON.stringify(m.blocks).includes("Was this break-glass approval justified?"));
    expect(review).toMatchObject({ channel: "C0INCIDENT" });
    expect(JSON.stringify(review!.blocks)).toContain("<@U0ALICE>, <@U0DAVE>");
    const notice = posts.find((m) => m.channel === "C0ESCALATE");
    expect(JSON.stringify(notice!.blocks)).toContain("approved `k8s.hotfix` alone");
    // Told once each, however often the alarm runs.
    expect(posts.filter((m) => m === review || m === notice)).toHaveLength(2);
    expect(posts.filter((m) => JSON.stringify(m.blocks).includes("approved `k8s.hotfix` alone"))).toHaveLength(2);
    const updates = await peer.slackCalls("chat.update");
    expect(JSON.stringify(updates.at(-1)!.blocks)).toContain("*Break-glass:* approved alone by <@U0LEAD>");

    const types = (await auditOf(p.id)).map((e) => [e.type, e.actor]);
    expect(types).toEqual(
      expect.arrayContaining([
        ["break_glass.used", "slack:U0LEAD"],
        ["proposal.approved", "slack:U0LEAD"],
      ]),
    );
    const approved = (await auditOf(p.id)).find((e) => e.type === "proposal.approved");
    expect(approved!.details).toMatchObject({ break_glass: true, reason: "Outage: config push took api down" });
  });

  it("without a reason, by the requester, or by someone not listed: refused in the modal, nothing changes", async () => {
    const p = await createIn(frozen, hotfix({ requested_by: "U0BOB" }));
    expect(await breakGlass(p.id, "U0LEAD", "   ")).toMatchObject({
      response_action: "errors",
      errors: { reason: expect.stringMatching(/needs a reason/) },
    });
    expect(await breakGlass(p.id, "U0BOB", "I am sure")).toMatchObject({
      errors: { reason: expect.stringMatching(/You requested this action/) },
    });
    expect(await breakGlass(p.id, "U0DAVE", "I am sure")).toMatchObject({
      errors: { reason: expect.stringMatching(/not among the break-glass approvers/) },
    });
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    expect((await peer.requests("/runner")).length).toBe(0);
    const codes = (await auditOf(p.id)).filter((e) => e.type === "break_glass.refused").map((e) => e.details.code);
    expect(codes).toEqual(expect.arrayContaining(["reason_required", "self_approval", "not_a_break_glass_approver"]));
  });
});

describe("out of a freeze", () => {
  it("one person, one vote: an approver who approved normally and then breaks glass has one vote, used for break-glass", async () => {
    const p = await createIn(open, hotfix());
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);
    expect(await breakGlass(p.id, "U0ALICE", "Cannot wait for dave")).toBeNull();
    await settle(p.id);
    const after = await getProposal(p.id);
    expect(after.approvals).toEqual([expect.objectContaining({ user: "U0ALICE", break_glass: true })]);
    expect(["approved", "dispatched", "succeeded"]).toContain(after.status);
    expect((await auditOf(p.id)).find((e) => e.type === "break_glass.used")!.details).toMatchObject({
      replaced_own_approval: true,
    });
  });

  it("the approvers' review is recorded and audited, once per person, never by whoever broke the glass", async () => {
    const p = await createIn(open, hotfix());
    expect(await breakGlass(p.id, "U0LEAD", "Customer-facing outage")).toBeNull();
    await settle(p.id);
    await button("signoff.break_glass_justified", p.id, "U0ALICE");
    await button("signoff.break_glass_justified", p.id, "U0ALICE");
    await button("signoff.break_glass_unjustified", p.id, "U0DAVE");
    await button("signoff.break_glass_justified", p.id, "U0LEAD");
    await settle(p.id);
    const after = await getProposal(p.id);
    expect(
      after.break_glass.reviews.map((r: { person: string; justified: boolean }) => [r.person, r.justified]),
    ).toEqual([
      ["U0ALICE", true],
      ["U0DAVE", false],
    ]);
    const events = await auditOf(p.id);
    expect(events.filter((e) => e.type === "break_glass.reviewed").map((e) => [e.actor, e.details.justified])).toEqual([
      ["slack:U0ALICE", true],
      ["slack:U0DAVE", false],
    ]);
    expect(events.filter((e) => e.type === "break_glass.review_refused").map((e) => e.details.code)).toEqual([
      "already_reviewed",
      "not_a_reviewer",
    ]);
  });
});
