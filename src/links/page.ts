// The HTML pages behind signed links (issue 7): the confirmation page a link opens, and the page that says what
// happened. Pure; every proposer string is HTML-escaped, the params shown whole in printable ASCII (issue 11 item 4);
// no script, no external resource (see the CSP in routes.ts).
import { asciiJson } from "../lib/ascii-json.ts";
import { escapeHtml } from "../lib/html.ts";
import { utcText } from "../lib/time.ts";
import type { LinkChoice, Proposal } from "../proposal/types.ts";
import { choiceTitle } from "../teams/card.ts";

const STYLE = `
:root{color-scheme:light dark;--fg:#1d1c1d;--muted:#616061;--bg:#f4f4f5;--card:#fff;--line:#ddd;--ok:#007a5a;--bad:#c0392b;--info:#1264a3}
@media (prefers-color-scheme:dark){:root{--fg:#e8e8e8;--muted:#a0a0a0;--bg:#1a1d21;--card:#222529;--line:#3a3d42}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:40rem;margin:2rem auto;padding:1.5rem 1.75rem;background:var(--card);border:1px solid var(--line);border-radius:10px}
.brand{margin:0 0 .5rem;color:var(--muted);font-size:.85rem;letter-spacing:.04em;text-transform:uppercase}
h1{margin:.2rem 0 .6rem;font-size:1.45rem}.summary{font-size:1.15rem;font-weight:600;margin:.2rem 0 1rem;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem;margin:0 0 1.2rem}dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere;white-space:pre-wrap}
code,pre{font:.9em ui-monospace,SFMono-Regular,Menlo,monospace}pre{margin:0;white-space:pre-wrap}
.choice{font-size:1.1rem;margin:1rem 0}.choice strong{padding:.1rem .45rem;border-radius:5px;background:var(--line)}
label{display:block;margin:.5rem 0;color:var(--muted)}textarea{display:block;width:100%;min-height:4.5rem;margin-top:.3rem;font:inherit}
button{font:inherit;font-weight:600;color:#fff;border:0;border-radius:6px;padding:.65rem 1.3rem;cursor:pointer;background:var(--info)}
button.ok{background:var(--ok)}button.bad{background:var(--bad)}
.note{color:var(--muted);font-size:.9rem;margin-top:1.2rem}
.status{font-size:1.1rem;padding:.7rem .9rem;border-radius:6px;border-left:5px solid var(--info);background:var(--bg)}
.status.done{border-color:var(--ok)}.status.refused{border-color:var(--bad)}`;

function page(title: string, main: string, attributes: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex,nofollow">
<title>${escapeHtml(title)} · signoff</title><style>${STYLE}</style></head>
<body><main ${attributes}><p class="brand">signoff</p>
${main}
</main></body></html>`;
}

/** The proposal's facts as a definition list; `recipient` is whom the link was minted for. */
function facts(p: Proposal, recipient: string | null): string {
  const verify = p.kind === "verify";
  const rows: Array<[string, string]> = [[verify ? "About" : "Action", `<code>${escapeHtml(p.action.type)}</code>`]];
  if (Object.keys(p.action.params).length > 0)
    rows.push(["Params", `<pre>${escapeHtml(asciiJson(p.action.params, 1))}</pre>`]);
  rows.push([verify ? "Details" : "Why", escapeHtml(p.reason)]);
  if (p.blast_radius) rows.push(["Blast radius", escapeHtml(p.blast_radius)]);
  if (p.rollback) rows.push(["Back-out", escapeHtml(p.rollback)]);
  rows.push(["Deadline", `<time datetime="${escapeHtml(p.expires_at)}">${escapeHtml(utcText(p.expires_at))}</time>`]);
  if (!verify && p.rule.required_approvals > 1)
    rows.push(["Approvals", `${p.approvals.length} of ${p.rule.required_approvals}`]);
  if (recipient !== null) rows.push(["This link is for", escapeHtml(recipient)]);
  rows.push([
    "Proposal",
    `<code>${escapeHtml(p.id)}</code>${verify ? "" : ` · plan <code>${escapeHtml(p.plan_sha256.slice(0, 12))}</code>`}`,
  ]);
  return `<dl>${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("")}</dl>`;
}

const TONE: Record<LinkChoice, "ok" | "bad" | ""> = { approve: "ok", deny: "bad", yes: "ok", no: "bad", unsure: "" };

export interface ConfirmPage {
  proposal: Proposal;
  choice: LinkChoice;
  recipient: string;
  /** The CSRF value, also set as the signoff_csrf cookie. */
  csrf: string;
  /** Where the form posts: this link's own path. */
  formAction: string;
}

/** The page a link opens: states the proposal and the choice, and decides nothing until its button is pressed. */
export function renderConfirmPage(o: ConfirmPage): string {
  const p = o.proposal;
  const title = choiceTitle(p, o.choice);
  const heading =
    p.kind === "verify" ? "Was this you?" : o.choice === "approve" ? "Approve this action?" : "Deny this action?";
  const reason =
    o.choice === "deny"
      ? `<label>Reason (optional, recorded in the audit log and sent to the proposer)` +
        `<textarea name="reason" maxlength="500"></textarea></label>`
      : "";
  const main = `<h1>${heading}</h1>
<p class="summary">${escapeHtml(p.summary)}</p>
${facts(p, o.recipient)}
<form method="post" action="${escapeHtml(o.formAction)}">
<input type="hidden" name="csrf" value="${escapeHtml(o.csrf)}">${planField(p)}
<p class="choice">Your ${p.kind === "verify" ? "answer" : "choice"}: <strong data-choice="${o.choice}">${escapeHtml(title)}</strong></p>
${reason}<button type="submit" class="${TONE[o.choice]}">Confirm: ${escapeHtml(title)}</button>
</form>
<p class="note">Opening this page decided nothing; only the button does. The link works once, until the deadline.</p>`;
  return page(`Confirm: ${title}`, main, `data-page="confirm" data-choice="${o.choice}"`);
}

/** The plan the page shows (its hash): an approval confirmed after an edit of the params is refused as stale. */
function planField(p: Proposal): string {
  return p.kind === "verify" ? "" : `\n<input type="hidden" name="plan" value="${escapeHtml(p.plan_sha256)}">`;
}

export interface ResultPage {
  /** What the page is (data-page), for tests and people reading the source. */
  kind: "decided" | "already_used" | "expired" | "not_pending" | "refused" | "invalid" | "forbidden" | "unavailable";
  heading: string;
  message: string;
  tone: "done" | "refused" | "info";
  proposal?: Proposal | null;
  recipient?: string | null;
}

/** Every other page: what happened (or why nothing did), with the proposal's facts when the link was genuine. */
export function renderResultPage(o: ResultPage): string {
  const details = o.proposal
    ? `<p class="summary">${escapeHtml(o.proposal.summary)}</p>${facts(o.proposal, o.recipient ?? null)}`
    : "";
  const main = `<h1>${escapeHtml(o.heading)}</h1>
<p class="status ${o.tone}" role="status">${escapeHtml(o.message)}</p>
${details}`;
  return page(o.heading, main, `data-page="${o.kind}"`);
}
