// The Edit modal (edit before approve): one text field per editable param, prefilled with its value; what the
// submission carries read back into values; a refusal's problems placed next to the fields they are about. Pure.
import type { KnownBlock, ModalView } from "@slack/types";
import type { Proposal } from "../proposal/types.ts";
import { quote, SLACK_LIMITS } from "./mrkdwn.ts";

export const EDIT_MODAL = {
  callbackId: "signoff.edit_params",
  /** Each field's block is `param:<name>`; its input's action_id is `value`. */
  blockPrefix: "param:",
  actionId: "value",
  /** Slack's limit for a plain_text_input's value. */
  valueMaxLength: 3000,
} as const;

const blockOf = (param: string) => `${EDIT_MODAL.blockPrefix}${param}`;

/**
 * A param's value as the field shows it: a string as itself, unless it would read back as something else (`"5"`,
 * `"true"`), which is shown as JSON; anything else as JSON. editedValue() reads it back to the same value.
 */
export function fieldText(value: unknown): string {
  if (value === undefined) return "";
  if (typeof value === "string") return value === "" || parsesAsJson(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value);
}

/** A field's text as a value: JSON when it parses as JSON, else the text as a string; empty leaves the param out. */
export function editedValue(text: string | null | undefined): unknown {
  if (text === null || text === undefined || text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * The modal for `p`'s editable params; `private_metadata` is the proposal id and the plan it was opened on, so a
 * submission after someone else's edit is refused instead of undoing it unseen.
 */
export function renderEditModal(p: Proposal): ModalView {
  const params = p.rule.edit?.params ?? [];
  const blocks: KnownBlock[] = [
    {
      type: "section",
      text: {
        type: "mrkdwn",
        verbatim: true,
        text:
          `You are editing:\n${quote(p.summary, 1500)}\n` +
          "Values are JSON (a plain word is taken as text); leave a field empty to leave the param out. " +
          "Approvals given so far will no longer count, and someone who did not edit must approve.",
      },
    },
    ...params.map(
      (param): KnownBlock => ({
        type: "input",
        block_id: blockOf(param),
        optional: true,
        label: { type: "plain_text", text: param.slice(0, SLACK_LIMITS.buttonText) },
        element: {
          type: "plain_text_input",
          action_id: EDIT_MODAL.actionId,
          max_length: EDIT_MODAL.valueMaxLength,
          initial_value: fieldText(p.action.params[param]).slice(0, EDIT_MODAL.valueMaxLength),
        },
      }),
    ),
  ];
  return {
    type: "modal",
    callback_id: EDIT_MODAL.callbackId,
    private_metadata: `${p.id} ${p.plan_sha256}`,
    title: { type: "plain_text", text: "Edit proposal" },
    submit: { type: "plain_text", text: "Save edit" },
    close: { type: "plain_text", text: "Cancel" },
    blocks,
  };
}

/** Which proposal and plan an Edit modal's `private_metadata` names. */
export function editModalOrigin(metadata: string): { proposalId: string; base: string | undefined } {
  const [proposalId = "", base] = metadata.split(" ");
  return { proposalId, base: base || undefined };
}

type StateValues = Record<string, Record<string, { value?: string | null | undefined }>>;

/** The submitted values, one per field the modal had (a field for a param that is not editable is passed on, and refused). */
export function readEditValues(values: StateValues | undefined): Record<string, unknown> {
  const read: Record<string, unknown> = {};
  for (const [block, fields] of Object.entries(values ?? {})) {
    if (!block.startsWith(EDIT_MODAL.blockPrefix)) continue;
    read[block.slice(EDIT_MODAL.blockPrefix.length)] = editedValue(fields[EDIT_MODAL.actionId]?.value);
  }
  return read;
}

/**
 * A refusal as `response_action: "errors"` for a modal with fields for `params`: each problem next to the field of
 * the param it is about (`params.replicas` → that field), the rest (and a refusal without problems) next to the first.
 */
export function editErrors(
  params: readonly string[],
  message: string,
  details: ReadonlyArray<{ path: string; message: string }> = [],
): Record<string, string> {
  const first = blockOf(params[0] ?? "");
  const errors: Record<string, string> = {};
  const add = (block: string, text: string) => {
    errors[block] = (errors[block] ? `${errors[block]}; ${text}` : text).slice(0, 2000);
  };
  for (const detail of details) {
    const param = params.find((name) => detail.path === `params.${name}` || detail.path.startsWith(`params.${name}.`));
    if (param === undefined) add(first, `${detail.path}: ${detail.message}`);
    else add(blockOf(param), detail.message);
  }
  if (details.length === 0) add(first, message);
  return errors;
}
