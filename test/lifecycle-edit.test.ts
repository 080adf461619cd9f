// Edit before approve (issue 17), the pure transition: who may edit, what an edit may change, what it voids, and
// four-eyes over edits (someone who did not edit must approve the edited plan; an editor never breaks the glass).
import { describe, expect, it } from "vitest";
import type { EditRule } from "../src/config/policy.ts";
import { planSha256 } from "../src/proposal/create.ts";
import {
  applyBreakGlass,
  applyClick,
  applyEdit,
  applyLink,
  drawnState,
  type EditInput,
  precheckEdit,
} from "../src/proposal/lifecycle.ts";
import type { Proposal } from "../src/proposal/types.ts";
import { drawnFromBlockId, homeBlockId } from "../src/slack/home.ts";
import { EXPIRES_AT, makeProposal, type ProposalOverrides } from "./helpers/proposal-factory.ts";

const NOW = Date.parse(EXPIRES_AT) - 60_000;

const EDIT: EditRule = {
  params: ["replicas", "note"],
  params_schema: {
    type: "object",
    required: ["deployment", "replicas"],
    properties: { deployment: { type: "string" }, replicas: { type: "integer", minimum: 0 }, note: { type: "string" } },
    additionalProperties: false,
  },
  schema: { properties: { replicas: { maximum: 10 } } },
  rules: ["params.replicas > 20"],
};

function editable(overrides: ProposalOverrides = {}): Proposal {
  const { rule, ...rest } = overrides;
  return makeProposal({
    action: { type: "k8s.resize", params: { deployment: "api", replicas: 8 } },
    requested_by: "U0BOB",
    ...rest,
    rule: { approvers: ["U0ALICE", "U0DAVE", "U0ERIN", "S0ONCALL"], required_approvals: 1, edit: EDIT, ...rule },
  });
}

const edit = (p: Proposal, user: string, values: Record<string, unknown>, extra: Partial<EditInput> = {}) =>
  applyEdit(p, { user, standing: "member", memberOf: [], values, via: "slack", ...extra }, NOW);
/** An Approve from a card drawn on the plan in force (its buttons carry that plan once it was edited). */
const approve = (p: Proposal, user: string) =>
  applyClick(
    p,
    { kind: "approve", user, memberOf: [], standing: "member", via: "slack", plan: p.edits ? p.plan_sha256 : null },
    NOW,
  );

function ok<T extends { ok: boolean }>(t: T): Extract<T, { ok: true }> {
  if (!t.ok) throw new Error(`refused: ${JSON.stringify(t)}`);
  return t as Extract<T, { ok: true }>;
}

describe("applyEdit", () => {
  it("changes the params and the plan hash, voids the approvals so far (kept on the edit) and audits both plans", () => {
    const p = editable({ rule: { required_approvals: 2 } });
    const approved = ok(approve(p, "U0DAVE")).proposal;
    const t = ok(edit(approved, "U0ALICE", { replicas: 3, note: "fewer is enough" }));
    const next = t.proposal;
    expect(next.action.params).toEqual({ deployment: "api", replicas: 3, note: "fewer is enough" });
    const expected = planSha256({
      action: next.action,
      summary: p.summary,
      reason: p.reason,
      blast_radius: p.blast_radius,
      rollback: p.rollback,
    });
    expect(next.plan_sha256).toBe(expected);
    expect(next.plan_sha256).not.toBe(p.plan_sha256);
    expect(next.approvals).toEqual([]);
    expect(next.status).toBe("pending");
    expect(next.edits).toEqual([
      {
        by: "slack:U0ALICE",
        person: "U0ALICE",
        at: new Date(NOW).toISOString(),
        from_plan_sha256: p.plan_sha256,
        plan_sha256: expected,
        changes: [
          { param: "replicas", from: 8, to: 3 },
          { param: "note", from: null, to: "fewer is enough" },
        ],
        voided_approvals: approved.approvals,
      },
    ]);
    expect(t.events).toEqual([
      {
        type: "proposal.edited",
        actor: "slack:U0ALICE",
        details: {
          person: "U0ALICE",
          from_plan_sha256: p.plan_sha256,
          plan_sha256: expected,
          changes: next.edits![0]!.changes,
          voided_approvals: ["U0DAVE"],
          via: "slack",
        },
      },
    ]);
    // A Home-tab view drawn before the edit is stale, even with the same count of approvals.
    expect(drawnState(next)).not.toBe(drawnState(p));
  });

  it("a param left unchanged is not in the diff; an empty value leaves an optional param out", () => {
    const p = editable({ action: { type: "k8s.resize", params: { deployment: "api", replicas: 8, note: "x" } } });
    const next = ok(edit(p, "U0ALICE", { replicas: 8, note: undefined })).proposal;
    expect(next.action.params).toEqual({ deployment: "api", replicas: 8 });
    expect(next.edits![0]!.changes).toEqual([{ param: "note", from: "x", to: null }]);
  });

  it("refuses, changing nothing: a param outside editable_params, no change, a schema failure, another risk rule", () => {
    const p = editable();
    expect(edit(p, "U0ALICE", { deployment: "web" })).toMatchObject({
      ok: false,
      code: "not_an_editable_param",
      message: "Only replicas, note can be edited on k8s.resize; not deployment.",
      events: [{ type: "edit.refused", details: { code: "not_an_editable_param", params: ["deployment"] } }],
    });
    expect(edit(p, "U0ALICE", { replicas: 8 })).toMatchObject({ ok: false, code: "no_change" });
    expect(edit(p, "U0ALICE", { replicas: "many" })).toMatchObject({
      ok: false,
      code: "invalid_params",
      details: [{ path: "params.replicas", message: "must be a whole number" }],
    });
    // params_schema allows 15, the edit_schema does not (edits may only narrow).
    expect(edit(p, "U0ALICE", { replicas: 15 })).toMatchObject({
      ok: false,
      code: "invalid_params",
      details: [{ path: "params.replicas", message: expect.stringMatching(/10/) }],
    });
    // The required param cannot be left out.
    const wide = editable({ rule: { edit: { ...EDIT, params: ["replicas"], schema: null } } });
    expect(edit(wide, "U0ALICE", { replicas: undefined })).toMatchObject({ ok: false, code: "invalid_params" });
    // Out of the rule that tightened it (replicas > 20), or into one: refused, a new proposal is the way.
    expect(edit(wide, "U0ALICE", { replicas: 25 })).toMatchObject({ ok: false, code: "rule_changed" });
    const risky = editable({
      action: { type: "k8s.resize", params: { deployment: "api", replicas: 30 } },
      rule: {
        edit: { ...EDIT, schema: null },
        risk: {
          index: 0,
          when: "params.replicas > 20",
          label: "x",
          approvers: null,
          ttl_seconds: null,
          unevaluable: false,
        },
      },
    });
    expect(edit(risky, "U0ALICE", { replicas: 5 })).toMatchObject({ ok: false, code: "rule_changed" });
    expect(ok(edit(risky, "U0ALICE", { replicas: 25 })).proposal.action.params).toMatchObject({ replicas: 25 });
  });

  it("refuses the requester through any identity, a non-approver, a guest, and a submission on a stale plan", () => {
    const people = { U0BOB: "bob", "bob@example.com": "bob", U0BOB2: "bob" };
    const p = editable({ requested_by: "bob@example.com", rule: { approvers: ["U0ALICE", "U0BOB2"], people } });
    expect(edit(p, "U0BOB2", { replicas: 3 })).toMatchObject({ ok: false, code: "self_edit" });
    expect(edit(p, "U0MALLORY", { replicas: 3 })).toMatchObject({ ok: false, code: "not_an_approver" });
    expect(edit(p, "U0ALICE", { replicas: 3 }, { standing: "guest" })).toMatchObject({
      ok: false,
      code: "not_a_member",
    });
    expect(edit(p, "U0ALICE", { replicas: 3 }, { base: "0".repeat(64) })).toMatchObject({ ok: false, code: "changed" });
    expect(ok(edit(p, "U0ALICE", { replicas: 3 }, { base: p.plan_sha256 })).proposal.action.params).toMatchObject({
      replicas: 3,
    });
    // Even where the policy allows self-approval, the requester never edits.
    const self = editable({ rule: { allow_self_approval: true, approvers: ["U0ALICE", "U0BOB"] } });
    expect(edit(self, "U0BOB", { replicas: 3 })).toMatchObject({ ok: false, code: "self_edit" });
  });

  it("refuses on a decided, expired, frozen, requester_only or non-editable proposal", () => {
    const approved = ok(approve(editable(), "U0DAVE")).proposal;
    expect(edit(approved, "U0ALICE", { replicas: 3 })).toMatchObject({ ok: false, code: "not_pending" });
    const late = editable({ expires_at: new Date(NOW - 1).toISOString() });
    expect(edit(late, "U0ALICE", { replicas: 3 })).toMatchObject({ ok: false, code: "expired" });
    const frozen = editable({
      rule: {
        freeze: { name: "holidays", ends_at: EXPIRES_AT },
        break_glass: { approvers: ["U0LEAD"], reason_required: true },
      },
    });
    expect(edit(frozen, "U0ALICE", { replicas: 3 })).toMatchObject({ ok: false, code: "frozen" });
    const mine = editable({ rule: { requester_only: true, approvers: [] } });
    expect(edit(mine, "U0BOB", { replicas: 3 })).toMatchObject({ ok: false, code: "requester_only" });
    const plain = editable({ rule: { edit: undefined } });
    expect(edit(plain, "U0ALICE", { replicas: 3 })).toMatchObject({ ok: false, code: "not_editable" });
    // The Edit button's check runs the same gate.
    const who = { user: "U0ALICE", memberOf: [], standing: "member" as const, via: "slack" };
    expect(precheckEdit(frozen, who, NOW)).toMatchObject({ ok: false, code: "frozen" });
    expect(precheckEdit(editable(), who, NOW)).toEqual({ ok: true });
  });
});

describe("a card drawn before an edit", () => {
  it("its Approve counts nothing (changed); one drawn on the plan in force counts", () => {
    const p = editable();
    const edited = ok(edit(p, "U0ALICE", { replicas: 3 })).proposal;
    const click = (q: Proposal, plan: string | null | undefined) =>
      applyClick(q, { kind: "approve", user: "U0DAVE", memberOf: [], standing: "member", via: "slack", plan }, NOW);
    expect(click(edited, null)).toMatchObject({ ok: false, code: "changed" });
    expect(click(edited, p.plan_sha256)).toMatchObject({ ok: false, code: "changed" });
    // A click that names no plan saw the plan as created (fails closed); a prefix of the hash is not the plan.
    expect(click(edited, undefined)).toMatchObject({ ok: false, code: "changed" });
    expect(click(edited, edited.plan_sha256.slice(0, 12))).toMatchObject({ ok: false, code: "changed" });
    expect(click(edited, edited.plan_sha256)).toMatchObject({
      ok: true,
      proposal: { status: "approved" },
    });
    // Never edited: a card drawn as created still approves.
    expect(click(p, null)).toMatchObject({ ok: true, proposal: { status: "approved" } });
  });

  it("a link's confirmation page opened before the edit approves nothing; opened again, it does", () => {
    const people = { U0DAVE: "dave", "dave@example.com": "dave" };
    const p = editable({ rule: { people, links: { recipients: ["dave@example.com"], teams_recipient: null } } });
    const edited = ok(edit(p, "U0ALICE", { replicas: 3 })).proposal;
    const link = { recipient: "dave@example.com", identity: "dave@example.com", choice: "approve" as const };
    expect(applyLink(edited, { ...link, plan: p.plan_sha256 }, NOW)).toMatchObject({
      ok: false,
      code: "changed",
    });
    // A form without the plan field showed the plan as created.
    expect(applyLink(edited, link, NOW)).toMatchObject({ ok: false, code: "changed" });
    expect(applyLink(edited, { ...link, plan: edited.plan_sha256 }, NOW)).toMatchObject({
      ok: true,
      proposal: { status: "approved" },
    });
  });
});

describe("four-eyes over edits: someone who did not edit must approve the edited plan", () => {
  it("M = 1: the editor's approval is refused; anyone else's approves", () => {
    const edited = ok(edit(editable(), "U0ALICE", { replicas: 3 })).proposal;
    expect(approve(edited, "U0ALICE")).toMatchObject({ ok: false, code: "edited_by_you" });
    expect(approve(edited, "U0DAVE")).toMatchObject({ ok: true, proposal: { status: "approved" } });
  });

  it("M = 2: the editor may be one of two, never with only editors", () => {
    const edited = ok(edit(editable({ rule: { required_approvals: 2 } }), "U0ALICE", { replicas: 3 })).proposal;
    const twice = ok(edit(edited, "U0DAVE", { replicas: 4 })).proposal;
    const first = ok(approve(twice, "U0ALICE")).proposal;
    expect(first.status).toBe("pending");
    // Dave edited too: two editors alone never complete it.
    expect(approve(first, "U0DAVE")).toMatchObject({ ok: false, code: "edited_by_you" });
    expect(approve(first, "U0ERIN")).toMatchObject({ ok: true, proposal: { status: "approved" } });
    // Someone who did not edit approved first: an editor's approval may then complete it.
    const other = ok(approve(twice, "U0ERIN")).proposal;
    expect(approve(other, "U0DAVE")).toMatchObject({ ok: true, proposal: { status: "approved" } });
  });

  it("the same person through a signed link is still the editor", () => {
    const people = { U0ALICE: "alice", "alice@example.com": "alice" };
    const p = editable({ rule: { people, links: { recipients: ["alice@example.com"], teams_recipient: null } } });
    const edited = ok(edit(p, "U0ALICE", { replicas: 3 })).proposal;
    const link = { recipient: "alice@example.com", identity: "alice@example.com", choice: "approve" as const };
    expect(applyLink(edited, { ...link, plan: edited.plan_sha256 }, NOW)).toMatchObject({
      ok: false,
      code: "edited_by_you",
    });
  });

  it("an editor never breaks the glass on their own edit", () => {
    const p = editable({ rule: { break_glass: { approvers: ["U0ALICE", "U0LEAD"], reason_required: true } } });
    const edited = ok(edit(p, "U0ALICE", { replicas: 3 })).proposal;
    const glass = (user: string, plan: string | null = edited.plan_sha256) =>
      applyBreakGlass(edited, { user, standing: "member", memberOf: [], reason: "outage", via: "slack", plan }, NOW);
    expect(glass("U0ALICE")).toMatchObject({ ok: false, code: "edited_by_you" });
    expect(glass("U0LEAD")).toMatchObject({ ok: true, proposal: { status: "approved" } });
  });

  it("break-glass never approves an edit unseen: a modal or card drawn on the plan before is refused (changed)", () => {
    const p = editable({ rule: { break_glass: { approvers: ["U0LEAD"], reason_required: true } } });
    const edited = ok(edit(p, "U0ALICE", { replicas: 3 })).proposal;
    const glass = (plan: string | null | undefined) =>
      applyBreakGlass(
        edited,
        { user: "U0LEAD", standing: "member", memberOf: [], reason: "outage", via: "slack", plan },
        NOW,
      );
    expect(glass(p.plan_sha256)).toMatchObject({ ok: false, code: "changed" });
    expect(glass(null)).toMatchObject({ ok: false, code: "changed" });
    expect(glass(undefined)).toMatchObject({ ok: false, code: "changed" });
    expect(glass(edited.plan_sha256)).toMatchObject({ ok: true, proposal: { status: "approved" } });
  });

  it("an edit whose plan the card could not show whole is refused (an approver must see every character)", () => {
    const t = edit(editable(), "U0ALICE", { note: "x".repeat(5_000) });
    expect(t).toMatchObject({ ok: false, code: "invalid_params" });
    expect(JSON.stringify(t)).toContain("an approver must see every character");
  });
});

describe("the Home tab's buttons on an edited proposal", () => {
  it("carry the drawn state with the edits counted, and read it back (a click on them is checked, not refused blind)", () => {
    const edited = ok(edit(editable({ id: `prp_${"a".repeat(64)}` }), "U0ALICE", { replicas: 3 })).proposal;
    expect(drawnState(edited)).toMatch(/\.1$/);
    expect(drawnFromBlockId(homeBlockId(edited), edited.id)).toBe(drawnState(edited));
    const twice = ok(edit(edited, "U0DAVE", { replicas: 4 })).proposal;
    expect(drawnFromBlockId(homeBlockId(twice), twice.id)).toBe(drawnState(twice));
  });
});
