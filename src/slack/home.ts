// Renders a user's Slack Home tab (views.publish): Waiting for you, Yours, Recently decided. Pure; every proposer
// string escaped and quoted as on the card, and the decision buttons the card's own (src/slack/card.ts homeButtons).
import type { ActionsBlock, HomeView, KnownBlock, SectionBlock } from "@slack/types";
import { zonedText } from "../lib/time.ts";
import { drawnState } from "../proposal/lifecycle.ts";
import type { Proposal } from "../proposal/types.ts";
import { ACTION_IDS, approvalsSoFar, breakGlassText, homeButtons, person, statusWords } from "./card.ts";
import { codeSpan, escapeMrkdwn, fit, mrkdwn, plain, quote, SLACK_LIMITS, section, truncate } from "./mrkdwn.ts";
import { paramsSectionText } from "./plan.ts";

/** How many proposals each list shows: inside a Home view's 100 blocks (4 per waiting one, 1 per other). */
export const HOME_LIMITS = { waiting: 15, yours: 10, decided: 10 } as const;

/**
 * The actions block of a waiting proposal: `signoff.home:<id>:<drawnState>`. A click carries it back, and the object
 * refuses it if the proposal no longer stands as drawn (lifecycle.ts `changed`).
 */
const HOME_BLOCK = /^signoff\.home:(prp_[0-9a-f]{64}):([a-z_]+\.\d{1,4}\.[en](?:\.\d{1,4})?)$/;

export function homeBlockId(p: Proposal): string {
  return `signoff.home:${p.id}:${drawnState(p)}`;
}

/** The drawn state a Home-tab button carries for `proposalId`, or null when the block is not a Home one for it. */
export function drawnFromBlockId(blockId: string | undefined, proposalId: string): string | null {
  const match = blockId ? HOME_BLOCK.exec(blockId) : null;
  return match && match[1] === proposalId ? match[2]! : null;
}

export interface DecidedItem {
  proposal: Proposal;
  /** The audit event that recorded their decision: approval.recorded, proposal.denied, proposal.escalated. */
  type: string;
  at: string;
}

export interface HomeModel {
  waiting: Proposal[];
  /** Waiting proposals beyond those shown. */
  waitingMore: number;
  yours: Proposal[];
  decided: DecidedItem[];
  /** The viewer's time zone (users.info `tz`); null shows UTC. */
  timeZone: string | null;
  nowMs: number;
  /** signoff's word on the viewer's last Home-tab click (a refusal, a change since the view was drawn): safe mrkdwn. */
  notice: string | null;
  /** Why nothing can wait for this viewer (a guest, another workspace), instead of the list: signoff's words. */
  cannotDecide: string | null;
}

export function renderHome(m: HomeModel): HomeView {
  const blocks: KnownBlock[] = [{ type: "header", text: plain("signoff") }];
  if (m.notice) blocks.push(section(truncate(m.notice, SLACK_LIMITS.sectionText)));

  blocks.push({ type: "header", text: plain("Waiting for you") });
  if (m.cannotDecide) blocks.push(section(truncate(m.cannotDecide, SLACK_LIMITS.sectionText)));
  else if (m.waiting.length === 0) blocks.push(section("Nothing is waiting for your decision."));
  for (const p of m.waiting) blocks.push(...waitingBlocks(p, m));
  if (m.waitingMore > 0)
    blocks.push(section(`…and ${m.waitingMore} more, soonest deadline first; decide these first.`));

  blocks.push({ type: "header", text: plain("Yours") });
  if (m.yours.length === 0) blocks.push(section("You have requested nothing lately."));
  for (const p of m.yours) blocks.push(section(`*${statusWords(p)}* · ${line(p)} · deadline ${when(p.expires_at, m)}`));

  blocks.push({ type: "header", text: plain("Recently decided") });
  if (m.decided.length === 0) blocks.push(section("You have decided nothing lately."));
  for (const d of m.decided) {
    blocks.push(
      section(
        `*${DECIDED_WORDS[d.type] ?? "Decided"}* ${when(d.at, m)} · ${line(d.proposal)} · now: ${statusWords(d.proposal)}`,
      ),
    );
  }
  blocks.push({
    type: "context",
    elements: [mrkdwn(`Drawn ${when(new Date(m.nowMs).toISOString(), m)}. Open the tab again to refresh it.`)],
  });
  return { type: "home", blocks };
}

const DECIDED_WORDS: Record<string, string> = {
  "approval.recorded": "You approved",
  "proposal.denied": "You denied",
  "proposal.escalated": "You escalated",
};

/** A waiting proposal: its summary quoted, the facts, the plan, the card's buttons, a divider. */
function waitingBlocks(p: Proposal, m: HomeModel): KnownBlock[] {
  // Created in a change freeze, it is listed only for whoever may break the glass: that is the one button offered
  // (the card's own, opening the same modal), and the card's words on the freeze follow the summary.
  const frozen = p.rule.freeze ? breakGlassText(p) : null;
  const summary = frozen
    ? `${quote(p.summary, SLACK_LIMITS.sectionText - frozen.length - 1)}\n${frozen}`
    : quote(p.summary, SLACK_LIMITS.sectionText);
  const facts: SectionBlock = {
    type: "section",
    text: mrkdwn(summary),
    fields: [
      mrkdwn(`*Action*\n${codeSpan(p.action.type, SLACK_LIMITS.sectionField - 9)}`),
      mrkdwn(`*Deadline*\n${escapeMrkdwn(when(p.expires_at, m))}`),
      mrkdwn(`*Approvals*\n${approvalsSoFar(p)}`),
      mrkdwn(`*Requested by*\n${p.requested_by === null ? "not given" : person(p.requested_by)}`),
    ],
  };
  const blocks: KnownBlock[] = [facts, section(paramsSectionText(p.action.params).text)];
  const buttons = homeButtons(p, m.nowMs).filter((b) => !frozen || b.action_id === ACTION_IDS.break_glass);
  if (buttons.length > 0) {
    blocks.push({ type: "actions", block_id: homeBlockId(p), elements: buttons } satisfies ActionsBlock);
  }
  blocks.push({ type: "divider" });
  return blocks;
}

/** One line naming a proposal: its action and its summary, cut and escaped. */
function line(p: Proposal): string {
  return `${codeSpan(p.action.type, 80)} ${fit(p.summary.replace(/\s+/g, " "), 200)}`;
}

function when(at: string, m: HomeModel): string {
  return zonedText(at, m.timeZone);
}
