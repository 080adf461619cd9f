// What `npm run audit:verify` concludes about an audit log, holding only public keys (SPEC 8, 12):
//  - every chain recomputed: positions 1…n, each link, each hash (an edited or missing row);
//  - every chain's last event signed as its head by a trusted key (a chain rewritten with recomputed hashes, or
//    cut where no flush ended);
//  - against a signed checkpoint, when given: every chain it lists still there (deleted), as long (truncated),
//    with the same event at its last position (rewritten), and the log's max seq not lower (emptied).
// Pure: the events come from D1 or the API, the checkpoint from a file or the Worker.
import { verifyChains } from "./chain.ts";
import { type Checkpoint, checkpointSignatureProblem, parseCheckpoint } from "./checkpoint.ts";
import { type AuditVerifier, auditVerifier, checkHeadSignature } from "./signing.ts";
import type { StoredAuditEvent } from "./store.ts";

export interface AuditProblem {
  /** null for the log as a whole. */
  proposal_id: string | null;
  idx: number | null;
  /** Starts with what happened: `broken`, `rewritten`, `unsigned`, `unknown key`, `truncated`, `deleted`, `inserted`, `checkpoint`. */
  problem: string;
}

export interface AuditReport {
  ok: boolean;
  proposals: number;
  events: number;
  problems: AuditProblem[];
  /** What this run could not check (no checkpoint given). */
  warnings: string[];
}

export interface VerifyOptions {
  /** Trusted public keys (`auditpk_…`): head signatures and checkpoints must be made by one of them. */
  publicKeys: readonly string[];
  /**
   * Signed checkpoints taken earlier, as JSON (a file kept outside D1, the Worker's answer of a moment ago);
   * each one's signature is checked before anything is compared with it.
   */
  checkpoints?: readonly unknown[];
}

export async function verifyAuditLog(
  events: readonly StoredAuditEvent[],
  options: VerifyOptions,
): Promise<AuditReport> {
  const verifier = await auditVerifier(options.publicKeys);
  const problems: AuditProblem[] = verifyChains(events).problems.map((p) => ({
    ...p,
    problem: `broken: ${p.problem}`,
  }));
  const warnings: string[] = [];

  const checkpoints: Checkpoint[] = [];
  for (const json of options.checkpoints ?? []) {
    const checked = await checkpointProblem(json, verifier);
    if (typeof checked === "string") problems.push({ proposal_id: null, idx: null, problem: `checkpoint: ${checked}` });
    else checkpoints.push(checked);
  }
  if ((options.checkpoints ?? []).length === 0) {
    warnings.push(
      "no checkpoint given: a chain cut where a flush ended, a chain deleted as a whole and an emptied log " +
        "are detectable only against one (`npm run audit:checkpoint`)",
    );
  }

  const chains = new Map<string, StoredAuditEvent[]>();
  let maxSeq = 0;
  for (const event of events) {
    const chain = chains.get(event.proposal_id) ?? [];
    chain.push(event);
    chains.set(event.proposal_id, chain);
    maxSeq = Math.max(maxSeq, event.seq);
  }
  for (const [id, chain] of chains) {
    chain.sort((a, b) => a.idx - b.idx);
    const head = chain.at(-1)!;
    const covered = checkpoints.some((c) => c.chains[id]?.idx === head.idx && c.chains[id]?.hash === head.hash);
    const problem = covered ? null : await headProblem(head, verifier);
    if (problem) problems.push({ proposal_id: id, idx: head.idx, problem });
  }
  for (const checkpoint of checkpoints) {
    for (const problem of againstCheckpoint(chains, maxSeq, events.length, checkpoint)) {
      if (!problems.some((p) => p.proposal_id === problem.proposal_id && p.problem === problem.problem))
        problems.push(problem);
    }
  }

  return { ok: problems.length === 0, proposals: chains.size, events: events.length, problems, warnings };
}

/** The checkpoint when it parses and a trusted key signed it, else why it cannot be used. */
async function checkpointProblem(json: unknown, verifier: AuditVerifier): Promise<Checkpoint | string> {
  let checkpoint: Checkpoint;
  try {
    checkpoint = parseCheckpoint(json);
  } catch (error) {
    return (error as Error).message;
  }
  return (await checkpointSignatureProblem(checkpoint, verifier)) ?? checkpoint;
}

/**
 * A chain's last event must carry a valid head signature, unless it is exactly the head a trusted checkpoint
 * names (chains last flushed before heads were signed are covered that way).
 */
async function headProblem(head: StoredAuditEvent, verifier: AuditVerifier): Promise<string | null> {
  if (head.head_sig === null) {
    return `unsigned: #${head.idx}, the chain's last event, carries no head signature (the chain was cut, or its signature removed)`;
  }
  switch (await checkHeadSignature(verifier, head, head.head_sig)) {
    case "valid":
      return null;
    case "unknown_key":
      return `unknown key: #${head.idx}'s head signature is by key ${head.head_sig.split(":")[0]}, not a trusted public key`;
    default:
      return `rewritten: #${head.idx}'s head signature does not match it (the chain changed after it was signed)`;
  }
}

function againstCheckpoint(
  chains: ReadonlyMap<string, readonly StoredAuditEvent[]>,
  maxSeq: number,
  total: number,
  checkpoint: Checkpoint,
): AuditProblem[] {
  const problems: AuditProblem[] = [];
  for (const [id, listed] of Object.entries(checkpoint.chains)) {
    const chain = chains.get(id) ?? [];
    const last = chain.at(-1);
    const there = chain.find((e) => e.idx === listed.idx);
    if (!last) {
      problems.push({
        proposal_id: id,
        idx: null,
        problem: `deleted: the checkpoint lists ${listed.count} event(s) up to #${listed.idx} (seq ${listed.seq}); the log has none`,
      });
    } else if (last.idx < listed.idx) {
      problems.push({
        proposal_id: id,
        idx: last.idx,
        problem: `truncated: the chain ends at #${last.idx}; the checkpoint lists #1–#${listed.idx}`,
      });
    } else if (!there || there.hash !== listed.hash) {
      problems.push({
        proposal_id: id,
        idx: listed.idx,
        problem: `rewritten: #${listed.idx} is not the event the checkpoint names`,
      });
    } else if (there.seq !== listed.seq) {
      problems.push({
        proposal_id: id,
        idx: listed.idx,
        problem: `rewritten: #${listed.idx} has seq ${there.seq}, the checkpoint's ${listed.seq} (deleted and inserted again)`,
      });
    }
    // Events newer than the checkpoint cannot have a seq it already counted, and events it counted cannot have
    // a newer one: seqs only grow.
    const back = chain.find((e) => e.idx > listed.idx && e.seq <= checkpoint.max_seq);
    if (back) problems.push(insertedProblem(id, back, checkpoint));
    const moved = chain.find((e) => e.idx < listed.idx && e.seq > checkpoint.max_seq);
    if (moved) {
      problems.push({
        proposal_id: id,
        idx: moved.idx,
        problem: `rewritten: #${moved.idx} has seq ${moved.seq}, newer than the checkpoint that lists it (deleted and inserted again)`,
      });
    }
  }
  for (const [id, chain] of chains) {
    if (checkpoint.chains[id]) continue;
    const back = chain.find((e) => e.seq <= checkpoint.max_seq);
    if (back) problems.push(insertedProblem(id, back, checkpoint));
  }
  if (maxSeq < checkpoint.max_seq) {
    problems.push({
      proposal_id: null,
      idx: null,
      problem: `deleted: the log's max seq is ${maxSeq}, the checkpoint's ${checkpoint.max_seq}: the newest events are gone`,
    });
  }
  if (total < checkpoint.events) {
    problems.push({
      proposal_id: null,
      idx: null,
      problem: `deleted: the log holds ${total} event(s), the checkpoint counted ${checkpoint.events}`,
    });
  }
  return problems;
}

function insertedProblem(id: string, event: StoredAuditEvent, checkpoint: Checkpoint): AuditProblem {
  return {
    proposal_id: id,
    idx: event.idx,
    problem: `inserted: #${event.idx} has seq ${event.seq}, at or before the checkpoint's max seq ${checkpoint.max_seq}, yet the checkpoint does not list it`,
  };
}
