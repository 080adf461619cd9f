// Job: copy the proposal's sealed audit events from its outbox to D1, in chain order.
import { appendAuditEvents } from "../../audit/store.ts";
import { backoffMs } from "../scheduler.ts";
import { dropFlushed, outboxEvents } from "../store.ts";
import { DONE, type JobRunner } from "./context.ts";

const BATCH = 100;

/**
 * D1 being down loses nothing: the events stay in the Durable Object and the job retries
 * (1 s doubling to 1 min, for ever). Rows already written are skipped by D1, so a flush
 * repeated after a lost answer is harmless.
 */
export const flushAudit: JobRunner = async (ctx, job) => {
  for (;;) {
    const events = outboxEvents(ctx.sql, BATCH);
    const last = events.at(-1);
    if (!last) return DONE;
    try {
      await appendAuditEvents(ctx.env.AUDIT_DB, events);
    } catch (error) {
      console.warn(
        `audit flush for ${last.proposal_id} failed (attempt ${job.attempt + 1}): ${(error as Error).message}`,
      );
      return { retryAt: ctx.now() + backoffMs(job.attempt + 1, 1_000, 60_000) };
    }
    dropFlushed(ctx.sql, last.idx);
  }
};
