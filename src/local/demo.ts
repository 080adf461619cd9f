// The demo Slack workspace of local mode: people to click as (each with the e-mail address their mail goes to),
// one user group, channel names, and the sample proposals the page's form and `npm start`'s curl offer; and what
// each person may do, read from the demo policy itself. Plain data and pure functions, shared by the Worker and Node.
import type { ActionPolicy, Policy } from "../config/policy.ts";

export interface DemoUser {
  id: string;
  name: string;
  /** Where the local mail catcher delivers this person's mail, and who the local Access issuer says they are. */
  email: string;
}

export const DEMO_TEAM = { id: "T0LOCAL", domain: "signoff-local" } as const;

export const DEMO_USERS: readonly DemoUser[] = [
  { id: "U0ALICE", name: "alice", email: "alice@example.com" },
  { id: "U0OSCAR", name: "oscar", email: "oscar@example.com" },
  { id: "U0BOB", name: "bob", email: "bob@example.com" },
  { id: "U0DAVE", name: "dave", email: "dave@example.com" },
  { id: "U0CAROL", name: "carol", email: "carol@example.com" },
  { id: "U0MALLORY", name: "mallory", email: "mallory@example.com" },
];

/** What usergroups.users.list answers. */
export const DEMO_GROUPS: Readonly<Record<string, readonly string[]>> = {
  S0ONCALL: ["U0OSCAR", "U0BOB"],
};

/** Each group's handle, as Slack shows a `<!subteam^S…>` mention ("@oncall"). */
export const DEMO_GROUP_HANDLES: Readonly<Record<string, string>> = {
  S0ONCALL: "oncall",
};

export const DEMO_CHANNELS: Readonly<Record<string, string>> = {
  C0APPROVALS: "approvals",
  C0INCIDENT: "incident",
  C0ESCALATE: "escalate",
};

export interface DemoProposal {
  action: { type: string; params: Record<string, string> };
  summary: string;
  reason: string;
  blast_radius: string;
  rollback: string;
  requested_by: string;
}

/** One sample per action of the demo policy, keyed by action type. */
export const DEMO_PROPOSALS: Readonly<Record<string, DemoProposal>> = {
  "demo.echo": {
    action: { type: "demo.echo", params: { message: "hello from signoff" } },
    summary: "Say hello through the runner",
    reason: "Trying out local mode",
    blast_radius: "None: the runner only echoes the message",
    rollback: "Nothing to undo",
    requested_by: "U0BOB",
  },
  "demo.self_confirm": {
    action: { type: "demo.self_confirm", params: { message: "confirmed by the requester" } },
    summary: "Confirm your own chat command",
    reason: "Only the requester may confirm this one, in their DM",
    blast_radius: "None: the runner only echoes the message",
    rollback: "Nothing to undo",
    requested_by: "U0BOB",
  },
  "demo.two_person": {
    action: { type: "demo.two_person", params: { message: "two people agreed" } },
    summary: "Something that needs two approvals",
    reason: "Shows M-of-N: two of U0ALICE, U0DAVE and S0ONCALL",
    blast_radius: "None: the runner only echoes the message",
    rollback: "Nothing to undo",
    requested_by: "U0BOB",
  },
  "demo.by_link": {
    action: { type: "demo.by_link", params: { message: "approved by mailed links" } },
    summary: "Something decided by e-mail",
    reason: "Shows links mailed to alice and dave, each opened signed in (local Access)",
    blast_radius: "None: the runner only echoes the message",
    rollback: "Nothing to undo",
    requested_by: "U0BOB",
  },
  "demo.runner_refuses": {
    action: { type: "demo.runner_refuses", params: { message: "approved, then refused" } },
    summary: "Something the runner will refuse",
    reason: "Shows a runner refusal: the local runner's allowlist leaves this action out, and the card shows why",
    blast_radius: "None: the runner refuses it, so nothing runs",
    rollback: "Nothing to undo",
    requested_by: "U0BOB",
  },
  "demo.break_glass": {
    action: { type: "demo.break_glass", params: { message: "approved alone by break-glass" } },
    summary: "An urgent fix that cannot wait for two approvals",
    reason: "Shows break-glass: carol approves alone with a reason; alice and dave are told and asked to review",
    blast_radius: "None: the runner only echoes the message",
    rollback: "Nothing to undo",
    requested_by: "U0BOB",
  },
  "k8s.rollout_restart": {
    action: { type: "k8s.rollout_restart", params: { deployment: "api" } },
    summary: "Restart deployment api (rolling)",
    reason: "OOMKilled x4 in 5m on api-7f9",
    blast_radius: "1 of 6 replicas at a time, prod",
    rollback: "kubectl rollout undo deployment/api",
    requested_by: "U0BOB",
  },
};

export function userName(id: string): string {
  return DEMO_USERS.find((u) => u.id === id)?.name ?? id;
}

/** The demo person with this Slack user id, if there is one. */
export function demoUser(id: string): DemoUser | null {
  return DEMO_USERS.find((u) => u.id === id) ?? null;
}

/**
 * What `user` may do under `policy`, in a line for the stand-in (issue 13): read from the policy, so that it is right
 * for every demo action, whatever wrangler.toml [env.local] says today.
 */
export function demoRole(user: DemoUser, policy: Policy): string {
  const groups = Object.keys(DEMO_GROUPS).filter((g) => DEMO_GROUPS[g]?.includes(user.id));
  const listed = (ids: readonly string[]) => ids.includes(user.id) || groups.some((g) => ids.includes(g));
  const person = policy.people[user.id] ?? user.id;
  const byLink = (a: ActionPolicy) =>
    !a.verify &&
    (a.links?.recipients ?? []).some((r) => (policy.people[r] ?? r) === (policy.people[user.email] ?? person));
  const actions = Object.values(policy.actions);
  const names = (list: ActionPolicy[]) => list.map((a) => a.type).join(", ");
  const approves = actions.filter((a) => !a.requester_only && listed(a.approvers));
  const mailed = actions.filter(byLink);
  const escalated = actions.filter((a) => a.escalation && listed(a.escalation.approvers));
  const confirms = actions.filter((a) => a.requester_only && listed(a.requesters ?? []));
  const breaksGlass = actions.filter((a) => a.break_glass && listed(a.break_glass.approvers));
  const requests = Object.values(DEMO_PROPOSALS).some((sample) => sample.requested_by === user.id);
  const parts = [
    ...groups.map((g) => `in ${g}`),
    ...(requests ? ["requests the sample proposals, so four-eyes refuses their own approval of them"] : []),
    ...(approves.length > 0 ? [`approves ${names(approves)}`] : []),
    ...(mailed.length > 0 ? [`approves ${names(mailed)} by mailed link (${user.email})`] : []),
    ...(escalated.length > 0 ? [`decides ${names(escalated)} once escalated`] : []),
    ...(confirms.length > 0 ? [`confirms their own ${names(confirms)}`] : []),
    ...(breaksGlass.length > 0 ? [`may break the glass on ${names(breaksGlass)}: approve alone, with a reason`] : []),
  ];
  return parts.length > 0 ? parts.join("; ") : "outsider: may decide nothing";
}
