// Job: deliver queued outcome events to the proposal's callback_url (SPEC 7), in order,
// signed with EVENTS_SIGNING_KEYS (v1a) and/or EVENTS_SECRET (v1), retried like dispatches; failures never touch the proposal.
import { withDeadline } from "../../lib/deadline.ts";
import { isRetryableStatus } from "../../lib/retry.ts";
import { signingKeys } from "../../webhooks/signing-keys.ts";
import { signWebhook } from "../../webhooks/standard-webhooks.ts";
import { backoffMs, WEBHOOK_BACKOFF } from "../scheduler.ts";
import { countNotificationAttempt, dropNotification, nextNotification } from "../store.ts";
import { DONE, type JobRunner } from "./context.ts";

const TIMEOUT_MS = 10_000;

export const deliverNotifications: JobRunner = async (ctx) => {
  for (;;) {
    const next = nextNotification(ctx.sql);
    if (!next) return DONE;
    const attempt = next.attempts + 1;
    const p = ctx.proposal();
    if (!p.callback_url) {
      dropNotification(ctx.sql, next.seq);
      continue;
    }
    const config = ctx.config();
    const webhookId = `evt_${p.id}_${next.seq}`;
    const keys = await signingKeys(config.eventsSigningKeys);
    const headers = await signWebhook(config.eventsSecret, webhookId, Math.floor(ctx.now() / 1000), next.body, keys);
    let error: string | null = null;
    let permanent = false;
    try {
      const callbackUrl = p.callback_url;
      const response = await withDeadline(TIMEOUT_MS, async (signal) => {
        const answer = await fetch(callbackUrl, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json" },
          body: next.body,
          redirect: "manual",
          signal,
        });
        await answer.body?.cancel();
        return answer;
      });
      if (response.status < 200 || response.status >= 300) {
        error = `callback answered HTTP ${response.status}`;
        permanent = !isRetryableStatus(response.status);
      }
    } catch (caught) {
      error = (caught as Error).name === "TimeoutError" ? "callback timed out" : "callback unreachable (network error)";
    }

    if (error === null) {
      dropNotification(ctx.sql, next.seq);
      ctx.commit(null, [
        { type: "notify.delivered", actor: "system", details: { event: next.type, webhook_id: webhookId, attempt } },
      ]);
      continue;
    }
    const giveUp = permanent || attempt >= config.dispatchMaxAttempts;
    ctx.commit(null, [
      {
        type: "notify.failed",
        actor: "system",
        details: { event: next.type, webhook_id: webhookId, attempt, error, final: giveUp },
      },
    ]);
    if (!giveUp) {
      countNotificationAttempt(ctx.sql, next.seq);
      return { retryAt: ctx.now() + backoffMs(attempt, WEBHOOK_BACKOFF.baseMs, WEBHOOK_BACKOFF.capMs) };
    }
    dropNotification(ctx.sql, next.seq);
  }
};
