// The client's pure parts without a server: exit codes and outcome words, and outcome-event verification (v1 HMAC
// by the standardwebhooks library, v1a Ed25519).
import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { test } from "node:test";
import { Webhook } from "standardwebhooks";
import type { Proposal } from "../src/client.ts";
import { verifyEvent } from "../src/events.ts";
import { EXIT, exitCodeOf, outcomeLines, progressLine, refusalSentence } from "../src/outcome.ts";

test("exit codes: 0 approved/succeeded, 10 denied, 11 expired, 12 cancelled, 13 failed or dispatch_failed", () => {
  assert.deepEqual(
    ["succeeded", "denied", "expired", "cancelled", "failed", "dispatch_failed", "pending"].map((s) =>
      exitCodeOf(s as Proposal["status"]),
    ),
    [0, 10, 11, 12, 13, 13, 0],
  );
  assert.deepEqual([EXIT.usage, EXIT.http, EXIT.stillWaiting], [2, 3, 4]);
});

const denied = {
  id: "prp_1",
  status: "denied",
  action: { type: "k8s.rollout_restart", params: { deployment: "api" } },
  expires_at: new Date(Date.now() + 90_000).toISOString(),
  approvals: [],
  rule: { required_approvals: 2 },
  decision: { by: "slack:U0OSCAR", at: "2026-12-01T10:00:00Z", outcome: "denied", reason: "release freeze" },
  result: null,
  dispatch: { attempts: 0, last_error: null, dispatched_at: null },
} as unknown as Proposal;

test("outcome words: who decided and why; the live line has approvals of M and the time left", () => {
  assert.deepEqual(outcomeLines(denied), [
    "Denied by slack:U0OSCAR at 2026-12-01T10:00:00Z: release freeze",
    "Status: denied",
  ]);
  assert.equal(refusalSentence(denied), "k8s.rollout_restart was denied by slack:U0OSCAR: release freeze");
  assert.match(progressLine({ ...denied, status: "pending" }), /^prp_1 pending · 0 of 2 approvals · 1m 3\ds left$/);
});

function signedV1(secret: string, body: string) {
  const id = "msg_1";
  const at = new Date();
  const signature = new Webhook(secret).sign(id, at, body);
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": signature,
  };
}

test("verifyEvent: v1 with EVENTS_SECRET (standardwebhooks), v1a with a whpk_ key; a changed body or old event fails", async () => {
  const secret = `whsec_${Buffer.from("k".repeat(32)).toString("base64")}`;
  const body = '{"type":"proposal.approved"}';
  const v1 = signedV1(secret, body);
  assert.deepEqual(await verifyEvent({ headers: v1, body }, { secret }), { ok: true, version: "v1", id: "msg_1" });
  assert.equal((await verifyEvent({ headers: v1, body: `${body} ` }, { secret })).ok, false);

  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url");
  const whpk = `whpk_${raw.toString("base64")}`;
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = sign(null, Buffer.from(`msg_2.${ts}.${body}`), privateKey).toString("base64");
  const headers = { "Webhook-Id": "msg_2", "Webhook-Timestamp": ts, "Webhook-Signature": `v1,bm90LWl0 v1a,${sig}` };
  const keys = { keys: [{ kid: "ed25519:abc", use: "events", alg: "Ed25519", public_key: whpk, jwk: {} }] } as never;
  assert.deepEqual(await verifyEvent({ headers, body }, { publicKeys: keys }), {
    ok: true,
    version: "v1a",
    id: "msg_2",
    kid: "ed25519:abc",
  });
  assert.equal((await verifyEvent({ headers, body: "{}" }, { publicKeys: [whpk] })).ok, false);
  const old = await verifyEvent({ headers, body }, { publicKeys: [whpk], now: Date.now() + 10 * 60_000 });
  assert.match(old.ok ? "" : old.reason, /more than 5 minutes/);
});
