// Unit tests of the pure state machine and decision rules (SPEC 2, 3, 5): no I/O.
import { describe, expect, it } from "vitest";
import { applyCancel, applyClick, applyExpiry, type Click, mayDecide } from "../src/proposal/lifecycle.ts";
import { EXPIRES_AT, makeProposal } from "./helpers/proposal-factory.ts";

const BEFORE = Date.parse(EXPIRES_AT) - 60_000;
const AFTER = Date.parse(EXPIRES_AT) + 1;
const clickBy = (user: string, kind: Click["kind"] = "approve", memberOf: string[] = []): Click => ({
  kind,
  user,
  memberOf,
  standing: "member",
  via: "slack",
});

describe("who may decide", () => {
  it("a listed approver may approve", () => {
    expect(mayDecide(makeProposal(), "U0ALICE", [], "approve", "member")).toEqual({ ok: true });
  });
  it("a member of a listed user group may approve", () => {
    expect(mayDecide(makeProposal(), "U0OSCAR", ["S0ONCALL"], "approve", "member")).toEqual({ ok: true });
  });
  it("anyone else may not, and is told why", () => {
    const verdict = mayDecide(makeProposal(), "U0MALLORY", [], "approve", "member");
    expect(verdict).toMatchObject({ ok: false, code: "not_an_approver" });
  });
  it("four-eyes: the requester may not approve their own proposal by default", () => {
    const p = makeProposal({ requested_by: "U0ALICE" });
    expect(mayDecide(p, "U0ALICE", [], "approve", "member")).toMatchObject({ ok: false, code: "self_approval" });
    expect(mayDecide(p, "U0ALICE", [], "deny", "member")).toEqual({ ok: true });
  });
  it("allow_self_approval lets the requester approve", () => {
    const p = makeProposal({ requested_by: "U0ALICE", rule: { allow_self_approval: true } });
    expect(mayDecide(p, "U0ALICE", [], "approve", "member")).toEqual({ ok: true });
  });
  it("requester_only: only the requester may decide, approvers or not", () => {
    const p = makeProposal({ requested_by: "U0BOB", rule: { requester_only: true, approvers: [] } });
    expect(mayDecide(p, "U0BOB", [], "approve", "member")).toEqual({ ok: true });
    expect(mayDecide(p, "U0ALICE", [], "approve", "member")).toMatchObject({ ok: false, code: "requester_only" });
  });
  it("after escalation only the escalation approvers decide", () => {
    const p = makeProposal({ escalated: { by: "slack:U0ALICE", at: EXPIRES_AT, prior_approvals: [] } });
    expect(mayDecide(p, "U0ALICE", [], "approve", "member")).toMatchObject({ ok: false, code: "not_an_approver" });
    expect(mayDecide(p, "U0LEAD", ["S0SRELEADS"], "approve", "member")).toEqual({ ok: true });
  });
});

describe("transitions", () => {
  it("one approval of one required approves and records who, when and the plan hash", () => {
    const t = applyClick(makeProposal(), clickBy("U0ALICE"), BEFORE);
    expect(t.ok).toBe(true);
    if (!t.ok) return;
    expect(t.proposal.status).toBe("approved");
    expect(t.proposal.approvals).toEqual([{ user: "U0ALICE", person: "U0ALICE", at: new Date(BEFORE).toISOString() }]);
    expect(t.proposal.decision).toMatchObject({ by: "slack:U0ALICE", outcome: "approved" });
    expect(t.events.map((e) => e.type)).toEqual(["approval.recorded", "proposal.approved"]);
    expect(t.events[1]!.details.plan_sha256).toBe(t.proposal.plan_sha256);
  });
  it("M-of-N: distinct approvers count, the same person twice counts once", () => {
    const p = makeProposal({ rule: { required_approvals: 2, approvers: ["U0ALICE", "U0DAVE"] } });
    const first = applyClick(p, clickBy("U0ALICE"), BEFORE);
    if (!first.ok) throw new Error("first approval refused");
    expect(first.proposal.status).toBe("pending");
    const again = applyClick(first.proposal, clickBy("U0ALICE"), BEFORE);
    expect(again).toMatchObject({ ok: false, code: "already_approved" });
    const second = applyClick(first.proposal, clickBy("U0DAVE"), BEFORE);
    expect(second.ok && second.proposal.status).toBe("approved");
  });
  it("any authorized deny ends it, with the reason kept", () => {
    const p = makeProposal({ rule: { required_approvals: 2 } });
    const t = applyClick(p, { ...clickBy("U0ALICE", "deny"), reason: "not during the sale" }, BEFORE);
    expect(t.ok && t.proposal.status).toBe("denied");
    expect(t.ok && t.proposal.decision).toMatchObject({
      by: "slack:U0ALICE",
      outcome: "denied",
      reason: "not during the sale",
    });
  });
  it("escalation stays pending, moves the decision, extends the deadline, keeps earlier approvals aside", () => {
    const p = makeProposal({ rule: { required_approvals: 2 }, approvals: [{ user: "U0ALICE", at: EXPIRES_AT }] });
    const t = applyClick(p, clickBy("U0OSCAR", "escalate", ["S0ONCALL"]), BEFORE);
    if (!t.ok) throw new Error(t.message);
    expect(t.proposal.status).toBe("pending");
    expect(t.proposal.expires_at).toBe(new Date(Date.parse(EXPIRES_AT) + 600_000).toISOString());
    expect(t.proposal.approvals).toEqual([]);
    expect(t.proposal.escalated?.prior_approvals).toEqual([{ user: "U0ALICE", at: EXPIRES_AT }]);
    const lead = applyClick(t.proposal, clickBy("U0LEAD", "approve", ["S0SRELEADS"]), BEFORE);
    expect(lead.ok && lead.proposal.status).toBe("approved");
    expect(applyClick(t.proposal, clickBy("U0LEAD", "escalate", ["S0SRELEADS"]), BEFORE)).toMatchObject({
      ok: false,
      code: "already_escalated",
    });
  });
  it("no escalation path: escalate is refused", () => {
    const p = makeProposal({ rule: { escalation: null } });
    expect(applyClick(p, clickBy("U0ALICE", "escalate"), BEFORE)).toMatchObject({ ok: false, code: "no_escalation" });
  });
  it("the first transition out of pending wins; every later attempt is refused and audited", () => {
    const approved = applyClick(makeProposal(), clickBy("U0ALICE"), BEFORE);
    if (!approved.ok) throw new Error("refused");
    for (const late of [
      applyClick(approved.proposal, clickBy("U0OSCAR", "deny", ["S0ONCALL"]), BEFORE),
      applyClick(approved.proposal, clickBy("U0OSCAR", "approve", ["S0ONCALL"]), BEFORE),
      applyCancel(approved.proposal, "alertmanager", BEFORE),
      applyExpiry(approved.proposal, AFTER),
    ]) {
      expect(late.ok).toBe(false);
    }
    const refused = applyClick(approved.proposal, clickBy("U0OSCAR", "deny", ["S0ONCALL"]), BEFORE);
    expect(refused.events).toEqual([
      {
        type: "click.refused",
        actor: "slack:U0OSCAR",
        details: { action: "deny", code: "not_pending", status: "approved", via: "slack" },
      },
    ]);
    expect(!refused.ok && refused.message).toContain("<@U0ALICE>");
  });
  it("a click after the deadline is refused as expired even before the alarm fires", () => {
    expect(applyClick(makeProposal(), clickBy("U0ALICE"), AFTER)).toMatchObject({ ok: false, code: "expired" });
  });
  it("expiry happens only at or after the deadline and only from pending", () => {
    expect(applyExpiry(makeProposal(), BEFORE).ok).toBe(false);
    const t = applyExpiry(makeProposal(), AFTER);
    expect(t.ok && t.proposal.status).toBe("expired");
    expect(applyExpiry(makeProposal({ status: "denied" }), AFTER).ok).toBe(false);
  });
  it("only the creating key may cancel, and only while pending", () => {
    expect(applyCancel(makeProposal(), "someone-else", BEFORE)).toMatchObject({ ok: false, code: "not_creator" });
    const t = applyCancel(makeProposal(), "alertmanager", BEFORE);
    expect(t.ok && t.proposal.status).toBe("cancelled");
    expect(applyCancel(makeProposal({ status: "approved" }), "alertmanager", BEFORE)).toMatchObject({
      ok: false,
      code: "not_pending",
    });
  });
});
