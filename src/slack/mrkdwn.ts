// Making untrusted text safe for Slack: escape mrkdwn control characters and cut to Block Kit's limits without breaking;
// and the text objects and section every signoff surface builds its blocks from.
import type { SectionBlock } from "@slack/types";

/**
 * Block Kit's length limits, in characters of the text as sent (after escaping).
 * https://docs.slack.dev/reference/block-kit/blocks , …/block-elements , …/composition-objects
 */
export const SLACK_LIMITS = {
  headerText: 150,
  sectionText: 3000,
  sectionField: 2000,
  sectionFields: 10,
  contextElement: 2000,
  contextElements: 10,
  buttonText: 75,
  buttonValue: 2000,
  actionId: 255,
  blockId: 255,
  confirmTitle: 100,
  confirmText: 300,
  confirmButton: 30,
  plainTextInput: 3000,
  inputLabel: 2000,
  inputHint: 2000,
  inputPlaceholder: 150,
  modalTitle: 24,
  modalButton: 24,
  privateMetadata: 3000,
  blocksPerMessage: 50,
  blocksPerModal: 100,
  /** Slack advises keeping a message's top-level `text` under 4,000 characters (it cuts at 40,000). */
  messageText: 4000,
} as const;

export const ELLIPSIS = "…";

/**
 * Escapes the three characters Slack treats as control characters (`&`, `<`, `>`), so untrusted
 * text cannot form `<!channel>`, `<!here>`, `<@U…>`, `<!subteam^…>` or `<https://x|y>` links.
 * Existing entities are escaped again on purpose: `&amp;` typed by a proposer shows as `&amp;`.
 * https://docs.slack.dev/messaging/formatting-message-text#escaping
 */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

// An HTML-style entity is one unit for cutting: `&amp;` cut in half would show as garbage.
const ENTITY = /&(?:[a-zA-Z][a-zA-Z0-9]{0,15}|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});/g;

let graphemeSegmenter: Intl.Segmenter | null | undefined;
function segmenter(): Intl.Segmenter | null {
  // workerd has Intl.Segmenter; the fallback keeps the module usable in runtimes without ICU.
  graphemeSegmenter ??=
    typeof Intl.Segmenter === "function" ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;
  return graphemeSegmenter;
}

/** Splits text into units that must not be cut: entities, grapheme clusters (or code points without Intl.Segmenter). */
function* units(text: string): Generator<string> {
  const seg = segmenter();
  const plain = function* (chunk: string): Generator<string> {
    if (seg) for (const { segment } of seg.segment(chunk)) yield segment;
    else yield* chunk; // string iteration is by code point, so surrogate pairs stay whole
  };
  let last = 0;
  for (const match of text.matchAll(ENTITY)) {
    yield* plain(text.slice(last, match.index));
    yield match[0];
    last = match.index + match[0].length;
  }
  yield* plain(text.slice(last));
}

/**
 * Cuts `text` to at most `maxChars` UTF-16 code units (the strictest way to count Slack's
 * "characters"), ending in `…` when cut. Never splits an entity, a surrogate pair or a
 * grapheme cluster (emoji with modifiers, flags, ZWJ sequences). Apply it to escaped text.
 */
export function truncate(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  if (maxChars < ELLIPSIS.length) return "";
  const budget = maxChars - ELLIPSIS.length;
  let out = "";
  for (const unit of units(text)) {
    if (out.length + unit.length > budget) break;
    out += unit;
  }
  return out.trimEnd() + ELLIPSIS;
}

/** Escape, then cut to the limit: the usual treatment of a proposer-supplied string. */
export function fit(text: string, maxChars: number): string {
  return truncate(escapeMrkdwn(text), maxChars);
}

// mrkdwn has no escape for the backtick: one inside a code span would end it early and let
// the rest render as formatting. U+02CB (ˋ) looks the same and keeps the span whole.
function neutralizeBackticks(text: string): string {
  return text.replace(/`/g, "\u02CB");
}

/** Untrusted text as an inline code span, escaped, the whole span at most `maxChars`. */
export function codeSpan(text: string, maxChars: number): string {
  const inner = fit(neutralizeBackticks(text), maxChars - 2);
  return `\`${inner || " "}\``;
}

/** Untrusted text as a code block, escaped, the content at most `maxContentChars`. */
export function codeBlock(text: string, maxContentChars: number): string {
  const inner = fit(neutralizeBackticks(text), maxContentChars);
  return `\`\`\`${inner || " "}\`\`\``;
}

/** Said below a proposer's text that was cut to fit, outside the quote, so it reads as signoff's. */
export const CUT_NOTE = "\n_(signoff cut this text to fit Slack)_";

// Every way a proposer could start a new line; each one gets its own quote marker.
const LINE_BREAK = /\r\n|[\n\r\v\f\u0085\u2028\u2029]/;

/**
 * Untrusted text as a mrkdwn block quote: escaped, every line quoted, so no line of it can pass for one of
 * signoff's own (a status line, a label, a plan) (issue 11 item 4). When it must be cut to `maxChars`, it ends in
 * `…` and `CUT_NOTE` follows the quote.
 */
export function quote(text: string, maxChars: number): string {
  const quoted = escapeMrkdwn(text)
    .split(LINE_BREAK)
    .map((line) => `> ${line}`)
    .join("\n");
  if (quoted.length <= maxChars) return quoted;
  return truncate(quoted, maxChars - CUT_NOTE.length) + CUT_NOTE;
}

// ---- text objects ----

/** A plain_text object (a button's label, a header, a modal's title). */
export function plain(text: string) {
  return { type: "plain_text", text, emoji: true } as const;
}

// verbatim: Slack's automatic parsing would otherwise link channel names and bare mentions
// in proposer text; our own `<@U…>` and `<!date…>` sequences are still honoured.
// https://docs.slack.dev/reference/block-kit/composition-objects/text-object
/** A mrkdwn object, taken verbatim (the text must already be escaped). */
export function mrkdwn(text: string) {
  return { type: "mrkdwn", text, verbatim: true } as const;
}

/** A section block of mrkdwn text. */
export function section(text: string): SectionBlock {
  return { type: "section", text: mrkdwn(text) };
}
