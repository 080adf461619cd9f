// Unit tests of the pure state machine and decision rules (SPEC 2, 3, 5, 6): no I/O.
import { describe, expect, it } from "vitest";
import type { RunnerAnswer } from "../src/dispatch/runner-answer.ts";
import {
  applyCancel,
  applyClick,
  applyCreate,
  applyDispatchAnswer,
  applyDispatchAttempt,
  applyExpiry,
  applyLinkUse,
  applyRunnerResult,
  type Click,
  type IssuedLinkState,
  linkRefusal,
  mayDecide,
  precheckDeny,
  stillToDecide,
} from "../src/proposal/lifecycle.ts";
import { EXPIRES_AT, makeProposal, PLAN_SHA256 } from "./helpers/proposal-factory.ts";

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
  it("a reminder names who may still approve; in a change freeze, the break-glass approvers (never the requester)", () => {
    const rule = { approvers: ["U0ALICE", "U0DAVE", "S0ONCALL"] };
    expect(stillToDecide(makeProposal({ requested_by: "U0DAVE", rule }))).toEqual(["U0ALICE", "S0ONCALL"]);
    const frozen = makeProposal({
      requested_by: "U0DAVE",
      rule: {
        ...rule,
        break_glass: { approvers: ["U0DAVE", "U0LEAD", "S0SRELEADS"], reason_required: true },
        freeze: { name: "weekend", ends_at: EXPIRES_AT },
      },
    });
    expect(stillToDecide(frozen)).toEqual(["U0LEAD", "S0SRELEADS"]);
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

describe("creation", () => {
  it("a new proposal is pending and its chain opens with who asked, for what plan, until when", () => {
    const p = makeProposal();
    expect(applyCreate(p)).toEqual({
      ok: true,
      proposal: p,
      events: [
        {
          type: "proposal.created",
          actor: "key:alertmanager",
          details: {
            action_type: "k8s.rollout_restart",
            plan_sha256: PLAN_SHA256,
            requested_by: "U0BOB",
            expires_at: EXPIRES_AT,
          },
        },
      ],
    });
  });
});

describe("the deny pre-check (before the reason modal opens)", () => {
  it("an approver may open it; nothing changes and nothing is recorded", () => {
    expect(precheckDeny(makeProposal(), "U0ALICE", [], "member")).toEqual({ ok: true });
    expect(precheckDeny(makeProposal({ requested_by: "U0ALICE" }), "U0ALICE", [], "member")).toEqual({ ok: true });
  });
  it("anyone else is refused, and the refusal is audited like a refused click", () => {
    const refused = precheckDeny(makeProposal(), "U0MALLORY", [], "member");
    expect(refused).toMatchObject({ ok: false, code: "not_an_approver" });
    expect(!refused.ok && refused.events).toEqual([
      {
        type: "click.refused",
        actor: "slack:U0MALLORY",
        details: { action: "deny", code: "not_an_approver", status: "pending", via: "slack" },
      },
    ]);
  });
  it("after the outcome it is refused as not pending, with who decided", () => {
    const decided = makeProposal({
      status: "approved",
      decision: { by: "slack:U0DAVE", at: EXPIRES_AT, outcome: "approved" },
    });
    const refused = precheckDeny(decided, "U0ALICE", [], "member");
    expect(refused).toMatchObject({ ok: false, code: "not_pending" });
    expect(!refused.ok && refused.message).toContain("<@U0DAVE>");
  });
});

describe("signed links presented to decide", () => {
  const links = { recipients: ["alice@example.com"], teams_recipient: null };
  const withLinks = () => makeProposal({ rule: { links } });
  const issued: IssuedLinkState = { recipient: "alice@example.com", choice: "approve", used_at: null };
  const use = {
    recipient: "alice@example.com",
    identity: "alice@example.com",
    choice: "approve" as const,
    expires: BEFORE / 1000 + 60,
  };

  it("an issued, unused, unexpired link decides as applyLink does", () => {
    const t = applyLinkUse(withLinks(), issued, use, BEFORE);
    expect(t.ok && t.proposal.status).toBe("approved");
    expect(t.ok && t.proposal.approvals.map((a) => a.user)).toEqual(["link:alice@example.com"]);
  });
  it("each way a link can be wrong is refused with its own code and audited as link.refused", () => {
    const cases: Array<[ReturnType<typeof applyLinkUse>, string]> = [
      [applyLinkUse(makeProposal(), issued, use, BEFORE), "links_disabled"],
      [applyLinkUse(withLinks(), null, use, BEFORE), "unknown_link"],
      [applyLinkUse(withLinks(), { ...issued, recipient: "bob@example.com" }, use, BEFORE), "unknown_link"],
      [applyLinkUse(withLinks(), { ...issued, choice: "deny" }, use, BEFORE), "unknown_link"],
      [applyLinkUse(withLinks(), { ...issued, used_at: BEFORE - 1 }, use, BEFORE), "already_used"],
      [applyLinkUse(withLinks(), issued, { ...use, expires: BEFORE / 1000 - 1 }, BEFORE), "expired"],
    ];
    for (const [t, code] of cases) {
      expect(t).toMatchObject({ ok: false, code });
      expect(t.events).toEqual([
        {
          type: "link.refused",
          actor: "link:alice@example.com",
          details: { choice: "approve", code, status: "pending", via: "link" },
        },
      ]);
    }
  });
  it("a refusal before any decision names the recipient only when the token verified", () => {
    expect(linkRefusal(withLinks(), "bad_signature", null, null)).toEqual({
      type: "link.refused",
      actor: "link:?",
      details: { code: "bad_signature", status: "pending", via: "link" },
    });
    expect(linkRefusal(withLinks(), "csrf_origin", "alice@example.com", "deny")).toEqual({
      type: "link.refused",
      actor: "link:alice@example.com",
      details: { choice: "deny", code: "csrf_origin", status: "pending", via: "link" },
    });
  });
});

describe("dispatch (SPEC 6)", () => {
  const approved = () =>
    makeProposal({ status: "approved", decision: { by: "slack:U0ALICE", at: EXPIRES_AT, outcome: "approved" } });
  const RETRY = { maxAttempts: 8, at: BEFORE + 2_000 };
  const reply = (answer: RunnerAnswer, attempt = 1, truncated = false) => ({ attempt, answer, ms: 42, truncated });

  it("an attempt is counted and audited before it leaves, only while approved", () => {
    const t = applyDispatchAttempt(approved());
    expect(t.ok && t.proposal.dispatch.attempts).toBe(1);
    expect(t.events).toEqual([
      { type: "dispatch.attempt", actor: "system", details: { attempt: 1, plan_sha256: PLAN_SHA256 } },
    ]);
    for (const p of [
      makeProposal(),
      makeProposal({ status: "dispatched" }),
      { ...approved(), kind: "verify" as const },
    ]) {
      expect(applyDispatchAttempt(p)).toEqual({
        ok: false,
        code: "wrong_state",
        message: expect.any(String),
        events: [],
      });
    }
  });
  it("a final answer records the result and ends the dispatch", () => {
    const t = applyDispatchAnswer(
      approved(),
      reply({ kind: "final", status: "failed", output: "exit 1" }),
      RETRY,
      BEFORE,
    );
    const at = new Date(BEFORE).toISOString();
    expect(t).toMatchObject({
      ok: true,
      retryAt: null,
      proposal: {
        status: "failed",
        result: { status: "failed", output: "exit 1", at },
        dispatch: { dispatched_at: at },
      },
    });
    expect(t.events).toEqual([
      { type: "dispatch.answer", actor: "runner", details: { attempt: 1, outcome: "final", ms: 42 } },
      { type: "proposal.failed", actor: "runner", details: { output_chars: 6 } },
    ]);
  });
  it("accepted moves to dispatched; a refusal is dispatch_failed at once", () => {
    const accepted = applyDispatchAnswer(approved(), reply({ kind: "accepted" }), RETRY, BEFORE);
    expect(accepted.ok && accepted.proposal.status).toBe("dispatched");
    expect(accepted.events.map((e) => e.type)).toEqual(["dispatch.answer", "proposal.dispatched"]);
    const answer = { kind: "refused", error: "HTTP 403", httpStatus: 403, reason: '{"error":"not here"}' } as const;
    const refused = applyDispatchAnswer(approved(), reply(answer), RETRY, BEFORE);
    expect(refused).toMatchObject({
      ok: true,
      retryAt: null,
      proposal: {
        status: "dispatch_failed",
        dispatch: { last_error: "HTTP 403", refusal: { http_status: 403, reason: '{"error":"not here"}' } },
      },
    });
    // The runner's reason is audited with its answer, apart from signoff's own error (issue 13).
    expect(refused.events[0]?.details).toMatchObject({
      error: "HTTP 403",
      http_status: 403,
      runner_reason: '{"error":"not here"}',
    });
    expect(refused.events[1]).toEqual({
      type: "proposal.dispatch_failed",
      actor: "system",
      details: { reason: "refused", error: "HTTP 403" },
    });
  });
  it("a retryable answer stays approved and asks for another attempt, until the attempts are spent", () => {
    const again = applyDispatchAnswer(approved(), reply({ kind: "retry", error: "HTTP 503" }, 3), RETRY, BEFORE);
    expect(again).toMatchObject({
      ok: true,
      retryAt: RETRY.at,
      proposal: { status: "approved", dispatch: { last_error: "HTTP 503" } },
    });
    expect(again.events).toEqual([
      {
        type: "dispatch.answer",
        actor: "runner",
        details: {
          attempt: 3,
          outcome: "retry",
          ms: 42,
          error: "HTTP 503",
          retry_at: new Date(RETRY.at).toISOString(),
        },
      },
    ]);
    const spent = applyDispatchAnswer(approved(), reply({ kind: "retry", error: "HTTP 503" }, 8), RETRY, BEFORE);
    expect(spent).toMatchObject({ ok: true, retryAt: null, proposal: { status: "dispatch_failed" } });
    expect(spent.events[1]!.details).toEqual({ reason: "retries_exhausted", attempts: 8, error: "HTTP 503" });
  });
  it("an answer cut at the read limit says so in its audit record", () => {
    const t = applyDispatchAnswer(approved(), reply({ kind: "accepted" }, 1, true), RETRY, BEFORE);
    expect(t.events[0]!.details).toEqual({ attempt: 1, outcome: "accepted", ms: 42, truncated: true });
  });
  it("an answer that comes after the outcome (a result arrived meanwhile) changes and records nothing", () => {
    const done = makeProposal({ status: "succeeded" });
    const t = applyDispatchAnswer(done, reply({ kind: "final", status: "failed", output: "" }), RETRY, BEFORE);
    expect(t).toMatchObject({ ok: false, code: "wrong_state", events: [], retryAt: null });
  });
});

describe("runner results (SPEC 6, asynchronous)", () => {
  const result = { webhookId: "msg_1", status: "succeeded" as const, output: "ok", seenBefore: false };

  it("a dispatched proposal takes the result, audited with its webhook-id", () => {
    const at = new Date(BEFORE).toISOString();
    const p = makeProposal({
      status: "dispatched",
      dispatch: { attempts: 1, last_error: null, dispatched_at: EXPIRES_AT },
    });
    const t = applyRunnerResult(p, result, BEFORE);
    expect(t).toMatchObject({
      ok: true,
      proposal: {
        status: "succeeded",
        result: { status: "succeeded", output: "ok", at },
        dispatch: { dispatched_at: EXPIRES_AT },
      },
    });
    expect(t.events).toEqual([
      { type: "proposal.succeeded", actor: "runner", details: { webhook_id: "msg_1", output_chars: 2 } },
    ]);
  });
  it("so does an approved one whose attempt is under way (the result can beat the answer)", () => {
    const p = makeProposal({ status: "approved", dispatch: { attempts: 1, last_error: null, dispatched_at: null } });
    const t = applyRunnerResult(p, { ...result, status: "failed" }, BEFORE);
    expect(t).toMatchObject({
      ok: true,
      proposal: { status: "failed", dispatch: { dispatched_at: new Date(BEFORE).toISOString() } },
    });
  });
  it("a replay is refused before anything else", () => {
    const t = applyRunnerResult(makeProposal({ status: "dispatched" }), { ...result, seenBefore: true }, BEFORE);
    expect(t).toMatchObject({ ok: false, code: "replayed" });
    expect(t.events).toEqual([
      { type: "result.refused", actor: "runner", details: { code: "replayed", webhook_id: "msg_1" } },
    ]);
  });
  it("nothing awaits a result before a dispatch or after an outcome", () => {
    for (const p of [
      makeProposal(),
      makeProposal({ status: "approved" }),
      makeProposal({ status: "succeeded", result: { status: "succeeded", output: "", at: EXPIRES_AT } }),
    ]) {
      const t = applyRunnerResult(p, result, BEFORE);
      expect(t).toMatchObject({ ok: false, code: "wrong_state" });
      expect(t.events).toEqual([
        {
          type: "result.refused",
          actor: "runner",
          details: { code: "wrong_state", status: p.status, webhook_id: "msg_1" },
        },
      ]);
    }
    const after = applyRunnerResult(
      makeProposal({ status: "succeeded", result: { status: "succeeded", output: "", at: EXPIRES_AT } }),
      result,
      BEFORE,
    );
    expect(!after.ok && after.message).toBe("a result was already recorded for this proposal");
  });
});
