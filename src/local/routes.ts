// The stand-in's routes: the page, the fake Slack Web API signoff posts to, the local Access issuer's keys and the
// mail catcher (issue 11), and the page's JSON endpoints, which turn a click into the signed request Slack would
// send and pass it to the production handler unchanged.

import type { Context } from "hono";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../api/http.ts";
import { loadConfig } from "../config/load.ts";
import { type Policy, parsePolicy } from "../config/policy.ts";
import { ApiError } from "../errors.ts";
import { timingSafeEqual } from "../lib/crypto.ts";
import { bodyText, utf8 } from "../lib/encoding.ts";
import { LOCAL_IDENTITY_COOKIE, LOCAL_JWKS_PATH, parseLocalAccessKey, publicJwks } from "./access.ts";
import {
  DEMO_CHANNELS,
  DEMO_GROUP_HANDLES,
  DEMO_GROUPS,
  DEMO_PROPOSALS,
  DEMO_USERS,
  demoRole,
  demoUser,
} from "./demo.ts";
import { type LocalProblem, localProblems } from "./diagnose.ts";
import {
  blockActionsPayload,
  findButton,
  homeBlockActionsPayload,
  homeOpenedEvent,
  signedEvent,
  signedInteraction,
  viewState,
  viewSubmissionPayload,
} from "./interactions.ts";
import { type LocalMail, parseMailInput } from "./mailbox.ts";
import { STANDIN_MARKER } from "./marker.ts";
import page from "./standin.html";
import type { LocalSlack, Snapshot, StoredHome, StoredMessage, StoredView } from "./store.ts";

/** Secrets `npm start` writes to .dev.vars besides signoff's own (they are not in wrangler.toml, so not in the generated types). */
interface LocalSecrets {
  SLACK_SIGNING_SECRET?: string;
  SLACK_BOT_TOKEN?: string;
  /** The demo API key's token, with which the page's form creates proposals through the real API. */
  LOCAL_DEMO_TOKEN?: string;
  /** The local Access issuer's private key (an RSA JWK as JSON, src/local/access.ts). */
  LOCAL_ACCESS_KEY?: string;
  /** signoff's mail API token, which the mail catcher checks as a mail API would. */
  MAIL_API_TOKEN?: string;
}
export type LocalEnv = Cloudflare.LocalEnv & LocalSecrets;
type LocalContext = Context<{ Bindings: LocalEnv }>;

const USER_ID = /^[UW][A-Z0-9]{2,}$/;
const MAX_PAGE_BODY = 64 * 1024;
/** What the mail catcher accepts in one request: far more than signoff's mail, far less than memory. */
const MAX_MAIL_BODY = 1024 * 1024;
/** The stand-ins for services signoff calls itself (authenticated like them), not the page's own endpoints. */
const CALLED_BY_SIGNOFF = ["/__local/slack/api/", "/__local/mail/api/"];

function slackStore(env: LocalEnv): DurableObjectStub<LocalSlack> {
  // `wrangler types` cannot see the class (its mainModule is the production entry), hence the one cast.
  const namespace = env.LOCAL_SLACK as unknown as DurableObjectNamespace<LocalSlack>;
  return namespace.get(namespace.idFromName("workspace"));
}

function mailStore(env: LocalEnv): DurableObjectStub<LocalMail> {
  const namespace = env.LOCAL_MAIL as unknown as DurableObjectNamespace<LocalMail>;
  return namespace.get(namespace.idFromName("mail"));
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
    if (c.req.method === "POST" && !CALLED_BY_SIGNOFF.some((prefix) => c.req.path.startsWith(prefix))) {
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

  // ---- the local Access issuer's keys (ACCESS_JWKS_URL in local mode) ----

  routes.get(LOCAL_JWKS_PATH, (c) => {
    const key = parseLocalAccessKey(c.env.LOCAL_ACCESS_KEY);
    if (!key)
      throw new ApiError(
        503,
        "misconfigured",
        "LOCAL_ACCESS_KEY is not in .dev.vars: start local mode with `npm start`",
      );
    return c.json(publicJwks(key));
  });

  // ---- the mail catcher (MAIL_API_URL in local mode): answers like the mail API src/mail/send.ts posts to ----

  routes.post("/__local/mail/api/emails", limitMailBody, async (c) => {
    const expected = c.env.MAIL_API_TOKEN;
    const auth = c.req.header("authorization") ?? "";
    if (!auth.startsWith("Bearer "))
      return mailError(c, 401, "missing_api_key", "Missing API key in the authorization header");
    if (!expected || !timingSafeEqual(utf8(auth.slice("Bearer ".length)), utf8(expected)))
      return mailError(c, 403, "invalid_api_key", "API key is invalid");
    if (!/^application\/json\s*(;|$)/i.test(c.req.header("content-type") ?? ""))
      return mailError(c, 415, "validation_error", "send the message as application/json");
    let body: unknown;
    try {
      body = JSON.parse(await c.req.text());
    } catch {
      return mailError(c, 400, "validation_error", "the body is not JSON");
    }
    const parsed = parseMailInput(body);
    if (!parsed.ok) return mailError(c, 422, "validation_error", parsed.message);
    return c.json({ id: await mailStore(c.env).deliver(JSON.stringify(parsed.mail)) });
  });

  // ---- the page's endpoints ----

  routes.get("/__local/state", async (c) => {
    const as = c.req.query("as") ?? "";
    if (!USER_ID.test(as)) throw new ApiError(400, "invalid_request", "as must be a Slack user id");
    const snapshot = JSON.parse(await slackStore(c.env).snapshot(as)) as Snapshot;
    const email = demoUser(as)?.email ?? null;
    const mailbox = email
      ? (JSON.parse(await mailStore(c.env).mailbox(email)) as { mail: unknown[]; total: number })
      : { mail: [], total: 0 };
    let policy: Policy | null = null;
    let publicUrl: string | null = null;
    let configProblems: LocalProblem[] | null = null;
    try {
      const config = loadConfig(c.env);
      publicUrl = config.publicUrl;
      policy = config.policy;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      configProblems = localProblems(error.details);
      // A bad secret leaves the policy readable: the form and the people's roles still show it.
      try {
        policy = parsePolicy(c.env.POLICY);
      } catch {
        policy = null;
      }
    }
    const actions = Object.values(policy?.actions ?? {}).map((a) => ({
      type: a.type,
      approvers: a.approvers,
      required_approvals: a.required_approvals,
      requester_only: a.requester_only,
      channel: a.channel,
      escalation: a.escalation ? { approvers: a.escalation.approvers } : null,
      link_recipients: a.links && !a.verify ? a.links.recipients : null,
    }));
    return jsonText(c, {
      marker: STANDIN_MARKER,
      as,
      users: DEMO_USERS.map((u) => ({ ...u, role: policy ? demoRole(u, policy) : "" })),
      groups: DEMO_GROUPS,
      group_handles: DEMO_GROUP_HANDLES,
      channels: DEMO_CHANNELS,
      samples: DEMO_PROPOSALS,
      actions,
      config_problems: configProblems,
      demo_key: Boolean(c.env.LOCAL_DEMO_TOKEN),
      // Mail: what was delivered to this person, the links of this signoff in it, and who opens them.
      email,
      public_url: publicUrl,
      identity_cookie: LOCAL_IDENTITY_COOKIE,
      mail: mailbox.mail,
      mail_total: mailbox.total,
      ...snapshot,
    });
  });

  routes.post("/__local/click", async (c) => {
    const input = await pageBody(c);
    const as = userIn(input);
    const stored = await slackStore(c.env).message(String(input.channel ?? ""), String(input.ts ?? ""));
    if (!stored) throw new ApiError(404, "not_found", "no such message");
    const message = JSON.parse(stored) as StoredMessage;
    // The block when the page names it: a grouped card shows the same button once per item (docs/grouping.md).
    const block = typeof input.block_id === "string" ? input.block_id : undefined;
    const found = findButton(message, String(input.action_id ?? ""), block);
    // As in Slack, only a button the card shows now can be clicked.
    if (!found) throw new ApiError(409, "wrong_state", "this card has no such button (any more)");
    const trigger = await slackStore(c.env).newTrigger(as);
    const payload = blockActionsPayload(as, message, found.blockId, found.button, trigger);
    const res = await forward(c, await signedInteraction(interactionsUrl(c), secretOf(c), payload));
    return c.json({ status: res.status, body: await res.text() });
  });

  // The Home tab: opening it is Slack's app_home_opened event; its buttons are clicks from a view of type "home".
  routes.post("/__local/home/open", async (c) => {
    const as = userIn(await pageBody(c));
    const url = new URL("/slack/events", c.req.url).toString();
    const res = await forward(c, await signedEvent(url, secretOf(c), homeOpenedEvent(as)));
    return c.json({ status: res.status });
  });

  routes.post("/__local/home/click", async (c) => {
    const input = await pageBody(c);
    const as = userIn(input);
    const stored = await slackStore(c.env).home(as);
    if (!stored) throw new ApiError(404, "not_found", "no Home tab drawn for this user yet");
    const home = JSON.parse(stored) as StoredHome;
    const blocks = Array.isArray(home.view.blocks) ? (home.view.blocks as unknown[]) : [];
    const found = findButton({ blocks }, String(input.action_id ?? ""), String(input.block_id ?? ""));
    if (!found) throw new ApiError(409, "wrong_state", "this Home tab has no such button (any more)");
    const trigger = await slackStore(c.env).newTrigger(as);
    const payload = homeBlockActionsPayload(as, home, found.blockId, found.button, trigger);
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
    await Promise.all([slackStore(c.env).clear(), mailStore(c.env).clear()]);
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

const limitMailBody = bodyLimit({
  maxSize: MAX_MAIL_BODY,
  onError: (c) => mailError(c, 413, "validation_error", "the message is too large"),
});

/** A mail API's error answer (Resend's shape: `{statusCode, name, message}`). */
function mailError(c: Context, status: 400 | 401 | 403 | 413 | 415 | 422, name: string, message: string): Response {
  return c.json({ statusCode: status, name, message }, status);
}

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
  const text = await bodyText(req);
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
