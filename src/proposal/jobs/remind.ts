// Job: at each `remind_at` fraction of the TTL (issue 16), remind those who may still decide and have not: a threaded
// reply on the card (on the escalation message once escalated), a DM for requester_only actions and verification
// prompts. One job per fraction, so each is sent once; retried on Slack errors like the card; never once decided.
import { reminderText } from "../../slack/reminder.ts";
import { callSlack } from "../../slack/web-api.ts";
import { stillToDecide } from "../lifecycle.ts";
import type { Proposal } from "../types.ts";
import { DONE, type JobRunner } from "./context.ts";
import { hasSlackCard, MESSAGE_ATTEMPTS, slackFailure, targetChannel } from "./slack-sync.ts";

/** Below this TTL no reminder is scheduled: a reminder seconds before the deadline helps nobody. */
export const MIN_REMIND_TTL_MS = 60_000;

/** The job key of the reminder at `fraction`: the fraction itself ("0.5"). */
export const reminderKey = (fraction: number) => String(fraction);

/** When the reminder at `fraction` is due: that share of the way from creation to the deadline as it stands. */
export function reminderDueAt(p: Proposal, fraction: number): number {
  const created = Date.parse(p.created_at);
  return Math.round(created + fraction * (Date.parse(p.expires_at) - created));
}

/** The reminders a new proposal schedules: its rule's fractions, when it has a Slack card and a TTL worth reminding. */
export function remindersOf(p: Proposal): number[] {
  if (!hasSlackCard(p)) return [];
  if (Date.parse(p.expires_at) - Date.parse(p.created_at) < MIN_REMIND_TTL_MS) return [];
  return p.rule.remind_at ?? [];
}

/** Whether the reminder goes to the requester's DM: their card is there, and they alone decide. */
function isDirect(p: Proposal): boolean {
  return p.kind === "verify" || (p.rule.requester_only && !p.escalated);
}

export const sendReminder: JobRunner = async (ctx, job) => {
  const p = ctx.proposal();
  const now = ctx.now();
  // Never after a decision: the object also cancels these jobs when the proposal leaves `pending`.
  if (p.status !== "pending" || now >= Date.parse(p.expires_at)) return DONE;
  const text = reminderText(p, now);
  if (text === null) return DONE;
  const direct = isDirect(p);
  const role = p.escalated ? "escalation" : "card";
  const ref = p.slack.messages.find((m) => m.role === role);
  // Without the message to reply to (Slack refused it for good), the reminder goes where it would have been.
  const channel = ref?.channel ?? targetChannel(p, role);
  const config = ctx.config();
  const result = await callSlack(config.slackApiBase, config.slackBotToken, "chat.postMessage", {
    channel,
    ...(direct || !ref ? {} : { thread_ts: ref.ts }),
    text,
    unfurl_links: false,
    unfurl_media: false,
  });
  if (result.kind !== "ok") return slackFailure(ctx, job, result, "chat.postMessage", MESSAGE_ATTEMPTS);
  const left_seconds = Math.max(0, Math.floor((Date.parse(p.expires_at) - now) / 1000));
  ctx.commit(null, [
    {
      type: "reminder.sent",
      actor: "system",
      details: {
        fraction: Number(job.key),
        channel,
        thread_ts: direct ? null : (ref?.ts ?? null),
        reminded: stillToDecide(p),
        left_seconds,
      },
    },
  ]);
  return DONE;
};
