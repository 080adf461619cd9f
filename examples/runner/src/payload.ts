// The dispatch body signoff sends (SPEC 6), checked field by field before anything acts on it.
import { isRecord, type Problem } from "./allowlist.ts";

export interface Dispatch {
  type: "proposal.approved";
  proposal_id: string;
  action: { type: string; params: unknown };
  approvers: string[];
  requested_by: string | null;
  approved_at: string | null;
  attempt: number | null;
  plan_sha256: string | null;
}

export type Parsed = { ok: true; dispatch: Dispatch } | { ok: false; problems: Problem[] };

const PROPOSAL_ID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Only `type`, `proposal_id` and `action` decide what runs, so only they are required; the
 * rest is kept for the log. Unknown fields are ignored so signoff can add some later.
 */
export function parseDispatch(input: unknown): Parsed {
  const problems: Problem[] = [];
  if (!isRecord(input)) return { ok: false, problems: [{ path: "", message: "must be a JSON object" }] };
  if (input.type !== "proposal.approved") problems.push({ path: "type", message: 'must be "proposal.approved"' });
  if (typeof input.proposal_id !== "string" || !PROPOSAL_ID.test(input.proposal_id)) {
    problems.push({ path: "proposal_id", message: "must be a proposal id" });
  }
  const action = input.action;
  if (!isRecord(action) || typeof action.type !== "string" || action.type.length === 0) {
    problems.push({ path: "action", message: "must be { type, params }" });
  }
  const approvers = Array.isArray(input.approvers)
    ? input.approvers.filter((a): a is string => typeof a === "string")
    : [];
  const optionalString = (key: string): string | null =>
    typeof input[key] === "string" ? (input[key] as string) : null;
  if (problems.length > 0 || !isRecord(action)) return { ok: false, problems };
  return {
    ok: true,
    dispatch: {
      type: "proposal.approved",
      proposal_id: input.proposal_id as string,
      action: { type: action.type as string, params: action.params ?? {} },
      approvers,
      requested_by: optionalString("requested_by"),
      approved_at: optionalString("approved_at"),
      attempt: typeof input.attempt === "number" ? input.attempt : null,
      plan_sha256: optionalString("plan_sha256"),
    },
  };
}
