// What a job run may see and do inside its proposal's Durable Object.
import type { Config } from "../../config/load.ts";
import type { EventDraft } from "../lifecycle.ts";
import type { Job, JobTable } from "../scheduler.ts";
import type { Proposal } from "../types.ts";

export interface JobContext {
  readonly env: Env;
  readonly sql: SqlStorage;
  readonly jobs: JobTable;
  /** Throws ApiError("misconfigured") when the configuration is bad. */
  config(): Config;
  now(): number;
  /** The proposal as stored now (re-read after every await: others may have changed it). */
  proposal(): Proposal;
  /** Stores `next` (when given) and appends `events` to the audit chain, in one step. */
  commit(next: Proposal | null, events: EventDraft[]): void;
}

/**
 * A run either finished the job, asks to be run again at a time (ms), or finished it and asks for its next
 * occurrence: the same job under `key`, due at `at` (a reminder moving on to the next fraction).
 */
export type JobOutcome = { done: true } | { retryAt: number } | { next: { key: string; at: number } };

export type JobRunner = (ctx: JobContext, job: Job) => Promise<JobOutcome>;

export const DONE: JobOutcome = { done: true };
