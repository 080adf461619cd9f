// Asymmetric webhook signatures (issue 11 item 5, SPEC 7 and 12): outcome events and dispatches carry Standard
// Webhooks `v1a` (Ed25519) signatures that verify with the public keys of GET /v1/keys, so a listener can check an
// event without holding anything that could sign one — unlike the shared EVENTS_SECRET every listener holds.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { checkConfig } from "../src/config/check.ts";
import { importEd25519PublicKey, signEd25519, verifyEd25519 } from "../src/lib/ed25519.ts";
import { fromHex, toHex, utf8 } from "../src/lib/encoding.ts";
import { importSigningKey, parsePublicKey } from "../src/webhooks/signing-keys.ts";
import { signWebhook, verifyWebhook, verifyWebhookPublic } from "../src/webhooks/standard-webhooks.ts";
import { SECRETS } from "./fixtures.ts";
import { call, click, createProposal, json, settle } from "./helpers/api.ts";
import { peer } from "./peer/client.ts";

type PublishedKey = { kid: string; use: string; alg: string; public_key: string; jwk: Record<string, string> };

async function publishedKeys(): Promise<PublishedKey[]> {
  const res = await call("/v1/keys", { token: null });
  expect(res.status).toBe(200);
  return (await json<{ keys: PublishedKey[] }>(res)).keys;
}

const PEER = (env as unknown as { TEST_PEER: string }).TEST_PEER;
const headersOf = (recorded: Record<string, string>) => new Headers(recorded);
const nowSeconds = () => Math.floor(Date.now() / 1000);

describe("Ed25519 keys", () => {
  it("signs as RFC 8032 says (test vector 1: the empty message)", async () => {
    const seed = fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")!;
    const key = await importSigningKey(`whsk_${btoa(String.fromCharCode(...seed))}`);
    expect(toHex(key.rawPublicKey)).toBe("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    const signature = await signEd25519(key.privateKey, "");
    expect(toHex(Uint8Array.from(atob(signature), (ch) => ch.charCodeAt(0)))).toBe(
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    );
    const publicKey = await importEd25519PublicKey(key.rawPublicKey);
    expect(await verifyEd25519(publicKey, signature, "")).toBe(true);
    expect(await verifyEd25519(publicKey, signature, "x")).toBe(false);
  });

  it("a v1a delivery verifies with the public key only, and not once its body, id or time changes", async () => {
    const key = await importSigningKey(SECRETS.RUNNER_SIGNING_KEYS);
    const t = nowSeconds();
    const signed = await signWebhook(null, "msg_1", t, '{"a":1}', [key]);
    expect(signed["webhook-signature"]).toMatch(/^v1a,[A-Za-z0-9+/]+=*$/);
    const verify = (h: Record<string, string>, body = '{"a":1}') =>
      verifyWebhookPublic([key.publicKey], new Headers(h), body, t);
    expect(await verify(signed)).toMatchObject({ ok: true, id: "msg_1" });
    expect(await verify(signed, '{"a":2}')).toEqual({ ok: false, reason: "bad_signature" });
    expect(await verify({ ...signed, "webhook-id": "msg_2" })).toEqual({ ok: false, reason: "bad_signature" });
    expect(await verify({ ...signed, "webhook-timestamp": String(t + 1) })).toEqual({
      ok: false,
      reason: "bad_signature",
    });
    // The HMAC verifier ignores v1a entries, as the spec says, instead of failing on them.
    expect(await verifyWebhook(SECRETS.RUNNER_SECRET, new Headers(signed), '{"a":1}', t)).toEqual({
      ok: false,
      reason: "bad_signature",
    });
  });

  it("accepts the 64-byte form (seed then public key) and refuses what is not a key", async () => {
    const key = await importSigningKey(SECRETS.RUNNER_SIGNING_KEYS);
    const seed = atob(SECRETS.RUNNER_SIGNING_KEYS.slice(5));
    const long = `whsk_${btoa(seed + String.fromCharCode(...key.rawPublicKey))}`;
    expect((await importSigningKey(long)).publicKey).toBe(key.publicKey);
    await expect(importSigningKey("whsk_c2hvcnQ=")).rejects.toThrow(TypeError);
    await expect(importSigningKey(SECRETS.RUNNER_SECRET)).rejects.toThrow(TypeError);
    expect(parsePublicKey(key.publicKey)).toEqual(key.rawPublicKey);
    expect(parsePublicKey("whpk_c2hvcnQ=")).toBeNull();
  });
});

describe("configuration", () => {
  const base = () => ({
    ...SECRETS,
    RUNNER_URL: "https://runner.example.com/run",
    POLICY: JSON.stringify({ default_channel: "C0APPROVALS", actions: { "demo.echo": { approvers: ["U0ALICE"] } } }),
  });

  it("EVENTS_SECRET may be left out once EVENTS_SIGNING_KEYS sign the events", () => {
    const { EVENTS_SECRET: _dropped, ...rest } = base();
    const checked = checkConfig({ ...rest, API_KEYS: "[]" });
    expect(checked.ok && checked.config.eventsSecret).toBeNull();
    const neither = checkConfig({ ...rest, EVENTS_SIGNING_KEYS: "", API_KEYS: "[]" });
    expect(neither.ok).toBe(false);
  });

  it("refuses a malformed key, naming which, and a key shared by events and the runner", () => {
    const bad = checkConfig({
      ...base(),
      API_KEYS: "[]",
      EVENTS_SIGNING_KEYS: `${SECRETS.RUNNER_SIGNING_KEYS} whsk_x`,
    });
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.problems).toContainEqual({
      path: "EVENTS_SIGNING_KEYS",
      message: expect.stringMatching(/key 2/),
    });
    const shared = checkConfig({ ...base(), API_KEYS: "[]", EVENTS_SIGNING_KEYS: SECRETS.RUNNER_SIGNING_KEYS });
    expect(!shared.ok && shared.problems.map((p) => p.path)).toContain("RUNNER_SIGNING_KEYS");
  });
});

describe("GET /v1/keys", () => {
  it("publishes each public key with its use and id, without an API key, and nothing that signs", async () => {
    const keys = await publishedKeys();
    expect(keys.map((k) => k.use)).toEqual(["events", "events", "runner"]);
    for (const key of keys) {
      expect(key.alg).toBe("Ed25519");
      expect(key.public_key).toMatch(/^whpk_[A-Za-z0-9+/]{43}=$/);
      expect(key.kid).toMatch(/^ed25519:[0-9a-f]{16}$/);
      expect(key.jwk).toEqual({ kty: "OKP", crv: "Ed25519", x: expect.any(String), kid: key.kid });
    }
    const text = JSON.stringify(keys);
    for (const secret of [SECRETS.EVENTS_SIGNING_KEYS, SECRETS.RUNNER_SIGNING_KEYS].flatMap((s) => s.split(" "))) {
      expect(text).not.toContain(secret.slice(5, 25));
    }
    expect(new Set(keys.map((k) => k.kid)).size).toBe(3);
  });
});

describe("outcome events and dispatches carry v1a signatures", () => {
  it("each outcome event verifies with every published events key, and with no runner key", async () => {
    const keys = await publishedKeys();
    const eventKeys = keys.filter((k) => k.use === "events").map((k) => k.public_key);
    const runnerKeys = keys.filter((k) => k.use === "runner").map((k) => k.public_key);
    const p = await createProposal({
      callback_url: `${PEER}/events/v1a`,
    });
    expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
    await settle(p.id);
    const delivered = await peer.requests("/events/v1a");
    expect(delivered.map((r) => JSON.parse(r.body).type)).toEqual(["proposal.approved", "proposal.succeeded"]);
    for (const request of delivered) {
      const at = Number(request.headers["webhook-timestamp"]);
      // Both rotation keys sign, so a listener holding either public key verifies.
      for (const key of eventKeys) {
        expect(await verifyWebhookPublic([key], headersOf(request.headers), request.body, at)).toMatchObject({
          ok: true,
        });
      }
      expect(await verifyWebhookPublic(runnerKeys, headersOf(request.headers), request.body, at)).toMatchObject({
        ok: false,
      });
    }
  });

  it("an event forged with the shared EVENTS_SECRET does not pass a v1a check", async () => {
    const [eventKey] = (await publishedKeys()).filter((k) => k.use === "events");
    const body = JSON.stringify({ type: "proposal.acknowledged", timestamp: new Date().toISOString(), data: {} });
    const forged = await signWebhook(SECRETS.EVENTS_SECRET, "evt_forged", nowSeconds(), body);
    expect(await verifyWebhook(SECRETS.EVENTS_SECRET, new Headers(forged), body, nowSeconds())).toMatchObject({
      ok: true,
    });
    expect(await verifyWebhookPublic([eventKey!.public_key], new Headers(forged), body, nowSeconds())).toEqual({
      ok: false,
      reason: "bad_signature",
    });
  });

  it("a dispatch carries v1 (RUNNER_SECRET) and v1a (RUNNER_SIGNING_KEYS), either verifies it", async () => {
    const [runnerKey] = (await publishedKeys()).filter((k) => k.use === "runner");
    const p = await createProposal();
    expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
    await settle(p.id);
    const [dispatch] = (await peer.requests("/runner")).filter((r) => JSON.parse(r.body).proposal_id === p.id);
    const at = Number(dispatch!.headers["webhook-timestamp"]);
    expect(dispatch!.headers["webhook-signature"]).toMatch(/^v1,\S+ v1a,\S+$/);
    expect(dispatch!.signature_valid).toBe(true);
    expect(
      await verifyWebhookPublic([runnerKey!.public_key], headersOf(dispatch!.headers), dispatch!.body, at),
    ).toMatchObject({ ok: true, id: `dsp_${p.id}` });
    expect(utf8(dispatch!.body).length).toBeGreaterThan(0);
  });
});
