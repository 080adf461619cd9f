// D1's chain heads against each proposal's Durable Object, which sealed the events and is out of reach of anyone
// holding only D1 access (SPEC 12). Pure decisions; src/audit/checkpoint.ts does the I/O.
import { GENESIS_HASH, hashEvent } from "./chain.ts";
import type { D1ChainHead, StoredAuditEvent } from "./store.ts";

export interface HeadRef {
  idx: number;
  hash: string;
}

/** A proposal's audit chain as its own Durable Object knows it (src/proposal/store.ts `objectChainHead`). */
export interface ObjectChainHead {
  /** The last event it sealed ({0, genesis} when none). */
  head: HeadRef;
  /** The last event D1 confirmed: everything up to it has left the outbox. */
  flushed: HeadRef;
  /**
   * Events sealed but not yet confirmed, in order. D1 may already hold some of them: a flush whose answer was
   * lost, or one under way.
   */
  pending: HeadRef[];
}

export const NO_CHAIN: ObjectChainHead = {
  head: { idx: 0, hash: GENESIS_HASH },
  flushed: { idx: 0, hash: GENESIS_HASH },
  pending: [],
};

/**
 * Whether D1's head of a chain is one its Durable Object sealed, at a position D1 may hold: null when it is,
 * else the problem, starting with what happened (`rewritten`, `truncated`, `forged`, `missing`). `behind` marks a
 * head before the object's confirmed one: truncation, or a flush that landed after D1 was read (see `settleRace`).
 */
export function compareWithObject(
  d1: D1ChainHead,
  object: ObjectChainHead,
): { problem: string; behind: boolean } | null {
  if (object.head.idx === 0) {
    return {
      problem: `forged: D1 holds ${d1.count} event(s) for a proposal whose Durable Object sealed none`,
      behind: false,
    };
  }
  if (d1.idx < object.flushed.idx) {
    return {
      problem: `truncated: D1's chain ends at #${d1.idx}; its Durable Object had #1–#${object.flushed.idx} written`,
      behind: true,
    };
  }
  const sealed = d1.idx === object.flushed.idx ? object.flushed : object.pending.find((p) => p.idx === d1.idx);
  if (!sealed) {
    return {
      problem: `forged: D1 holds #${d1.idx}, past the last event its Durable Object sealed (#${object.head.idx})`,
      behind: false,
    };
  }
  if (sealed.hash !== d1.hash) {
    return { problem: `rewritten: D1's #${d1.idx} is not the event its Durable Object sealed there`, behind: false };
  }
  if (d1.count !== d1.idx) {
    return { problem: `missing: D1 holds ${d1.count} event(s) for positions #1–#${d1.idx}`, behind: false };
  }
  return null;
}

/**
 * D1 was read before the object was asked, so a flush in between makes an honest head look `behind`. It was
 * honest when the chain read again now runs on from that head, link by link and hash by hash, to the event the
 * object confirmed — a chain an attacker cut cannot do that.
 */
export function settleRace(
  d1: D1ChainHead,
  rowsFromHead: readonly StoredAuditEvent[],
  object: ObjectChainHead,
): boolean {
  const [first] = rowsFromHead;
  if (!first || first.idx !== d1.idx || first.hash !== d1.hash) return false;
  let prev = first;
  for (const row of rowsFromHead.slice(1)) {
    if (row.idx > object.flushed.idx) break;
    if (row.idx !== prev.idx + 1 || row.prev_hash !== prev.hash || hashEvent(row) !== row.hash) return false;
    prev = row;
  }
  return prev.idx === object.flushed.idx && prev.hash === object.flushed.hash && hashEvent(first) === first.hash;
}
