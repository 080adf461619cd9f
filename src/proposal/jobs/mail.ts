// Job: the e-mail that brings one recipient their approval links (SPEC 12, issue 11 item 1). signoff delivers approval
// links itself: the proposer never sees them. One job per e-mail recipient, keyed by the address; how each mail ended
// is recorded in the proposal (`mail.done`) in the same step as its audit event, so an alarm that runs twice never
// mails twice. Retried like Slack and Teams messages; every attempt is audited (`mail.sent`, `mail.failed`) with the
// recipient and the attempt, never a URL, a token or the mail API's answer; none of it blocks or reverses a decision.
import { mintLinkUrls } from "../../links/token.ts";
import { renderLinkMail } from "../../mail/render.ts";
import { sendMail } from "../../mail/send.ts";
import type { EventDraft } from "../lifecycle.ts";
import { messageRetryDelayMs } from "../scheduler.ts";
import { listLinks } from "../store.ts";
import type { MailOutcome } from "../types.ts";
import { DONE, type JobContext, type JobRunner } from "./context.ts";

export const MAIL_ATTEMPTS = 10;

export const mailLinks: JobRunner = async (ctx, job) => {
  const recipient = job.key;
  const p = ctx.proposal();
  if (!p.mail || p.mail.done[recipient] !== undefined) return DONE;
  const attempt = job.attempt + 1;
  // Links of a proposal already decided (or expired) would only open "already decided": nothing worth a mail. Nor of
  // one created in a change freeze, where no link approval counts (none is scheduled; this catches older jobs).
  if (p.status !== "pending" || p.rule.freeze) {
    finish(ctx, recipient, "skipped", {
      type: "mail.skipped",
      actor: "system",
      details: { recipient, status: p.status, ...(p.rule.freeze ? { freeze: p.rule.freeze.name } : {}) },
    });
    return DONE;
  }
  const config = ctx.config();
  const issued = listLinks(ctx.sql).filter((link) => link.recipient === recipient);
  const approve = issued.find((link) => link.choice === "approve");
  const deny = issued.find((link) => link.choice === "deny");
  if (config.mail === null || config.linkSecret === null || config.publicUrl === null || !approve || !deny) {
    // Only after a configuration change (check.ts requires MAIL_* while a policy mails links): nothing to retry.
    const error = config.mail === null ? "no mail API configured (MAIL_API_URL)" : "no links to send";
    finish(ctx, recipient, "failed", {
      type: "mail.failed",
      actor: "system",
      details: { recipient, attempt, error, final: true },
    });
    return DONE;
  }
  const [approveLink, denyLink] = await mintLinkUrls(config.linkSecret, config.publicUrl, p, [approve, deny]);
  const mail = renderLinkMail({ proposal: p, recipient, approveUrl: approveLink!.url, denyUrl: denyLink!.url });
  // Stable per proposal and recipient, and naming neither: a retry after a lost answer is not a second mail.
  const idempotencyKey = `${p.id}/mail/${p.rule.links?.recipients.indexOf(recipient) ?? 0}`;
  const result = await sendMail(config.mail, { to: recipient, ...mail }, { idempotencyKey });
  if (result.kind === "ok") {
    finish(ctx, recipient, "sent", { type: "mail.sent", actor: "system", details: { recipient, attempt } });
    return DONE;
  }
  const final = result.kind === "failed" || attempt >= MAIL_ATTEMPTS;
  const failed: EventDraft = {
    type: "mail.failed",
    actor: "system",
    details: { recipient, attempt, error: result.error, final },
  };
  if (final) {
    finish(ctx, recipient, "failed", failed);
    return DONE;
  }
  ctx.commit(null, [failed]);
  return { retryAt: ctx.now() + messageRetryDelayMs(result.kind === "retry" ? result.afterMs : null, attempt) };
};

/** Records how the recipient's mail ended and its event in one step, on the proposal as it is now. */
function finish(ctx: JobContext, recipient: string, outcome: MailOutcome, event: EventDraft): void {
  const now = ctx.proposal();
  ctx.commit({ ...now, mail: { done: { ...now.mail?.done, [recipient]: outcome } } }, [event]);
}
