// Renders a proposal as a Block Kit card (and the deny-reason modal): pure, every proposer string escaped and cut (SPEC 5);
// the plan shown whole, the proposer's texts quoted and attributed so none passes for signoff's own (issue 11 item 4).
import type {
  ActionsBlock,
  Button,
  ContextBlock,
  HeaderBlock,
  KnownBlock,
  ModalView,
  SectionBlock,
} from "@slack/types";
import { DEFAULT_VERIFY_LABELS, isMailRecipient } from "../config/policy.ts";
import { MAX_REFUSAL_REASON_CHARS } from "../dispatch/runner-answer.ts";
import { canonicalJson } from "../lib/jcs.ts";
import { deciders, requiredApprovals } from "../proposal/lifecycle.ts";
import type { Proposal, VerifyAnswer } from "../proposal/types.ts";
import { codeBlock, codeSpan, escapeMrkdwn, fit, mrkdwn, plain, quote, SLACK_LIMITS, truncate } from "./mrkdwn.ts";
import { paramsSectionText } from "./plan.ts";

/** The `action_id`s of the card's buttons; each button's `value` is the proposal id and nothing else. */
export const ACTION_IDS = {
  approve: "signoff.approve",
  deny: "signoff.deny",
  escalate: "signoff.escalate",
  // A verification prompt's answers (issue 7); the value is the proposal id, like the others.
  verify_yes: "signoff.verify_yes",
  verify_no: "signoff.verify_no",
  verify_unsure: "signoff.verify_unsure",
  /** Opens the break-glass modal (approve alone, with a reason). */
  break_glass: "signoff.break_glass",
  /** The break-glass review's answers, posted to the normal approvers afterwards. */
  break_glass_justified: "signoff.break_glass_justified",
  break_glass_unjustified: "signoff.break_glass_unjustified",
  /** Opens the Edit modal (edit before approve): the editable params, changed by an approver. */
  edit: "signoff.edit",
} as const;

export const CARD_BLOCK_IDS = {
  /** signoff's own headline (the status in a few words); never proposer text. */
  header: "signoff.header",
  /** Who proposed it: signoff's words, above everything the proposer wrote. */
  attribution: "signoff.attribution",
  /** The proposer's summary, quoted. */
  summary: "signoff.summary",
  facts: "signoff.facts",
  /** The risk rule the proposal froze ("2 approvals needed: replicas > 10"): the policy's words, not the proposer's. */
  risk: "signoff.risk",
  /** A change freeze the proposal was created in, or the break-glass that approved it, and its review. */
  breakGlass: "signoff.break_glass",
  /** The edits approvers made (old → new, by whom): signoff's words around the values, in code spans. */
  edits: "signoff.edits",
  /** Who may decide, from the rule the proposal froze: signoff's words, shown while a decision is possible. */
  deciders: "signoff.deciders",
  params: "signoff.params",
  reason: "signoff.reason",
  blastRadius: "signoff.blast_radius",
  rollback: "signoff.rollback",
  status: "signoff.status",
  question: "signoff.question",
  meta: "signoff.meta",
  actions: "signoff.actions",
} as const;

/** The deny-reason modal: `view_submission` carries the reason at `state.values.reason.reason.value`. */
export const DENY_MODAL = {
  callbackId: "signoff.deny_reason",
  reasonBlockId: "reason",
  reasonActionId: "reason",
  reasonMaxLength: 500,
} as const;

/** The break-glass modal: `view_submission` carries the reason at `state.values.reason.reason.value`. */
export const BREAK_GLASS_MODAL = {
  callbackId: "signoff.break_glass_reason",
  reasonBlockId: "reason",
  reasonActionId: "reason",
  reasonMaxLength: 500,
} as const;

/** Job keys (kind "slack") of the messages break-glass sends: the review to the approvers, the escalation notice. */
export const BREAK_GLASS_PREFIX = "break_glass:";
export type BreakGlassRole = "review" | "escalation";

export const OUTPUT_EXCERPT_MAX = 500;
const FALLBACK_TEXT_MAX = 300;
const LAST_ERROR_MAX = 500;
/** Room for the runner's reason as stored (MAX_REFUSAL_REASON_CHARS) once escaped: `&` alone becomes five. */
const REFUSAL_REASON_MAX = 5 * MAX_REFUSAL_REASON_CHARS;
const DENY_REASON_MAX = 1000;
const LISTED_PEOPLE_MAX = 10;

export interface RenderedMessage {
  /** Notification and accessibility fallback (chat.postMessage `text`), escaped like the blocks. */
  text: string;
  blocks: KnownBlock[];
}

export interface RenderOptions {
  /** "card" is the original message; "escalation" the one posted to the escalation approvers. */
  role: "card" | "escalation";
  /** Now, in ms since the epoch. When given and the deadline has passed, a pending card shows no buttons. */
  nowMs?: number;
}

/**
 * Renders the card for `p` as it stands: facts, a status line that tells the truth, and buttons only while a decision
 * is possible here. signoff speaks in the header, the attribution, the labels, the status line and the context; the
 * proposer's texts are only ever quoted (`>` on every line) and the plan only ever in a code block, so a summary
 * written as ":white_check_mark: Approved by …" reads as the proposer's quote, not as a decision (issue 11 item 4).
 */
export function renderCard(p: Proposal, opts: RenderOptions): RenderedMessage {
  if (p.kind === "verify") return renderVerifyCard(p, opts);
  const params = paramsSectionText(p.action.params);
  const blocks: KnownBlock[] = [
    header(lead(p, opts)),
    attribution(p, "requested by"),
    summary(p),
    {
      type: "section",
      block_id: CARD_BLOCK_IDS.facts,
      fields: [
        mrkdwn(`*Action*\n${codeSpan(p.action.type, SLACK_LIMITS.sectionField - 9)}`),
        mrkdwn(`*Requested by*\n${p.requested_by === null ? "not given" : person(p.requested_by)}`),
        mrkdwn(`*Deadline*\n${slackDate(p.expires_at)}`),
        mrkdwn(`*Approvals*\n${approvalsSoFar(p)}`),
      ],
    } satisfies SectionBlock,
  ];
  const glass = breakGlassText(p);
  if (glass)
    blocks.push({ type: "section", block_id: CARD_BLOCK_IDS.breakGlass, text: mrkdwn(glass) } satisfies SectionBlock);
  const edited = editsText(p);
  if (edited)
    blocks.push({ type: "section", block_id: CARD_BLOCK_IDS.edits, text: mrkdwn(edited) } satisfies SectionBlock);
  const risk = riskText(p);
  if (risk) blocks.push({ type: "section", block_id: CARD_BLOCK_IDS.risk, text: mrkdwn(risk) } satisfies SectionBlock);
  const who = decidersText(p, opts);
  if (who)
    blocks.push({ type: "section", block_id: CARD_BLOCK_IDS.deciders, text: mrkdwn(who) } satisfies SectionBlock);
  blocks.push(
    { type: "section", block_id: CARD_BLOCK_IDS.params, text: mrkdwn(params.text) } satisfies SectionBlock,
    quoted(CARD_BLOCK_IDS.reason, "Why", p.reason),
    quoted(CARD_BLOCK_IDS.blastRadius, "Blast radius", p.blast_radius),
    quoted(CARD_BLOCK_IDS.rollback, "Back-out", p.rollback),
  );

  const status = statusText(p, opts);
  if (status)
    blocks.push({ type: "section", block_id: CARD_BLOCK_IDS.status, text: mrkdwn(status) } satisfies SectionBlock);

  blocks.push({
    type: "context",
    block_id: CARD_BLOCK_IDS.meta,
    elements: [
      mrkdwn(
        `Proposal ${codeSpan(p.id, 120)} · plan ${codeSpan(shortPlanHash(p.plan_sha256), 16)} · from key ${codeSpan(p.created_by, 120)}`,
      ),
    ],
  } satisfies ContextBlock);

  const buttons = decisionButtons(p, opts, params.whole);
  if (buttons.length > 0) {
    blocks.push({ type: "actions", block_id: actionsBlockId(p), elements: buttons } satisfies ActionsBlock);
  }

  return {
    text: truncate(`${lead(p, opts)}: ${escapeMrkdwn(p.summary)} (${escapeMrkdwn(p.action.type)})`, FALLBACK_TEXT_MAX),
    blocks,
  };
}

/**
 * The `views.open` modal that asks a denier for an optional reason; `private_metadata` is the proposal id, after
 * `home:` when it was opened from the Home tab (which is redrawn once the deny is recorded).
 */
/**
 * The deny modal. From the Home tab (`drawn`: the state its view showed, lifecycle.ts drawnState), the submission is
 * checked against that same state, as the Home tab's buttons are.
 */
export function renderDenyModal(proposalId: string, summary: string, drawn?: string): ModalView {
  return {
    type: "modal",
    callback_id: DENY_MODAL.callbackId,
    private_metadata: drawn === undefined ? proposalId : `home:${proposalId}:${drawn}`,
    title: plain("Deny proposal"),
    submit: plain("Deny"),
    close: plain("Cancel"),
    blocks: [
      { type: "section", text: mrkdwn(`You are denying:\n${quote(summary, SLACK_LIMITS.sectionText - 20)}`) },
      {
        type: "input",
        block_id: DENY_MODAL.reasonBlockId,
        optional: true,
        label: plain("Reason (optional)"),
        hint: plain("Recorded in the audit log, sent to the proposer and shown on the card."),
        element: {
          type: "plain_text_input",
          action_id: DENY_MODAL.reasonActionId,
          multiline: true,
          max_length: DENY_MODAL.reasonMaxLength,
        },
      },
    ],
  };
}

/** Which proposal a break-glass modal's `private_metadata` names, and whether it was opened from the Home tab. */
export function breakGlassModalOrigin(metadata: string): {
  proposalId: string;
  fromHome: boolean;
  plan: string | null;
} {
  const fromHome = metadata.startsWith("home:");
  const [proposalId = "", plan] = (fromHome ? metadata.slice("home:".length) : metadata).split(" ");
  // A modal opened before it carried its plan saw the plan as created: an edited plan is then refused as changed.
  return { proposalId, fromHome, plan: plan && /^[0-9a-f]{64}$/.test(plan) ? plan : null };
}

/**
 * Which proposal a deny modal's `private_metadata` names and, when it was opened from the Home tab, the state that
 * tab was drawn on (`unknown` for a modal opened before it was kept: refused as changed, never taken as current).
 */
export function denyModalOrigin(metadata: string): { proposalId: string; drawn: string | undefined } {
  if (!metadata.startsWith("home:")) return { proposalId: metadata, drawn: undefined };
  const [proposalId = "", drawn] = metadata.slice("home:".length).split(/:(.*)/s);
  return { proposalId, drawn: drawn || "unknown" };
}

/**
 * ":rotating_light: Risk rule: 2 approvals needed: replicas > 10": the rule that tightened this proposal when it was
 * created, in the policy's words (its label, else its condition). Null when no rule applied.
 */
export function riskText(p: Proposal): string | null {
  const risk = p.rule.risk;
  if (!risk) return null;
  // Once escalated, what the escalated decision needs (never fewer than the rule's own M).
  const n = requiredApprovals(p);
  const label = fit(risk.label, 200);
  const doubt = risk.unevaluable ? " (its condition could not be evaluated for this proposal, so it applies)" : "";
  return `:rotating_light: *Risk rule:* ${n} approval${n === 1 ? "" : "s"} needed: ${label}${doubt}`;
}

/**
 * The card's buttons' block id: `signoff.actions`, and once the params were edited `signoff.actions.<plan>` (the
 * whole plan hash), so an Approve clicked on a card drawn before an edit is known to be stale.
 */
export function actionsBlockId(p: Proposal): string {
  return p.edits?.length ? `${CARD_BLOCK_IDS.actions}.${p.plan_sha256}` : CARD_BLOCK_IDS.actions;
}

/**
 * The plan a card's button was drawn on, from its block id: a short plan hash, null for the plan as created (no edit
 * then), undefined for a block the card did not draw (nothing to compare).
 */
export function drawnPlan(blockId: string | undefined): string | null | undefined {
  // A grouped card draws one actions block per item, told apart by a `~<item>` suffix (group-card.ts).
  const id = blockId?.replace(/~\d+$/, "");
  if (id === CARD_BLOCK_IDS.actions) return null;
  const prefix = `${CARD_BLOCK_IDS.actions}.`;
  return id?.startsWith(prefix) ? id.slice(prefix.length) : undefined;
}

/** The most recent edits the card lists; older ones are counted. */
const EDITS_SHOWN = 3;
const EDIT_VALUE_MAX = 200;

/**
 * ":pencil2: Edited by @alice <date>: `replicas` `12` → `3`" for each edit (the latest last), and that approvals given
 * before an edit no longer count. Null when the params were never edited.
 */
export function editsText(p: Proposal): string | null {
  const edits = p.edits ?? [];
  if (edits.length === 0) return null;
  const value = (v: unknown) => (v === null ? "_(left out)_" : codeSpan(canonicalJson(v), EDIT_VALUE_MAX));
  const lines = edits.slice(-EDITS_SHOWN).map((e) => {
    const changes = e.changes.map((c) => `${codeSpan(c.param, 80)} ${value(c.from)} → ${value(c.to)}`).join(", ");
    const voided = e.voided_approvals.length;
    const note = voided > 0 ? ` (${voided} earlier approval${voided === 1 ? "" : "s"} no longer count)` : "";
    return `:pencil2: *Edited* by ${actor(e.by)} ${slackDate(e.at)}: ${changes}${note}`;
  });
  if (edits.length > EDITS_SHOWN) lines.unshift(`${edits.length - EDITS_SHOWN} earlier edit(s) not shown.`);
  lines.push("Approvals count only for the plan as edited, and someone who did not edit it must approve.");
  return lines.join("\n");
}

/**
 * A freeze the proposal was created in (only break-glass approves it), or the break-glass that approved it with its
 * reason and the review so far. Null when neither applies.
 */
export function breakGlassText(p: Proposal): string | null {
  const use = p.break_glass;
  if (use) {
    const yes = use.reviews.filter((r) => r.justified).length;
    const no = use.reviews.length - yes;
    const during = use.freeze ? ` during the change freeze “${fit(use.freeze, 64)}”` : "";
    return (
      `:rotating_light: *Break-glass:* approved alone by ${actor(use.by)}${during} ${slackDate(use.at)}.
` +
      `${quote(use.reason, 600)}
Review: ${yes} justified, ${no} not justified.`
    );
  }
  if (p.rule.freeze && p.status === "pending") {
    return (
      `:snowflake: Created during the change freeze “${fit(p.rule.freeze.name, 64)}” ` +
      `(until ${slackDate(p.rule.freeze.ends_at)}): only break-glass can approve it.`
    );
  }
  return null;
}

/** Which break-glass messages `p` sends: the review wherever its card went, the notice to the escalation channel. */
export function breakGlassMessages(p: Proposal): string[] {
  const roles: BreakGlassRole[] = [];
  if (p.rule.channel && p.rule.approvers.length > 0) roles.push("review");
  if (p.rule.escalation?.channel) roles.push("escalation");
  return roles.map((role) => `${BREAK_GLASS_PREFIX}${role}`);
}

/** Where a break-glass message goes. */
export function breakGlassChannel(p: Proposal, role: BreakGlassRole): string {
  return (role === "review" ? p.rule.channel : p.rule.escalation?.channel) ?? "";
}

/**
 * The message break-glass sends at once: to the action's channel, naming every normal approver, with the review
 * question and its two buttons; to the escalation channel, the same news without them.
 */
export function renderBreakGlassMessage(p: Proposal, role: BreakGlassRole): RenderedMessage {
  const use = p.break_glass;
  const who = use ? actor(use.by) : "someone";
  const news =
    `:rotating_light: *Break-glass:* ${who} approved ${codeSpan(p.action.type, 80)} alone` +
    `${use?.freeze ? ` during the change freeze “${fit(use.freeze, 64)}”` : ""}: ${fit(p.summary, 300)}
` +
    `${quote(use?.reason ?? "", 600)}
Proposal ${codeSpan(p.id, 120)}`;
  const blocks: KnownBlock[] = [{ type: "section", block_id: "signoff.break_glass_news", text: mrkdwn(news) }];
  if (role === "review") {
    blocks.push(
      {
        type: "section",
        block_id: "signoff.break_glass_question",
        text: mrkdwn(`${policyApprovers(p.rule.approvers)}: *Was this break-glass approval justified?*`),
      },
      {
        type: "actions",
        block_id: "signoff.break_glass_review",
        elements: [
          {
            type: "button",
            action_id: ACTION_IDS.break_glass_justified,
            text: plain("Yes, justified"),
            style: "primary",
            value: p.id,
          },
          {
            type: "button",
            action_id: ACTION_IDS.break_glass_unjustified,
            text: plain("No, not justified"),
            style: "danger",
            value: p.id,
          },
        ],
      },
    );
  }
  return { text: truncate(`Break-glass: ${escapeMrkdwn(p.action.type)} approved alone`, FALLBACK_TEXT_MAX), blocks };
}

/** The break-glass modal: the summary, and the reason (required) that the audit log, the card and the approvers see. */
export function renderBreakGlassModal(
  proposalId: string,
  summaryText: string,
  fromHome = false,
  plan: string | null = null,
): ModalView {
  // The plan it was opened on: if the params are edited while it is open, its submission is refused (`changed`).
  const origin = plan ? `${proposalId} ${plan}` : proposalId;
  return {
    type: "modal",
    callback_id: BREAK_GLASS_MODAL.callbackId,
    private_metadata: fromHome ? `home:${origin}` : origin,
    title: plain("Break glass"),
    submit: plain("Approve alone"),
    close: plain("Cancel"),
    blocks: [
      {
        type: "section",
        text: mrkdwn(
          `${quote(summaryText, 2000)}
You approve this *alone*. Every approver and the escalation channel are told ` +
            "at once, and the approvers are asked whether it was justified.",
        ),
      },
      {
        type: "input",
        block_id: BREAK_GLASS_MODAL.reasonBlockId,
        optional: false,
        label: plain("Why can this not wait?"),
        element: {
          type: "plain_text_input",
          action_id: BREAK_GLASS_MODAL.reasonActionId,
          multiline: true,
          max_length: BREAK_GLASS_MODAL.reasonMaxLength,
        },
      },
    ],
  };
}

/**
 * "Can approve: @alice, @oncall — 1 needed, not the requester @bob": who may decide this proposal as it stands, from
 * the rule it froze (after escalation, the escalation approvers and their own count). Null once no decision is
 * possible, and on the original card of an escalated proposal (the escalation message says it instead).
 */
export function decidersText(p: Proposal, opts: RenderOptions): string | null {
  if (p.kind === "verify" || p.status !== "pending" || deadlinePassed(p, opts)) return null;
  if (opts.role === "card" && p.escalated) return null;
  // Created in a change freeze: no normal approval counts, so the card names who may break the glass instead.
  if (p.rule.freeze && p.rule.break_glass) {
    return `*Can approve:* ${policyApprovers(p.rule.break_glass.approvers)}, by break-glass alone with a reason (not the requester)`;
  }
  const d = deciders(p);
  const listed = [
    ...d.approvers.map(policyApprover),
    ...d.linkRecipients.map((r) => `${fit(r, 80)} (${isMailRecipient(r) ? "by mailed link" : "by link"})`),
  ];
  if (listed.length === 0) return null;
  const shown = listed.slice(0, LISTED_PEOPLE_MAX).join(", ");
  const who = listed.length > LISTED_PEOPLE_MAX ? `${shown} and ${listed.length - LISTED_PEOPLE_MAX} more` : shown;
  if (d.requesterOnly) return `*Can approve:* ${who}, the requester, alone`;
  const not = [
    ...(d.escalator ? [`${actor(d.escalator)} (who escalated)`] : []),
    ...(d.requester ? [`the requester ${person(d.requester)}`] : []),
  ];
  return `*Can approve:* ${who} — ${d.required} needed${not.length > 0 ? `, not ${not.join(" nor ")}` : ""}`;
}

/** Refusals whose clicker is not (or does not count as) one of the deciders: they are told who is. */
const NAMES_DECIDERS = new Set(["not_an_approver", "not_a_member", "self_approval", "escalated_by_you"]);

/**
 * The ephemeral message a refused clicker gets: lifecycle.ts's reason, then, when they cannot decide, who can
 * ("… Can approve: @alice, @oncall — 1 needed"), so they know whom to ask.
 */
export function refusalMessage(p: Proposal, code: string, reason: string): string {
  const who = NAMES_DECIDERS.has(code) ? decidersText(p, { role: p.escalated ? "escalation" : "card" }) : null;
  return who ? `${reason}\n${who.replace(/^\*Can approve:\*/, "Can approve:")}.` : reason;
}

/** An ephemeral refusal: the wording is decided elsewhere, this only makes it safe to post. */
export function refusalText(reason: string): string {
  return `:no_entry_sign: ${fit(reason, SLACK_LIMITS.sectionText - 20)}`;
}

/** The first 12 hex digits of the plan hash, as the card and the confirm dialog show it (SPEC 2). */
export function shortPlanHash(planSha256: string): string {
  return planSha256.slice(0, 12);
}

// ---- blocks ----

/** The header is signoff's headline for the card as it stands, never proposer text: the top of a card is ours. */
function header(text: string): HeaderBlock {
  return {
    type: "header",
    block_id: CARD_BLOCK_IDS.header,
    text: plain(truncate(escapeMrkdwn(text), SLACK_LIMITS.headerText)),
  };
}

/** "Proposed by key `alertmanager` · requested by @bob.": whose words the quoted texts below are. */
function attribution(p: Proposal, requesterIs: string): ContextBlock {
  const requester = p.requested_by === null ? "" : ` · ${requesterIs} ${person(p.requested_by)}`;
  return {
    type: "context",
    block_id: CARD_BLOCK_IDS.attribution,
    elements: [
      mrkdwn(
        `Proposed by key ${codeSpan(p.created_by, 120)}${requester}. ` +
          "The quoted texts are the proposer's words, not signoff's.",
      ),
    ],
  } satisfies ContextBlock;
}

function summary(p: Proposal): SectionBlock {
  return {
    type: "section",
    block_id: CARD_BLOCK_IDS.summary,
    text: mrkdwn(quote(p.summary, SLACK_LIMITS.sectionText)),
  };
}

/** A section `*Label*\n> text`: signoff's label, then the proposer's text quoted in the room left under the limit. */
function quoted(blockId: string, label: string, text: string): SectionBlock {
  const head = `*${label}*\n`;
  const body = /\S/.test(text) ? quote(text, SLACK_LIMITS.sectionText - head.length) : "—";
  return { type: "section", block_id: blockId, text: mrkdwn(head + body) };
}

/**
 * The card's own decision buttons, for the Home tab: the same action_ids, values (the proposal id) and confirm dialog
 * as the message that decides now (the escalation message once escalated), Approve only for a plan shown whole.
 */
export function homeButtons(p: Proposal, nowMs: number): Button[] {
  const opts: RenderOptions = { role: p.escalated ? "escalation" : "card", nowMs };
  return decisionButtons(p, opts, paramsSectionText(p.action.params).whole);
}

/** Approve is offered only for a plan the card shows whole: no one approves what they cannot see (issue 11 item 4). */
function decisionButtons(p: Proposal, opts: RenderOptions, planWhole: boolean): Button[] {
  if (p.status !== "pending") return [];
  if (opts.role === "card" && p.escalated) return [];
  if (deadlinePassed(p, opts)) return [];

  const approve: Button = {
    type: "button",
    action_id: ACTION_IDS.approve,
    text: plain("Approve"),
    style: "primary",
    value: p.id,
  };
  if (p.rule.confirm !== false) {
    const tail = `\nPlan ${codeSpan(shortPlanHash(p.plan_sha256), 16)} · ${codeSpan(p.action.type, 80)}`;
    approve.confirm = {
      title: plain("Approve this action?"),
      text: mrkdwn(quote(p.summary, SLACK_LIMITS.confirmText - tail.length) + tail),
      confirm: plain("Approve"),
      deny: plain("Cancel"),
      style: "primary",
    };
  }
  const buttons: Button[] = [
    // Created in a change freeze: no normal approval counts, so none is offered.
    ...(planWhole && !p.rule.freeze ? [approve] : []),
    { type: "button", action_id: ACTION_IDS.deny, text: plain("Deny"), style: "danger", value: p.id },
  ];
  if (planWhole && p.rule.break_glass) {
    buttons.push({ type: "button", action_id: ACTION_IDS.break_glass, text: plain("Break glass"), value: p.id });
  }
  // Edit before approve: only a plan shown whole, and never where only break-glass or the requester decides.
  if (planWhole && p.rule.edit && !p.rule.freeze && !p.rule.requester_only) {
    buttons.push({ type: "button", action_id: ACTION_IDS.edit, text: plain("Edit"), value: p.id });
  }
  if (opts.role === "card" && p.rule.escalation && !p.escalated) {
    buttons.push({ type: "button", action_id: ACTION_IDS.escalate, text: plain("Escalate"), value: p.id });
  }
  return buttons;
}

// ---- verification prompts ----

/** A verification prompt in its addressee's DM: the question, the facts, three answers while one is possible. */
function renderVerifyCard(p: Proposal, opts: RenderOptions): RenderedMessage {
  const lead = p.status === "pending" ? "Was this you?" : (answeredLead(p) ?? FALLBACK_LEAD[p.status]);
  const blocks: KnownBlock[] = [
    header(lead),
    attribution(p, "asked of"),
    summary(p),
    {
      type: "section",
      block_id: CARD_BLOCK_IDS.question,
      text: mrkdwn(":grey_question: *Was this you?* Please answer below."),
    } satisfies SectionBlock,
    {
      type: "section",
      block_id: CARD_BLOCK_IDS.facts,
      fields: [
        mrkdwn(`*About*\n${codeSpan(p.action.type, SLACK_LIMITS.sectionField - 9)}`),
        mrkdwn(`*Asked of*\n${p.requested_by === null ? "not given" : person(p.requested_by)}`),
        mrkdwn(`*Deadline*\n${slackDate(p.expires_at)}`),
      ],
    } satisfies SectionBlock,
    quoted(CARD_BLOCK_IDS.reason, "Details", p.reason),
  ];
  if (Object.keys(p.action.params).length > 0) {
    // Nothing is dispatched for a prompt, but its facts are shown whole all the same.
    blocks.push({
      type: "section",
      block_id: CARD_BLOCK_IDS.params,
      text: mrkdwn(paramsSectionText(p.action.params).text),
    } satisfies SectionBlock);
  }
  if (p.blast_radius) blocks.push(quoted(CARD_BLOCK_IDS.blastRadius, "Blast radius", p.blast_radius));
  if (p.rollback) blocks.push(quoted(CARD_BLOCK_IDS.rollback, "Back-out", p.rollback));

  const status = verifyStatusText(p, opts);
  if (status)
    blocks.push({ type: "section", block_id: CARD_BLOCK_IDS.status, text: mrkdwn(status) } satisfies SectionBlock);
  blocks.push({
    type: "context",
    block_id: CARD_BLOCK_IDS.meta,
    elements: [mrkdwn(`Proposal ${codeSpan(p.id, 120)} · from key ${codeSpan(p.created_by, 120)}`)],
  } satisfies ContextBlock);

  if (p.status === "pending" && !deadlinePassed(p, opts)) {
    const labels = labelsOf(p);
    const button = (answer: VerifyAnswer, style?: "primary" | "danger"): Button => ({
      type: "button",
      action_id: ACTION_IDS[`verify_${answer}`],
      text: plain(truncate(labels[answer], SLACK_LIMITS.buttonText)),
      value: p.id,
      ...(style ? { style } : {}),
    });
    blocks.push({
      type: "actions",
      block_id: CARD_BLOCK_IDS.actions,
      elements: [button("yes", "primary"), button("no", "danger"), button("unsure")],
    } satisfies ActionsBlock);
  }
  return { text: truncate(`${lead}: ${escapeMrkdwn(p.summary)}`, FALLBACK_TEXT_MAX), blocks };
}

function labelsOf(p: Proposal) {
  return p.rule.verify_labels ?? DEFAULT_VERIFY_LABELS;
}

const ANSWER_ICON: Record<VerifyAnswer, string> = {
  yes: ":white_check_mark:",
  no: ":no_entry:",
  unsure: ":arrow_heading_up:",
};

/** "Answered “No, that wasn't me” by <@U…> <date>." for a prompt that has its answer. */
function answeredLine(p: Proposal): string | null {
  const answer = p.decision?.answer;
  if (!answer || !p.decision) return null;
  return `${ANSWER_ICON[answer]} Answered “${fit(labelsOf(p)[answer], 200)}” by ${actor(p.decision.by)} ${slackDate(p.decision.at)}.`;
}

function answeredLead(p: Proposal): string | null {
  const answer = p.decision?.answer;
  return answer ? `Answered “${escapeMrkdwn(labelsOf(p)[answer])}”` : null;
}

function verifyStatusText(p: Proposal, opts: RenderOptions): string | null {
  switch (p.status) {
    case "pending":
      return deadlinePassed(p, opts) ? ":hourglass: The deadline has passed; no answer was recorded." : null;
    case "expired":
      return `:hourglass: Expired ${slackDate(p.decision?.at ?? p.expires_at)} without an answer.`;
    case "cancelled": {
      const by = p.decision ? ` by ${actor(p.decision.by)}` : "";
      return `:heavy_multiplication_x: Cancelled${by}${p.decision ? ` ${slackDate(p.decision.at)}` : ""}. No answer is needed any more.`;
    }
    default:
      return answeredLine(p);
  }
}

// ---- the status line (the grouped card, group-card.ts, shows it per item) ----

export function statusText(p: Proposal, opts: RenderOptions): string | null {
  const decidedAt = p.decision?.at;
  switch (p.status) {
    case "pending": {
      const lines: string[] = [];
      if (p.escalated) {
        const to = p.rule.escalation
          ? ` to ${policyApprovers(p.rule.escalation.approvers)}${channelSuffix(p.rule.escalation.channel)}`
          : "";
        lines.push(`:arrow_heading_up: Escalated by ${actor(p.escalated.by)} ${slackDate(p.escalated.at)}${to}.`);
        const prior = p.escalated.prior_approvals;
        if (prior.length > 0) lines.push(`Approvals before escalation: ${actors(prior.map((a) => a.user))}.`);
        if (opts.role === "card") lines.push("The decision is now on the escalation message.");
      }
      if (deadlinePassed(p, opts))
        lines.push(":hourglass: The deadline has passed; this proposal is expiring. Nothing will run.");
      return lines.length > 0 ? lines.join("\n") : null;
    }
    case "approved": {
      const attempt =
        p.dispatch.attempts > 0 && p.dispatch.last_error
          ? ` (attempt ${p.dispatch.attempts}; last error ${codeSpan(p.dispatch.last_error, LAST_ERROR_MAX)})`
          : "";
      return `${approvedBy(p)}\n:gear: Running… dispatching to the runner${attempt}.`;
    }
    case "dispatched": {
      const since = p.dispatch.dispatched_at ? ` since ${slackDate(p.dispatch.dispatched_at)}` : "";
      return `${approvedBy(p)}\n:gear: Running… the runner accepted the job${since}.`;
    }
    case "succeeded":
    case "failed": {
      const icon = p.status === "succeeded" ? ":large_green_circle: Succeeded" : ":red_circle: Failed";
      const at = p.result ? ` ${slackDate(p.result.at)}` : "";
      const output = p.result?.output ? `\n${codeBlock(p.result.output, OUTPUT_EXCERPT_MAX)}` : "";
      return `${approvedBy(p)}\n${icon}${at}.${output}`;
    }
    case "dispatch_failed": {
      const refusal = p.dispatch.refusal;
      if (refusal) {
        // The runner's words, in a code block: escaped, never formatted, never read as signoff's (issue 13).
        const why = refusal.reason === null ? "." : `: ${codeBlock(refusal.reason, REFUSAL_REASON_MAX)}`;
        return `${approvedBy(p)}\n:warning: Dispatch failed: the runner refused (HTTP ${refusal.http_status})${why}\nNothing ran.`;
      }
      const lastError = p.dispatch.last_error ? `\nLast error: ${codeSpan(p.dispatch.last_error, LAST_ERROR_MAX)}` : "";
      return `${approvedBy(p)}\n:warning: Dispatch failed: the runner refused or could not be reached; nothing ran.${lastError}`;
    }
    case "denied": {
      const by = p.decision ? ` by ${actor(p.decision.by)}` : "";
      const at = decidedAt ? ` ${slackDate(decidedAt)}` : "";
      const reason = p.decision?.reason
        ? `\n*Reason:* ${fit(p.decision.reason, DENY_REASON_MAX)}`
        : "\nNo reason given.";
      return `:no_entry: Denied${by}${at}. Nothing ran.${reason}`;
    }
    case "expired":
      return (
        `:hourglass: Expired ${slackDate(decidedAt ?? p.expires_at)} with ` +
        `${p.approvals.length} of ${requiredApprovals(p)} approvals. Nothing ran.`
      );
    case "cancelled": {
      const by = p.decision ? ` by ${actor(p.decision.by)}` : "";
      const at = decidedAt ? ` ${slackDate(decidedAt)}` : "";
      const reason = p.decision?.reason ? `\n*Reason:* ${fit(p.decision.reason, DENY_REASON_MAX)}` : "";
      return `:heavy_multiplication_x: Cancelled${by}${at}. Nothing ran.${reason}`;
    }
    case "acknowledged":
    case "escalated":
      // Only verification prompts end so (rendered above); said plainly should one get here.
      return answeredLine(p);
  }
}

function approvedBy(p: Proposal): string {
  const who =
    p.approvals.length > 0 ? actors(p.approvals.map((a) => a.user)) : p.decision ? actor(p.decision.by) : "unknown";
  const at = p.decision?.at ?? p.approvals.at(-1)?.at;
  return `:white_check_mark: Approved by ${who}${at ? ` ${slackDate(at)}` : ""}.`;
}

/** "1 of 2: @alice": approvals so far of the number needed, and whose. */
export function approvalsSoFar(p: Proposal): string {
  const count = `${p.approvals.length} of ${requiredApprovals(p)}`;
  const who = p.approvals.length > 0 ? `: ${actors(p.approvals.map((a) => a.user))}` : "";
  return count + who;
}

const FALLBACK_LEAD: Record<Proposal["status"], string> = {
  pending: "Approval needed",
  approved: "Approved, running",
  dispatched: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  dispatch_failed: "Dispatch failed, nothing ran",
  denied: "Denied",
  expired: "Expired, nothing ran",
  cancelled: "Cancelled, nothing ran",
  acknowledged: "Answered",
  escalated: "Answered, escalated",
};

/** A status in a few words ("Denied", "Expired, nothing ran"): what the Home tab lists beside a proposal. */
export function statusWords(p: Proposal): string {
  return FALLBACK_LEAD[p.status];
}

/** The card's headline in signoff's words: its header, and the start of its notification text. */
function lead(p: Proposal, opts: RenderOptions): string {
  if (p.status !== "pending") return FALLBACK_LEAD[p.status];
  if (opts.role === "escalation") return "Escalated, approval needed";
  if (p.escalated) return "Escalated";
  if (deadlinePassed(p, opts)) return "Deadline passed, nothing will run";
  return "Approval needed";
}

// ---- people, places, times ----

const SLACK_USER = /^[UW][A-Z0-9]{2,}$/;
const SLACK_GROUP = /^S[A-Z0-9]{2,}$/;
const SLACK_CHANNEL = /^[CGD][A-Z0-9]{2,}$/;

/**
 * A user id we can mention (`<@U…>`); anything else, a proposer's free text included, is shown
 * as escaped text. Group mentions are never formed from proposer input.
 */
export function person(id: string): string {
  return SLACK_USER.test(id) ? `<@${id}>` : fit(id, 80);
}

/**
 * An audit-style actor (`slack:U…`, `link:<recipient>`, `key:<name>`, `system`, or a bare user id) as a reader would
 * say it. A link recipient is shown as escaped text, never as a mention (it is an e-mail address or an opaque id).
 */
function actor(by: string): string {
  if (by.startsWith("key:")) return `key ${codeSpan(by.slice("key:".length), 80)}`;
  if (by.startsWith("link:")) return `${fit(by.slice("link:".length), 80)} (by link)`;
  if (by === "system") return "signoff";
  return person(by.startsWith("slack:") ? by.slice("slack:".length) : by);
}

function actors(ids: readonly string[]): string {
  const listed = ids.slice(0, LISTED_PEOPLE_MAX).map(actor).join(", ");
  return ids.length > LISTED_PEOPLE_MAX ? `${listed} and ${ids.length - LISTED_PEOPLE_MAX} more` : listed;
}

/** Approvers from the operator's policy: users and user groups, so escalation reaches the group. */
function policyApprovers(ids: readonly string[]): string {
  return ids.map(policyApprover).join(", ");
}

/** A policy approver as a mention: `<@U…>` for a user, `<!subteam^S…>` for a user group (which notifies its members). */
export function policyApprover(id: string): string {
  return SLACK_GROUP.test(id) ? `<!subteam^${id}>` : person(id);
}

function channelSuffix(channel: string | null): string {
  return channel && SLACK_CHANNEL.test(channel) ? ` in <#${channel}>` : "";
}

/** `<!date^…>` so each reader sees their own time zone, with the ISO time as the fallback. */
export function slackDate(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return fit(iso, 40);
  const unix = Math.floor(ms / 1000);
  return `<!date^${unix}^{date_short_pretty} at {time}|${new Date(unix * 1000).toISOString()}>`;
}

function deadlinePassed(p: Proposal, opts: RenderOptions): boolean {
  if (opts.nowMs === undefined) return false;
  const deadline = Date.parse(p.expires_at);
  return !Number.isNaN(deadline) && opts.nowMs >= deadline;
}
