// The proposal as the API shows it (GET, outcome events): the stored record minus internals.
import type { Proposal } from "./types.ts";

export type ProposalView = Omit<Proposal, "slack" | "teams" | "mail">;

/**
 * Slack message references and mail delivery are bookkeeping; the Teams webhook URL is a credential (anyone holding
 * it can post).
 */
export function toView(p: Proposal): ProposalView {
  const { slack: _slack, teams: _teams, mail: _mail, ...view } = p;
  return view;
}

/** The SPEC 7 envelope for an outcome event. */
export function outcomeEvent(p: Proposal, now: number): { type: string; timestamp: string; data: ProposalView } {
  return { type: `proposal.${p.status}`, timestamp: new Date(now).toISOString(), data: toView(p) };
}

/**
 * `proposal.edited` (edit before approve): the same envelope, sent while the proposal is still pending; `data.edits`
 * ends with this edit (who, the params diff old → new, both plan hashes, the approvals it voided).
 */
export function editedEvent(p: Proposal, now: number): { type: string; timestamp: string; data: ProposalView } {
  return { type: "proposal.edited", timestamp: new Date(now).toISOString(), data: toView(p) };
}
