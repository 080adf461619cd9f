// The plan's params on the Slack card: shown whole or refused at creation, never cut (issue 11 item 4). Pure.
import type { ErrorDetail } from "../errors.ts";
import { asciiJson } from "../lib/ascii-json.ts";
import { escapeMrkdwn, SLACK_LIMITS, truncate } from "./mrkdwn.ts";

/** The params section's text is `PARAMS_HEAD` then the plan in a code block. */
export const PARAMS_HEAD = "*Params*\n";
const FENCE = "```";

/**
 * How many characters of params, as the card writes them (see `planText`), the params section holds: the section
 * text limit less what shares it. A proposal whose plan needs more is refused with 422 `plan_too_large`.
 */
export const PLAN_MAX_CHARS = SLACK_LIMITS.sectionText - PARAMS_HEAD.length - 2 * FENCE.length;

/**
 * The params as the card writes them: JSON in printable ASCII (`asciiJson`), escaped for mrkdwn. Slack shows the
 * entities as `&`, `<`, `>`, so the reader sees JSON that parses to exactly the params the runner receives.
 */
export function planText(params: Record<string, unknown>): string {
  return escapeMrkdwn(asciiJson(params));
}

/** Why the card could not show these params whole (empty when it can): the `details` of a `plan_too_large`. */
export function planProblems(params: Record<string, unknown>, path = "action.params"): ErrorDetail[] {
  const length = planText(params).length;
  if (length <= PLAN_MAX_CHARS) return [];
  return [
    {
      path,
      message:
        `needs ${length} characters on the Slack card (as JSON, non-ASCII as \\u escapes, & < > as entities); ` +
        `the card holds ${PLAN_MAX_CHARS}, and an approver must see every character that will run`,
    },
  ];
}

/**
 * The params section's text and whether it shows the plan whole. Only a proposal created before the limit was
 * checked can be too long: its card then says so, and the caller offers no Approve button for it.
 */
export function paramsSectionText(params: Record<string, unknown>): { text: string; whole: boolean } {
  const plan = planText(params);
  if (plan.length <= PLAN_MAX_CHARS) return { text: `${PARAMS_HEAD}${FENCE}${plan}${FENCE}`, whole: true };
  const warning = ":warning: *Params too long to show whole here.* Do not approve what you cannot see.\n";
  const room = SLACK_LIMITS.sectionText - PARAMS_HEAD.length - warning.length - 2 * FENCE.length;
  return { text: `${PARAMS_HEAD}${warning}${FENCE}${truncate(plan, room)}${FENCE}`, whole: false };
}
