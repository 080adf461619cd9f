// Ed25519 on WebCrypto, for the two places signoff signs with a key only the Worker holds: webhooks (`v1a`) and
// the audit log's chain heads. Keys are 32-byte seeds (RFC 8032); verifiers need only the 32-byte public key.
import { sha256Hex } from "./crypto.ts";
import { fromBase64, fromBase64Url, toBase64, utf8 } from "./encoding.ts";

export const ED25519_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
const ED25519 = { name: "Ed25519" } as const;
/** An Ed25519 private key in PKCS #8 is this fixed DER header and the seed (RFC 8410 §7): WebCrypto imports no raw seed. */
const PKCS8_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

export interface Ed25519KeyPair {
  privateKey: CryptoKey;
  publicKey: Uint8Array<ArrayBuffer>;
}

/** Imports a 32-byte seed to sign with, and derives its public key. */
export async function importEd25519Seed(seed: Uint8Array<ArrayBuffer>): Promise<Ed25519KeyPair> {
  if (seed.length !== ED25519_KEY_BYTES) throw new TypeError("an Ed25519 seed is 32 bytes");
  const der = new Uint8Array(PKCS8_PREFIX.length + ED25519_KEY_BYTES);
  der.set(PKCS8_PREFIX);
  der.set(seed, PKCS8_PREFIX.length);
  // Extractable once, here, only to read the public half (JWK `x`); the key that signs is imported without it.
  const extractable = await crypto.subtle.importKey("pkcs8", der, ED25519, true, ["sign"]);
  const jwk = (await crypto.subtle.exportKey("jwk", extractable)) as JsonWebKey;
  const publicKey = jwk.x ? fromBase64Url(jwk.x) : null;
  if (!publicKey || publicKey.length !== ED25519_KEY_BYTES) throw new TypeError("no Ed25519 public key derived");
  const privateKey = await crypto.subtle.importKey("pkcs8", der, ED25519, false, ["sign"]);
  return { privateKey, publicKey };
}

/** The base64 Ed25519 signature of `message` (UTF-8). */
export async function signEd25519(privateKey: CryptoKey, message: string): Promise<string> {
  return toBase64(await crypto.subtle.sign(ED25519, privateKey, utf8(message)));
}

/** Imports a 32-byte public key to verify with. */
export function importEd25519PublicKey(publicKey: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", publicKey, ED25519, false, ["verify"]);
}

/** Whether `signature` (base64) is `publicKey`'s signature of `message`. Never throws: junk is simply false. */
export async function verifyEd25519(publicKey: CryptoKey, signature: string, message: string): Promise<boolean> {
  try {
    const bytes = fromBase64(signature);
    if (!bytes || bytes.length !== SIGNATURE_BYTES) return false;
    return await crypto.subtle.verify(ED25519, publicKey, bytes, utf8(message));
  } catch {
    return false;
  }
}

/** A short, stable name for a public key: the first 16 hex digits of its SHA-256. */
export async function ed25519KeyId(publicKey: Uint8Array<ArrayBuffer>): Promise<string> {
  return (await sha256Hex(publicKey)).slice(0, 16);
}
