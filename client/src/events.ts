// Verifies an outcome event (docs/webhooks.md) as a proposer's listener receives it: `v1` (HMAC-SHA256 with
// EVENTS_SECRET) with the standardwebhooks library, `v1a` (Ed25519) with the `whpk_` public keys of GET /v1/keys,
// both refusing timestamps more than 5 minutes from the clock.
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import type { PublicKeys } from "./client.ts";

/** How far an event's timestamp may be from the verifier's clock, as the library and docs/webhooks.md say. */
export const TOLERANCE_SECONDS = 5 * 60;

export interface EventInput {
  /** The delivery's headers (any case); webhook-id, webhook-timestamp and webhook-signature are read. */
  headers: Record<string, string>;
  /** The raw body, exactly as received. */
  body: string;
}

export interface VerifyKeys {
  /** EVENTS_SECRET (`whsec_…`): checks `v1` entries. */
  secret?: string;
  /** Public keys (`whpk_…` or GET /v1/keys's answer): check `v1a` entries. */
  publicKeys?: string[] | PublicKeys;
  /** The clock, in ms (tests). */
  now?: number;
}

export type Verdict = { ok: true; version: "v1" | "v1a"; kid?: string; id: string } | { ok: false; reason: string };

function lowerCased(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

function publicKeyList(keys: VerifyKeys["publicKeys"]): { kid?: string; key: string }[] {
  if (!keys) return [];
  if (Array.isArray(keys)) return keys.map((key) => ({ key }));
  return keys.keys.filter((k) => k.use === "events").map((k) => ({ kid: k.kid, key: k.public_key }));
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text, "base64"));
}

async function verifyV1a(
  input: { id: string; timestamp: string; signature: string; body: string },
  keys: { kid?: string; key: string }[],
): Promise<string | null | undefined> {
  const content = new TextEncoder().encode(`${input.id}.${input.timestamp}.${input.body}`);
  const signatures = input.signature
    .split(" ")
    .map((entry) => entry.split(","))
    .filter(([version, sig]) => version === "v1a" && sig);
  for (const { kid, key } of keys) {
    if (!key.startsWith("whpk_")) continue;
    const cryptoKey = await crypto.subtle.importKey("raw", fromBase64(key.slice(5)), "Ed25519", false, ["verify"]);
    for (const [, sig] of signatures) {
      if (await crypto.subtle.verify("Ed25519", cryptoKey, fromBase64(sig!), content)) return kid ?? null;
    }
  }
  return undefined;
}

/**
 * Whether the event's signature holds: a `v1a` entry verified by one of the public keys, or a `v1` entry by the
 * secret. The answer says which, or why not; it never throws for a bad event.
 */
export async function verifyEvent(event: EventInput, keys: VerifyKeys): Promise<Verdict> {
  const headers = lowerCased(event.headers);
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signature = headers["webhook-signature"];
  if (!id || !timestamp || !signature) {
    return { ok: false, reason: "missing webhook-id, webhook-timestamp or webhook-signature header" };
  }
  const now = keys.now ?? Date.now();
  if (!/^\d+$/.test(timestamp) || Math.abs(now / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) {
    return { ok: false, reason: `webhook-timestamp ${timestamp} is more than 5 minutes from this clock` };
  }
  const publicKeys = publicKeyList(keys.publicKeys);
  if (publicKeys.length === 0 && !keys.secret) {
    return { ok: false, reason: "no key to verify with: give EVENTS_SECRET or the public keys of GET /v1/keys" };
  }
  if (publicKeys.length > 0) {
    const kid = await verifyV1a({ id, timestamp, signature, body: event.body }, publicKeys);
    if (kid !== undefined) return { ok: true, version: "v1a", id, ...(kid ? { kid } : {}) };
  }
  if (keys.secret) {
    try {
      const hook = new Webhook(keys.secret);
      // The library checks the timestamp against its own clock too.
      hook.verify(event.body, { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signature });
      return { ok: true, version: "v1", id };
    } catch (error) {
      if (!(error instanceof WebhookVerificationError)) throw error;
    }
  }
  const tried = [publicKeys.length > 0 ? "v1a" : "", keys.secret ? "v1" : ""].filter(Boolean).join(" or ");
  return { ok: false, reason: `no ${tried} signature in webhook-signature verifies` };
}
