// The stand-in's routes: the page, the fake Slack Web API signoff posts to, and the page's JSON endpoints, which
// turn a click into the signed request Slack would send and pass it to the production handler unchanged.

import type { Context } from "hono";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../api/http.ts";
import { loadConfig } from "../config/load.ts";
import { ApiError } from "../errors.ts";
import { DEMO_CHANNELS, DEMO_GROUPS, DEMO_PROPOSALS, DEMO_USERS } from "./demo.ts";
import {
  blockActionsPayload,
  findButton,
  signedInteraction,
  viewState,
  viewSubmissionPayload,
} from "./interactions.ts";
import { STANDIN_MARKER } from "./marker.ts";
import page from "./standin.html";
import type { LocalSlack, Snapshot, StoredMessage, StoredView } from "./store.ts";

/** Secrets `npm start` writes to .dev.vars besides signoff's own (they are not in wrangler.toml, so not in the generated types). */
interface LocalSecrets {
  SLACK_SIGNING_SECRET?: string;
  SLACK_BOT_TOKEN?: string;
  /** The demo API key's token, with which the page's form creates proposals through the real API. */
  LOCAL_DEMO_TOKEN?: string;
}
export type LocalEnv = Cloudflare.LocalEnv & LocalSecrets;
type LocalContext = Context<{ Bindings: LocalEnv }>;

const USER_ID = /^[UW][A-Z0-9]{2,}$/;
const MAX_PAGE_BODY = 64 * 1024;

function slackStore(env: LocalEnv): DurableObjectStub<LocalSlack> {
  // `wrangler types` cannot see the class (its mainModule is the production entry), hence the one cast.
  const namespace = env.LOCAL_SLACK as unknown as DurableObjectNamespace<LocalSlack>;
  return namespace.get(namespace.idFromName("workspace"));
}

/** The stand-in, wrapped around `app` (the production app, reached in-process as Slack would reach it over HTTP). */
export function standinRoutes(app: Hono<AppEnv>): Hono<{ Bindings: LocalEnv }> {
  const routes = new Hono<{ Bindings: LocalEnv }>();
  const forward = (c: LocalContext, request: Request) => app.fetch(request, c.env, c.executionCtx);

  routes.use("*", async (c, next) => {
    await next();
    c.res.headers.set("x-signoff-local", STANDIN_MARKER);
    c.res.headers.set("cache-control", "no-store");
  });

  // The page's own endpoints act as anyone: only the page may call them. A JSON body cannot be sent cross-origin
  // without a CORS preflight (which is never answered), and a browser's Origin must be this one; together with
  // the loopback-only Host check in index.ts, another web site (or DNS rebinding) cannot click for you.
  routes.use("/__local/*", async (c, next) => {
    if (c.req.method === "POST" && !c.req.path.startsWith("/__local/slack/api/")) {
      const origin = c.req.header("origin");
      if (origin !== undefined && origin !== new URL(c.req.url).origin)
        throw new ApiError(403, "forbidden", "cross-origin request refused");
      if (!/^application\/json\s*(;|$)/i.test(c.req.header("content-type") ?? "")) {
        throw new ApiError(415, "unsupported_media_type", "send the body as application/json");
      }
      return limitPageBody(c, next);
    }
    await next();
  });

  routes.get("/", async (c) => {
    c.header("content-security-policy", await pageCsp());
    c.header("x-content-type-options", "nosniff");
    c.header("referrer-policy", "no-referrer");
    return c.html(page);
  });

  // ---- the fake Slack Web API (SLACK_API_BASE in local mode) ----

  routes.post("/__local/slack/api/:method", async (c) => {
    const method = c.req.param("method");
    const auth = c.req.header("authorization") ?? "";
    if (!auth) return c.json({ ok: false, error: "not_authed" });
    if (!c.env.SLACK_BOT_TOKEN || auth !== `Bearer ${c.env.SLACK_BOT_TOKEN}`)
      return c.json({ ok: false, error: "invalid_auth" });
    const params = await slackParams(c.req.raw);
    if (!params) return c.json({ ok: false, error: "invalid_arguments" });
    return jsonText(c, await slackStore(c.env).api(method, JSON.stringify(params)));
  });

  // ---- the page's endpoints ----

  routes.get("/__local/state", async (c) => {
    const as = c.req.query("as") ?? "";
    if (!USER_ID.test(as)) throw new ApiError(400, "invalid_request", "as must be a Slack user id");
    const snapshot = JSON.parse(await slackStore(c.env).snapshot(as)) as Snapshot;
    let actions: unknown[] = [];
    let configError: string | null = null;
    try {
      actions = Object.values(loadConfig(c.env).policy.actions).map((a) => ({
        type: a.type,
        approvers: a.approvers,
        required_approvals: a.required_approvals,
        requester_only: a.requester_only,
        channel: a.channel,
        escalation: a.escalation ? { approvers: a.escalation.approvers } : null,
      }));
    } catch (error) {
      configError =
        error instanceof ApiError
          ? `${error.message}: ${JSON.stringify(error.details)}`
          : "configuration could not be read";
    }
    return jsonText(c, {
      marker: STANDIN_MARKER,
      as,
      users: DEMO_USERS,
      groups: DEMO_GROUPS,
      channels: DEMO_CHANNELS,
      samples: DEMO_PROPOSALS,
      actions,
      config_error: configError,
      demo_key: Boolean(c.env.LOCAL_DEMO_TOKEN),
      ...snapshot,
    });
  });

  routes.post("/__local/click", async (c) => {
    const input = await pageBody(c);
    const as = userIn(input);
    const stored = await slackStore(c.env).message(String(input.channel ?? ""), String(input.ts ?? ""));
    if (!stored) throw new ApiError(404, "not_found", "no such message");
    const message = JSON.parse(stored) as StoredMessage;
    const found = findButton(message, String(input.action_id ?? ""));
    // As in Slack, only a button the card shows now can be clicked.
    if (!found) throw new ApiError(409, "wrong_state", "this card has no such button (any more)");
    const trigger = await slackStore(c.env).newTrigger(as);
    const payload = blockActionsPayload(as, message, found.blockId, found.button, trigger);
    const res = await forward(c, await signedInteraction(interactionsUrl(c), secretOf(c), payload));
    return c.json({ status: res.status, body: await res.text() });
  });

  routes.post("/__local/view/submit", async (c) => {
    const input = await pageBody(c);
    const as = userIn(input);
    const store = slackStore(c.env);
    const stored = await store.view(String(input.view_id ?? ""), as);
    if (!stored) throw new ApiError(404, "not_found", "no such open modal for this user");
    const view = JSON.parse(stored) as StoredView;
    const inputs = isRecord(input.values)
      ? Object.fromEntries(Object.entries(input.values).map(([k, v]) => [k, String(v ?? "")]))
      : {};
    const state = viewState(view, inputs);
    // The Slack client itself refuses to submit a required field left empty; nothing is sent.
    if (Object.keys(state.errors).length > 0) {
      await store.settleView(view.id, state.errors);
      return c.json({ status: null, errors: state.errors });
    }
    const trigger = await store.newTrigger(as);
    const res = await forward(
      c,
      await signedInteraction(interactionsUrl(c), secretOf(c), viewSubmissionPayload(as, view, state.values, trigger)),
    );
    const text = await res.text();
    const errors = res.status === 200 ? responseErrors(text) : { "": `signoff answered HTTP ${res.status}` };
    await store.settleView(view.id, errors);
    return c.json({ status: res.status, errors });
  });

  routes.post("/__local/view/close", async (c) => {
    const input = await pageBody(c);
    await slackStore(c.env).closeView(String(input.view_id ?? ""), userIn(input));
    return c.json({ ok: true });
  });

  routes.post("/__local/propose", async (c) => {
    const token = c.env.LOCAL_DEMO_TOKEN;
    if (!token)
      throw new ApiError(
        503,
        "misconfigured",
        "LOCAL_DEMO_TOKEN is not in .dev.vars: start local mode with `npm start`",
      );
    const input = await pageBody(c);
    const res = await forward(
      c,
      new Request(new URL("/v1/proposals", c.req.url), {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(input),
      }),
    );
    return c.json({ status: res.status, body: (await res.json()) as unknown });
  });

  routes.post("/__local/clear", async (c) => {
    await slackStore(c.env).clear();
    return c.json({ ok: true });
  });

  routes.notFound((c) => c.json(new ApiError(404, "not_found", "no such stand-in route").toBody(), 404));
  routes.onError((error, c) => {
    if (error instanceof ApiError) return c.json(error.toBody(), error.status);
    console.error("local stand-in error:", error);
    return c.json(new ApiError(503, "internal", "stand-in error (see the wrangler log)").toBody(), 500);
  });
  return routes;
}

let csp: Promise<string> | undefined;

/**
 * Strict, because the page shows text that proposers wrote: only the page's own inline script and style (by
 * hash) run, nothing loads from elsewhere, so even a rendering mistake could not execute injected markup.
 */
function pageCsp(): Promise<string> {
  csp ??= (async () => {
    const hash = async (tag: string) => {
      const body = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(page)?.[1] ?? "";
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
      return `'sha256-${btoa(String.fromCharCode(...digest))}'`;
    };
    return [
      "default-src 'none'",
      `script-src ${await hash("script")}`,
      `style-src ${await hash("style")}`,
      "connect-src 'self'",
      "img-src 'self' data:",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; ");
  })();
  return csp;
}

/**
 * A JSON answer without Hono's typed c.json, whose type-level JSON parsing cannot instantiate the recursive Json
 * type of the Durable Object's answers. A string is sent as it is (already JSON).
 */
function jsonText(c: LocalContext, value: unknown): Response {
  return c.body(typeof value === "string" ? value : JSON.stringify(value), 200, {
    "content-type": "application/json; charset=utf-8",
  });
}

function interactionsUrl(c: LocalContext): string {
  return new URL("/slack/interactions", c.req.url).toString();
}

function secretOf(c: LocalContext): string {
  const secret = c.env.SLACK_SIGNING_SECRET;
  if (!secret)
    throw new ApiError(503, "misconfigured", "SLACK_SIGNING_SECRET is not set: start local mode with `npm start`");
  return secret;
}

// Counted as it streams, like the production routes' bodies.
const limitPageBody = bodyLimit({
  maxSize: MAX_PAGE_BODY,
  onError: () => {
    throw new ApiError(413, "payload_too_large", "body too large");
  },
});

async function pageBody(c: LocalContext): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  try {
    const parsed: unknown = JSON.parse(text);
    if (isRecord(parsed)) return parsed;
  } catch {
    // fall through
  }
  throw new ApiError(400, "bad_json", "send a JSON object");
}

function userIn(input: Record<string, unknown>): string {
  const as = String(input.as ?? "");
  if (!USER_ID.test(as)) throw new ApiError(400, "invalid_request", "as must be a Slack user id");
  return as;
}

/** The Web API's arguments: JSON for chat.* and views.*, a form for usergroups.* (as signoff sends them). */
async function slackParams(req: Request): Promise<Record<string, unknown> | null> {
  const type = req.headers.get("content-type") ?? "";
  const text = await req.text();
  if (type.includes("application/json")) {
    try {
      const parsed: unknown = JSON.parse(text);
      return isRecord(parsed) ? parsed : null;
    } catch {
      return null;
    }
  }
  return Object.fromEntries(new URLSearchParams(text));
}

/** `{response_action: "errors", errors: {...}}` from a view_submission answer, or null (the modal closes). */
function responseErrors(text: string): Record<string, string> | null {
  if (!text) return null;
  try {
    const parsed: unknown = JSON.parse(text);
    if (isRecord(parsed) && parsed.response_action === "errors" && isRecord(parsed.errors)) {
      return Object.fromEntries(Object.entries(parsed.errors).map(([k, v]) => [k, String(v)]));
    }
  } catch {
    // not JSON: Slack would close the modal on any 200
  }
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
