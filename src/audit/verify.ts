// What `npm run audit:verify` concludes about an audit log: every proposal's hash chain recomputed.
import { verifyChains } from "./chain.ts";
import type { StoredAuditEvent } from "./store.ts";

export interface AuditProblem {
  /** null for the log as a whole. */
  proposal_id: string | null;
  idx: number | null;
  problem: string;
}

export interface AuditReport {
  ok: boolean;
  proposals: number;
  events: number;
  problems: AuditProblem[];
}

export interface VerifyOptions {
  /** Public keys whose head signatures are accepted (not checked yet). */
  publicKeys: readonly string[];
  /** A signed checkpoint the log must still contain (not checked yet). */
  checkpoint?: unknown;
}

export async function verifyAuditLog(
  events: readonly StoredAuditEvent[],
  _options: VerifyOptions,
): Promise<AuditReport> {
  return verifyChains(events);
}
