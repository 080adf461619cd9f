// Job: send the approved plan to the runner (SPEC 6), signed, retried with backoff, at most
// one accepted delivery per proposal. The I/O is here; what an answer does is lifecycle.ts's.
import { classifyRunnerResponse, dispatchBody, type RunnerAnswer } from "../../dispatch/runner-answer.ts";
import { withDeadline } from "../../lib/deadline.ts";
import { readCapped } from "../../lib/read-capped.ts";
import { signingKeys } from "../../webhooks/signing-keys.ts";
import { signWebhook } from "../../webhooks/standard-webhooks.ts";
import { applyDispatchAnswer, applyDispatchAttempt } from "../lifecycle.ts";
import { backoffMs, WEBHOOK_BACKOFF } from "../scheduler.ts";
import { DONE, type JobRunner } from "./context.ts";

/**
 * The most of a runner's answer that is read (issue 11 item 8): a result is at most 16 KiB of
 * output (MAX_OUTPUT_CHARS) in a small JSON object, so more is a faulty or hostile runner.
 */
export const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * The job exists only while the proposal is `approved`. Each attempt is counted and
 * audited before the request leaves, so a crash mid-flight is visible; the job's lease
 * keeps a second alarm run from sending in parallel, and `webhook-id`/`Idempotency-Key`
 * stay the same across attempts so the runner can drop a repeat it already ran.
 */
export const dispatchToRunner: JobRunner = async (ctx, _job) => {
  const start = applyDispatchAttempt(ctx.proposal());
  if (!start.ok) return DONE;
  const config = ctx.config();
  ctx.commit(start.proposal, start.events);
  const sent = start.proposal;
  const attempt = sent.dispatch.attempts;

  const body = dispatchBody(sent, attempt);
  const keys = await signingKeys(config.runnerSigningKeys);
  const headers = await signWebhook(config.runnerSecret, `dsp_${sent.id}`, Math.floor(ctx.now() / 1000), body, keys);
  let answer: RunnerAnswer;
  let truncated = false;
  const started = ctx.now();
  try {
    answer = await withDeadline(config.dispatchTimeoutMs, async (signal) => {
      const response = await fetch(config.runnerUrl, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json", "idempotency-key": sent.id },
        body,
        redirect: "manual",
        signal,
      });
      // An answer cut at the cap is no longer JSON: a 2xx then counts as accepted (SPEC 6, no status).
      const read = await readCapped(response.body, MAX_ANSWER_BYTES);
      truncated = read.truncated;
      return classifyRunnerResponse(response.status, read.text);
    });
  } catch (error) {
    const timedOut = (error as Error).name === "TimeoutError";
    answer = {
      kind: "retry" as const,
      error: timedOut ? `runner timed out after ${config.dispatchTimeoutMs} ms` : "runner unreachable (network error)",
    };
  }

  const now = ctx.now();
  // Re-read: a result may have arrived on the result route while the request was out.
  const step = applyDispatchAnswer(
    ctx.proposal(),
    { attempt, answer, ms: now - started, truncated },
    {
      maxAttempts: config.dispatchMaxAttempts,
      at: now + backoffMs(attempt, WEBHOOK_BACKOFF.baseMs, WEBHOOK_BACKOFF.capMs),
    },
    now,
  );
  if (step.ok) ctx.commit(step.proposal, step.events);
  return step.retryAt === null ? DONE : { retryAt: step.retryAt };
};
