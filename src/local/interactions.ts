// What Slack sends when someone clicks or submits a modal: the payloads (shaped as Slack documents them), form-
// encoded and signed with SLACK_SIGNING_SECRET exactly as Slack signs them, then handed to the production handler.
import { signSlackRequest } from "../slack/signature.ts";
import { DEMO_CHANNELS, DEMO_TEAM, userName } from "./demo.ts";
import type { StoredHome, StoredMessage, StoredView } from "./store.ts";

const APP_ID = "A0LOCAL";

export interface ButtonElement {
  type: "button";
  action_id: string;
  value?: string;
  text?: unknown;
  style?: string;
}

/**
 * The button `actionId` of `message` (in block `blockId`, when given: a Home tab has one per proposal), with the block
 * it sits in; null when the card or view shows no such button.
 */
export function findButton(
  message: { blocks: unknown[] },
  actionId: string,
  blockId?: string,
): { blockId: string; button: ButtonElement } | null {
  for (const block of message.blocks) {
    if (!isRecord(block) || block.type !== "actions" || !Array.isArray(block.elements)) continue;
    if (blockId !== undefined && block.block_id !== blockId) continue;
    for (const element of block.elements) {
      if (isRecord(element) && element.type === "button" && element.action_id === actionId) {
        return { blockId: String(block.block_id ?? ""), button: element as unknown as ButtonElement };
      }
    }
  }
  return null;
}

function userOf(user: string) {
  return { id: user, username: userName(user), name: userName(user), team_id: DEMO_TEAM.id };
}

/** What every block_actions payload carries: who clicked, where from (`origin`), and the one button. */
function blockActions(
  user: string,
  origin: Record<string, unknown>,
  blockId: string,
  button: ButtonElement,
  triggerId: string,
) {
  return {
    type: "block_actions",
    user: userOf(user),
    api_app_id: APP_ID,
    token: "local-verification-token-unused",
    trigger_id: triggerId,
    team: { ...DEMO_TEAM },
    enterprise: null,
    is_enterprise_install: false,
    ...origin,
    actions: [
      {
        type: "button",
        action_id: button.action_id,
        block_id: blockId,
        text: button.text,
        value: button.value,
        ...(button.style ? { style: button.style } : {}),
        action_ts: (Date.now() / 1000).toFixed(6),
      },
    ],
  };
}

/** https://docs.slack.dev/reference/interaction-payloads/block_actions-payload */
export function blockActionsPayload(
  user: string,
  message: StoredMessage,
  blockId: string,
  button: ButtonElement,
  triggerId: string,
) {
  const origin = {
    container: { type: "message", message_ts: message.ts, channel_id: message.channel, is_ephemeral: false },
    channel: {
      id: message.channel,
      name: message.dm_user ? "directmessage" : (DEMO_CHANNELS[message.channel] ?? message.channel),
    },
    message: { type: "message", ts: message.ts, text: message.text, blocks: message.blocks },
    state: { values: {} },
  };
  return blockActions(user, origin, blockId, button, triggerId);
}

/** A click in the Home tab: block_actions from a view of type "home", no channel. */
export function homeBlockActionsPayload(
  user: string,
  home: StoredHome,
  blockId: string,
  button: ButtonElement,
  triggerId: string,
) {
  const origin = {
    container: { type: "view", view_id: home.id },
    view: { ...home.view, id: home.id, team_id: DEMO_TEAM.id, app_id: APP_ID, state: { values: {} } },
  };
  return blockActions(user, origin, blockId, button, triggerId);
}

/** https://docs.slack.dev/reference/events/app_home_opened, in its Events API envelope. */
export function homeOpenedEvent(user: string) {
  const now = Math.floor(Date.now() / 1000);
  return {
    token: "local-verification-token-unused",
    team_id: DEMO_TEAM.id,
    api_app_id: APP_ID,
    event: { type: "app_home_opened", user, channel: `D${user.slice(1)}`, tab: "home", event_ts: `${now}.000000` },
    type: "event_callback",
    event_id: `Ev${crypto.randomUUID().replaceAll("-", "").slice(0, 12).toUpperCase()}`,
    event_time: now,
  };
}

/** The request Slack would make to the Events API URL: the JSON envelope, v0-signed, timestamped now. */
export async function signedEvent(url: string, signingSecret: string, envelope: unknown): Promise<Request> {
  const body = JSON.stringify(envelope);
  const timestamp = Math.floor(Date.now() / 1000);
  return new Request(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-slack-request-timestamp": String(timestamp),
      "x-slack-signature": await signSlackRequest(signingSecret, timestamp, body),
      "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots) signoff-local-stand-in",
    },
    body,
  });
}

/**
 * The `view.state.values` Slack would send for the modal's input blocks: `{block_id: {action_id: {type, value}}}`,
 * an empty input as `null`. Returns field errors (as the Slack client shows them) for a required input left empty.
 */
export function viewState(view: StoredView, inputs: Record<string, string>) {
  const values: Record<string, Record<string, { type: string; value: string | null }>> = {};
  const errors: Record<string, string> = {};
  const blocks = Array.isArray(view.view.blocks) ? view.view.blocks : [];
  for (const block of blocks) {
    if (!isRecord(block) || block.type !== "input" || !isRecord(block.element)) continue;
    const blockId = String(block.block_id ?? "");
    const element = block.element;
    const text = (inputs[blockId] ?? "").slice(0, typeof element.max_length === "number" ? element.max_length : 3000);
    if (text.trim() === "" && block.optional !== true) errors[blockId] = "Please complete this required field.";
    values[blockId] = {
      [String(element.action_id ?? "")]: {
        type: String(element.type ?? "plain_text_input"),
        value: text === "" ? null : text,
      },
    };
  }
  return { values, errors };
}

/** https://docs.slack.dev/reference/interaction-payloads/view-interactions-payload#view_submission */
export function viewSubmissionPayload(
  user: string,
  view: StoredView,
  values: ReturnType<typeof viewState>["values"],
  triggerId: string,
) {
  return {
    type: "view_submission",
    team: { ...DEMO_TEAM },
    user: userOf(user),
    api_app_id: APP_ID,
    token: "local-verification-token-unused",
    trigger_id: triggerId,
    view: {
      ...view.view,
      id: view.id,
      team_id: DEMO_TEAM.id,
      app_id: APP_ID,
      state: { values },
      hash: `${Math.floor(view.at / 1000)}.local`,
    },
    response_urls: [],
    is_enterprise_install: false,
    enterprise: null,
  };
}

/** The request Slack would make to the interactivity URL: `payload=<json>`, form-encoded, v0-signed, timestamped now. */
export async function signedInteraction(url: string, signingSecret: string, payload: unknown): Promise<Request> {
  const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  const timestamp = Math.floor(Date.now() / 1000);
  return new Request(url, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-slack-request-timestamp": String(timestamp),
      "x-slack-signature": await signSlackRequest(signingSecret, timestamp, body),
      "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots) signoff-local-stand-in",
    },
    body,
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
