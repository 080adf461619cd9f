// GET and POST /l/:token — signed links (issue 7). GET shows a confirmation page and never decides anything (mail
// scanners and link unfurlers fetch links on their own); only the page's button, a POST carrying a CSRF value that
// matches its cookie, decides, in the proposal's Durable Object, with the same rules and races as a Slack click.
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getCookie, setCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../api/http.ts";
import { type Config, loadConfig } from "../config/load.ts";
import { ApiError } from "../errors.ts";
import { verifyAccess } from "../identity/access.ts";
import { randomToken, timingSafeEqual } from "../lib/crypto.ts";
import { bodyText, utf8 } from "../lib/encoding.ts";
import {
  frozenRefusal,
  mayDecideByLink,
  notPendingMessage,
  requiredApprovals,
  verifyLabels,
} from "../proposal/lifecycle.ts";
import { proposalStub } from "../proposal/stub.ts";
import type { Proposal } from "../proposal/types.ts";
import { type ResultPage, renderConfirmPage, renderResultPage } from "./page.ts";
import { type LinkClaims, verifyLinkToken } from "./token.ts";

export const CSRF_COOKIE = "signoff_csrf";
/** A confirmation page's `plan` field: the plan hash it showed (without it, the page showed the plan as created). */
const PLAN_FIELD = /^[0-9a-f]{64}$/;
const CSRF_VALUE = /^[A-Za-z0-9_-]{43}$/;
const MAX_FORM_BYTES = 8 * 1024;
const REASON_MAX = 500;

export const linkRoutes = new Hono<AppEnv>();

// Pages load nothing and run nothing; their one form posts back here. HEAD is answered by this GET, without body.
const BASE_HEADERS: Record<string, string> = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy":
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
  "x-robots-tag": "noindex, nofollow",
  "referrer-policy": "no-referrer",
};

function result(status: number, page: ResultPage): Response {
  return new Response(renderResultPage(page), { status, headers: BASE_HEADERS });
}

const invalid = () =>
  result(400, {
    kind: "invalid",
    heading: "This link is not valid",
    message: "It may have been mistyped or cut short, or it was not issued by this signoff. Nothing was decided.",
    tone: "refused",
  });

/** The configuration, with links enabled: its secret and public origin are known. */
type LinkConfig = Config & { linkSecret: string; publicUrl: string };
type LinkEnv = { Bindings: Env; Variables: { config: LinkConfig } };
type LinkContext = Context<LinkEnv>;

/** Puts the configuration with links enabled on `c.var.config`, or answers with the page saying why it cannot. */
const linksEnabled = createMiddleware<LinkEnv>(async (c, next) => {
  let config: Config;
  try {
    config = loadConfig(c.env);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    return result(503, {
      kind: "unavailable",
      heading: "signoff is unavailable",
      message: "Its configuration has a problem; nothing was decided. Please tell its operator.",
      tone: "refused",
    });
  }
  const { linkSecret, publicUrl } = config;
  if (linkSecret === null || publicUrl === null) {
    return result(404, {
      kind: "invalid",
      heading: "Links are not enabled",
      message: "No action of this signoff decides through links.",
      tone: "refused",
    });
  }
  c.set("config", { ...config, linkSecret, publicUrl });
  await next();
});

/**
 * Who is opening an approval link, as Cloudflare Access vouches for it on this very request; null for verification
 * prompts (their links go by possession and never dispatch). A page instead when Access could not be asked.
 */
async function identityFor(
  c: LinkContext,
  config: Config,
  choice: string,
): Promise<{ identity: string | null } | { page: Response }> {
  // approve/deny are approval links; a verification prompt's links carry its answers.
  if ((choice !== "approve" && choice !== "deny") || config.access === null) return { identity: null };
  const verified = await verifyAccess(config.access, c.req.raw.headers);
  if (verified.ok) return { identity: verified.email };
  if (verified.reason === "unavailable") {
    return {
      page: result(503, {
        kind: "unavailable",
        heading: "Your sign-in could not be checked",
        message: "The identity provider did not answer just now; nothing was decided. Please try again in a minute.",
        tone: "refused",
      }),
    };
  }
  return { identity: null };
}

/** The page's form is the only thing that posts here. */
const formOnly = createMiddleware(async (c, next) => {
  if (!/^application\/x-www-form-urlencoded\s*(?:;|$)/i.test(c.req.header("content-type") ?? "")) {
    return result(415, {
      kind: "refused",
      heading: "Nothing was decided",
      message: "Please use the button on the link's page.",
      tone: "refused",
    });
  }
  await next();
});

// Counted as it streams: a form sent without Content-Length (chunked) is refused at its first byte over the
// limit, never buffered whole (issue 11).
const limitForm = bodyLimit({
  maxSize: MAX_FORM_BYTES,
  onError: () =>
    result(413, {
      kind: "refused",
      heading: "Nothing was decided",
      message: "The form was too large.",
      tone: "refused",
    }),
});

linkRoutes.get("/:token", linksEnabled, async (c) => {
  const verified = await verifyLinkToken(c.var.config.linkSecret, c.req.param("token"));
  if (!verified.ok) return invalid();
  const claims = verified.claims;
  const stub = proposalStub(c.env.PROPOSALS, claims.p);
  if (!stub) return invalid();
  const { proposal, link } = await stub.inspectLink(claims.n);
  if (!proposal) return invalid();
  if (!proposal.rule.links) return disabled();
  if (!link || link.recipient !== claims.r || link.choice !== claims.c) return invalid();

  const now = Date.now();
  if (link.used_at !== null) return alreadyUsed(proposal, claims.r);
  const past = now > claims.e * 1000 || now >= Date.parse(proposal.expires_at);
  if (proposal.status === "expired" || (proposal.status === "pending" && past)) return expired(proposal, claims.r);
  if (proposal.status !== "pending") return notPending(proposal, claims.r);
  const who = await identityFor(c, c.var.config, claims.c);
  if ("page" in who) return who.page;
  const allowed = mayDecideByLink(proposal, claims.r, who.identity);
  if (!allowed.ok) return forbidden(allowed.message, proposal, claims.r);
  // Created in a change freeze: say so before offering a button whose approval could not count.
  const frozen = claims.c === "approve" ? frozenRefusal(proposal) : null;
  if (frozen) return forbidden(frozen.message, proposal, claims.r);

  // Double-submit CSRF: the same random value in an HttpOnly, SameSite=Strict cookie and in the form. An existing
  // value is kept, so two links opened in two tabs both still work.
  const existing = getCookie(c, CSRF_COOKIE);
  const csrf = existing && CSRF_VALUE.test(existing) ? existing : randomToken(32);
  const body = renderConfirmPage({
    proposal,
    choice: claims.c,
    recipient: claims.r,
    csrf,
    formAction: new URL(c.req.url).pathname,
  });
  setCookie(c, CSRF_COOKIE, csrf, {
    httpOnly: true,
    sameSite: "Strict",
    secure: true,
    path: "/l/",
    maxAge: Math.max(60, Math.ceil((Date.parse(proposal.expires_at) - now) / 1000)),
  });
  // Through c.body, which sends the cookie set on c along.
  return c.body(body, 200, {
    ...BASE_HEADERS,
    // The form posts to this same origin: with no-referrer, browsers would send `Origin: null` on that POST
    // (Fetch standard), which the Origin check must refuse. same-origin keeps the URL from every other origin.
    "referrer-policy": "same-origin",
  });
});

linkRoutes.post("/:token", linksEnabled, formOnly, limitForm, async (c) => {
  const { config } = c.var;
  const form = new URLSearchParams(await bodyText(c.req));

  const verified = await verifyLinkToken(config.linkSecret, c.req.param("token"));
  if (!verified.ok) {
    // A forgery is audited against the proposal it names, if that is a real one; its claims are not repeated.
    if (verified.reason !== "malformed" && verified.claimedProposal) {
      await proposalStub(c.env.PROPOSALS, verified.claimedProposal)?.noteLinkRefusal(verified.reason);
    }
    return invalid();
  }
  const claims = verified.claims;
  const stub = proposalStub(c.env.PROPOSALS, claims.p);
  if (!stub) return invalid();

  const csrfProblem = checkCsrf(c, form, config.publicUrl);
  if (csrfProblem) {
    await stub.noteLinkRefusal(`csrf_${csrfProblem}`, claims.r, claims.c);
    return result(403, {
      kind: "forbidden",
      heading: "Nothing was decided",
      message:
        "This request did not come from the link's own page (or its cookie is missing). Open the link again and press its button.",
      tone: "refused",
    });
  }
  // The plan the page showed: an approval of params edited since is refused (edit before approve).
  const plan = form.get("plan") ?? "";
  const reasonText = claims.c === "deny" ? (form.get("reason") ?? "").trim().slice(0, REASON_MAX) : "";
  // The identity is checked again on the POST that decides: the page may have been opened by someone else.
  const who = await identityFor(c, config, claims.c);
  if ("page" in who) return who.page;
  const outcome = await stub.decideByLink({
    recipient: claims.r,
    identity: who.identity,
    choice: claims.c,
    nonce: claims.n,
    expires: claims.e,
    ...(reasonText ? { reason: reasonText } : {}),
    ...(PLAN_FIELD.test(plan) ? { plan } : {}),
  });
  if (outcome.ok) return decided(outcome.proposal, claims);
  const p = outcome.proposal;
  switch (outcome.code) {
    case "already_used":
      return alreadyUsed(p, claims.r);
    case "expired":
      return p ? expired(p, claims.r) : invalid();
    case "not_pending":
      if (!p) return invalid();
      return p.status === "expired" ? expired(p, claims.r) : notPending(p, claims.r);
    case "links_disabled":
      return disabled();
    case "not_a_recipient":
    case "already_approved":
    case "identity_required":
    case "wrong_identity":
    case "self_approval":
    case "edited_by_you":
    case "changed":
    case "frozen":
      return forbidden(outcome.message, p, claims.r);
    default:
      return invalid();
  }
});

/** null when the POST came from our page: the cookie equals the form's value, and any Origin is PUBLIC_URL's. */
function checkCsrf(c: LinkContext, form: URLSearchParams, publicUrl: string): "origin" | "cookie" | null {
  const origin = c.req.header("origin");
  if (origin !== undefined && origin !== new URL(publicUrl).origin) return "origin";
  const cookie = getCookie(c, CSRF_COOKIE);
  const field = form.get("csrf");
  if (!cookie || !field || !CSRF_VALUE.test(cookie)) return "cookie";
  return timingSafeEqual(utf8(cookie), utf8(field)) ? null : "cookie";
}

function decided(p: Proposal, claims: LinkClaims): Response {
  let heading: string;
  let message: string;
  switch (claims.c) {
    case "approve":
      heading = p.status === "pending" ? "Approval recorded" : "Approved";
      message =
        p.status === "pending"
          ? `Your approval was recorded: ${p.approvals.length} of ${requiredApprovals(p)}. The action runs once enough people approve.`
          : "Your approval was the last one needed: the action will run now.";
      break;
    case "deny":
      heading = "Denied";
      message = "You denied this action. Nothing will run.";
      break;
    default:
      heading = "Thank you";
      message = `Your answer “${verifyLabels(p)[claims.c]}” was recorded.`;
  }
  return result(200, { kind: "decided", heading, message, tone: "done", proposal: p, recipient: claims.r });
}

function alreadyUsed(p: Proposal | null, recipient: string): Response {
  const now = p && p.status !== "pending" ? ` ${plain(notPendingMessage(p))}` : "";
  return result(409, {
    kind: "already_used",
    heading: "This link was already used",
    message: `Each link decides once, and this one already did.${now}`,
    tone: "info",
    proposal: p,
    recipient,
  });
}

function notPending(p: Proposal, recipient: string): Response {
  return result(409, {
    kind: "not_pending",
    heading: "Already decided",
    message: `${plain(notPendingMessage(p))} Nothing more to decide.`,
    tone: "info",
    proposal: p,
    recipient,
  });
}

function expired(p: Proposal, recipient: string): Response {
  return result(410, {
    kind: "expired",
    heading: "This link has expired",
    message: "The deadline has passed; nothing was decided through this link.",
    tone: "refused",
    proposal: p,
    recipient,
  });
}

function forbidden(message: string, p: Proposal | null, recipient: string): Response {
  return result(403, {
    kind: "forbidden",
    heading: "Nothing was decided",
    message,
    tone: "refused",
    proposal: p,
    recipient,
  });
}

function disabled(): Response {
  return result(403, {
    kind: "forbidden",
    heading: "Links are not enabled for this action",
    message: "This proposal can only be decided in Slack.",
    tone: "refused",
  });
}

/** notPendingMessage speaks Slack (`<@U…>`); the page shows the plain id. */
function plain(text: string): string {
  return text.replace(/<@([A-Z0-9]+)>/g, "$1");
}
