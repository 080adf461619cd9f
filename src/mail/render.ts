// The e-mail that brings one recipient their approval links (SPEC 12: signoff delivers approval links itself, never
// the proposer). Pure: subject, plain text and HTML from the proposal and the two URLs. Every proposer string is
// quoted and attributed as the proposer's words, HTML-escaped in the HTML part; the plan is shown whole as ASCII
// JSON, as on the cards (issue 11 item 4); the only links in the message are signoff's two.
import { asciiJson } from "../lib/ascii-json.ts";
import { escapeHtml } from "../lib/html.ts";
import { utcText } from "../lib/time.ts";
import { requiredApprovals } from "../proposal/lifecycle.ts";
import type { Proposal } from "../proposal/types.ts";

export interface LinkMailInput {
  proposal: Proposal;
  /** The address the links were minted for, and the only person they count for. */
  recipient: string;
  approveUrl: string;
  denyUrl: string;
}

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

const SUBJECT_SUMMARY_MAX = 120;

/**
 * One line for a header: controls, format characters (zero-width, bidi overrides) and line separators become spaces,
 * so a summary can neither add a header line nor reorder what the subject shows; cut with "…".
 */
function headerText(text: string, max: number): string {
  const line = text
    .replace(/[\p{Cc}\p{Cf}\u2028\u2029]+/gu, " ")
    .replace(/\s+/g, " ")
    .trim();
  const chars = [...line];
  return chars.length <= max ? line : `${chars.slice(0, max - 1).join("")}…`;
}

/** The proposer's texts, in the order the card shows them; empty ones left out. */
function proposerTexts(p: Proposal): Array<[string, string]> {
  const texts: Array<[string, string]> = [["Why", p.reason]];
  if (p.blast_radius) texts.push(["Blast radius", p.blast_radius]);
  if (p.rollback) texts.push(["Back-out", p.rollback]);
  return texts;
}

/** signoff's own facts about the proposal: nothing here is the proposer's prose. */
function facts(p: Proposal): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  if (p.requested_by !== null) rows.push(["Requested by", `Slack user ${p.requested_by}`]);
  rows.push(["Approvals needed", `${requiredApprovals(p)} (distinct people)`]);
  rows.push(["Deadline", utcText(p.expires_at)]);
  rows.push(["Proposal", `${p.id} · plan ${p.plan_sha256.slice(0, 12)}`]);
  return rows;
}

const quoteLines = (text: string) =>
  text
    .split(/\r\n|\r|\n/)
    .map((line) => `> ${line}`)
    .join("\n");

/** Inline styles (mail clients drop <style>), kept apart so the template stays readable. */
const STYLE = {
  quote: "margin:0;padding:0 0 0 .75em;border-left:3px solid #ccc;white-space:pre-wrap",
  label: "text-align:left;vertical-align:top;padding:.25em 1em .25em 0;color:#616061;font-weight:normal",
  button:
    "display:inline-block;padding:.6em 1.2em;margin:0 .5em .5em 0;border-radius:6px;" +
    "color:#fff;font-weight:600;text-decoration:none;",
  plan: "margin:0;white-space:pre-wrap;font:.9em ui-monospace,Menlo,monospace",
};

export function renderLinkMail(input: LinkMailInput): RenderedMail {
  const { proposal: p, recipient, approveUrl, denyUrl } = input;
  const origin = new URL(approveUrl).origin;
  const plan = Object.keys(p.action.params).length > 0 ? asciiJson(p.action.params, 2) : null;
  const attribution =
    `Proposed by API key ${p.created_by}. The summary, why, blast radius and back-out below are ` +
    "the proposer's words, not signoff's.";
  const forYou =
    `These links are for ${recipient} only. Opening one shows a confirmation page and decides nothing; ` +
    `to decide you sign in as ${recipient}, so a forwarded link counts for nobody else. Please do not forward this message.`;
  const onlyLinks = `signoff's only links in this message are the two above; both open ${origin}/l/…`;

  const subject = `Approval needed: ${headerText(p.summary, SUBJECT_SUMMARY_MAX)}`;

  const text = [
    "signoff asks you to approve or deny an action.",
    attribution,
    "",
    "Summary:",
    quoteLines(p.summary),
    "",
    `Action: ${p.action.type}`,
    ...(plan === null ? [] : ["Params (exactly what will run, as JSON):", plan]),
    "",
    ...proposerTexts(p).flatMap(([label, value]) => [`${label}:`, quoteLines(value), ""]),
    ...facts(p).map(([label, value]) => `${label}: ${value}`),
    "",
    `Approve: ${approveUrl}`,
    `Deny:    ${denyUrl}`,
    "",
    forYou,
    onlyLinks,
    "",
  ].join("\n");

  const quote = (value: string) => `<blockquote style="${STYLE.quote}">${escapeHtml(value)}</blockquote>`;
  const row = (label: string, value: string) =>
    `<tr><th style="${STYLE.label}">${escapeHtml(label)}</th><td style="padding:.25em 0">${value}</td></tr>`;
  const button = (url: string, label: string, color: string) =>
    `<a href="${escapeHtml(url)}" style="${STYLE.button}background:${color}">${label}</a>`;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(subject)}</title></head>
<body style="margin:0;padding:1em;font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d1c1d">
<p style="margin:0;color:#616061;font-size:.85em;letter-spacing:.04em;text-transform:uppercase">signoff · approval needed</p>
<p>signoff asks you to approve or deny an action. ${escapeHtml(attribution)}</p>
${quote(p.summary)}
<table style="border-collapse:collapse;margin:1em 0">
${row("Action", `<code>${escapeHtml(p.action.type)}</code>`)}
${plan === null ? "" : row("Params", `<pre style="${STYLE.plan}">${escapeHtml(plan)}</pre>`)}
${proposerTexts(p)
  .map(([label, value]) => row(label, quote(value)))
  .join("\n")}
${facts(p)
  .map(([label, value]) => row(label, escapeHtml(value)))
  .join("\n")}
</table>
<p>${button(approveUrl, "Approve…", "#007a5a")}${button(denyUrl, "Deny…", "#c0392b")}</p>
<p style="color:#616061;font-size:.9em">${escapeHtml(forYou)}</p>
<p style="color:#616061;font-size:.9em">${escapeHtml(onlyLinks.replace("the two above", "the two buttons above"))}</p>
</body></html>
`;
  return { subject, text, html };
}
