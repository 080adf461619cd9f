// Slack interaction requests as Slack sends them: a block_actions payload (with the message the
// button sits in, as Slack includes it), form-encoded, signed v0 with the signing secret.
import { createHmac } from "node:crypto";
import type { Proposal } from "../../src/proposal/types.ts";
import { renderCard } from "../../src/slack/card.ts";
import type { PreparedRequest } from "./load.ts";

export function slackSignature(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac("sha256", secret).update(`v0:${timestamp}:${body}`).digest("hex")}`;
}

export type ClickKind = "approve" | "deny" | "escalate";

/**
 * A signed click on `proposal`'s card by `user`. `actionId` may name a button that is not
 * signoff's (the Worker then answers 200 without asking the proposal).
 */
export function clickRequest(
  secret: string,
  proposal: Proposal,
  user: string,
  options: {
    kind?: ClickKind;
    actionId?: string;
    timestamp?: number;
    badSignature?: boolean;
    noChannel?: boolean;
    tag?: string;
  } = {},
): PreparedRequest {
  const kind = options.kind ?? "approve";
  const channel = proposal.rule.channel ?? "C0APPROVALS";
  const card = renderCard(proposal, { role: "card" });
  const ts = "1700000001.000100";
  const payload = {
    type: "block_actions",
    user: { id: user, username: user.toLowerCase(), name: user.toLowerCase(), team_id: "T0BENCH" },
    api_app_id: "A0SIGNOFF",
    token: "legacy-verification-token-unused",
    container: { type: "message", message_ts: ts, channel_id: channel, is_ephemeral: false },
    trigger_id: `${Date.now()}.${Math.floor(Math.random() * 1e9)}.bench`,
    team: { id: "T0BENCH", domain: "bench" },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: channel, name: "incident" },
    message: { type: "message", subtype: "bot_message", text: card.text, ts, bot_id: "B0SIGNOFF", blocks: card.blocks },
    state: { values: {} },
    response_url: "https://hooks.slack.com/actions/T0BENCH/1/bench",
    actions: [
      {
        action_id: options.actionId ?? `signoff.${kind}`,
        block_id: "signoff.actions",
        text: { type: "plain_text", text: kind, emoji: true },
        value: proposal.id,
        style: kind === "approve" ? "primary" : "danger",
        type: "button",
        action_ts: `${Date.now() / 1000}`,
      },
    ],
  };
  if (options.noChannel) {
    // As in a click whose channel Slack does not say: signoff has nowhere to send an ephemeral reply.
    delete (payload as Partial<typeof payload>).channel;
    delete (payload as Partial<typeof payload>).container;
  }
  const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const signature = slackSignature(options.badSignature ? `${secret}-not` : secret, timestamp, body);
  return {
    method: "POST",
    path: "/slack/interactions",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-slack-request-timestamp": String(timestamp),
      "x-slack-signature": signature,
    },
    body: Buffer.from(body),
    tag: options.tag ?? proposal.id,
  };
}
