// Proposer API keys (SPEC 3 `API_KEYS`, SPEC 4 auth): stored only as SHA-256 hashes, matched in constant time,
// with the pure questions asked of a key (scope, action pattern, callback host) and the minting of new ones.
import { z } from "zod";
import type { ErrorDetail } from "../errors.ts";
import { randomToken, sha256Hex, timingSafeEqualHex } from "../lib/crypto.ts";
import { formatPath, zodDetails } from "../lib/details.ts";
import { isLoopbackHost } from "../lib/hosts.ts";
import { isActionPattern, patternCovers } from "./action-patterns.ts";
import { ConfigError, decodeJson, deepFreeze, explainIssue } from "./problems.ts";

export const SCOPES = ["proposals:write", "proposals:read", "audit:read"] as const;
export type Scope = (typeof SCOPES)[number];

/** Key names appear in the audit log as `key:<name>`. */
export const KEY_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** `so_` + 32 random bytes as base64url (43 characters). */
export const TOKEN_PATTERN = /^so_[A-Za-z0-9_-]{43}$/;
const TOKEN_PREFIX = "so_";
/** Longer bearer tokens are refused before hashing; a real one is 46 characters. */
const MAX_TOKEN_LENGTH = 512;

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** `[::1]` and `::1` name the same host; URL.hostname keeps the brackets, lists usually don't. */
function bareHost(host: string): string {
  return host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
}

function isIpv6(host: string): boolean {
  if (!host.includes(":")) return false;
  try {
    return new URL(`https://[${host}]/`).hostname !== "";
  } catch {
    return false;
  }
}

const entrySchema = z.strictObject({
  name: z.string().regex(KEY_NAME_PATTERN, "must be 1-64 of A-Z a-z 0-9 _ . - (it appears in the audit log)"),
  sha256: z
    .string()
    .refine((s) => !s.startsWith(TOKEN_PREFIX), {
      error: "holds a token, not its SHA-256: API_KEYS must never contain tokens",
      abort: true,
    })
    .regex(
      /^[0-9a-f]{64}$/,
      "must be the SHA-256 of the token as 64 lowercase hex digits (`npm run key:new` prints it)",
    ),
  scopes: z.array(z.enum(SCOPES)).min(1),
  actions: z.array(z.string().refine(isActionPattern, "must be an action type, `prefix.*` or `*`")).default([]),
  callback_hosts: z
    .array(
      z
        .string()
        .transform(bareHost)
        .refine(
          (h) => HOSTNAME.test(h) || isIpv6(h),
          "must be a host name or IP address alone: no scheme, port, path or wildcard",
        ),
    )
    .default([]),
});
const keysSchema = z.array(z.unknown());

export interface ApiKeyEntry {
  name: string;
  sha256: string;
  scopes: Scope[];
  actions: string[];
  callback_hosts: string[];
}
/** A parsed key, defaults applied and callback hosts lowercased; frozen. */
export type ApiKey = Readonly<ApiKeyEntry>;

const VOCABULARY = Object.keys(entrySchema.shape);

function entryDetails(raw: unknown, root: string): { entry?: ApiKeyEntry; details: ErrorDetail[] } {
  const parsed = entrySchema.safeParse(raw, { error: explainIssue });
  if (!parsed.success) return { details: zodDetails(root, parsed.error.issues, VOCABULARY) };
  return { entry: parsed.data, details: [] };
}

/**
 * Parses `API_KEYS` (an array, or a string of JSON). Throws a ConfigError with every problem (`API_KEYS[1].name`);
 * messages never repeat a value from the input, which is a secret.
 */
export function parseApiKeys(input: unknown, root = "API_KEYS"): ApiKey[] {
  const decoded = decodeJson(input);
  if (!decoded.ok) throw new ConfigError(`${root} ${decoded.message}`, [{ path: root, message: decoded.message }]);
  if (decoded.value === undefined || decoded.value === null || decoded.value === "") {
    throw new ConfigError(`${root} is required`, [{ path: root, message: "is required" }]);
  }
  const list = keysSchema.safeParse(decoded.value, { error: explainIssue });
  if (!list.success) {
    throw new ConfigError(`${root} must be a JSON array of keys`, [
      { path: root, message: "must be a JSON array of key entries" },
    ]);
  }
  const details: ErrorDetail[] = [];
  const keys: ApiKeyEntry[] = [];
  list.data.forEach((raw, i) => {
    const result = entryDetails(raw, formatPath(root, [i]));
    details.push(...result.details);
    if (!result.entry) return;
    const entry = result.entry;
    if (keys.some((k) => k.name === entry.name)) {
      details.push({ path: formatPath(root, [i, "name"]), message: "is used by an earlier key; names must be unique" });
    }
    if (keys.some((k) => k.sha256 === entry.sha256)) {
      details.push({
        path: formatPath(root, [i, "sha256"]),
        message: "is the same as an earlier key's; every key needs its own token",
      });
    }
    keys.push(entry);
  });
  if (details.length > 0) throw new ConfigError(`${root} has ${details.length} problem(s)`, details);
  return deepFreeze(keys);
}

/**
 * The key whose hash matches the `Bearer` token, or null. Every key's hash is compared, in constant time and
 * without stopping at a match, so the timing tells nothing about which key (or how many) were checked.
 */
export async function authenticate(
  keys: readonly ApiKey[],
  authorization: string | null | undefined,
): Promise<ApiKey | null> {
  const match = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/i.exec(authorization ?? "");
  const token = match?.[1];
  if (!token || token.length > MAX_TOKEN_LENGTH) return null;
  const digest = await sha256Hex(token);
  let found: ApiKey | null = null;
  for (const key of keys) {
    const equal = timingSafeEqualHex(digest, key.sha256);
    found = equal && found === null ? key : found;
  }
  return found;
}

export function hasScope(key: ApiKey, scope: Scope): boolean {
  return key.scopes.includes(scope);
}

/** Exact names, `prefix.*` (any type starting with `prefix.`), or `*`. */
export function keyAllowsAction(key: ApiKey, actionType: string): boolean {
  return key.actions.some((pattern) => patternCovers(pattern, actionType));
}

export type CallbackCheck = { ok: true } | { ok: false; message: string };

/**
 * Whether a proposal created with `key` may name `url` as its callback_url: https (plain http only to a
 * loopback host), no credentials in the URL, and a host listed in the key's callback_hosts (SPEC 3).
 */
export function callbackAllowed(key: ApiKey, url: string): CallbackCheck {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, message: "is not an absolute URL" };
  }
  if (parsed.username !== "" || parsed.password !== "") {
    return { ok: false, message: "must not carry credentials (user:password@); events are signed with EVENTS_SECRET" };
  }
  const host = bareHost(parsed.hostname);
  if (parsed.protocol !== "https:" && !(parsed.protocol === "http:" && isLoopbackHost(host))) {
    return { ok: false, message: "must use https (plain http only to a loopback host)" };
  }
  if (!key.callback_hosts.includes(host)) {
    return { ok: false, message: `host ${host} is not in the callback_hosts of key "${key.name}"` };
  }
  return { ok: true };
}

/**
 * Mints a key: the token (shown once, never stored) and its API_KEYS entry. Throws a ConfigError (paths under
 * `key`) when the name, scopes, action patterns or hosts would not pass parseApiKeys.
 */
export async function newApiKey(
  name: string,
  scopes: readonly string[],
  actions: readonly string[],
  callbackHosts: readonly string[],
): Promise<{ token: string; entry: ApiKeyEntry }> {
  const token = `${TOKEN_PREFIX}${randomToken(32)}`;
  const result = entryDetails(
    {
      name,
      sha256: await sha256Hex(token),
      scopes: [...scopes],
      actions: [...actions],
      callback_hosts: [...callbackHosts],
    },
    "key",
  );
  if (!result.entry) throw new ConfigError(`the key has ${result.details.length} problem(s)`, result.details);
  return { token, entry: result.entry };
}
