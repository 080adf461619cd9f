// Driving the issue-7 features from outside: proposals of the link and verification actions (test/fixtures.ts
// linkActions), the mails that bring approval links, Cloudflare Access sign-ins, and a browser's view of a signed
// link (GET the page, keep its cookie, POST its form).
//
// The link actions are not in the bindings' POLICY, which config tests pin to the classic three actions, so these
// requests go to the same Worker handler with the bindings plus those actions, the `people` directory and a key
// allowed to propose them (SOC_KEY). The Durable Objects run with the bindings as they are: a proposal freezes its
// rule at creation, so nothing they do reads the policy (Access and the mail API are in the bindings themselves).
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { importJWK, type JWTPayload, SignJWT } from "jose";
import { expect } from "vitest";
import { ACCESS_HEADER } from "../../src/identity/access.ts";
import worker from "../../src/index.ts";
import { sha256Hex } from "../../src/lib/crypto.ts";
import { fromBase64Url } from "../../src/lib/encoding.ts";
import { type LinkClaims, mintLinkToken, verifyLinkToken } from "../../src/links/token.ts";
import {
  ACCESS_AUD,
  ACCESS_PRIVATE_JWK,
  KEY_ENTRIES,
  LINK_BINDINGS,
  linkActions,
  MAIL_PATH,
  PEOPLE,
  POLICY,
  SOC_KEY,
} from "../fixtures.ts";
import { peer } from "../peer/client.ts";
import { BASE, createdThisTest, settle } from "./api.ts";

export const PEER = env.TEST_PEER;

let cached: Cloudflare.Env | undefined;

export async function linkEnv(): Promise<Cloudflare.Env> {
  if (!cached) {
    const keys = await Promise.all(
      [...KEY_ENTRIES, SOC_KEY].map(async ({ token, ...entry }) => ({ ...entry, sha256: await sha256Hex(token) })),
    );
    cached = {
      ...env,
      POLICY: JSON.stringify({ ...POLICY, people: PEOPLE, actions: { ...POLICY.actions, ...linkActions(PEER) } }),
      API_KEYS: JSON.stringify(keys),
    };
  }
  return cached;
}

/** One request through the Worker's handler with the link env. */
export async function send(request: Request): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch!(request as Request<unknown, IncomingRequestCfProperties>, await linkEnv(), ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

export async function api(
  path: string,
  options: { method?: string; token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token === undefined ? SOC_KEY.token : options.token;
  if (token) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  return send(new Request(`${BASE}${path}`, { method: options.method ?? (body ? "POST" : "GET"), headers, body }));
}

export function approvalBody(overrides: Record<string, unknown> = {}) {
  return {
    action: { type: "links.deploy", params: { service: "api", version: "1.42.0" } },
    summary: "Deploy api 1.42.0 to production",
    reason: "Release train 42; canary green for 2 h",
    blast_radius: "all api traffic, rolling over 10 min",
    rollback: "deploy api 1.41.3",
    ...overrides,
  };
}

export function verifyBody(overrides: Record<string, unknown> = {}) {
  return {
    action: { type: "verify.device", params: { ip: "203.0.113.7", city: "Lisbon" } },
    summary: "New sign-in to your account from Lisbon",
    reason: "Chrome on Windows, 203.0.113.7, 09:14 UTC",
    recipient: "bob@example.com",
    ...overrides,
  };
}

export type Created = Record<string, any> & {
  id: string;
  links?: Array<{ recipient: string; choice: string; url: string }>;
};

/** Creates a proposal with the link env and returns its JSON (asserting 201). */
export async function propose(body: Record<string, unknown>): Promise<Created> {
  const res = await api("/v1/proposals", { body });
  const json = (await res.json()) as Created;
  expect(res.status, JSON.stringify(json)).toBe(201);
  createdThisTest.add(json.id);
  return json;
}

/** A verification prompt's link, from the create response: the only links the API ever answers. */
export function linkFor(created: Created, recipient: string, choice: string): string {
  const link = created.links?.find((l) => l.recipient === recipient && l.choice === choice);
  if (!link) throw new Error(`no ${choice} link for ${recipient} in ${JSON.stringify(created.links)}`);
  return link.url;
}

// ---- the mail API (the loopback peer at MAIL_PATH) ------------------------------------------------------------------

/** One message as the mail API received it, with the two links read out of its text. */
export interface SentMail {
  to: string[];
  from: string;
  subject: string;
  text: string;
  html: string;
  headers: Record<string, string>;
  approve: string | null;
  deny: string | null;
}

/** Every mail signoff sent (of one proposal, when given): what a mailbox receives. */
export async function sentMails(proposalId?: string): Promise<SentMail[]> {
  return (await peer.requests(MAIL_PATH))
    .map((request) => {
      const body = JSON.parse(request.body) as Omit<SentMail, "headers" | "approve" | "deny">;
      return {
        ...body,
        headers: request.headers,
        approve: /^Approve: (\S+)$/m.exec(body.text)?.[1] ?? null,
        deny: /^Deny: +(\S+)$/m.exec(body.text)?.[1] ?? null,
      };
    })
    .filter((mail) => proposalId === undefined || mail.text.includes(proposalId));
}

/**
 * The approval link signoff mailed to `recipient` (after letting the proposal's jobs run), from the last message the
 * mail API received for them (earlier ones are attempts it refused).
 */
export async function mailedLink(p: { id: string }, recipient: string, choice: "approve" | "deny"): Promise<string> {
  await settle(p.id);
  const mails = (await sentMails(p.id)).filter((mail) => mail.to.includes(recipient));
  expect(mails.length, `a mail to ${recipient}`).toBeGreaterThan(0);
  const url = mails.at(-1)![choice];
  if (!url) throw new Error(`no ${choice} link in the mail to ${recipient}`);
  return url;
}

// ---- Cloudflare Access (the loopback peer is the team domain and serves the keys) --------------------------------

let accessKey: Promise<CryptoKey | Uint8Array> | undefined;

/** What may differ from a token Access would issue for this Worker: for the tests that it is refused. */
export interface AccessTokenOptions {
  key?: CryptoKey;
  audience?: string;
  issuer?: string;
  /** Seconds from now; negative for a token that expired. */
  expiresIn?: number;
  claims?: JWTPayload;
}

/** An Access application token for `email`, signed RS256 with the fixture key as Access signs them. */
export async function accessJwt(email: string, options: AccessTokenOptions = {}): Promise<string> {
  accessKey ??= importJWK(ACCESS_PRIVATE_JWK, "RS256") as Promise<CryptoKey | Uint8Array>;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ email, ...options.claims })
    .setProtectedHeader({ alg: "RS256", kid: ACCESS_PRIVATE_JWK.kid })
    .setIssuer(options.issuer ?? PEER)
    .setAudience(options.audience ?? ACCESS_AUD)
    .setIssuedAt(now - 60)
    .setExpirationTime(now + (options.expiresIn ?? 120))
    .sign(options.key ?? (await accessKey));
}

/**
 * Who a request is signed in as. By default an approval link's own recipient when that is an e-mail address (the
 * person it was mailed to, opening it); `null` for no sign-in, an address, or a ready token (`{ token }`).
 */
export type SignIn = string | null | { token: string } | undefined;

async function signInHeaders(url: string, as: SignIn): Promise<Record<string, string>> {
  let who = as;
  if (who === undefined) {
    const claims = claimsOf(url);
    who = (claims.c === "approve" || claims.c === "deny") && claims.r.includes("@") ? claims.r : null;
  }
  if (who === null) return {};
  return { [ACCESS_HEADER]: typeof who === "string" ? await accessJwt(who) : who.token };
}

export function pathOf(url: string): string {
  return new URL(url).pathname;
}

/** The claims of a token we minted (read without checking, for building variants in tests); null for junk. */
export function claimsOf(url: string): LinkClaims {
  const payload = pathOf(url).split("/").at(-1)!.split(".")[1] ?? "";
  const bytes = fromBase64Url(payload);
  try {
    return JSON.parse(new TextDecoder().decode(bytes ?? new Uint8Array())) as LinkClaims;
  } catch {
    return { p: "", c: "yes", r: "", e: 0, n: "" };
  }
}

/** A correctly signed link with other claims: what someone holding LINK_SECRET (only signoff) could make. */
export async function signedLink(claims: LinkClaims): Promise<string> {
  return `${LINK_BINDINGS.PUBLIC_URL}/l/${await mintLinkToken(LINK_BINDINGS.LINK_SECRET, claims)}`;
}

export async function verifies(url: string) {
  return verifyLinkToken(LINK_BINDINGS.LINK_SECRET, pathOf(url).slice("/l/".length));
}

export interface OpenedPage {
  res: Response;
  html: string;
  /** The signoff_csrf value from Set-Cookie, if set. */
  cookie: string | null;
  /** The form's hidden csrf field, if any. */
  csrf: string | null;
  setCookie: string | null;
}

/** What a browser (or a mail scanner) does with a link: GET (or HEAD) it, signed in as `as` (see SignIn). */
export async function openLink(
  url: string,
  options: { method?: "GET" | "HEAD"; headers?: Record<string, string>; as?: SignIn } = {},
): Promise<OpenedPage> {
  const headers = { ...(await signInHeaders(url, options.as)), ...options.headers };
  const res = await send(new Request(url, { method: options.method ?? "GET", headers }));
  const html = await res.text();
  const setCookie = res.headers.get("set-cookie");
  return {
    res,
    html,
    setCookie,
    cookie: /signoff_csrf=([^;]+)/.exec(setCookie ?? "")?.[1] ?? null,
    csrf: /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? null,
  };
}

/** Pressing the page's button: POST the form with its cookie, from the page's own origin, signed in as `as`. */
export async function confirmLink(
  url: string,
  opts: { cookie?: string | null; csrf?: string | null; origin?: string | null; reason?: string; as?: SignIn } = {},
): Promise<{ res: Response; html: string }> {
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
    ...(await signInHeaders(url, opts.as)),
  };
  if (opts.cookie) headers.cookie = `signoff_csrf=${opts.cookie}`;
  const origin = opts.origin === undefined ? new URL(url).origin : opts.origin;
  if (origin !== null) headers.origin = origin;
  const form = new URLSearchParams();
  if (opts.csrf) form.set("csrf", opts.csrf);
  if (opts.reason !== undefined) form.set("reason", opts.reason);
  const res = await send(new Request(url, { method: "POST", headers, body: form.toString() }));
  return { res, html: await res.text() };
}

/** GET the page, then press its button, as a person does (signed in as `as` both times). */
export async function openAndConfirm(url: string, extra: { reason?: string; as?: SignIn } = {}) {
  const page = await openLink(url, { as: extra.as });
  expect(page.res.status, page.html).toBe(200);
  return confirmLink(url, { cookie: page.cookie, csrf: page.csrf, ...extra });
}

/** The data-page attribute of a link page: confirm, decided, already_used, expired, not_pending, forbidden, invalid. */
export function pageKind(html: string): string | null {
  return /<main data-page="([a-z_]+)"/.exec(html)?.[1] ?? null;
}
