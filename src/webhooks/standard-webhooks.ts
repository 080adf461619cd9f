// Standard Webhooks (https://www.standardwebhooks.com/) signing and verification on WebCrypto: symmetric `v1`
// (HMAC-SHA256 with a shared `whsec_` secret) and asymmetric `v1a` (Ed25519, verified with a `whpk_` public key).
import { hmacKeyOf, hmacSha256, timingSafeEqual } from "../lib/crypto.ts";
import { importEd25519PublicKey, signEd25519, verifyEd25519 } from "../lib/ed25519.ts";
import { fromBase64, toBase64 } from "../lib/encoding.ts";
import { parsePublicKey, type SigningKey } from "./signing-keys.ts";

const SECRET_PREFIX = "whsec_";
/** Canonical, padded standard base64 (RFC 4648 §4) — what the reference libraries accept. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** A Unix time in seconds written the one way every verifier reads the same (no sign, no leading zeros). */
const TIMESTAMP = /^(?:0|[1-9][0-9]{0,15})$/;
/** HMAC-SHA256 tags are 32 bytes; anything else can never match. */
const TAG_BYTES = 32;
/**
 * Each candidate costs one decode and one compare (the HMAC is computed once), but a header
 * stuffed with thousands of entries is still refused rather than looped over.
 */
const MAX_SIGNATURES = 32;

export type WebhookHeaders = {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
};

export type WebhookFailureReason =
  | "missing_headers"
  | "bad_timestamp"
  | "stale"
  | "future"
  | "bad_signature"
  | "bad_secret";

export type WebhookVerification =
  | { ok: true; id: string; timestamp: number }
  | { ok: false; reason: WebhookFailureReason };

/** The key bytes of a `whsec_<base64>` secret, or null for anything else (including an empty key). */
export function parseSecret(secret: string): Uint8Array<ArrayBuffer> | null {
  if (typeof secret !== "string" || !secret.startsWith(SECRET_PREFIX)) return null;
  const encoded = secret.slice(SECRET_PREFIX.length);
  // atob is forgiving (whitespace, missing padding); the regex keeps us exactly as strict as
  // the `standardwebhooks` library, so a secret signoff accepts is one every runner accepts.
  if (encoded.length === 0 || !BASE64.test(encoded)) return null;
  const key = fromBase64(encoded);
  return key && key.length > 0 ? key : null;
}

function signedContent(msgId: string, timestamp: string, body: string): string {
  return `${msgId}.${timestamp}.${body}`;
}

/**
 * The three Standard Webhooks headers for one delivery: a `v1` signature with `secret` (when given) and a `v1a`
 * signature with each of `keys`, space-separated as the spec allows, so listeners can verify either way and keys
 * can rotate with overlap. Throws on a malformed secret, id or timestamp, or when nothing would sign: those come
 * from signoff's own configuration and code, never from a caller.
 */
export async function signWebhook(
  secret: string | null,
  msgId: string,
  timestampSeconds: number,
  body: string,
  keys: readonly SigningKey[] = [],
): Promise<WebhookHeaders> {
  const key = secret === null ? null : parseSecret(secret);
  if (secret !== null && !key) throw new TypeError("webhook secret must be whsec_ followed by base64");
  if (key === null && keys.length === 0) throw new TypeError("a webhook needs a secret or a signing key");
  if (msgId.length === 0 || /\s/.test(msgId)) throw new TypeError("webhook id must be non-empty without whitespace");
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) {
    throw new TypeError("webhook timestamp must be a non-negative integer number of seconds");
  }
  const timestamp = String(timestampSeconds);
  const content = signedContent(msgId, timestamp, body);
  const signatures: string[] = [];
  if (key) signatures.push(`v1,${toBase64(await hmacSha256(await hmacKeyOf(key), content))}`);
  for (const signing of keys) signatures.push(`v1a,${await signEd25519(signing.privateKey, content)}`);
  return {
    "webhook-id": msgId,
    "webhook-timestamp": timestamp,
    "webhook-signature": signatures.join(" "),
  };
}

/** A delivery whose headers and timestamp passed; what is left is to match one of its signatures. */
type Envelope = { ok: true; id: string; timestamp: number; content: string; candidates: Array<[string, string]> };

/** The checks every version shares: the three headers present, the timestamp well-formed and fresh. */
function openEnvelope(
  headers: Headers,
  body: string,
  nowSeconds: number,
  toleranceSeconds: number,
): Envelope | { ok: false; reason: WebhookFailureReason } {
  // A NaN clock would make every age comparison false and so accept any timestamp: fail closed.
  if (!Number.isFinite(nowSeconds) || !Number.isFinite(toleranceSeconds) || toleranceSeconds < 0) {
    return { ok: false, reason: "bad_timestamp" };
  }
  const id = headers.get("webhook-id");
  const timestampHeader = headers.get("webhook-timestamp");
  const signatureHeader = headers.get("webhook-signature");
  if (!id || !timestampHeader || !signatureHeader) return { ok: false, reason: "missing_headers" };

  if (!TIMESTAMP.test(timestampHeader)) return { ok: false, reason: "bad_timestamp" };
  const timestamp = Number(timestampHeader);
  if (!Number.isSafeInteger(timestamp)) return { ok: false, reason: "bad_timestamp" };
  if (nowSeconds - timestamp > toleranceSeconds) return { ok: false, reason: "stale" };
  if (timestamp - nowSeconds > toleranceSeconds) return { ok: false, reason: "future" };

  const entries = signatureHeader.split(" ").filter((entry) => entry.length > 0);
  if (entries.length === 0 || entries.length > MAX_SIGNATURES) return { ok: false, reason: "bad_signature" };
  const candidates: Array<[string, string]> = [];
  for (const entry of entries) {
    const comma = entry.indexOf(",");
    if (comma < 0) continue;
    const encoded = entry.slice(comma + 1);
    if (BASE64.test(encoded)) candidates.push([entry.slice(0, comma), encoded]);
  }
  return { ok: true, id, timestamp, content: signedContent(id, timestampHeader, body), candidates };
}

/**
 * Verifies a delivery against `secret`. `webhook-signature` may hold several space-separated
 * `v1,<base64>` entries (secret rotation); any one matching passes. The timestamp must be
 * within `toleranceSeconds` of `nowSeconds` either way. Never throws.
 */
export async function verifyWebhook(
  secret: string,
  headers: Headers,
  body: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): Promise<WebhookVerification> {
  try {
    const key = parseSecret(secret);
    if (!key) return { ok: false, reason: "bad_secret" };
    const envelope = openEnvelope(headers, body, nowSeconds, toleranceSeconds);
    if (!envelope.ok) return envelope;
    // One HMAC for the message, then a constant-time compare per candidate: the cost does not
    // grow with the body size times the number of entries.
    const expected = await hmacSha256(await hmacKeyOf(key), envelope.content);
    let matched = false;
    for (const [version, encoded] of envelope.candidates) {
      // Other versions (v1a is asymmetric ed25519) are skipped, as the spec says, not failed.
      if (version !== "v1") continue;
      const tag = fromBase64(encoded);
      if (tag && tag.length === TAG_BYTES && timingSafeEqual(tag, expected)) matched = true;
    }
    return matched
      ? { ok: true, id: envelope.id, timestamp: envelope.timestamp }
      : { ok: false, reason: "bad_signature" };
  } catch {
    // WebCrypto failures or a hostile Headers implementation: a refusal, never an exception.
    return { ok: false, reason: "bad_signature" };
  }
}

/**
 * Verifies a delivery's `v1a` (Ed25519) signatures against any of `publicKeys` (`whpk_…`, e.g. from GET /v1/keys):
 * what a listener does that must not be able to sign. Same header and timestamp rules as verifyWebhook.
 */
export async function verifyWebhookPublic(
  publicKeys: readonly string[],
  headers: Headers,
  body: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): Promise<WebhookVerification> {
  try {
    const raw = publicKeys.map(parsePublicKey);
    if (raw.length === 0 || raw.some((key) => key === null)) return { ok: false, reason: "bad_secret" };
    const envelope = openEnvelope(headers, body, nowSeconds, toleranceSeconds);
    if (!envelope.ok) return envelope;
    const keys = await Promise.all(raw.map((key) => importEd25519PublicKey(key!)));
    for (const [version, encoded] of envelope.candidates) {
      if (version !== "v1a") continue;
      for (const key of keys) {
        if (await verifyEd25519(key, encoded, envelope.content)) {
          return { ok: true, id: envelope.id, timestamp: envelope.timestamp };
        }
      }
    }
    return { ok: false, reason: "bad_signature" };
  } catch {
    return { ok: false, reason: "bad_signature" };
  }
}
