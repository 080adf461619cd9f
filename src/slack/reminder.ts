// The reminder a proposal nobody has fully decided gets at each `remind_at` fraction of its TTL (issue 16): who may
// still decide, by mention, and the time left. Pure: the job (src/proposal/jobs/remind.ts) posts it.
import { durationText } from "../lib/time.ts";
import { stillToDecide } from "../proposal/lifecycle.ts";
import type { Proposal } from "../proposal/types.ts";
import { policyApprover, slackDate } from "./card.ts";
import { codeSpan } from "./mrkdwn.ts";

/** At most this many are named; the rest are counted ("and 3 more"), so one reminder stays one short message. */
const NAMED_MAX = 20;

/** The reminder's text at `nowMs`, or null when nobody is left to remind (decided, or no one may decide). */
export function reminderText(p: Proposal, nowMs: number): string | null {
  const who = stillToDecide(p);
  if (who.length === 0) return null;
  const left = durationText(Date.parse(p.expires_at) - nowMs);
  const deadline = slackDate(p.expires_at);
  // Proposer text only ever as a code span: it cannot mention, link or format.
  const summary = codeSpan(p.summary, 120);
  if (p.kind === "verify" || (p.rule.requester_only && !p.escalated)) {
    return `:alarm_clock: Reminder: ${summary} still waits for your answer — ${left} left (until ${deadline}).`;
  }
  const named = who.slice(0, NAMED_MAX).map(policyApprover).join(", ");
  const more = who.length > NAMED_MAX ? ` and ${who.length - NAMED_MAX} more` : "";
  return `:alarm_clock: Reminder: ${named}${more} — ${summary} still needs a decision: ${left} left (until ${deadline}).`;
}
