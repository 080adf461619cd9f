// Every configuration input of SPEC 3 checked into one Config, collecting all problems at once. Pure and free of
// Worker-only imports: the Worker (via load.ts) and the operator scripts (plain Node) both run it.
import { signingKeyProblem } from "../audit/signing.ts";
import type { ErrorDetail } from "../errors.ts";
import type { AccessConfig } from "../identity/access.ts";
import { fromBase64 } from "../lib/encoding.ts";
import { isLoopbackHost } from "../lib/hosts.ts";
import type { MailConfig } from "../mail/send.ts";
import { parseSecretKey, splitKeyList } from "../webhooks/signing-keys.ts";
import type { ApiKey } from "./api-keys.ts";
import { parseApiKeys } from "./api-keys.ts";
import type { Policy } from "./policy.ts";
import { isMailRecipient, parsePolicy } from "./policy.ts";
import { ConfigError, deepFreeze } from "./problems.ts";

/**
 * Every input, as the Worker's env or a script's merged vars and secrets supply it. `unknown` on purpose:
 * `[vars]` tables arrive parsed, `--var`/`.dev.vars`/secrets as strings, and anything may be missing.
 */
export interface ConfigEnv {
  POLICY?: unknown;
  API_KEYS?: unknown;
  SLACK_SIGNING_SECRET?: unknown;
  SLACK_BOT_TOKEN?: unknown;
  RUNNER_SECRET?: unknown;
  EVENTS_SECRET?: unknown;
  RUNNER_URL?: unknown;
  SLACK_API_BASE?: unknown;
  DISPATCH_MAX_ATTEMPTS?: unknown;
  DISPATCH_TIMEOUT_MS?: unknown;
  LINK_SECRET?: unknown;
  PUBLIC_URL?: unknown;
  EVENTS_SIGNING_KEYS?: unknown;
  RUNNER_SIGNING_KEYS?: unknown;
  SLACK_TEAM_ID?: unknown;
  ACCESS_TEAM_DOMAIN?: unknown;
  ACCESS_AUD?: unknown;
  ACCESS_JWKS_URL?: unknown;
  MAIL_API_URL?: unknown;
  MAIL_FROM?: unknown;
  MAIL_API_TOKEN?: unknown;
  AUDIT_SIGNING_KEY?: unknown;
}

/** Set with `wrangler secret put` (or `.dev.vars` locally); never in wrangler.toml. */
export const SECRET_NAMES = [
  "SLACK_SIGNING_SECRET",
  "SLACK_BOT_TOKEN",
  "RUNNER_SECRET",
  "EVENTS_SECRET",
  "API_KEYS",
  "LINK_SECRET",
  "EVENTS_SIGNING_KEYS",
  "RUNNER_SIGNING_KEYS",
  "MAIL_API_TOKEN",
  "AUDIT_SIGNING_KEY",
] as const;
/** `[vars]` in wrangler.toml. */
export const VAR_NAMES = [
  "RUNNER_URL",
  "SLACK_API_BASE",
  "POLICY",
  "DISPATCH_MAX_ATTEMPTS",
  "DISPATCH_TIMEOUT_MS",
  "PUBLIC_URL",
  "SLACK_TEAM_ID",
  "ACCESS_TEAM_DOMAIN",
  "ACCESS_AUD",
  "ACCESS_JWKS_URL",
  "MAIL_API_URL",
  "MAIL_FROM",
] as const;

export const CONFIG_INPUTS = [...VAR_NAMES, ...SECRET_NAMES] as const;
export type ConfigInput = (typeof CONFIG_INPUTS)[number];

export const DEFAULT_SLACK_API_BASE = "https://slack.com/api";
export const DEFAULT_DISPATCH_MAX_ATTEMPTS = 8;
export const DEFAULT_DISPATCH_TIMEOUT_MS = 10_000;
/** Standard Webhooks secrets: `whsec_` + base64 of at least this many bytes. */
export const MIN_WEBHOOK_SECRET_BYTES = 16;

export interface Config {
  policy: Policy;
  apiKeys: readonly ApiKey[];
  slackSigningSecret: string;
  /** `xoxb-…` */
  slackBotToken: string;
  /** `whsec_<base64>`, as Standard Webhooks libraries take it. */
  runnerSecret: string;
  /** `whsec_<base64>`: signs outcome events `v1`; null when only EVENTS_SIGNING_KEYS sign them. */
  eventsSecret: string | null;
  /** `whsk_<base64>` Ed25519 keys that sign outcome events `v1a` (every one signs; GET /v1/keys publishes them). */
  eventsSigningKeys: readonly string[];
  /** `whsk_<base64>` Ed25519 keys that also sign dispatches `v1a`, beside RUNNER_SECRET's `v1`. */
  runnerSigningKeys: readonly string[];
  runnerUrl: string;
  /** Without a trailing slash: `${slackApiBase}/chat.postMessage`. */
  slackApiBase: string;
  dispatchMaxAttempts: number;
  dispatchTimeoutMs: number;
  /** `whsec_<base64>`: signs the links of signed-link approvals and verification prompts; null when no action uses links. */
  linkSecret: string | null;
  /** `T…`: clicks from any other workspace (a Slack Connect channel) never count; null: not checked. */
  slackTeamId: string | null;
  /** Cloudflare Access in front of `/l/*`: who opens an approval link is verified at decision time (SPEC 12). */
  access: AccessConfig | null;
  /** An HTTPS mail API that delivers approval links to their recipients (Resend's shape: POST {from, to, …}). */
  mail: MailConfig | null;
  /** The Worker's public origin (`https://signoff.example.com`, no trailing slash), where links point; null like linkSecret. */
  publicUrl: string | null;
  /** `auditsk_<base64>`: the Ed25519 key that signs audit chain heads and checkpoints (SPEC 12; src/audit/signing.ts). */
  auditSigningKey: string;
}

export type ConfigCheck = { ok: true; config: Config } | { ok: false; problems: ErrorDetail[] };

/** Collects problems; every check returns a fallback so that the next input is still checked. */
class Problems {
  readonly list: ErrorDetail[] = [];
  add(path: string, message: string): void {
    this.list.push({ path, message });
  }
}

function isMissing(value: unknown): boolean {
  return value === undefined || value === null || value === "";
}

/** A secret: required, a string, no stray whitespace. Messages never include the value. */
function secret(name: string, value: unknown, problems: Problems): string | null {
  if (isMissing(value)) {
    problems.add(name, "is required");
    return null;
  }
  if (typeof value !== "string") {
    problems.add(name, "must be a string");
    return null;
  }
  if (value.trim() !== value) {
    // Typically the newline `echo … | wrangler secret put` adds: the secret would never verify anything.
    problems.add(name, "has leading or trailing whitespace (a newline from `echo`?); set it again without it");
    return null;
  }
  return value;
}

/** An optional list of `whsk_` Ed25519 keys, separated by whitespace. */
function signingKeyList(name: string, value: unknown, problems: Problems): string[] {
  if (isMissing(value)) return [];
  if (typeof value !== "string") {
    problems.add(name, "must be a string of whsk_ keys separated by spaces");
    return [];
  }
  const keys = splitKeyList(value);
  if (keys.length === 0) return [];
  const bad = keys.findIndex((key) => parseSecretKey(key) === null);
  if (bad >= 0) {
    problems.add(name, `key ${bad + 1} must be whsk_ followed by the base64 of a 32-byte Ed25519 seed`);
    return [];
  }
  if (new Set(keys).size !== keys.length) problems.add(name, "lists the same key twice");
  return keys;
}

function webhookSecret(name: string, value: unknown, problems: Problems): string | null {
  const text = secret(name, value, problems);
  if (text === null) return null;
  const bytes = text.startsWith("whsec_") ? fromBase64(text.slice("whsec_".length)) : null;
  if (bytes === null || text.length === "whsec_".length) {
    problems.add(name, "must be whsec_ followed by base64 (a Standard Webhooks secret)");
    return null;
  }
  if (bytes.length < MIN_WEBHOOK_SECRET_BYTES) {
    problems.add(name, `decodes to ${bytes.length} bytes; at least ${MIN_WEBHOOK_SECRET_BYTES} are needed`);
    return null;
  }
  return text;
}

/** A var that names one string: plain, or a string of JSON (`"https://…"`) as `--var` may give it. */
function varString(value: unknown): unknown {
  if (typeof value === "string" && value.trimStart().startsWith('"')) {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return value;
    }
  }
  return value;
}

function url(name: string, raw: unknown, fallback: string | null, problems: Problems, isBase = false): string | null {
  const value = varString(raw);
  if (isMissing(value)) {
    if (fallback === null) problems.add(name, "is required");
    return fallback;
  }
  if (typeof value !== "string") {
    problems.add(name, "must be a URL string");
    return null;
  }
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    problems.add(name, "is not an absolute URL");
    return null;
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    problems.add(name, "must be an http(s) URL");
    return null;
  }
  if (parsed.username !== "" || parsed.password !== "") {
    problems.add(name, "must not contain user:password@");
    return null;
  }
  return isBase ? value.replace(/\/+$/, "") : value;
}

/** PUBLIC_URL: an origin (https; http only on loopback, for local runs), without path, query or credentials. */
function publicOrigin(name: string, raw: unknown, required: string | null, problems: Problems): string | null {
  const value = varString(raw);
  if (isMissing(value)) {
    if (required !== null) problems.add(name, `is required ${required}`);
    return null;
  }
  const checked = url(name, value, null, problems, true);
  if (checked === null) return null;
  const parsed = new URL(checked);
  if (parsed.protocol !== "https:" && !isLoopbackHost(parsed.hostname)) {
    problems.add(name, "must use https (plain http only on localhost): people open links to it");
    return null;
  }
  if (parsed.pathname !== "/" || parsed.search !== "" || parsed.hash !== "") {
    problems.add(name, "must be the Worker's origin only (https://host[:port]), without a path, query or fragment");
    return null;
  }
  return parsed.origin;
}

function integer(name: string, raw: unknown, fallback: number, min: number, max: number, problems: Problems): number {
  const value = varString(raw);
  if (isMissing(value)) return fallback;
  const number = typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof number !== "number" || !Number.isSafeInteger(number)) {
    problems.add(name, "must be an integer");
    return fallback;
  }
  if (number < min || number > max) {
    problems.add(name, `must be from ${min} to ${max}`);
    return fallback;
  }
  return number;
}

function parsed<T>(parse: () => T, problems: Problems): T | null {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const detail of error.details) problems.add(detail.path, detail.message);
    return null;
  }
}

/** An optional var that, when given, must match `pattern`. */
function optionalMatch(name: string, raw: unknown, pattern: RegExp, what: string, problems: Problems): string | null {
  const value = varString(raw);
  if (isMissing(value)) return null;
  if (typeof value !== "string" || !pattern.test(value)) {
    problems.add(name, `must be ${what}`);
    return null;
  }
  return value;
}

/** ACCESS_TEAM_DOMAIN, ACCESS_AUD (and ACCESS_JWKS_URL): all or nothing, required when `needed` says why. */
function accessConfig(env: ConfigEnv, needed: string | null, problems: Problems): AccessConfig | null {
  const given = !isMissing(env.ACCESS_TEAM_DOMAIN) || !isMissing(env.ACCESS_AUD) || !isMissing(env.ACCESS_JWKS_URL);
  if (!given && needed === null) return null;
  const why = needed ?? "with the other ACCESS_ settings";
  const issuer = publicOrigin("ACCESS_TEAM_DOMAIN", env.ACCESS_TEAM_DOMAIN, why, problems);
  const audience = varString(env.ACCESS_AUD);
  if (isMissing(audience)) problems.add("ACCESS_AUD", `is required ${why}: the Access application's AUD tag`);
  else if (typeof audience !== "string" || !/^[A-Za-z0-9._:-]{8,256}$/.test(audience))
    problems.add("ACCESS_AUD", "must be the Access application's AUD tag (64 hex digits in Cloudflare's dashboard)");
  const jwksUrl = isMissing(env.ACCESS_JWKS_URL)
    ? issuer === null
      ? null
      : `${issuer}/cdn-cgi/access/certs`
    : url("ACCESS_JWKS_URL", env.ACCESS_JWKS_URL, null, problems);
  if (issuer === null || jwksUrl === null || typeof audience !== "string" || isMissing(audience)) return null;
  return { issuer, audience, jwksUrl };
}

/** MAIL_API_URL, MAIL_FROM and the MAIL_API_TOKEN secret: all or nothing, required when `needed` says why. */
function mailConfig(env: ConfigEnv, needed: string | null, problems: Problems): MailConfig | null {
  const given = !isMissing(env.MAIL_API_URL) || !isMissing(env.MAIL_FROM) || !isMissing(env.MAIL_API_TOKEN);
  if (!given && needed === null) return null;
  const why = needed ?? "with the other MAIL_ settings";
  const endpoint = isMissing(env.MAIL_API_URL) ? null : url("MAIL_API_URL", env.MAIL_API_URL, null, problems);
  if (isMissing(env.MAIL_API_URL)) problems.add("MAIL_API_URL", `is required ${why}`);
  const from = varString(env.MAIL_FROM);
  if (isMissing(from))
    problems.add("MAIL_FROM", `is required ${why}: the sender, e.g. "signoff <signoff@example.com>"`);
  else if (typeof from !== "string" || !/@/.test(from) || from.length > 320)
    problems.add("MAIL_FROM", "must be an e-mail sender");
  const token = isMissing(env.MAIL_API_TOKEN) ? null : secret("MAIL_API_TOKEN", env.MAIL_API_TOKEN, problems);
  if (isMissing(env.MAIL_API_TOKEN)) problems.add("MAIL_API_TOKEN", `is required ${why}`);
  if (endpoint === null || token === null || typeof from !== "string" || isMissing(from)) return null;
  return { url: endpoint, token, from };
}

/** Checks every input of `env`; either the whole Config or every problem, each naming its field. */
export function checkConfig(env: ConfigEnv): ConfigCheck {
  const problems = new Problems();
  const policy = parsed(() => parsePolicy(env.POLICY), problems);
  const apiKeys = parsed(() => parseApiKeys(env.API_KEYS), problems);
  const slackSigningSecret = secret("SLACK_SIGNING_SECRET", env.SLACK_SIGNING_SECRET, problems);
  let slackBotToken = secret("SLACK_BOT_TOKEN", env.SLACK_BOT_TOKEN, problems);
  if (slackBotToken !== null && !/^xoxb-./.test(slackBotToken)) {
    problems.add("SLACK_BOT_TOKEN", "must be a Slack bot token (xoxb-…)");
    slackBotToken = null;
  }
  const runnerSecret = webhookSecret("RUNNER_SECRET", env.RUNNER_SECRET, problems);
  const eventsSigningKeys = signingKeyList("EVENTS_SIGNING_KEYS", env.EVENTS_SIGNING_KEYS, problems);
  const runnerSigningKeys = signingKeyList("RUNNER_SIGNING_KEYS", env.RUNNER_SIGNING_KEYS, problems);
  if (eventsSigningKeys.some((key) => runnerSigningKeys.includes(key))) {
    // An outcome event signed with a runner key would verify as a dispatch at the runner.
    problems.add("RUNNER_SIGNING_KEYS", "must not share a key with EVENTS_SIGNING_KEYS");
  }
  // With Ed25519 keys for events the shared secret is optional: every listener holding it could forge v1 events
  // for every other listener, which is why the keys exist.
  const eventsSecret =
    eventsSigningKeys.length > 0 && isMissing(env.EVENTS_SECRET)
      ? null
      : webhookSecret("EVENTS_SECRET", env.EVENTS_SECRET, problems);
  if (runnerSecret !== null && runnerSecret === eventsSecret) {
    // Proposers hold EVENTS_SECRET to verify outcome events; with the runner's secret they could sign dispatches.
    problems.add("EVENTS_SECRET", "must differ from RUNNER_SECRET: proposers verify events with it");
  }
  const runnerUrl = url("RUNNER_URL", env.RUNNER_URL, null, problems);
  const slackApiBase = url("SLACK_API_BASE", env.SLACK_API_BASE, DEFAULT_SLACK_API_BASE, problems, true);
  const dispatchMaxAttempts = integer(
    "DISPATCH_MAX_ATTEMPTS",
    env.DISPATCH_MAX_ATTEMPTS,
    DEFAULT_DISPATCH_MAX_ATTEMPTS,
    1,
    50,
    problems,
  );
  const dispatchTimeoutMs = integer(
    "DISPATCH_TIMEOUT_MS",
    env.DISPATCH_TIMEOUT_MS,
    DEFAULT_DISPATCH_TIMEOUT_MS,
    100,
    300_000,
    problems,
  );
  // Signed links: both inputs are required as soon as one action enables links, and checked whenever given.
  const linkAction = policy ? Object.values(policy.actions).find((a) => a.links) : undefined;
  const needed = linkAction ? `when links are enabled (POLICY.actions["${linkAction.type}"].links)` : null;
  let linkSecret: string | null = null;
  if (needed !== null || !isMissing(env.LINK_SECRET)) {
    if (isMissing(env.LINK_SECRET)) problems.add("LINK_SECRET", `is required ${needed}`);
    else linkSecret = webhookSecret("LINK_SECRET", env.LINK_SECRET, problems);
  }
  if (linkSecret !== null && (linkSecret === runnerSecret || linkSecret === eventsSecret)) {
    // Whoever holds the runner's or the proposers' secret could otherwise mint links that decide.
    problems.add("LINK_SECRET", "must differ from RUNNER_SECRET and EVENTS_SECRET: it alone may mint links");
    linkSecret = null;
  }
  const publicUrl = publicOrigin("PUBLIC_URL", env.PUBLIC_URL, needed, problems);
  // Required, like the other secrets: without it the audit log's heads go unsigned and SPEC 12 silently fails.
  let auditSigningKey = secret("AUDIT_SIGNING_KEY", env.AUDIT_SIGNING_KEY, problems);
  const keyProblem = auditSigningKey === null ? null : signingKeyProblem(auditSigningKey);
  if (keyProblem !== null) {
    problems.add("AUDIT_SIGNING_KEY", keyProblem);
    auditSigningKey = null;
  }

  const slackTeamId = optionalMatch(
    "SLACK_TEAM_ID",
    env.SLACK_TEAM_ID,
    /^T[A-Z0-9]{2,}$/,
    "a Slack team id (T…)",
    problems,
  );
  // Approval links decide only for the person signed in (SPEC 12): Access is required once one action has them,
  // and signoff mails them itself, so a mail API is required once one has e-mail recipients.
  const approvalLinks = policy ? Object.values(policy.actions).find((a) => a.links && !a.verify) : undefined;
  const identityNeeded = approvalLinks
    ? `when an approval action enables links (POLICY.actions["${approvalLinks.type}"].links)`
    : null;
  const access = accessConfig(env, identityNeeded, problems);
  const mailed = policy
    ? Object.values(policy.actions).find((a) => !a.verify && a.links?.recipients.some(isMailRecipient))
    : undefined;
  const mail = mailConfig(
    env,
    mailed ? `when approval links go to e-mail recipients (POLICY.actions["${mailed.type}"])` : null,
    problems,
  );

  if (
    problems.list.length > 0 ||
    policy === null ||
    apiKeys === null ||
    slackSigningSecret === null ||
    slackBotToken === null ||
    runnerSecret === null ||
    (eventsSecret === null && eventsSigningKeys.length === 0) ||
    runnerUrl === null ||
    slackApiBase === null ||
    auditSigningKey === null
  ) {
    return { ok: false, problems: problems.list };
  }
  return {
    ok: true,
    config: deepFreeze({
      policy,
      apiKeys,
      slackSigningSecret,
      slackBotToken,
      runnerSecret,
      eventsSecret,
      eventsSigningKeys,
      runnerSigningKeys,
      runnerUrl,
      slackApiBase,
      dispatchMaxAttempts,
      dispatchTimeoutMs,
      linkSecret,
      publicUrl,
      slackTeamId,
      access,
      mail,
      auditSigningKey,
    }),
  };
}
