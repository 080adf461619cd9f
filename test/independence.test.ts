// SPEC 12, independence: no single party can cause a dispatch. A property over random policies, people with several
// identities, and random sequences of clicks (on the card, in the Home tab, and Approve all / Deny all on a grouped
// card), link decisions and escalations by random actors (the requester and the escalator among them) or by the clock
// (escalation.after_seconds, issue 16), and edits of the params by anyone (issue 17): no proposal reaches `approved`
// unless the rule in force was met by that many distinct people, none of them the requester (unless self-approval is
// allowed), once escalated none the escalator, and once edited at least one who did not edit it (an edit voids every
// approval given before it).
// Pure: the state machine itself (src/proposal/lifecycle.ts), so thousands of sequences run in a second.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  applyAutoEscalation,
  applyBreakGlass,
  applyClick,
  applyEdit,
  applyLink,
  type ClickKind,
  drawnState,
  editorsOf,
  homeOffer,
  personOf,
  requiredApprovals,
  type Standing,
} from "../src/proposal/lifecycle.ts";
import type { Proposal } from "../src/proposal/types.ts";
import { auditOf, click, clickPayload, createProposal, getProposal, settle, slackRequest } from "./helpers/api.ts";
import { approvalBody, propose } from "./helpers/links.ts";
import { EXPIRES_AT, makeProposal } from "./helpers/proposal-factory.ts";
import { peer } from "./peer/client.ts";

const NOW = Date.parse(EXPIRES_AT) - 60_000;
const USERS = ["U0A", "U0B", "U0C", "U0D", "U0E", "U0F"] as const;
const EMAILS = ["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io"] as const;
const GROUP = "S0GROUP";

type Step =
  | { via: "slack"; user: string; kind: ClickKind; standing: Standing }
  // A Home-tab button (issue 16): the card's checks, plus the state its view was drawn on, current or stale.
  | { via: "home"; user: string; kind: ClickKind; standing: Standing; fresh: boolean }
  | { via: "link"; recipient: string; identity: string | null; choice: "approve" | "deny" }
  // escalation.after_seconds passed: the automatic escalation's job runs (whatever came before)
  | { via: "clock" }
  | { via: "glass"; user: string; standing: Standing; reason: string }
  // Edit before approve: anyone changes the editable params (the requester, a guest, a non-approver among them).
  | { via: "edit"; user: string; standing: Standing; deployment: string }
  // Approve all / Deny all on a grouped card (docs/grouping.md): the group object sends this item's object one click
  // by that person, which it decides as a click on the item's own button (no view state, no reason).
  | { via: "group"; user: string; kind: "approve" | "deny"; standing: Standing };

interface World {
  proposal: Proposal;
  /** Members of GROUP. */
  group: string[];
  steps: Step[];
}

const subset = <T>(items: readonly T[], min = 0) =>
  fc.subarray([...items], { minLength: min }).chain((xs) => fc.shuffledSubarray(xs, { minLength: xs.length }));

/** People: each e-mail belongs to at most one person; a person is a Slack id, an e-mail, or both. */
const peopleArb = fc
  .array(fc.tuple(fc.constantFrom(...USERS), fc.constantFrom(...EMAILS)), { maxLength: 5 })
  .map((pairs) => {
    const people: Record<string, string> = {};
    pairs.forEach(([user, email], i) => {
      if (people[user] || people[email]) return;
      people[user] = `person${i}`;
      people[email] = `person${i}`;
    });
    return people;
  });

/**
 * Random worlds. `escalating`: every policy escalates, by itself too (after_seconds), and escalations and the clock
 * come often, so the sequences that mix a click's escalation, the clock and approvals are many.
 */
const worlds = (escalating: boolean): fc.Arbitrary<World> =>
  fc
    .record({
      people: peopleArb,
      approvers: subset([...USERS, GROUP]),
      group: subset(USERS),
      required: fc.integer({ min: 1, max: 3 }),
      selfApproval: fc.boolean(),
      requesterOnly: fc.boolean(),
      escalation: fc.option(
        fc.record({
          approvers: subset([...USERS, GROUP], 1),
          required: fc.integer({ min: 1, max: 2 }),
          automatic: escalating ? fc.constant(true) : fc.boolean(),
        }),
        { nil: null, freq: escalating ? Number.MAX_SAFE_INTEGER : 5 },
      ),
      links: fc.option(fc.record({ recipients: subset(EMAILS), teams: fc.boolean() })),
      requestedBy: fc.option(fc.constantFrom<string>(...USERS, ...EMAILS, "person0", "person1")),
      // A risk rule that matched: it narrows who decides (only people in both lists, escalated or not), may raise M
      // (which then also bounds the escalated decision's M from below), and freezes no links.
      narrowed: fc.option(subset([...USERS, GROUP], 1)),
      riskRequired: fc.option(fc.integer({ min: 1, max: 3 })),
      // Break-glass, and whether the proposal was created in a change freeze (then only break-glass approves it).
      breakGlass: fc.option(subset([...USERS, GROUP], 1)),
      frozen: fc.boolean(),
      editable: fc.boolean(),
    })
    .chain((w) => {
      const narrowed = w.requesterOnly ? null : w.narrowed;
      const links = w.requesterOnly || narrowed ? null : w.links;
      const recipients = links ? [...links.recipients, ...(links.teams ? ["teams"] : [])] : [];
      const step: fc.Arbitrary<Step> = fc.oneof(
        fc.record({
          via: fc.constant("slack" as const),
          user: fc.constantFrom(...USERS),
          kind: escalating
            ? fc.constantFrom<ClickKind>("approve", "approve", "escalate")
            : fc.constantFrom<ClickKind>("approve", "approve", "approve", "escalate", "deny"),
          standing: fc.constantFrom<Standing>("member", "member", "member", "member", "guest", "other_workspace"),
        }),
        fc.record({
          via: fc.constant("home" as const),
          user: fc.constantFrom(...USERS),
          kind: escalating
            ? fc.constantFrom<ClickKind>("approve", "approve", "escalate")
            : fc.constantFrom<ClickKind>("approve", "approve", "approve", "escalate", "deny"),
          standing: fc.constantFrom<Standing>("member", "member", "member", "member", "guest", "other_workspace"),
          fresh: fc.boolean(),
        }),
        ...(recipients.length > 0
          ? [
              fc.record({
                via: fc.constant("link" as const),
                recipient: fc.constantFrom(...recipients),
                identity: fc.option(fc.constantFrom(...EMAILS), { freq: 4 }),
                choice: fc.constantFrom<"approve" | "deny">("approve", "approve", "approve", "deny"),
              }),
            ]
          : []),
        fc.record({
          via: fc.constant("group" as const),
          user: fc.constantFrom(...USERS),
          kind: fc.constantFrom<"approve" | "deny">("approve", "approve", "approve", "deny"),
          standing: fc.constantFrom<Standing>("member", "member", "member", "guest", "other_workspace"),
        }),
        fc.constant({ via: "clock" as const }),
        ...(w.breakGlass && !w.requesterOnly
          ? [
              fc.record({
                via: fc.constant("glass" as const),
                user: fc.constantFrom(...USERS),
                standing: fc.constantFrom<Standing>("member", "member", "member", "guest", "other_workspace"),
                reason: fc.constantFrom("", "  ", "outage"),
              }),
            ]
          : []),
        ...(w.editable
          ? [
              fc.record({
                via: fc.constant("edit" as const),
                user: fc.constantFrom(...USERS),
                standing: fc.constantFrom<Standing>("member", "member", "member", "guest"),
                deployment: fc.constantFrom("api", "web", "worker"),
              }),
            ]
          : []),
      );
      const glass = w.requesterOnly ? null : w.breakGlass;
      const requestedBy = w.requesterOnly ? (w.requestedBy ?? "U0A") : w.requestedBy;
      const proposal = makeProposal({
        requested_by: requestedBy,
        rule: {
          approvers: w.requesterOnly ? [] : w.approvers,
          required_approvals: w.requesterOnly ? 1 : Math.max(w.required, (narrowed && w.riskRequired) || 0),
          allow_self_approval: w.selfApproval,
          requester_only: w.requesterOnly,
          escalation: w.escalation
            ? {
                approvers: w.escalation.approvers,
                channel: "C0ESC",
                extend_ttl_seconds: 0,
                required_approvals: w.escalation.required,
                ...(w.escalation.automatic ? { after_seconds: 60 } : {}),
              }
            : null,
          links: links ? { recipients: links.recipients, teams_recipient: links.teams ? "teams" : null } : null,
          people: w.people,
          ...(narrowed
            ? {
                risk: {
                  index: 0,
                  when: "true",
                  label: "risky",
                  approvers: narrowed,
                  required_approvals: w.riskRequired,
                  ttl_seconds: null,
                  unevaluable: false,
                },
              }
            : {}),
          ...(glass ? { break_glass: { approvers: glass, reason_required: true as const } } : {}),
          ...(glass && w.frozen ? { freeze: { name: "freeze", ends_at: EXPIRES_AT } } : {}),
          ...(w.editable ? { edit: EDIT_RULE } : {}),
        },
      });
      return fc.record({
        proposal: fc.constant(proposal),
        group: fc.constant(w.group),
        steps: fc.array(step, { maxLength: 14 }),
      });
    });
const worldArb = worlds(false);

/** What an editable world's proposals let approvers change: the deployment, any string. */
const EDIT_RULE = {
  params: ["deployment"],
  params_schema: { type: "object", properties: { deployment: { type: "string" } } },
  schema: null,
  rules: [],
};

/** Runs the steps; returns the proposal as it stands after each accepted one. */
function play(world: World): Proposal[] {
  let p = world.proposal;
  const seen: Proposal[] = [];
  for (const step of world.steps) {
    if (step.via === "edit") {
      const memberOf = world.group.includes(step.user) ? [GROUP] : [];
      const values = { deployment: step.deployment };
      const edited = applyEdit(p, { user: step.user, standing: step.standing, memberOf, values, via: "slack" }, NOW);
      if (!edited.ok) continue;
      // An edit is an approver's (listed in the rule in force, a member), never the requester's; it voids approvals.
      const editor = personOf(p, step.user);
      expect(step.standing, "a member edits").toBe("member");
      expect(listedPerson(p, editor, world.group), "an approver edits").toBe(true);
      expect(editor, "never the requester").not.toBe(p.requested_by === null ? null : personOf(p, p.requested_by));
      expect(edited.proposal.approvals, "an edit voids every approval").toEqual([]);
      expect(edited.proposal.plan_sha256, "a new plan").not.toBe(p.plan_sha256);
      p = edited.proposal;
      seen.push(p);
      continue;
    }
    const t =
      step.via === "clock"
        ? applyAutoEscalation(p, NOW)
        : step.via === "glass"
          ? applyBreakGlass(
              p,
              {
                user: step.user,
                standing: step.standing,
                memberOf: world.group.includes(step.user) ? [GROUP] : [],
                reason: step.reason,
                via: "slack",
              },
              NOW,
            )
          : step.via === "link"
            ? applyLink(p, { recipient: step.recipient, identity: step.identity, choice: step.choice }, NOW)
            : applyClick(
                p,
                {
                  kind: step.kind,
                  user: step.user,
                  memberOf: world.group.includes(step.user) ? [GROUP] : [],
                  standing: step.standing,
                  // A grouped click reaches the item's object as ProposalObject.click does a card's: via slack.
                  via: step.via === "home" ? "slack_home" : "slack",
                  // A stale view: drawn before anything happened (which may still be how it stands).
                  ...(step.via === "home" ? { drawn: step.fresh ? drawnState(p) : "pending.0.n" } : {}),
                },
                NOW,
              );
    if (t.ok) {
      p = t.proposal;
      seen.push(p);
    }
  }
  return seen;
}

/** Whether `person` is someone the rule in force lets approve (listed, a group member, or a link recipient). */
function listedPerson(p: Proposal, person: string, group: string[]): boolean {
  if (p.rule.requester_only && !p.escalated) return p.requested_by !== null && personOf(p, p.requested_by) === person;
  const approvers = p.escalated && p.rule.escalation ? p.rule.escalation.approvers : p.rule.approvers;
  const inList = (list: readonly string[], u: string) =>
    list.includes(u) || (list.includes(GROUP) && group.includes(u));
  // Rules only tighten: a risk rule's narrowing holds after escalation too (people in both lists).
  const narrowed = p.rule.risk?.approvers ?? null;
  const viaSlack = USERS.some(
    (u) => personOf(p, u) === person && inList(approvers, u) && (narrowed === null || inList(narrowed, u)),
  );
  const links = p.rule.links;
  const viaLink =
    !p.escalated &&
    !!links &&
    EMAILS.some(
      (e) =>
        personOf(p, e) === person &&
        (links.recipients.some((r) => personOf(p, r) === person) ||
          (links.teams_recipient !== null && links.recipients.length === 0)),
    );
  return viaSlack || viaLink;
}

/** The property: every approved state met the rule in force with distinct, permitted people (see the top). */
function independent(world: World): void {
  // Whoever escalated by a click, at any point: nothing later (the clock included) makes them count again.
  const escalators = new Set<string>();
  for (const p of play(world)) {
    if (p.escalated && p.escalated.by !== "signoff") escalators.add(personOf(p, p.escalated.by));
    if (p.status !== "approved") continue;
    const people = p.approvals.map((a) => personOf(p, a.user));
    expect(new Set(people).size, "one person, one vote").toBe(people.length);
    if (p.decision?.break_glass) {
      // Break-glass: one listed person, never the requester, with a reason; their one vote, used for it. Whether
      // they escalated first changes nothing: they may break the glass alone anyway.
      const breaker = personOf(p, p.decision.by);
      const glass = p.rule.break_glass!.approvers;
      const listed = USERS.some(
        (u) => personOf(p, u) === breaker && (glass.includes(u) || (glass.includes(GROUP) && world.group.includes(u))),
      );
      expect(listed, "a break-glass approver").toBe(true);
      expect(breaker, "never the requester").not.toBe(p.requested_by === null ? null : personOf(p, p.requested_by));
      expect(p.decision.reason?.trim(), "with a reason").toBeTruthy();
      expect(p.approvals.filter((a) => a.break_glass).map((a) => personOf(p, a.user))).toEqual([breaker]);
      expect(editorsOf(p), "never on their own edit").not.toContain(breaker);
      continue;
    }
    expect(p.rule.freeze, "a frozen proposal is only break-glass's").toBeUndefined();
    for (const person of escalators) expect(p.approvals.map((a) => personOf(p, a.user))).not.toContain(person);
    expect(people.length, "the rule in force is met").toBeGreaterThanOrEqual(requiredApprovals(p));
    // Written out here rather than trusted to requiredApprovals: once escalated, never fewer than the risk rule's M.
    const required = p.escalated
      ? Math.max(p.rule.escalation?.required_approvals ?? 1, p.rule.risk?.required_approvals ?? 0)
      : p.rule.required_approvals;
    expect(people.length, "the rule in force, the risk rule's tightening included").toBeGreaterThanOrEqual(required);
    const requester = p.requested_by === null ? null : personOf(p, p.requested_by);
    const requesterDecides = p.rule.requester_only && !p.escalated;
    if (!requesterDecides && !(p.rule.allow_self_approval && !p.escalated)) {
      expect(people, "never the requester").not.toContain(requester);
    }
    if (p.escalated) expect(people, "never the escalator").not.toContain(personOf(p, p.escalated.by));
    // The clock escalates only where the policy says so, and is nobody's vote.
    if (p.escalated?.by === "signoff") expect(p.rule.escalation?.after_seconds).toBe(60);
    expect(people).not.toContain("signoff");
    for (const person of people) expect(listedPerson(p, person, world.group), person).toBe(true);
    // An edited plan: approved by at least one person who did not edit it (four-eyes over edits).
    const editors = editorsOf(p);
    if (editors.length > 0)
      expect(
        people.some((person) => !editors.includes(person)),
        "a non-editor approved",
      ).toBe(true);
    // Nobody approved through a link without signing in, and no guest or outsider counted.
    for (const a of p.approvals) expect(a.user).not.toBe("link:teams");
  }
}

describe("independence (SPEC 12)", () => {
  it("no sequence of clicks, links and escalations approves with fewer distinct, permitted people than the rule in force", () => {
    fc.assert(
      fc.property(worldArb, (world) => independent(world)),
      { numRuns: 3000 },
    );
  });

  it("the same with every policy escalating by itself too: the clock never frees whoever escalated by a click", () => {
    fc.assert(
      fc.property(worlds(true), (world) => independent(world)),
      { numRuns: 2000 },
    );
  });

  it("the Home tab offers exactly what would count: approve where an approval counts, only break-glass on a frozen proposal", () => {
    fc.assert(
      fc.property(worldArb, (world) => {
        for (const p of [world.proposal, ...play(world)]) {
          for (const user of USERS) {
            const memberOf = world.group.includes(user) ? [GROUP] : [];
            const offer = homeOffer(p, user, memberOf, "member");
            const approve = applyClick(
              p,
              { kind: "approve", user, memberOf, standing: "member", via: "slack_home", drawn: drawnState(p) },
              NOW,
            );
            const glass = applyBreakGlass(
              p,
              { user, standing: "member", memberOf, reason: "outage", via: "slack" },
              NOW,
            );
            if (p.rule.freeze) {
              expect(approve.ok, "no approval counts on a frozen proposal").toBe(false);
              expect(offer, `${user} on a frozen proposal`).toBe(glass.ok ? "break_glass" : null);
            } else {
              expect(offer, `${user}: offered approve exactly when it counts`).toBe(approve.ok ? "approve" : null);
            }
            // Nothing is offered to a guest or someone from another workspace.
            expect(homeOffer(p, user, memberOf, "guest")).toBeNull();
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("a guest or someone from another workspace never decides nor edits, whatever they click", () => {
    fc.assert(
      fc.property(worldArb, fc.constantFrom<Standing>("guest", "other_workspace", "unknown"), (world, standing) => {
        const outsiders = world.steps
          .map((s) => (s.via === "slack" || s.via === "home" || s.via === "edit" ? { ...s, standing } : s))
          .filter((s) => s.via === "slack" || s.via === "home" || s.via === "edit");
        for (const p of play({ ...world, steps: outsiders })) {
          expect.unreachable(`${p.status}: a click by a ${standing} changed the proposal`);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("the attacks the review found, one by one", () => {
  const click = (p: Proposal, user: string, kind: ClickKind = "approve", memberOf: string[] = []) =>
    applyClick(p, { kind, user, memberOf, standing: "member", via: "slack" }, NOW);

  it("escalate, then approve alone: the escalator cannot count toward the escalated decision", () => {
    const p = makeProposal({
      rule: {
        approvers: ["U0ALICE", "U0DAVE"],
        required_approvals: 2,
        escalation: { approvers: ["U0ALICE", "U0ERIN"], channel: "C0ESC", extend_ttl_seconds: 0 },
      },
    });
    const escalated = click(p, "U0ALICE", "escalate");
    expect(escalated.ok).toBe(true);
    if (!escalated.ok) return;
    expect(click(escalated.proposal, "U0ALICE")).toMatchObject({ ok: false, code: "escalated_by_you" });
    expect(click(escalated.proposal, "U0ERIN")).toMatchObject({ ok: true, proposal: { status: "approved" } });
  });

  it("the clock never takes over a click's escalation: the escalator stays excluded, and the requester never counts", () => {
    const p = makeProposal({
      requested_by: "U0BOB",
      rule: {
        approvers: ["U0ALICE", "U0DAVE"],
        required_approvals: 2,
        escalation: {
          approvers: ["U0ALICE", "U0BOB", "U0ERIN"],
          channel: "C0ESC",
          extend_ttl_seconds: 0,
          after_seconds: 60,
        },
      },
    });
    const escalated = click(p, "U0ALICE", "escalate");
    if (!escalated.ok) throw new Error("escalation refused");
    // Were the clock to escalate again as `signoff`, Alice would no longer be the escalator and could approve alone.
    expect(applyAutoEscalation(escalated.proposal, NOW)).toMatchObject({ ok: false });
    expect(click(escalated.proposal, "U0ALICE")).toMatchObject({ ok: false, code: "escalated_by_you" });
    const byClock = applyAutoEscalation(p, NOW);
    if (!byClock.ok) throw new Error("automatic escalation refused");
    expect(byClock.proposal.escalated?.by).toBe("signoff");
    expect(click(byClock.proposal, "U0BOB")).toMatchObject({ ok: false, code: "self_approval" });
    expect(click(byClock.proposal, "U0ERIN")).toMatchObject({ ok: true, proposal: { status: "approved" } });
    // Without after_seconds there is no automatic escalation at all.
    const manual = makeProposal({
      rule: { escalation: { approvers: ["U0ERIN"], channel: null, extend_ttl_seconds: 0 } },
    });
    expect(applyAutoEscalation(manual, NOW)).toMatchObject({ ok: false });
  });

  it("escalation needs its own required_approvals of people other than the escalator and the requester", () => {
    const p = makeProposal({
      requested_by: "U0BOB",
      rule: {
        approvers: ["U0ALICE"],
        allow_self_approval: true,
        escalation: {
          approvers: ["U0BOB", "U0ERIN", "U0FRED"],
          channel: "C0ESC",
          extend_ttl_seconds: 0,
          required_approvals: 2,
        },
      },
    });
    const escalated = click(p, "U0ALICE", "escalate");
    if (!escalated.ok) throw new Error("escalation refused");
    expect(click(escalated.proposal, "U0BOB")).toMatchObject({ ok: false, code: "self_approval" });
    const one = click(escalated.proposal, "U0ERIN");
    expect(one).toMatchObject({ ok: true, proposal: { status: "pending" } });
    if (!one.ok) return;
    expect(click(one.proposal, "U0FRED")).toMatchObject({ ok: true, proposal: { status: "approved" } });
  });

  it("one person in Slack and by link counts once", () => {
    const p = makeProposal({
      rule: {
        approvers: ["U0ALICE", "U0DAVE"],
        required_approvals: 2,
        links: { recipients: ["alice@example.com", "dave@example.com"], teams_recipient: null },
        people: { U0ALICE: "alice", "alice@example.com": "alice", U0DAVE: "dave", "dave@example.com": "dave" },
      },
    });
    const first = click(p, "U0ALICE");
    if (!first.ok) throw new Error("first approval refused");
    const again = applyLink(
      first.proposal,
      { recipient: "alice@example.com", identity: "alice@example.com", choice: "approve" },
      NOW,
    );
    expect(again).toMatchObject({ ok: false, code: "already_approved" });
  });

  it("one person on the card and in the Home tab counts once; a Home view drawn before a change counts nothing", () => {
    const p = makeProposal({ rule: { approvers: ["U0ALICE", "U0DAVE", "U0ERIN"], required_approvals: 2 } });
    const home = (q: Proposal, user: string, drawn: string) =>
      applyClick(q, { kind: "approve", user, memberOf: [], standing: "member", via: "slack_home", drawn }, NOW);
    const drawnBefore = drawnState(p);
    const first = click(p, "U0ALICE");
    if (!first.ok) throw new Error("first approval refused");
    expect(home(first.proposal, "U0ALICE", drawnState(first.proposal))).toMatchObject({
      ok: false,
      code: "already_approved",
    });
    expect(home(first.proposal, "U0DAVE", drawnBefore)).toMatchObject({ ok: false, code: "changed" });
    expect(home(first.proposal, "U0DAVE", drawnState(first.proposal))).toMatchObject({
      ok: true,
      proposal: { status: "approved" },
    });
  });

  it("a requester_only proposal counts only its requester, on any channel, even one the policy would never give it", () => {
    // The policy refuses links on requester_only actions; the gate itself refuses them too (defence in depth).
    const p = makeProposal({
      requested_by: "U0BOB",
      rule: {
        approvers: [],
        required_approvals: 1,
        requester_only: true,
        links: { recipients: ["alice@example.com"], teams_recipient: null },
      },
    });
    const link = { recipient: "alice@example.com", identity: "alice@example.com", choice: "approve" as const };
    expect(applyLink(p, link, NOW)).toMatchObject({ ok: false, code: "requester_only" });
    expect(click(p, "U0BOB")).toMatchObject({ ok: true, proposal: { status: "approved" } });
  });

  it("an approval link counts only for the signed-in recipient, never for whoever holds it", () => {
    const p = makeProposal({
      rule: {
        approvers: [],
        required_approvals: 1,
        links: { recipients: ["alice@example.com"], teams_recipient: null },
      },
    });
    const link = { recipient: "alice@example.com", choice: "approve" as const };
    expect(applyLink(p, { ...link, identity: null }, NOW)).toMatchObject({ ok: false, code: "identity_required" });
    expect(applyLink(p, { ...link, identity: "mallory@example.com" }, NOW)).toMatchObject({
      ok: false,
      code: "wrong_identity",
    });
    expect(applyLink(p, { ...link, identity: "alice@example.com" }, NOW)).toMatchObject({
      ok: true,
      proposal: { status: "approved", approvals: [{ user: "link:alice@example.com", person: "alice@example.com" }] },
    });
  });

  it("four-eyes holds across identities: the requester's e-mail cannot approve for them", () => {
    const p = makeProposal({
      requested_by: "bob",
      rule: {
        approvers: ["U0BOB"],
        links: { recipients: ["bob@example.com"], teams_recipient: null },
        people: { U0BOB: "bob", "bob@example.com": "bob" },
      },
    });
    expect(click(p, "U0BOB")).toMatchObject({ ok: false, code: "self_approval" });
    expect(
      applyLink(p, { recipient: "bob@example.com", identity: "bob@example.com", choice: "approve" }, NOW),
    ).toMatchObject({ ok: false, code: "self_approval" });
  });
});

describe("end to end, in workerd: the same rules through Slack's real path", () => {
  it("escalate, then approve alone: refused as escalated_by_you, nothing dispatched; another escalation approver decides", async () => {
    const body = { ...approvalBody(), action: { type: "links.escalating", params: {} }, requested_by: "U0BOB" };
    const p = await propose(body);
    expect((await click("escalate", p.id, "U0ALICE")).status).toBe(200);
    expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    const refused = (await auditOf(p.id)).filter((e) => e.type === "click.refused");
    expect(refused.map((e) => [e.actor, e.details.code])).toEqual([["slack:U0ALICE", "escalated_by_you"]]);
    expect((await click("approve", p.id, "U0LEAD")).status).toBe(200);
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("succeeded");
  });

  it("a guest's click and a Slack Connect member's click never count: refused, told why, audited", async () => {
    const p = await createProposal({ requested_by: "U0BOB" });
    // U0GUEST is a guest account (users.info is_restricted); U0EXTERNAL belongs to another workspace.
    expect((await slackRequest(clickPayload("approve", p.id, "U0GUEST"))).status).toBe(200);
    const foreign = clickPayload("approve", p.id, "U0ALICE");
    expect((await slackRequest({ ...foreign, user: { id: "U0ALICE", team_id: "T0OTHERCO" } })).status).toBe(200);
    expect((await slackRequest(clickPayload("approve", p.id, "U0EXTERNAL"))).status).toBe(200);
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    const refusals = (await auditOf(p.id)).filter((e) => e.type === "click.refused");
    expect(refusals.map((e) => [e.actor, e.details.code])).toEqual([
      ["slack:U0GUEST", "not_a_member"],
      ["slack:U0ALICE", "not_a_member"],
      ["slack:U0EXTERNAL", "not_a_member"],
    ]);
    const ephemerals = (await peer.slackCalls("chat.postEphemeral")).map((call) => String(call.text));
    expect(ephemerals.some((text) => /Guest accounts/.test(text))).toBe(true);
    expect(ephemerals.some((text) => /own Slack workspace/.test(text))).toBe(true);
    // The same person from the home workspace still decides.
    expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("succeeded");
  });
});
