// Job: send the approved plan to the runner (SPEC 6), signed, retried with backoff, at most
// one accepted delivery per proposal.
import { classifyRunnerResponse, dispatchBody, type RunnerAnswer } from "../../dispatch/runner-answer.ts";
import { withDeadline } from "../../lib/deadline.ts";
import { signingKeys } from "../../webhooks/signing-keys.ts";
import { signWebhook } from "../../webhooks/standard-webhooks.ts";
import { backoffMs, WEBHOOK_BACKOFF } from "../scheduler.ts";
import { DONE, type JobRunner } from "./context.ts";

/**
 * The job exists only while the proposal is `approved`. Each attempt is counted and
 * audited before the request leaves, so a crash mid-flight is visible; the job's lease
 * keeps a second alarm run from sending in parallel, and `webhook-id`/`Idempotency-Key`
 * stay the same across attempts so the runner can drop a repeat it already ran.
 */
export const dispatchToRunner: JobRunner = async (ctx, _job) => {
  const before = ctx.proposal();
  // A verification prompt never reaches `approved`; the kind check keeps it so should anything change.
  if (before.status !== "approved" || before.kind === "verify") return DONE;
  const config = ctx.config();
  const attempt = before.dispatch.attempts + 1;
  ctx.commit({ ...before, dispatch: { ...before.dispatch, attempts: attempt } }, [
    { type: "dispatch.attempt", actor: "system", details: { attempt, plan_sha256: before.plan_sha256 } },
  ]);

  const body = dispatchBody(before, attempt);
  const keys = await signingKeys(config.runnerSigningKeys);
  const headers = await signWebhook(config.runnerSecret, `dsp_${before.id}`, Math.floor(ctx.now() / 1000), body, keys);
  let answer: RunnerAnswer;
  const started = ctx.now();
  try {
    answer = await withDeadline(config.dispatchTimeoutMs, async (signal) => {
      const response = await fetch(config.runnerUrl, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json", "idempotency-key": before.id },
        body,
        redirect: "manual",
        signal,
      });
      return classifyRunnerResponse(response.status, await response.text());
    });
  } catch (error) {
    const timedOut = (error as Error).name === "TimeoutError";
    answer = {
      kind: "retry" as const,
      error: timedOut ? `runner timed out after ${config.dispatchTimeoutMs} ms` : "runner unreachable (network error)",
    };
  }

  const p = ctx.proposal();
  if (p.status !== "approved") return DONE; // a result arrived on the result route meanwhile
  const now = ctx.now();
  const at = new Date(now).toISOString();
  const answered = { attempt, outcome: answer.kind, ms: now - started };
  switch (answer.kind) {
    case "final":
      ctx.commit(
        {
          ...p,
          status: answer.status,
          dispatch: { ...p.dispatch, dispatched_at: at, last_error: null },
          result: { status: answer.status, output: answer.output, at },
        },
        [
          { type: "dispatch.answer", actor: "runner", details: answered },
          { type: `proposal.${answer.status}`, actor: "runner", details: { output_chars: answer.output.length } },
        ],
      );
      return DONE;
    case "accepted":
      ctx.commit({ ...p, status: "dispatched", dispatch: { ...p.dispatch, dispatched_at: at, last_error: null } }, [
        { type: "dispatch.answer", actor: "runner", details: answered },
        { type: "proposal.dispatched", actor: "runner", details: {} },
      ]);
      return DONE;
    case "refused":
      ctx.commit({ ...p, status: "dispatch_failed", dispatch: { ...p.dispatch, last_error: answer.error } }, [
        { type: "dispatch.answer", actor: "runner", details: { ...answered, error: answer.error } },
        { type: "proposal.dispatch_failed", actor: "system", details: { reason: "refused", error: answer.error } },
      ]);
      return DONE;
    case "retry": {
      if (attempt >= config.dispatchMaxAttempts) {
        ctx.commit({ ...p, status: "dispatch_failed", dispatch: { ...p.dispatch, last_error: answer.error } }, [
          { type: "dispatch.answer", actor: "runner", details: { ...answered, error: answer.error } },
          {
            type: "proposal.dispatch_failed",
            actor: "system",
            details: { reason: "retries_exhausted", attempts: attempt, error: answer.error },
          },
        ]);
        return DONE;
      }
      const retryAt = now + backoffMs(attempt, WEBHOOK_BACKOFF.baseMs, WEBHOOK_BACKOFF.capMs);
      ctx.commit({ ...p, dispatch: { ...p.dispatch, last_error: answer.error } }, [
        {
          type: "dispatch.answer",
          actor: "runner",
          details: { ...answered, error: answer.error, retry_at: new Date(retryAt).toISOString() },
        },
      ]);
      return { retryAt };
    }
  }
};
