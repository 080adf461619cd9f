// Job: at each `remind_at` fraction of the TTL (issue 16), remind those who may still decide and have not: a threaded
// reply on the card (on the escalation message once escalated), a DM for requester_only actions and verification
// prompts. One job at a time, keyed by its fraction: once it is sent (or given up) it re-arms itself for the next
// fraction, so each is sent once; retried on Slack errors like the card; never once decided.
import { reminderText } from "../../slack/reminder.ts";
import { callSlack } from "../../slack/web-api.ts";
import { stillToDecide } from "../lifecycle.ts";
import type { Proposal } from "../types.ts";
import { DONE, type JobOutcome, type JobRunner } from "./context.ts";
import { hasSlackCard, MESSAGE_ATTEMPTS, slackFailure, targetChannel } from "./slack-sync.ts";

/** Below this TTL no reminder is scheduled: a reminder seconds before the deadline helps nobody. */
export const MIN_REMIND_TTL_MS = 60_000;

/** The job key of the reminder at `fraction`: the fraction itself ("0.5"). */
const reminderKey = (fraction: number) => String(fraction);

/** When the reminder at `fraction` is due: that share of the way from creation to the deadline as it stands. */
export function reminderDueAt(p: Proposal, fraction: number): number {
  const created = Date.parse(p.created_at);
  return Math.round(created + fraction * (Date.parse(p.expires_at) - created));
}

/** The reminders a proposal has: its rule's fractions (ascending), when it has a Slack card and a TTL worth reminding. */
function remindersOf(p: Proposal): number[] {
  if (!hasSlackCard(p)) return [];
  if (Date.parse(p.expires_at) - Date.parse(p.created_at) < MIN_REMIND_TTL_MS) return [];
  return p.rule.remind_at ?? [];
}

/**
 * The reminder job after the one at `after` (null: the first, when the proposal is created), with when it is due on
 * the deadline as it stands; null when there is none left.
 */
export function nextReminder(p: Proposal, after: number | null): { key: string; at: number } | null {
  const fraction = remindersOf(p).find((f) => after === null || f > after);
  return fraction === undefined ? null : { key: reminderKey(fraction), at: reminderDueAt(p, fraction) };
}

/** This reminder is over (sent, given up, nobody left to remind): the job moves on to the next fraction, if any. */
function moveOn(p: Proposal, fraction: number): JobOutcome {
  const next = nextReminder(p, fraction);
  return next ? { next } : DONE;
}

/** Whether the reminder goes to the requester's DM: their card is there, and they alone decide. */
function isDirect(p: Proposal): boolean {
  return p.kind === "verify" || (p.rule.requester_only && !p.escalated);
}

export const sendReminder: JobRunner = async (ctx, job) => {
  const p = ctx.proposal();
  const now = ctx.now();
  const fraction = Number(job.key);
  // Never after a decision: the object also cancels these jobs when the proposal leaves `pending`.
  if (p.status !== "pending" || now >= Date.parse(p.expires_at)) return DONE;
  const text = reminderText(p, now);
  if (text === null) return moveOn(p, fraction);
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
  if (result.kind !== "ok") {
    const failed = slackFailure(ctx, job, result, "chat.postMessage", MESSAGE_ATTEMPTS);
    return "done" in failed ? moveOn(ctx.proposal(), fraction) : failed;
  }
  const left_seconds = Math.max(0, Math.floor((Date.parse(p.expires_at) - now) / 1000));
  ctx.commit(null, [
    {
      type: "reminder.sent",
      actor: "system",
      details: {
        fraction,
        channel,
        thread_ts: direct ? null : (ref?.ts ?? null),
        reminded: stillToDecide(p),
        left_seconds,
      },
    },
  ]);
  return moveOn(ctx.proposal(), fraction);
};
