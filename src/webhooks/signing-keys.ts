// Ed25519 signing keys for Standard Webhooks' asymmetric `v1a` signatures: `whsk_<base64>` secret keys in config,
// `whpk_<base64>` public keys that GET /v1/keys publishes, so a listener can verify without being able to sign.
import { ed25519KeyId, importEd25519Seed } from "../lib/ed25519.ts";
import { fromBase64, toBase64 } from "../lib/encoding.ts";

export const SECRET_KEY_PREFIX = "whsk_";
export const PUBLIC_KEY_PREFIX = "whpk_";
const SEED_BYTES = 32;
const PUBLIC_KEY_BYTES = 32;

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
  const { privateKey, publicKey } = await importEd25519Seed(seed);
  return {
    kid: `ed25519:${await ed25519KeyId(publicKey)}`,
    publicKey: `${PUBLIC_KEY_PREFIX}${toBase64(publicKey)}`,
    rawPublicKey: publicKey,
    privateKey,
  };
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
