// Slack interaction payloads, validated: only the fields signoff reads, each of the type it
// must be (an array holding an approver's id is not a user id; "toString" is not a button).
import { z } from "zod";

const SlackUserId = z.string().regex(/^[UW][A-Z0-9]{2,}$/);
const SlackId = z.string().max(255);

export const BlockActionsPayload = z.object({
  type: z.literal("block_actions"),
  // team_id: the clicker's workspace, which SLACK_TEAM_ID must match (Slack Connect channels bring in others).
  user: z.object({ id: SlackUserId, team_id: z.string().max(64).optional() }),
  trigger_id: z.string().max(255).optional(),
  channel: z.object({ id: SlackId }).optional(),
  container: z.object({ channel_id: SlackId.optional() }).optional(),
  // A click in the Home tab comes from a view of type "home" (no channel); its block_id says what it was drawn on.
  view: z.object({ type: z.string().max(64) }).optional(),
  actions: z
    .array(
      z.object({
        action_id: z.string().max(255),
        block_id: z.string().max(255).optional(),
        value: z.string().max(2000).optional(),
      }),
    )
    .min(1),
});
export type BlockActionsPayload = z.infer<typeof BlockActionsPayload>;

export const ViewSubmissionPayload = z.object({
  type: z.literal("view_submission"),
  // team_id: the clicker's workspace, which SLACK_TEAM_ID must match (Slack Connect channels bring in others).
  user: z.object({ id: SlackUserId, team_id: z.string().max(64).optional() }),
  view: z.object({
    callback_id: z.string().max(255),
    private_metadata: z.string().max(3000).default(""),
    state: z
      .object({
        values: z.record(
          z.string(),
          z.record(z.string(), z.object({ value: z.string().max(3000).nullable().optional() }).loose()),
        ),
      })
      .optional(),
  }),
});
export type ViewSubmissionPayload = z.infer<typeof ViewSubmissionPayload>;

export type InteractionPayload =
  | { kind: "block_actions"; payload: BlockActionsPayload }
  | { kind: "view_submission"; payload: ViewSubmissionPayload }
  | { kind: "other" }
  | { kind: "invalid"; problem: string };

/** Classifies a parsed `payload` form field. Types signoff does not handle are "other". */
export function readInteraction(value: unknown): InteractionPayload {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return { kind: "invalid", problem: "payload is not a JSON object" };
  const type = (value as { type?: unknown }).type;
  if (type === "block_actions") {
    const parsed = BlockActionsPayload.safeParse(value);
    return parsed.success
      ? { kind: "block_actions", payload: parsed.data }
      : { kind: "invalid", problem: problemOf(parsed.error) };
  }
  if (type === "view_submission") {
    const parsed = ViewSubmissionPayload.safeParse(value);
    return parsed.success
      ? { kind: "view_submission", payload: parsed.data }
      : { kind: "invalid", problem: problemOf(parsed.error) };
  }
  return { kind: "other" };
}

function problemOf(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `payload field ${issue.path.map(String).join(".") || "(root)"} is invalid` : "payload is invalid";
}
