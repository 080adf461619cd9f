// The audit hash chain (SPEC 8): how an event's hash is computed and how a chain is verified.
// Pure and synchronous (node:crypto), so the Durable Object can seal an event in the same
// storage step that changes state, and `npm run audit:verify` runs the same code in Node.
import { createHash } from "node:crypto";
import { canonicalJson } from "../lib/jcs.ts";

export const GENESIS_HASH = "0".repeat(64);

/** An audit event as sealed by its proposal's Durable Object and stored in D1. */
export interface AuditEvent {
  proposal_id: string;
  /** Position in the proposal's chain, from 1. */
  idx: number;
  /** ISO 8601 with milliseconds; exactly the string that was hashed. */
  at: string;
  type: string;
  /** `slack:U…`, `key:<name>`, `runner` or `system`. */
  actor: string;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

export type UnsealedEvent = Omit<AuditEvent, "hash">;

/** SHA-256 (hex) of the canonical JSON of every field but `hash`. */
export function hashEvent(event: UnsealedEvent): string {
  const { proposal_id, idx, at, type, actor, details, prev_hash } = event;
  return createHash("sha256")
    .update(canonicalJson({ proposal_id, idx, at, type, actor, details, prev_hash }))
    .digest("hex");
}

export function sealEvent(event: UnsealedEvent): AuditEvent {
  return { ...event, hash: hashEvent(event) };
}

export interface ChainProblem {
  proposal_id: string;
  idx: number;
  problem: string;
}

export interface ChainReport {
  ok: boolean;
  proposals: number;
  events: number;
  problems: ChainProblem[];
}

/**
 * Checks every proposal's chain: positions run 1, 2, 3… with no gap, each row links to
 * the hash of the row before, and each hash matches the row's content. `events` may come
 * in any order; a chain's tail being absent (not yet flushed) is not detectable here, a
 * missing or edited middle row is.
 */
export function verifyChains(events: Iterable<AuditEvent>): ChainReport {
  const byProposal = new Map<string, AuditEvent[]>();
  let count = 0;
  for (const event of events) {
    count++;
    const chain = byProposal.get(event.proposal_id) ?? [];
    chain.push(event);
    byProposal.set(event.proposal_id, chain);
  }
  const problems: ChainProblem[] = [];
  for (const [proposal_id, chain] of byProposal) {
    chain.sort((a, b) => a.idx - b.idx);
    let prev = GENESIS_HASH;
    chain.forEach((event, i) => {
      const expectedIdx = i + 1;
      if (event.idx !== expectedIdx) {
        problems.push({
          proposal_id,
          idx: event.idx,
          problem: `expected position ${expectedIdx}: a row is missing or duplicated`,
        });
      }
      if (event.prev_hash !== prev) {
        problems.push({ proposal_id, idx: event.idx, problem: "prev_hash does not match the previous row's hash" });
      }
      if (hashEvent(event) !== event.hash) {
        problems.push({ proposal_id, idx: event.idx, problem: "hash does not match the row's content (edited)" });
      }
      prev = event.hash;
    });
  }
  return { ok: problems.length === 0, proposals: byProposal.size, events: count, problems };
}
