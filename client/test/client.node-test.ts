// The client's pure parts without a server: exit codes and outcome words, the CLI's reading of flags, files and
// mistakes (one line, exit 2, before any request), outcome-event verification (v1 HMAC by the standardwebhooks
// library, v1a Ed25519), and the Action's idempotency key and run link. The e2e test (e2e/cli.e2e.ts) runs them
// against a real signoff.
import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { Webhook } from "standardwebhooks";
import { idempotencyKey, proposalBody, runUrl } from "../../action/src/main.ts";
import { main, parseHeaders, proposalFrom } from "../src/cli.ts";
import type { Proposal } from "../src/client.ts";
import { verifyEvent } from "../src/events.ts";
import { EXIT, exitCodeOf, outcomeLines, progressLine, refusalSentence } from "../src/outcome.ts";

const dir = mkdtempSync(join(tmpdir(), "signoff-client-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function io(env: Record<string, string> = {}) {
  const out = { stdout: "", stderr: "" };
  return {
    out,
    io: {
      stdout: { write: (t: string) => (out.stdout += t) },
      stderr: { write: (t: string) => (out.stderr += t) },
      env,
    },
  };
}

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

test("propose reads --file (YAML or JSON) and lets flags override it; --param is KEY=VALUE", () => {
  const file = join(dir, "proposal.yaml");
  writeFileSync(
    file,
    "action:\n  type: k8s.scale\n  params:\n    replicas: 3\nsummary: Scale up\nreason: load\nblast_radius: api\nrollback: scale down\n",
  );
  const body = proposalFrom({ file, param: ["deployment=api"], summary: "Scale api up", ttl: "600" });
  assert.deepEqual(body, {
    action: { type: "k8s.scale", params: { replicas: 3, deployment: "api" } },
    summary: "Scale api up",
    reason: "load",
    blast_radius: "api",
    rollback: "scale down",
    ttl_seconds: 600,
  });
});

test("CLI mistakes are one line and exit 2, before any request", async () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["deploy"], {}, /^signoff: unknown command "deploy"/],
    [["propose", "--action", "demo.echo"], {}, /^signoff propose: no signoff URL: set SIGNOFF_URL or pass --url/],
    [["propose", "--action", "demo.echo", "--url", "http://x"], {}, /no API token: set SIGNOFF_TOKEN/],
    [["propose", "--param", "novalue"], { SIGNOFF_URL: "http://x", SIGNOFF_TOKEN: "t" }, /--param takes KEY=VALUE/],
    [["propose", "--action", "a", "--ttl", "soon"], {}, /--ttl takes a whole number of seconds, not "soon"/],
    [["get"], { SIGNOFF_URL: "http://x", SIGNOFF_TOKEN: "t" }, /get needs a proposal id/],
    [["get", "prp_1", "--wait=soon"], {}, /--wait takes a whole number of seconds/],
    [["audit", "--format", "xml"], { SIGNOFF_URL: "http://x", SIGNOFF_TOKEN: "t" }, /--format is ndjson or csv/],
    [["cancel", "a", "b"], {}, /unexpected argument b/],
  ];
  for (const [args, env, expected] of cases) {
    const { out, io: streams } = io(env);
    assert.equal(await main(args, streams), EXIT.usage, args.join(" "));
    assert.match(out.stderr, expected);
    assert.equal(out.stderr.split("\n").length, 2, out.stderr);
  }
});

test("an unreachable server is exit 3, in one line", async () => {
  const { out, io: streams } = io({ SIGNOFF_URL: "http://127.0.0.1:9", SIGNOFF_TOKEN: "t" });
  assert.equal(await main(["actions"], streams), EXIT.http);
  assert.match(out.stderr, /^signoff actions: unreachable: cannot reach http:\/\/127\.0\.0\.1:9/);
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

test("verify-event reads headers as JSON or Name: value lines", () => {
  assert.deepEqual(parseHeaders("Webhook-Id: msg_1\r\nwebhook-timestamp: 17\n"), {
    "webhook-id": "msg_1",
    "webhook-timestamp": "17",
  });
  assert.deepEqual(parseHeaders('{"webhook-id":"msg_1"}'), { "webhook-id": "msg_1" });
});

test("the Action's idempotency key: the run, the job and the step — not the attempt; the reason links to the run", () => {
  const env = {
    GITHUB_SERVER_URL: "https://github.com",
    GITHUB_REPOSITORY: "acme/shop",
    GITHUB_RUN_ID: "42",
    GITHUB_RUN_ATTEMPT: "1",
    GITHUB_JOB: "deploy",
    GITHUB_ACTION: "gate",
  };
  assert.equal(idempotencyKey(env), "gha:acme/shop:42:deploy:gate");
  assert.equal(idempotencyKey({ ...env, GITHUB_RUN_ATTEMPT: "2" }), idempotencyKey(env));
  assert.notEqual(idempotencyKey({ ...env, GITHUB_JOB: "deploy-eu" }), idempotencyKey(env));
  assert.equal(runUrl(env), "https://github.com/acme/shop/actions/runs/42");
  const inputs = { action: "a", params: {}, summary: "s", reason: "", blastRadius: "b", rollback: "r" } as never;
  const body = proposalBody(inputs, env);
  assert.equal(body.reason, "Requested by GitHub Actions run https://github.com/acme/shop/actions/runs/42");
  assert.deepEqual(
    proposalBody(inputs, { ...env, GITHUB_RUN_ATTEMPT: "2" }),
    body,
    "every attempt sends the same body",
  );
});
