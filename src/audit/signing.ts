// The audit log's signing key (SPEC 12): Ed25519, held by the Worker as the secret AUDIT_SIGNING_KEY and never
// written to D1. It signs each chain head as it is flushed and every checkpoint; verifiers hold only the public
// key, so nobody able to check a signature (an auditor, a CI job) can make one. WebCrypto only: the Worker and
// the operator scripts (Node) run this same module.

import { fromBase64, toBase64, toHex, utf8 } from "../lib/encoding.ts";
import { canonicalJson } from "../lib/jcs.ts";

/** `auditsk_` + base64 of the 32-byte Ed25519 private key (RFC 8032's seed). */
export const SIGNING_KEY_PREFIX = "auditsk_";
/** `auditpk_` + base64 of the 32-byte Ed25519 public key. */
export const PUBLIC_KEY_PREFIX = "auditpk_";
const KEY_BYTES = 32;
const ED25519 = { name: "Ed25519" } as const;
// An Ed25519 private key in PKCS #8 is this fixed DER header and the 32-byte seed (RFC 8410 §7).
const PKCS8_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

function keyBytes(text: string, prefix: string): Uint8Array<ArrayBuffer> | null {
  if (!text.startsWith(prefix)) return null;
  const bytes = fromBase64(text.slice(prefix.length));
  return bytes && bytes.length === KEY_BYTES ? bytes : null;
}

/** Why `text` is not an AUDIT_SIGNING_KEY, or null when it is one. Never repeats the value. */
export function signingKeyProblem(text: string): string | null {
  if (text.startsWith(PUBLIC_KEY_PREFIX)) {
    return `is a public key (${PUBLIC_KEY_PREFIX}…): it needs the private key (${SIGNING_KEY_PREFIX}…), from \`npm run audit:key\``;
  }
  if (keyBytes(text, SIGNING_KEY_PREFIX) === null) {
    return `must be ${SIGNING_KEY_PREFIX} followed by the base64 of a 32-byte Ed25519 private key (\`npm run audit:key\` makes one)`;
  }
  return null;
}

/** The public key's bytes, or null when `text` is not `auditpk_` + base64 of 32 bytes. */
export function parsePublicKey(text: string): Uint8Array<ArrayBuffer> | null {
  return keyBytes(text.trim(), PUBLIC_KEY_PREFIX);
}

/** A short, stable name for a public key: the first 16 hex digits of its SHA-256. */
async function keyIdOf(publicKey: Uint8Array<ArrayBuffer>): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", publicKey)).slice(0, 16);
}

export interface AuditSigner {
  readonly keyId: string;
  /** `auditpk_…`, for verifiers. */
  readonly publicKey: string;
  /** Base64 Ed25519 signature of `message` (UTF-8). */
  sign(message: string): Promise<string>;
}

// One import per key and isolate: a flush signs on every alarm run.
const signers = new Map<string, Promise<AuditSigner>>();

/** The signer for an AUDIT_SIGNING_KEY; throws (without the value) when it is not one. */
export function auditSigner(secret: string): Promise<AuditSigner> {
  let signer = signers.get(secret);
  if (!signer) {
    signer = importSigner(secret);
    signers.set(secret, signer);
    signer.catch(() => signers.delete(secret));
  }
  return signer;
}

async function importSigner(secret: string): Promise<AuditSigner> {
  const seed = keyBytes(secret, SIGNING_KEY_PREFIX);
  if (!seed) throw new Error(`AUDIT_SIGNING_KEY ${signingKeyProblem(secret)}`);
  const der = new Uint8Array(PKCS8_PREFIX.length + KEY_BYTES);
  der.set(PKCS8_PREFIX);
  der.set(seed, PKCS8_PREFIX.length);
  // Extractable only to read the public half (JWK `x`); the private key never leaves this object.
  const privateKey = await crypto.subtle.importKey("pkcs8", der, ED25519, true, ["sign"]);
  const jwk = (await crypto.subtle.exportKey("jwk", privateKey)) as JsonWebKey;
  const publicBytes = fromBase64((jwk.x ?? "").replace(/-/g, "+").replace(/_/g, "/"));
  if (!publicBytes || publicBytes.length !== KEY_BYTES) throw new Error("AUDIT_SIGNING_KEY: no public key derived");
  return {
    keyId: await keyIdOf(publicBytes),
    publicKey: PUBLIC_KEY_PREFIX + toBase64(publicBytes),
    sign: async (message) => toBase64(await crypto.subtle.sign(ED25519, privateKey, utf8(message))),
  };
}

export interface AuditVerifier {
  /** Key ids of the trusted public keys. */
  readonly keyIds: readonly string[];
  /** Whether `signature` (base64) is `keyId`'s signature of `message`; false for an unknown key or junk. */
  verify(keyId: string, message: string, signature: string): Promise<boolean>;
}

/** A verifier trusting exactly `publicKeys` (`auditpk_…`; several while a key is being replaced). */
export async function auditVerifier(publicKeys: readonly string[]): Promise<AuditVerifier> {
  const keys = new Map<string, CryptoKey>();
  for (const text of publicKeys) {
    const bytes = parsePublicKey(text);
    if (!bytes) throw new Error(`not an audit public key (${PUBLIC_KEY_PREFIX} + base64 of 32 bytes): ${text}`);
    keys.set(await keyIdOf(bytes), await crypto.subtle.importKey("raw", bytes, ED25519, false, ["verify"]));
  }
  return {
    keyIds: [...keys.keys()],
    async verify(keyId, message, signature) {
      const key = keys.get(keyId);
      const bytes = fromBase64(signature);
      if (!key || !bytes || bytes.length !== 64) return false;
      return crypto.subtle.verify(ED25519, key, bytes, utf8(message));
    },
  };
}

/** A new key pair, as `npm run audit:key` and local mode's first run make it. */
export async function newSigningKey(): Promise<{ secret: string; publicKey: string; keyId: string }> {
  const secret = SIGNING_KEY_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(KEY_BYTES)));
  const signer = await auditSigner(secret);
  return { secret, publicKey: signer.publicKey, keyId: signer.keyId };
}

// ---- chain heads ------------------------------------------------------------------------------------------------

export interface ChainHead {
  proposal_id: string;
  idx: number;
  hash: string;
}

/**
 * What a head signature covers: the proposal, the position and the hash there, which (through the chain)
 * covers every event before it. The `type` keeps a head signature from passing for a checkpoint's, or the
 * other way round.
 */
export function headMessage(head: ChainHead): string {
  return canonicalJson({ type: "signoff.audit.head", proposal_id: head.proposal_id, idx: head.idx, hash: head.hash });
}

/** The `head_sig` column: `<key id>:<base64 signature>`. */
export async function signHead(signer: AuditSigner, head: ChainHead): Promise<string> {
  return `${signer.keyId}:${await signer.sign(headMessage(head))}`;
}

export type HeadSignatureCheck = "valid" | "invalid" | "unknown_key" | "malformed";

export async function checkHeadSignature(
  verifier: AuditVerifier,
  head: ChainHead,
  headSig: string,
): Promise<HeadSignatureCheck> {
  const match = /^([0-9a-f]{16}):([A-Za-z0-9+/=]+)$/.exec(headSig);
  if (!match) return "malformed";
  if (!verifier.keyIds.includes(match[1]!)) return "unknown_key";
  return (await verifier.verify(match[1]!, headMessage(head), match[2]!)) ? "valid" : "invalid";
}
