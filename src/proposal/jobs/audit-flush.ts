// Job: copy the proposal's sealed audit events from its outbox to D1, in chain order, each batch's last event
// signed as the chain's head with AUDIT_SIGNING_KEY (SPEC 12); the last batch also rewrites the proposal's rows in
// the Slack Home tab's index (src/slack/home-index.ts), so the index follows every change with its audit events.
import { type AuditSigner, auditSigner, signHead } from "../../audit/signing.ts";
import { appendAuditEvents } from "../../audit/store.ts";
import type { ConfigEnv } from "../../config/load.ts";
import { homeIndexStatements } from "../../slack/home-index.ts";
import { backoffMs, type Job } from "../scheduler.ts";
import { chainHead, dropFlushed, outboxEvents } from "../store.ts";
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
    const events = outboxEvents(ctx.sql, BATCH);
    const last = events.at(-1);
    const final = events.length < BATCH;
    if (!last) return writeIndexAlone(ctx, job);
    try {
      signer ??= await auditSigner(String((ctx.env as unknown as ConfigEnv).AUDIT_SIGNING_KEY ?? ""));
    } catch (error) {
      console.warn(`audit flush for ${last.proposal_id} waits for a usable key: ${(error as Error).message}`);
      return { retryAt: ctx.now() + backoffMs(job.attempt + 1, 1_000, 60_000) };
    }
    // The index as of the chain's end: the proposal as stored now is what those events led to.
    const also = final ? indexStatements(ctx, last.idx) : [];
    try {
      await appendAuditEvents(ctx.env.AUDIT_DB, events, await signHead(signer, last), also);
    } catch (error) {
      console.warn(
        `audit flush for ${last.proposal_id} failed (attempt ${job.attempt + 1}): ${(error as Error).message}`,
      );
      return { retryAt: ctx.now() + backoffMs(job.attempt + 1, 1_000, 60_000) };
    }
    dropFlushed(ctx.sql, last.idx);
    // A short batch took everything there was; events recorded while D1 answered asked for a flush of their own.
    if (final) return DONE;
  }
};

/** The Home index rows of the proposal as it stands, stamped with chain position `version`; none without one. */
function indexStatements(ctx: JobContext, version: number): D1PreparedStatement[] {
  const p = ctx.proposal() as Proposal | null;
  return p ? homeIndexStatements(ctx.env.AUDIT_DB, p, version, ctx.now()) : [];
}

/** A flush that finds the outbox empty (an earlier run took its events) still writes the index: it costs one batch. */
async function writeIndexAlone(ctx: JobContext, job: Job): Promise<JobOutcome> {
  const also = indexStatements(ctx, chainHead(ctx.sql).idx);
  if (also.length === 0) return DONE;
  try {
    await appendAuditEvents(ctx.env.AUDIT_DB, [], null, also);
    return DONE;
  } catch (error) {
    console.warn(
      `audit flush for ${ctx.proposal().id} failed (attempt ${job.attempt + 1}): ${(error as Error).message}`,
    );
    return { retryAt: ctx.now() + backoffMs(job.attempt + 1, 1_000, 60_000) };
  }
}
