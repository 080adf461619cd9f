// Renders a grouped card (docs/grouping.md): one message for a proposer's pending proposals of one action and
// group_key, "3 × k8s.rollout_restart: api, web, worker", each item with its own status, plan and buttons (the single
// card's own), and Approve all / Deny all for the lot. Pure, beside card.ts, whose pieces it reuses.
import type { ActionsBlock, Button, ContextBlock, HeaderBlock, KnownBlock } from "@slack/types";
import { isTerminal } from "../proposal/lifecycle.ts";
import type { Proposal } from "../proposal/types.ts";
import {
  actionsBlockId,
  decidersText,
  homeButtons,
  type RenderedMessage,
  riskText,
  shortPlanHash,
  statusText,
  statusWords,
} from "./card.ts";
import { codeSpan, escapeMrkdwn, fit, mrkdwn, plain, quote, SLACK_LIMITS, section, truncate } from "./mrkdwn.ts";
import { paramsSectionText } from "./plan.ts";

/**
 * The group buttons' action_ids; their value is the card's reference and the ids of the items the card offered them for
 * as drawn (`groupButtonValue`), never one proposal id.
 */
export const GROUP_ACTION_IDS = {
  approveAll: "signoff.group_approve_all",
  denyAll: "signoff.group_deny_all",
} as const;

/** The blocks a card spends besides its items: header, attribution, overview, the group buttons. */
const FRAME_BLOCKS = 4;
/** What a card's items may spend of Slack's 50 blocks a message. */
export const ITEM_BLOCK_BUDGET = SLACK_LIMITS.blocksPerMessage - FRAME_BLOCKS;
const FALLBACK_TEXT_MAX = 300;
const LABEL_MAX = 40;

/** What the card is of: the proposer's key, the action and the group_key its items share. */
export interface GroupCardHead {
  keyName: string;
  action: string;
  groupKey: string;
  /** Which group object and which of its cards (`groupCardRef`): the start of the group buttons' value. */
  ref: string;
}

/** `<group object id>:<card number>`: which card. */
export function groupCardRef(objectId: string, card: number): string {
  return `${objectId}:${card}`;
}

/**
 * Approve all / Deny all's value: `<card ref>:<id>,<id>,…`, the card and exactly the items it offered them for as drawn
 * (the ones its confirm dialog names). The group clicks no other item, so one that joined the card or was escalated
 * after this drawing is never decided by a press on it (docs/grouping.md). 20 ids of 68 characters fit Slack's 2,000.
 */
export function groupButtonValue(ref: string, offered: readonly Proposal[]): string {
  return `${ref}:${offered.map((p) => p.id).join(",")}`;
}

/**
 * The group object, card and offered items a group button names, or null when it is not one of ours. A value from
 * before it named the items (`<object>:<card>`) has `offered: null`, which the group answers by deciding nothing.
 */
export function parseGroupCardRef(
  value: string,
): { objectId: string; card: number; offered: readonly string[] | null } | null {
  const match = /^([0-9a-f]{64}):(\d{1,9})(?::(prp_[0-9a-f]{64}(?:,prp_[0-9a-f]{64})*))?$/.exec(value);
  if (!match) return null;
  return { objectId: match[1]!, card: Number(match[2]), offered: match[3] ? [...new Set(match[3].split(","))] : null };
}

/**
 * An item's short name: its first short string param (`api` of `{deployment: "api"}`), else its summary. The
 * proposer's text: only ever shown escaped, in a code span or the fallback text.
 */
export function itemLabel(p: Proposal): string {
  const first = Object.values(p.action.params).find((v) => typeof v === "string" && v.length > 0 && v.length <= 40);
  return typeof first === "string" ? first : fit(p.summary, LABEL_MAX);
}

/** Room kept for an item's own lines (status, a deny reason, a runner's answer) beside a short plan in one section. */
const HEAD_ROOM = 2_400;

/** Whether an item's lines and plan share one section: a plan short enough, whatever the item's status. */
function oneSection(p: Proposal): boolean {
  return paramsSectionText(p.action.params).text.length + 1 + HEAD_ROOM <= SLACK_LIMITS.sectionText;
}

/** The blocks an item takes: its lines and plan (one section or two, by `oneSection`), and its buttons if any. */
export function itemBlocks(p: Proposal, nowMs: number): KnownBlock[] {
  const params = paramsSectionText(p.action.params);
  const blocks: KnownBlock[] = oneSection(p)
    ? [section(`${truncate(itemHead(p, nowMs), HEAD_ROOM)}\n${params.text}`)]
    : [section(truncate(itemHead(p, nowMs), SLACK_LIMITS.sectionText)), section(params.text)];
  const buttons = decidable(p, nowMs) ? homeButtons(p, nowMs) : [];
  if (buttons.length > 0) blocks.push({ type: "actions", elements: buttons } satisfies ActionsBlock);
  return blocks;
}

/** The most blocks an item takes in any state (buttons come and go): what a card reserves for it. */
export function itemBlockCost(p: Proposal): number {
  return oneSection(p) ? 2 : 3;
}

/**
 * The card for `items` (joined order) as they stand at `nowMs`: a status per item that tells the truth, the per-item
 * buttons of the single card while that item can be decided, and the group buttons while any can.
 */
export function renderGroupCard(head: GroupCardHead, items: readonly Proposal[], nowMs: number): RenderedMessage {
  const open = items.filter((p) => decidable(p, nowMs));
  const labels = items.map((p) => escapeMrkdwn(itemLabel(p)));
  const title = `${open.length > 0 ? "Approval needed" : "Decided"}: ${items.length} × ${head.action}`;
  const blocks: KnownBlock[] = [
    {
      type: "header",
      block_id: "signoff.group.header",
      text: { type: "plain_text", text: truncate(escapeMrkdwn(title), SLACK_LIMITS.headerText), emoji: true },
    } satisfies HeaderBlock,
    {
      type: "context",
      block_id: "signoff.group.attribution",
      elements: [
        mrkdwn(
          `Grouped by key ${codeSpan(head.keyName, 120)} under ${codeSpan(head.groupKey, 80)}. Each item is its own ` +
            "proposal: decided, audited and run on its own. The quoted texts are the proposer's words, not signoff's.",
        ),
      ],
    } satisfies ContextBlock,
    section(overview(items, open, nowMs)),
  ];
  items.forEach((p, i) => {
    // An item's buttons carry the plan they were drawn on, as the single card's do (a stale Approve after an edit is
    // refused); the other blocks are the item's position.
    for (const block of itemBlocks(p, nowMs)) {
      const id = block.type === "actions" ? `${actionsBlockId(p)}~${i}` : `signoff.group.item.${i}.${block.type}`;
      blocks.push({ ...block, block_id: id });
    }
  });
  if (open.length > 0) {
    blocks.push({
      type: "actions",
      block_id: "signoff.group.actions",
      elements: groupButtons(head, open),
    } satisfies ActionsBlock);
  }
  const list = labels.join(", ");
  return { text: truncate(`${title}: ${list}`, FALLBACK_TEXT_MAX), blocks };
}

/** Whether an item can still be decided from this card: pending, not escalated away, its deadline not passed. */
export function decidable(p: Proposal, nowMs: number): boolean {
  return p.status === "pending" && !p.escalated && nowMs < Date.parse(p.expires_at);
}

/** "1 pending, 1 approved, 1 denied", then who may decide when every open item says the same. */
function overview(items: readonly Proposal[], open: readonly Proposal[], nowMs: number): string {
  const counts = new Map<string, number>();
  for (const p of items) {
    const words = decidable(p, nowMs) ? "pending" : statusWords(p).toLowerCase();
    counts.set(words, (counts.get(words) ?? 0) + 1);
  }
  const line = [...counts].map(([words, n]) => `${n} ${words}`).join(" · ");
  const who = new Set(open.map((p) => decidersText(p, { role: "card", nowMs })));
  const deciders = who.size === 1 ? [...who][0] : null;
  const all =
    open.length > 0
      ? "\n*Approve all* is one click per item by you: each item checks it as if you had pressed its own Approve."
      : "";
  return `*${items.length} item${items.length === 1 ? "" : "s"}:* ${line}${deciders ? `\n${deciders}` : ""}${all}`;
}

/** An item's signoff-written lines: number, name, status; the summary quoted; approvals, risk rule, outcome. */
function itemHead(p: Proposal, nowMs: number): string {
  const lines = [
    `${icon(p, nowMs)} ${codeSpan(itemLabel(p), LABEL_MAX + 2)} — *${escapeMrkdwn(stateWords(p, nowMs))}*`,
    quote(p.summary, 700),
  ];
  const risk = riskText(p);
  if (risk) lines.push(risk);
  const status = statusText(p, { role: "card", nowMs });
  if (status) lines.push(status);
  else lines.push(`Approvals: ${p.approvals.length} of ${p.rule.required_approvals}`);
  lines.push(`Proposal ${codeSpan(p.id, 120)} · plan ${codeSpan(shortPlanHash(p.plan_sha256), 16)}`);
  return lines.join("\n");
}

function stateWords(p: Proposal, nowMs: number): string {
  if (p.status === "pending" && p.escalated) return "Escalated, decided on the escalation message";
  if (p.status === "pending" && !decidable(p, nowMs)) return "Deadline passed, nothing will run";
  return statusWords(p);
}

function icon(p: Proposal, nowMs: number): string {
  if (decidable(p, nowMs)) return ":large_yellow_circle:";
  if (!isTerminal(p.status)) return p.status === "pending" ? ":hourglass:" : ":gear:";
  if (p.status === "succeeded") return ":large_green_circle:";
  return p.status === "failed" || p.status === "dispatch_failed" ? ":red_circle:" : ":white_circle:";
}

function groupButtons(head: GroupCardHead, open: readonly Proposal[]): Button[] {
  const names = open.map((p) => itemLabel(p)).join(", ");
  const confirm = (verb: string) => ({
    title: plain(`${verb} ${open.length} item${open.length === 1 ? "" : "s"}?`),
    text: mrkdwn(
      truncate(
        `${codeSpan(head.action, 80)}: ${escapeMrkdwn(names)}\nEach item counts your click on its own; ` +
          "one you may not decide is refused and named.",
        SLACK_LIMITS.confirmText,
      ),
    ),
    confirm: plain(verb),
    deny: plain("Cancel"),
  });
  return [
    {
      type: "button",
      action_id: GROUP_ACTION_IDS.approveAll,
      text: plain("Approve all"),
      style: "primary",
      value: groupButtonValue(head.ref, open),
      confirm: { ...confirm("Approve"), style: "primary" },
    },
    {
      type: "button",
      action_id: GROUP_ACTION_IDS.denyAll,
      text: plain("Deny all"),
      style: "danger",
      value: groupButtonValue(head.ref, open),
      confirm: { ...confirm("Deny"), style: "danger" },
    },
  ];
}
