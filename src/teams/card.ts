// Microsoft Teams messages for a proposal (issue 7): the Adaptive Card with one signed link per choice, and the short
// follow-up posted on each status change (incoming webhooks cannot update a message). Pure: no I/O.
import { asciiJson } from "../lib/ascii-json.ts";
import { frozenRefusal, verifyLabels } from "../proposal/lifecycle.ts";
import type { LinkChoice, Proposal } from "../proposal/types.ts";

/** A link to show on the card: the choice and its signed URL (minted by the caller). */
export interface CardLink {
  choice: LinkChoice;
  url: string;
}

export interface TextBlock {
  type: "TextBlock";
  text: string;
  wrap: true;
  weight?: "Bolder";
  size?: "Medium" | "Large" | "Small";
  isSubtle?: boolean;
  fontType?: "Monospace";
}

export interface OpenUrlAction {
  type: "Action.OpenUrl";
  title: string;
  url: string;
}

/** What a Teams incoming webhook (or Workflows "post card" trigger) takes. */
export interface TeamsMessage {
  type: "message";
  attachments: [
    {
      contentType: "application/vnd.microsoft.card.adaptive";
      contentUrl: null;
      content: {
        $schema: "http://adaptivecards.io/schemas/adaptive-card.json";
        type: "AdaptiveCard";
        version: "1.4";
        body: TextBlock[];
        actions?: OpenUrlAction[];
      };
    },
  ];
}

const TEXT_MAX = 3000;
const SUMMARY_MAX = 300;

/**
 * Adaptive Card TextBlocks render a subset of Markdown, and Teams also expands `{{DATE(…)}}`. Every ASCII
 * punctuation character Markdown or those functions could act on is backslash-escaped (CommonMark: any
 * escaped punctuation is literal), so proposer text cannot form links, emphasis, lists, autolinks
 * (`https\://…`, `www\.…`, `name\@host`) or date functions. Line breaks are kept.
 */
export function escapeTeamsMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()<>#+\-.!|~:@&=]/g, (c) => `\\${c}`);
}

/** Cut to `max` characters (code points) before escaping, with "…" when cut. */
function cut(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max
    ? text
    : `${chars
        .slice(0, max - 1)
        .join("")
        .trimEnd()}…`;
}

const safe = (text: string, max = TEXT_MAX) => escapeTeamsMarkdown(cut(text, max));

function block(text: string, extra: Partial<TextBlock> = {}): TextBlock {
  return { type: "TextBlock", text, wrap: true, ...extra };
}

function message(body: TextBlock[], actions: OpenUrlAction[] = []): TeamsMessage {
  return {
    type: "message",
    attachments: [
      {
        contentType: "application/vnd.microsoft.card.adaptive",
        contentUrl: null,
        content: {
          $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
          type: "AdaptiveCard",
          version: "1.4",
          body,
          ...(actions.length > 0 ? { actions } : {}),
        },
      },
    ],
  };
}

/** The title of a choice's button: Approve / Deny, or the verification prompt's labels. */
export function choiceTitle(p: Proposal, choice: LinkChoice): string {
  if (choice === "approve") return "Approve";
  if (choice === "deny") return "Deny";
  return verifyLabels(p)[choice];
}

const iso = (at: string) => {
  const ms = Date.parse(at);
  return Number.isNaN(ms) ? at : new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
};

/** The card asking for a decision: the proposal's texts, escaped, and one OpenUrl action per choice. */
export function renderTeamsCard(p: Proposal, links: readonly CardLink[]): TeamsMessage {
  const verify = p.kind === "verify";
  const body: TextBlock[] = [
    block(verify ? "Was this you?" : "Approval needed", { weight: "Bolder", size: "Medium" }),
    block(safe(p.summary, SUMMARY_MAX), { weight: "Bolder", size: "Large" }),
    // Whose words the summary and the texts below are, so none passes for signoff's (issue 11 item 4).
    block(
      escapeTeamsMarkdown(
        `Proposed by API key ${p.created_by}: the summary above and the texts below are the proposer's words.`,
      ),
      { isSubtle: true, size: "Small" },
    ),
    block(`**${verify ? "About" : "Action"}:** ${safe(p.action.type, 200)}`),
  ];
  // The plan whole, never cut: creation refuses a plan longer than the Slack card holds (src/slack/plan.ts), which
  // is far inside what a Teams message can carry.
  if (Object.keys(p.action.params).length > 0)
    body.push(block(escapeTeamsMarkdown(asciiJson(p.action.params)), { fontType: "Monospace" }));
  body.push(block(`**${verify ? "Details" : "Why"}:** ${safe(p.reason)}`));
  if (p.blast_radius) body.push(block(`**Blast radius:** ${safe(p.blast_radius)}`));
  if (p.rollback) body.push(block(`**Back-out:** ${safe(p.rollback)}`));
  body.push(block(`**Deadline:** ${escapeTeamsMarkdown(iso(p.expires_at))}`));
  if (!verify && p.rule.required_approvals > 1) body.push(block(`**Approvals needed:** ${p.rule.required_approvals}`));
  body.push(
    block(
      escapeTeamsMarkdown(
        `Proposal ${p.id} · plan ${p.plan_sha256.slice(0, 12)}. ` +
          "Each button opens a confirmation page; nothing is decided until you confirm there.",
      ),
      { isSubtle: true, size: "Small" },
    ),
  );
  // Created in a change freeze, no approval by link can count: the card says so and offers no Approve to be refused.
  const frozen = frozenRefusal(p);
  if (frozen) body.push(block(escapeTeamsMarkdown(`${frozen.message} Break-glass is in Slack.`), { weight: "Bolder" }));
  const offered = frozen ? links.filter((link) => link.choice !== "approve") : links;
  const actions = offered.map((link) => ({
    type: "Action.OpenUrl" as const,
    title: choiceTitle(p, link.choice),
    url: link.url,
  }));
  return message(body, actions);
}

/** A person as the outcome card names them: a Slack user, a link recipient, an API key, signoff. */
function actorText(by: string): string {
  if (by.startsWith("slack:")) return `Slack user ${by.slice("slack:".length)}`;
  if (by.startsWith("link:")) return `${by.slice("link:".length)} (by link)`;
  if (by.startsWith("key:")) return `API key ${by.slice("key:".length)}`;
  if (by === "runner") return "the runner";
  return "signoff";
}

/** The short follow-up for the proposal's status now. */
export function renderTeamsOutcome(p: Proposal): TeamsMessage {
  const by = p.decision ? ` by ${actorText(p.decision.by)}` : "";
  const answer = p.decision?.answer;
  let headline: string;
  switch (p.status) {
    case "approved":
      headline = `Approved${by}: running`;
      break;
    case "dispatched":
      headline = "Running: the runner accepted the job";
      break;
    case "succeeded":
      headline = "Succeeded";
      break;
    case "failed":
      headline = "Failed";
      break;
    case "dispatch_failed":
      headline = "Dispatch failed: nothing ran";
      break;
    case "denied":
      headline = answer ? `Answered "${verifyLabels(p).no}"${by}` : `Denied${by}: nothing ran`;
      break;
    case "acknowledged":
    case "escalated":
      headline = `Answered "${answer ? verifyLabels(p)[answer] : p.status}"${by}`;
      break;
    case "expired":
      headline = p.kind === "verify" ? "Expired without an answer" : "Expired: nothing ran";
      break;
    case "cancelled":
      headline = `Cancelled${by}${p.kind === "verify" ? "" : ": nothing ran"}`;
      break;
    case "pending":
      headline = "Waiting for a decision";
      break;
  }
  const body = [block(safe(headline, 400), { weight: "Bolder" }), block(safe(p.summary, SUMMARY_MAX))];
  if (p.decision?.reason) body.push(block(`**Reason:** ${safe(p.decision.reason, 1000)}`));
  if (p.result?.output) body.push(block(safe(p.result.output, 500), { fontType: "Monospace" }));
  body.push(block(escapeTeamsMarkdown(`Proposal ${p.id}`), { isSubtle: true, size: "Small" }));
  return message(body);
}
