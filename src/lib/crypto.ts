// Hashing, HMAC and constant-time comparison on WebCrypto: the only crypto primitives signoff uses.
import { fromHex, toBase64Url, toHex, utf8 } from "./encoding.ts";

export async function sha256Hex(data: string | Uint8Array<ArrayBuffer>): Promise<string> {
  const bytes = typeof data === "string" ? utf8(data) : data;
  return toHex(await crypto.subtle.digest("SHA-256", bytes));
}

export function importHmacKey(secret: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

const hmacKeys = new Map<string, Promise<CryptoKey>>();

/**
 * importHmacKey, once per secret and isolate: the few configured secrets (Slack's signing secret, the runner's and
 * webhooks' secrets, LINK_SECRET) sign or verify every request, and an import costs about as much as the MAC itself
 * and one more turn of the event loop. Bounded, since secrets rotate; a failed import is not kept.
 */
export function hmacKeyOf(secret: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  const id = toBase64Url(secret);
  let key = hmacKeys.get(id);
  if (!key) {
    if (hmacKeys.size >= 16) hmacKeys.clear();
    key = importHmacKey(secret);
    key.catch(() => hmacKeys.delete(id));
    hmacKeys.set(id, key);
  }
  return key;
}

export async function hmacSha256(key: CryptoKey, message: string): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8(message)));
}

/** Verifies an HMAC-SHA256 tag in constant time (WebCrypto's verify does not short-circuit). */
export function hmacSha256Verify(key: CryptoKey, tag: Uint8Array<ArrayBuffer>, message: string): Promise<boolean> {
  return crypto.subtle.verify("HMAC", key, tag, utf8(message));
}

/** Constant-time equality of two equal-length byte strings; different lengths are unequal. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Constant-time equality of two hex digests (e.g. stored SHA-256 of an API key). */
export function timingSafeEqualHex(a: string, b: string): boolean {
  const left = fromHex(a.toLowerCase());
  const right = fromHex(b.toLowerCase());
  if (!left || !right) return false;
  return timingSafeEqual(left, right);
}

/** `bytes` random bytes as unpadded base64url: unguessable tokens and ids. */
export function randomToken(bytes = 32): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** A fresh single-use nonce (a signed link's `n`): 16 random bytes, base64url, 22 characters. */
export function newNonce(): string {
  return randomToken(16);
}
