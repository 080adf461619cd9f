// Jobs: keep the proposal's Slack messages telling the truth (post, then chat.update on
// every change), and deliver ephemeral replies to refused clickers. Retries honour
// Slack's Retry-After; failures are audited and never block or reverse a decision. A grouped proposal reports
// its state to its group's object instead, which owns the shared card (docs/grouping.md).
import { groupStubFor } from "../../group/stub.ts";
import {
  BREAK_GLASS_PREFIX,
  type BreakGlassRole,
  breakGlassChannel,
  renderBreakGlassMessage,
  renderCard,
} from "../../slack/card.ts";
import { callSlack, type SlackCallResult } from "../../slack/web-api.ts";
import { type Job, messageRetryDelayMs } from "../scheduler.ts";
import { lastReplyAt, noteReply } from "../store.ts";
import type { Proposal, SlackMessageRef } from "../types.ts";
import { DONE, type JobContext, type JobOutcome, type JobRunner } from "./context.ts";

export const MESSAGE_ATTEMPTS = 10;
const EPHEMERAL_ATTEMPTS = 3;
/** Job keys of ephemeral replies: one per person (`ephemeral:<Slack user id>`). */
export const EPHEMERAL_PREFIX = "ephemeral:";
/** At most one ephemeral reply per person and proposal in this long (issue 12: a click storm on one card). */
export const REPLY_INTERVAL_MS = 60_000;

export interface EphemeralPayload {
  channel: string;
  user: string;
  text: string;
}

export const syncSlack: JobRunner = async (ctx, job) => {
  if (job.key.startsWith(EPHEMERAL_PREFIX)) return sendEphemeral(ctx, job);
  if (job.key.startsWith(BREAK_GLASS_PREFIX)) return sendBreakGlass(ctx, job);
  const role = job.key === "escalation" ? "escalation" : "card";
  const p = ctx.proposal();
  if (role === "card" && !hasSlackCard(p)) return DONE;
  // A grouped proposal's card is its group's (docs/grouping.md): it reports its state there instead of posting one.
  if (role === "card" && p.group_key !== undefined) return reportToGroup(ctx, job, p, p.group_key);
  const config = ctx.config();
  const ref = p.slack.messages.find((m) => m.role === role);
  const { text, blocks } = renderCard(p, { role, nowMs: ctx.now() });
  const result = ref
    ? await callSlack(config.slackApiBase, config.slackBotToken, "chat.update", {
        channel: ref.channel,
        ts: ref.ts,
        text,
        blocks,
      })
    : await callSlack(config.slackApiBase, config.slackBotToken, "chat.postMessage", {
        channel: targetChannel(p, role),
        text,
        blocks,
        unfurl_links: false,
        unfurl_media: false,
      });

  if (result.kind === "ok") {
    if (ref) {
      ctx.commit(null, [{ type: "slack.message_updated", actor: "system", details: { role, status: p.status } }]);
      return DONE;
    }
    const data = result.data as { channel?: unknown; ts?: unknown };
    const posted: SlackMessageRef = {
      role,
      channel: String(data.channel ?? targetChannel(p, role)),
      ts: String(data.ts ?? ""),
    };
    const now = ctx.proposal();
    ctx.commit({ ...now, slack: { messages: [...now.slack.messages, posted] } }, [
      { type: "slack.message_posted", actor: "system", details: { role, channel: posted.channel, ts: posted.ts } },
    ]);
    return DONE;
  }
  return slackFailure(ctx, job, result, ref ? "chat.update" : "chat.postMessage", MESSAGE_ATTEMPTS);
};

/**
 * Sends the proposal as it stands to its group's object, which puts it on a grouped card and edits the card. A group
 * that cannot be reached is tried again like a card post, and audited like one.
 */
async function reportToGroup(ctx: JobContext, job: Job, p: Proposal, groupKey: string): Promise<JobOutcome> {
  const head = { keyName: p.created_by, action: p.action.type, groupKey };
  try {
    await groupStubFor(ctx.env.GROUPS, head.keyName, head.action, groupKey).report(head, p);
    return DONE;
  } catch {
    return slackFailure(
      ctx,
      job,
      { kind: "retry", afterMs: null, error: "group card unreachable" },
      "group.report",
      MESSAGE_ATTEMPTS,
    );
  }
}

/**
 * Whether the proposal has a Slack card at all: not a verification prompt asked only through links (no
 * requested_by), nor an approval that only link recipients can decide (no Slack approvers).
 */
export function hasSlackCard(p: Proposal): boolean {
  if (p.kind === "verify" || p.rule.requester_only) return p.requested_by !== null;
  return p.rule.approvers.length > 0;
}

/** Where a message goes: the DM of the requester for requester_only and verification prompts, else the policy's channel. */
export function targetChannel(p: Proposal, role: "card" | "escalation"): string {
  if (role === "escalation") return p.rule.escalation?.channel ?? p.rule.channel ?? p.requested_by ?? "";
  if (p.rule.requester_only) return p.requested_by ?? "";
  return p.rule.channel ?? "";
}

/** Break-glass news, posted once per role (the job's completion is the record that it was sent). */
async function sendBreakGlass(ctx: JobContext, job: Job): Promise<JobOutcome> {
  const role = job.key.slice(BREAK_GLASS_PREFIX.length) as BreakGlassRole;
  const p = ctx.proposal();
  const config = ctx.config();
  const channel = breakGlassChannel(p, role);
  const { text, blocks } = renderBreakGlassMessage(p, role);
  const result = await callSlack(config.slackApiBase, config.slackBotToken, "chat.postMessage", {
    channel,
    text,
    blocks,
    unfurl_links: false,
    unfurl_media: false,
  });
  if (result.kind === "ok") {
    const data = result.data as { ts?: unknown };
    ctx.commit(null, [
      {
        type: "slack.message_posted",
        actor: "system",
        details: { role: `break_glass_${role}`, channel, ts: String(data.ts ?? "") },
      },
    ]);
    return DONE;
  }
  return slackFailure(ctx, job, result, "chat.postMessage", MESSAGE_ATTEMPTS);
}

async function sendEphemeral(ctx: JobContext, job: Job): Promise<JobOutcome> {
  const payload = JSON.parse(job.payload ?? "{}") as EphemeralPayload;
  // A click queued while the last reply was on its way asked again (the job's version moved): within the
  // interval it gets none, as a click after the reply would (npm run bench saw two replies a person otherwise).
  const last = lastReplyAt(ctx.sql, payload.user);
  if (last !== null && ctx.now() - last < REPLY_INTERVAL_MS) return DONE;
  const config = ctx.config();
  const result = await callSlack(config.slackApiBase, config.slackBotToken, "chat.postEphemeral", {
    channel: payload.channel,
    user: payload.user,
    text: payload.text,
  });
  if (result.kind === "ok") {
    noteReply(ctx.sql, payload.user, ctx.now());
    return DONE;
  }
  return slackFailure(ctx, job, result, "chat.postEphemeral", EPHEMERAL_ATTEMPTS);
}

/** Audits a failed Slack call and says when to try again: Retry-After, else backoff, until `maxAttempts`. */
export function slackFailure(
  ctx: JobContext,
  job: Job,
  result: Exclude<SlackCallResult, { kind: "ok" }>,
  method: string,
  maxAttempts: number,
): JobOutcome {
  const attempt = job.attempt + 1;
  const final = result.kind === "failed" || attempt >= maxAttempts;
  ctx.commit(null, [
    { type: "slack.failed", actor: "system", details: { method, job: job.key, attempt, error: result.error, final } },
  ]);
  if (final) return DONE;
  const wait = messageRetryDelayMs(result.kind === "retry" ? result.afterMs : null, attempt);
  return { retryAt: ctx.now() + wait };
}
