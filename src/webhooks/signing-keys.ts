// Ed25519 signing keys for Standard Webhooks' asymmetric `v1a` signatures: `whsk_<base64>` secret keys in config,
// `whpk_<base64>` public keys that GET /v1/keys publishes, so a listener can verify without being able to sign.
import { sha256Hex } from "../lib/crypto.ts";
import { fromBase64, fromBase64Url, toBase64, utf8 } from "../lib/encoding.ts";

export const SECRET_KEY_PREFIX = "whsk_";
export const PUBLIC_KEY_PREFIX = "whpk_";
const SEED_BYTES = 32;
const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
/** PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410): WebCrypto imports private keys only this way. */
const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/** One key that signs: the private half stays in the Worker, the public half is published with its id. */
export interface SigningKey {
  /** A short, stable id of the public key (`ed25519:<16 hex>`), so listeners can tell keys apart while rotating. */
  kid: string;
  /** `whpk_<base64 of the 32-byte public key>` */
  publicKey: string;
  /** The same 32 bytes, raw (a JWK's `x` is their base64url). */
  rawPublicKey: Uint8Array<ArrayBuffer>;
  privateKey: CryptoKey;
}

/**
 * The 32-byte seed of a `whsk_` key, or null for anything else. Accepts the seed alone or the 64 bytes of
 * seed followed by the public key (how libsodium and some Standard Webhooks tools write secret keys).
 */
export function parseSecretKey(text: string): Uint8Array<ArrayBuffer> | null {
  if (typeof text !== "string" || !text.startsWith(SECRET_KEY_PREFIX)) return null;
  const bytes = fromBase64(text.slice(SECRET_KEY_PREFIX.length));
  if (!bytes || (bytes.length !== SEED_BYTES && bytes.length !== 2 * SEED_BYTES)) return null;
  return bytes.slice(0, SEED_BYTES);
}

/** The raw public key of a `whpk_` key, or null. */
export function parsePublicKey(text: string): Uint8Array<ArrayBuffer> | null {
  if (typeof text !== "string" || !text.startsWith(PUBLIC_KEY_PREFIX)) return null;
  const bytes = fromBase64(text.slice(PUBLIC_KEY_PREFIX.length));
  return bytes && bytes.length === PUBLIC_KEY_BYTES ? bytes : null;
}

/** Config lists keys separated by whitespace: the first is the newest by convention, every one signs. */
export function splitKeyList(value: string): string[] {
  return value.split(/\s+/).filter((part) => part.length > 0);
}

/** A fresh `whsk_` key: 32 random bytes are an Ed25519 seed as they are. */
export function newSigningKey(): string {
  return `${SECRET_KEY_PREFIX}${toBase64(crypto.getRandomValues(new Uint8Array(SEED_BYTES)))}`;
}

/** Imports a `whsk_` key (already checked with parseSecretKey) and derives its public half and id. */
export async function importSigningKey(secretKey: string): Promise<SigningKey> {
  const seed = parseSecretKey(secretKey);
  if (!seed) throw new TypeError("signing key must be whsk_ followed by the base64 of a 32-byte Ed25519 seed");
  const pkcs8 = new Uint8Array(PKCS8_PREFIX.length + SEED_BYTES);
  pkcs8.set(PKCS8_PREFIX);
  pkcs8.set(seed, PKCS8_PREFIX.length);
  // Extractable once, here, only to read the public half (JWK `x`); the key that signs is imported without it.
  const extractable = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
  const jwk = (await crypto.subtle.exportKey("jwk", extractable)) as JsonWebKey;
  const raw = jwk.x ? fromBase64Url(jwk.x) : null;
  if (!raw || raw.length !== PUBLIC_KEY_BYTES) throw new TypeError("could not derive the Ed25519 public key");
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
  return { kid: await keyId(raw), publicKey: `${PUBLIC_KEY_PREFIX}${toBase64(raw)}`, rawPublicKey: raw, privateKey };
}

/** `ed25519:` and the first 16 hex digits of the SHA-256 of the raw public key. */
export async function keyId(rawPublicKey: Uint8Array<ArrayBuffer>): Promise<string> {
  return `ed25519:${(await sha256Hex(rawPublicKey)).slice(0, 16)}`;
}

export async function signEd25519(key: SigningKey, message: string): Promise<string> {
  return toBase64(await crypto.subtle.sign("Ed25519", key.privateKey, utf8(message)));
}

/** Whether `signature` (base64) is `publicKey`'s (raw bytes) Ed25519 signature of `message`. Never throws. */
export async function verifyEd25519(
  publicKey: Uint8Array<ArrayBuffer>,
  signature: string,
  message: string,
): Promise<boolean> {
  try {
    const bytes = fromBase64(signature);
    if (!bytes || bytes.length !== SIGNATURE_BYTES) return false;
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify("Ed25519", key, bytes, utf8(message));
  } catch {
    return false;
  }
}

const imported = new Map<string, Promise<SigningKey>>();

/** The imported keys of a configured list, imported once per isolate (an import costs more than a signature). */
export function signingKeys(list: readonly string[]): Promise<SigningKey[]> {
  return Promise.all(
    list.map((secretKey) => {
      let key = imported.get(secretKey);
      if (!key) {
        key = importSigningKey(secretKey);
        imported.set(secretKey, key);
      }
      return key;
    }),
  );
}
