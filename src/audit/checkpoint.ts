// Signed checkpoints of the audit log (SPEC 12): each chain's last position, hash, seq and event count and the
// log's max seq, signed with AUDIT_SIGNING_KEY. Kept outside D1, a checkpoint lets `npm run audit:verify` tell
// that events it lists were rewritten, cut off or deleted — what no signature inside D1 can show. Only the Worker
// holds the key, so only GET /v1/audit/checkpoint makes one, and only after every chain's head in D1 matched the
// head its proposal's Durable Object sealed: a checkpoint never blesses a log that was already tampered with.
import { z } from "zod";
import { canonicalJson } from "../lib/jcs.ts";
import { compareWithObject, type ObjectChainHead, settleRace } from "./heads.ts";
import type { AuditSigner, AuditVerifier } from "./signing.ts";
import { readChainFrom, readChainHeads } from "./store.ts";

export const CHECKPOINT_TYPE = "signoff.audit.checkpoint";

const Hash = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits");
const Count = z.int().min(0);

const CheckpointChain = z.strictObject({
  /** The chain's last position. */
  idx: Count.min(1),
  /** The hash of the event there, which covers every event before it. */
  hash: Hash,
  /** That event's `seq`. */
  seq: Count.min(1),
  /** Events in the chain (equal to `idx` in a whole chain). */
  count: Count.min(1),
});

export const CheckpointSchema = z.strictObject({
  type: z.literal(CHECKPOINT_TYPE),
  version: z.literal(1),
  created_at: z.iso.datetime(),
  /** The log's highest `seq` (0 when empty): seqs are never reused, so a later log's is never lower. */
  max_seq: Count,
  /** Events in the log. */
  events: Count,
  /** By proposal id. */
  chains: z.record(z.string(), CheckpointChain),
  /** Which key signed (the first 16 hex digits of the SHA-256 of its public key), and that public key. */
  key_id: z.string().regex(/^[0-9a-f]{16}$/),
  public_key: z.string(),
  /** Base64 Ed25519 signature of the canonical JSON (RFC 8785) of every other member. */
  signature: z.string(),
});

export type Checkpoint = z.infer<typeof CheckpointSchema>;
export type CheckpointChainHead = z.infer<typeof CheckpointChain>;

/** What a checkpoint's signature covers: every member but the signature, canonically. */
function signedPart(checkpoint: Omit<Checkpoint, "signature"> & { signature?: string }): string {
  const { signature: _signature, ...body } = checkpoint;
  return canonicalJson(body);
}

/** Signs a checkpoint's members with the audit key (its id and public key are added). */
export async function signCheckpoint(
  body: Omit<Checkpoint, "signature" | "key_id" | "public_key">,
  signer: AuditSigner,
): Promise<Checkpoint> {
  const signed = { ...body, key_id: signer.keyId, public_key: signer.publicKey };
  return { ...signed, signature: await signer.sign(signedPart(signed)) };
}

/** The checkpoint in `json`, or an error whose message names what is wrong. */
export function parseCheckpoint(json: unknown): Checkpoint {
  const result = CheckpointSchema.safeParse(json);
  if (result.success) return result.data;
  const where = result.error.issues.map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`).slice(0, 5);
  throw new Error(`not a signoff audit checkpoint: ${where.join("; ")}`);
}

/** Why the checkpoint's signature cannot be trusted, or null when a trusted key made it. */
export async function checkpointSignatureProblem(
  checkpoint: Checkpoint,
  verifier: AuditVerifier,
): Promise<string | null> {
  if (!verifier.keyIds.includes(checkpoint.key_id)) {
    return `signed with key ${checkpoint.key_id}, which is not one of the trusted public keys (${verifier.keyIds.join(", ") || "none"})`;
  }
  const valid = await verifier.verify(checkpoint.key_id, signedPart(checkpoint), checkpoint.signature);
  return valid ? null : "its signature does not verify: it was changed after it was signed";
}

export interface CheckpointProblem {
  /** null for the log as a whole. */
  proposal_id: string | null;
  problem: string;
}

/** D1 disagrees with the Durable Objects: the checkpoint is refused, with every disagreement. */
export class AuditMismatch extends Error {
  readonly problems: CheckpointProblem[];

  constructor(problems: CheckpointProblem[]) {
    super(`the audit log disagrees with the proposals' own records in ${problems.length} chain(s)`);
    this.name = "AuditMismatch";
    this.problems = problems;
  }
}

export interface TakeCheckpointOptions {
  db: D1Database;
  /** The chain head the proposal's Durable Object sealed, or null when the id is not one of this deployment's. */
  objectHead(proposalId: string): Promise<ObjectChainHead | null>;
  signer: AuditSigner;
  now: number;
  /** Durable Objects asked at once. */
  concurrency?: number;
}

/**
 * Reads every chain's head from D1 (one transaction), asks each proposal's Durable Object for the head it
 * sealed, and signs the result when they all agree; throws AuditMismatch naming each chain that does not.
 * A chain deleted from D1 as a whole is not noticed here (nothing in D1 names it any more): that is what
 * comparing with an earlier checkpoint (`compareCheckpoints`, `npm run audit:checkpoint -- --previous`) is for.
 */
export async function takeCheckpoint(options: TakeCheckpointOptions): Promise<Checkpoint> {
  const { db, signer } = options;
  const heads = await readChainHeads(db);
  const problems: CheckpointProblem[] = [];
  const concurrency = options.concurrency ?? 32;
  for (let i = 0; i < heads.chains.length; i += concurrency) {
    await Promise.all(
      heads.chains.slice(i, i + concurrency).map(async (d1) => {
        const object = await options.objectHead(d1.proposal_id);
        if (!object) {
          problems.push({ proposal_id: d1.proposal_id, problem: "forged: not a proposal id of this deployment" });
          return;
        }
        const mismatch = compareWithObject(d1, object);
        if (!mismatch) return;
        if (mismatch.behind && settleRace(d1, await readChainFrom(db, d1.proposal_id, d1.idx), object)) return;
        problems.push({ proposal_id: d1.proposal_id, problem: mismatch.problem });
      }),
    );
  }
  if (problems.length > 0) {
    problems.sort((a, b) => ((a.proposal_id ?? "") < (b.proposal_id ?? "") ? -1 : 1));
    throw new AuditMismatch(problems);
  }
  return signCheckpoint(
    {
      type: CHECKPOINT_TYPE,
      version: 1,
      created_at: new Date(options.now).toISOString(),
      max_seq: heads.max_seq,
      events: heads.events,
      chains: Object.fromEntries(
        heads.chains.map(({ proposal_id, idx, hash, seq, count }) => [proposal_id, { idx, hash, seq, count }]),
      ),
    },
    signer,
  );
}

/**
 * What a later checkpoint lost of an earlier one: chains gone (`deleted`), shorter (`truncated`), another event
 * at the same position (`rewritten`), a lower max seq. A longer chain is fine: the Worker compared its new head
 * with the proposal's Durable Object before signing.
 */
export function compareCheckpoints(earlier: Checkpoint, later: Checkpoint): CheckpointProblem[] {
  const problems: CheckpointProblem[] = [];
  for (const [id, before] of Object.entries(earlier.chains)) {
    const now = later.chains[id];
    if (!now) {
      problems.push({ proposal_id: id, problem: `deleted: #1–#${before.idx} were in the earlier checkpoint` });
    } else if (now.idx < before.idx) {
      problems.push({ proposal_id: id, problem: `truncated: now ends at #${now.idx}, was #${before.idx}` });
    } else if (now.idx === before.idx && (now.hash !== before.hash || now.seq !== before.seq)) {
      problems.push({
        proposal_id: id,
        problem: `rewritten: #${now.idx} is not the event the earlier checkpoint names`,
      });
    }
  }
  if (later.max_seq < earlier.max_seq) {
    problems.push({
      proposal_id: null,
      problem: `deleted: the log's max seq went back from ${earlier.max_seq} to ${later.max_seq}`,
    });
  }
  return problems;
}
