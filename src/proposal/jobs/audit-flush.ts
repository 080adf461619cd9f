// Job: copy the proposal's sealed audit events from its outbox to D1, in chain order, each batch's last event
// signed as the chain's head with AUDIT_SIGNING_KEY (SPEC 12); the last batch also rewrites the proposal's rows in
// the Slack Home tab's index (src/slack/home-index.ts), so the index follows every change with its audit events.
import { type AuditSigner, auditSigner, signHead } from "../../audit/signing.ts";
import { appendAuditEvents } from "../../audit/store.ts";
import type { ConfigEnv } from "../../config/load.ts";
import { homeIndexKey, homeIndexStatements } from "../../slack/home-index.ts";
import { backoffMs, type Job } from "../scheduler.ts";
import { chainHead, dropFlushed, homeIndexWritten, noteHomeIndexWritten, outboxBatch } from "../store.ts";
import type { Proposal } from "../types.ts";
import { DONE, type JobContext, type JobOutcome, type JobRunner } from "./context.ts";

const BATCH = 100;

/**
 * D1 being down loses nothing: the events stay in the Durable Object and the job retries
 * (1 s doubling to 1 min, for ever). Rows already written are skipped by D1, so a flush
 * repeated after a lost answer is harmless. A missing or bad AUDIT_SIGNING_KEY holds the
 * events back the same way, rather than writing heads nobody signed; only the key is read,
 * so a bad POLICY does not stop the audit log. The Home index rows travel in the last
 * batch (alone when the outbox is already empty), so they are retried with it.
 */
export const flushAudit: JobRunner = async (ctx, job) => {
  let signer: AuditSigner | undefined;
  for (;;) {
    const { events, more } = outboxBatch(ctx.sql, BATCH);
    const last = events.at(-1);
    const final = !more;
    if (!last) return writeIndexAlone(ctx, job);
    try {
      signer ??= await auditSigner(String((ctx.env as unknown as ConfigEnv).AUDIT_SIGNING_KEY ?? ""));
    } catch (error) {
      console.warn(`audit flush for ${last.proposal_id} waits for a usable key: ${(error as Error).message}`);
      return { retryAt: ctx.now() + backoffMs(job.attempt + 1, 1_000, 60_000) };
    }
    // The index as of the chain's end: the proposal as stored now is what those events led to.
    const index = final ? indexUpdate(ctx, last.idx) : null;
    try {
      await appendAuditEvents(ctx.env.AUDIT_DB, events, await signHead(signer, last), index?.statements ?? []);
    } catch (error) {
      console.warn(
        `audit flush for ${last.proposal_id} failed (attempt ${job.attempt + 1}): ${(error as Error).message}`,
      );
      return { retryAt: ctx.now() + backoffMs(job.attempt + 1, 1_000, 60_000) };
    }
    dropFlushed(ctx.sql, last);
    if (index) noteHomeIndexWritten(ctx.sql, index.key);
    // The last batch took everything there was; events recorded while D1 answered asked for a flush of their own.
    if (final) return DONE;
  }
};

/**
 * The Home index rows of the proposal as it stands, stamped with chain position `version`; null when there is no
 * proposal or D1 already took rows for the same status, deadline and escalation (most events change none of them).
 */
function indexUpdate(ctx: JobContext, version: number): { key: string; statements: D1PreparedStatement[] } | null {
  const p = ctx.proposal() as Proposal | null;
  if (!p) return null;
  const key = homeIndexKey(p);
  if (key === homeIndexWritten(ctx.sql)) return null;
  return { key, statements: homeIndexStatements(ctx.env.AUDIT_DB, p, version, ctx.now()) };
}

/** A flush that finds the outbox empty (an earlier run took its events) still brings the index up to date. */
async function writeIndexAlone(ctx: JobContext, job: Job): Promise<JobOutcome> {
  const index = indexUpdate(ctx, chainHead(ctx.sql).idx);
  if (!index) return DONE;
  try {
    await appendAuditEvents(ctx.env.AUDIT_DB, [], null, index.statements);
  } catch (error) {
    console.warn(
      `audit flush for ${ctx.proposal().id} failed (attempt ${job.attempt + 1}): ${(error as Error).message}`,
    );
    return { retryAt: ctx.now() + backoffMs(job.attempt + 1, 1_000, 60_000) };
  }
  noteHomeIndexWritten(ctx.sql, index.key);
  return DONE;
}
