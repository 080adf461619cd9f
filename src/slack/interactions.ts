// POST /slack/interactions: Slack's interactivity endpoint. Verifies the signature before
// anything is parsed, hands each click to the proposal's Durable Object, answers at once.
import { Hono } from "hono";
import { ApiError } from "../errors.ts";
import { configOf, type AppEnv } from "../api/http.ts";
import { objectIdOf } from "../proposal/ids.ts";
import { DENY_MODAL, renderDenyModal } from "./card.ts";
import { verifySlackSignature } from "./signature.ts";
import { callSlack } from "./web-api.ts";

/** Slack's own payloads (with a whole message's blocks) can be far larger than API bodies. */
const MAX_SLACK_BODY = 1024 * 1024;

const ACTIONS = {
  "signoff.approve": "approve",
  "signoff.deny": "deny",
  "signoff.escalate": "escalate",
} as const;


interface InteractionPayload {
  type?: string;
  user?: { id?: string };
  trigger_id?: string;
  channel?: { id?: string };
  container?: { channel_id?: string };
  actions?: Array<{ action_id?: string; value?: string }>;
  view?: {
    callback_id?: string;
    private_metadata?: string;
    state?: { values?: Record<string, Record<string, { value?: string | null }>> };
  };
}

export const slackRoutes = new Hono<AppEnv>();

slackRoutes.post("/interactions", async (c) => {
  const config = configOf(c);
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > MAX_SLACK_BODY) throw new ApiError(413, "payload_too_large", "body too large");
  const bytes = await c.req.arrayBuffer();
  if (bytes.byteLength > MAX_SLACK_BODY) throw new ApiError(413, "payload_too_large", "body too large");
  const raw = new TextDecoder().decode(bytes);
  if (raw.length > MAX_SLACK_BODY) throw new ApiError(413, "payload_too_large", "body too large");
  const verified = await verifySlackSignature(config.slackSigningSecret, c.req.raw.headers, raw, Math.floor(Date.now() / 1000));
  if (!verified.ok) throw new ApiError(401, "bad_signature", `Slack signature refused: ${verified.reason}`);

  const payload = parsePayload(raw);
  const user = payload.user?.id;
  if (!user || !/^[UW][A-Z0-9]{2,}$/.test(user)) throw new ApiError(400, "invalid_request", "payload has no user id");

  if (payload.type === "block_actions") {
    const action = payload.actions?.[0];
    const kind = action?.action_id ? ACTIONS[action.action_id as keyof typeof ACTIONS] : undefined;
    if (!kind || !action?.value) return c.body(null, 200); // not one of our buttons: nothing to do
    const stub = stubFor(c.env, action.value);
    if (!stub) return c.body(null, 200);
    const channel = payload.channel?.id ?? payload.container?.channel_id;
    if (kind !== "deny") {
      await stub.click({ kind, user, ...(channel ? { channel } : {}) });
      return c.body(null, 200);
    }
    const check = await stub.checkDeny(user, channel);
    if (check.ok && payload.trigger_id) {
      // views.open must happen within 3 s of the click (trigger_id expiry), so it is awaited here.
      const opened = await callSlack(config.slackApiBase, config.slackBotToken, "views.open", {
        trigger_id: payload.trigger_id,
        view: renderDenyModal(action.value, check.summary),
      }, fetch, 2_500);
      if (opened.kind !== "ok") await stub.noteSlackFailure("views.open", opened.error);
    }
    return c.body(null, 200);
  }

  if (payload.type === "view_submission" && payload.view?.callback_id === DENY_MODAL.callbackId) {
    const id = payload.view.private_metadata ?? "";
    const stub = stubFor(c.env, id);
    if (!stub) return c.json({ response_action: "errors", errors: { reason: "This proposal no longer exists." } });
    const reason = payload.view.state?.values?.reason?.reason?.value ?? undefined;
    const outcome = await stub.click({ kind: "deny", user, ...(reason ? { reason } : {}) });
    if (!outcome.ok) return c.json({ response_action: "errors", errors: { reason: outcome.message } });
    return c.body(null, 200);
  }

  return c.body(null, 200);
});

function parsePayload(raw: string): InteractionPayload {
  const text = new URLSearchParams(raw).get("payload");
  if (!text) throw new ApiError(400, "invalid_request", "form field payload is missing");
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
    return parsed as InteractionPayload;
  } catch {
    throw new ApiError(400, "invalid_request", "payload is not a JSON object");
  }
}

function stubFor(env: Env, proposalId: string) {
  const id = objectIdOf(env.PROPOSALS, proposalId);
  return id ? env.PROPOSALS.get(id) : null;
}
