// `npm run check-config` from Node: passes on a good wrangler.toml + .dev.vars, fails naming the field on a bad one.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../check-config.ts", import.meta.url));
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const TOKEN = "so_check_config_test_token_000000000000000000";
const SECRETS: Record<string, string> = {
  SLACK_SIGNING_SECRET: "8f742231b10e8888abcd99yyyzzz85a5",
  SLACK_BOT_TOKEN: "xoxb-1234-5678-abcdef",
  RUNNER_SECRET: "whsec_cnVubmVyLXNlY3JldC1mb3ItdGVzdHMtMDAwMDAw",
  EVENTS_SECRET: "whsec_ZXZlbnRzLXNlY3JldC1mb3ItdGVzdHMtMDAwMDAw",
  AUDIT_SIGNING_KEY: "auditsk_9MtAcTMdnTX2eeVdvDOLofU/Mv2MU2XDMGaio16VqJo=",
  API_KEYS: JSON.stringify([
    {
      name: "alertmanager",
      sha256: createHash("sha256").update(TOKEN).digest("hex"),
      scopes: ["proposals:write", "proposals:read"],
      actions: ["k8s.*"],
      callback_hosts: ["hooks.example.com"],
    },
  ]),
};

const POLICY_JSON = `{
  "default_channel": "C0APPROVALS",
  "actions": {
    "k8s.rollout_restart": { "approvers": ["U0ALICE", "S0ONCALL"], "max_ttl_seconds": 3600,
      "params_schema": { "type": "object", "required": ["deployment"], "properties": { "deployment": { "type": "string" } } },
      "escalation": { "approvers": ["S0SRELEADS"], "channel": "C0ESCALATE" } },
    "demo.echo": { "requester_only": true, "requesters": ["U0BOB"], "ttl_seconds": 30 }
  }
}`;

function wranglerToml(vars: string, extra = ""): string {
  return `name = "signoff"\nmain = "src/index.ts"\ncompatibility_date = "2026-10-01"\n\n[vars]\n${vars}\n${extra}`;
}
const GOOD_VARS = `RUNNER_URL = "https://runner.internal/run"\nPOLICY = '''\n${POLICY_JSON}\n'''`;

function devVars(secrets: Record<string, string>): string {
  return Object.entries(secrets)
    .map(([name, value]) => `${name}='${value}'`)
    .join("\n");
}

function configDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "signoff-check-"));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function run(dir: string, args: string[] = [], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [SCRIPT, ...args], {
    cwd: dir,
    encoding: "utf8",
    // A bare environment on purpose; the cast is for wrangler's generated ProcessEnv typing.
    env: { PATH: process.env.PATH ?? "", ...env } as unknown as NodeJS.ProcessEnv,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, all: result.stdout + result.stderr };
}

test("passes on a good wrangler.toml and .dev.vars, with a summary", () => {
  const dir = configDir({ "wrangler.toml": wranglerToml(GOOD_VARS), ".dev.vars": devVars(SECRETS) });
  const out = run(dir);
  assert.equal(out.code, 0, out.all);
  assert.match(out.stdout, /^OK: signoff configuration/);
  assert.match(out.stdout, /actions \(2\)/);
  assert.match(out.stdout, /k8s\.rollout_restart · in C0APPROVALS · U0ALICE, S0ONCALL \(1 needed\)/);
  assert.match(out.stdout, /demo\.echo · requester only/);
  assert.match(out.stdout, /channels: C0APPROVALS, C0ESCALATE/);
  assert.match(out.stdout, /alertmanager · proposals:write, proposals:read · actions k8s\.\*/);
  // The audit key's public half, for verifiers; never the private one.
  assert.match(
    out.stdout,
    /audit heads and checkpoints signed by auditpk_mAQs9BKUrChWGQanekNB8g5ofch7F8Y2293U7OoQZdY= \(key id [0-9a-f]{16}\)/,
  );
  for (const value of Object.values(SECRETS)) assert.ok(!out.all.includes(value), "a secret was printed");
});

test("AUDIT_SIGNING_KEY: missing, or the public key pasted in its place, is named with how to make one", () => {
  const { AUDIT_SIGNING_KEY: _omitted, ...rest } = SECRETS;
  const missing = run(configDir({ "wrangler.toml": wranglerToml(GOOD_VARS), ".dev.vars": devVars(rest) }));
  assert.equal(missing.code, 1, missing.all);
  assert.match(
    missing.stderr,
    /AUDIT_SIGNING_KEY: is missing: add AUDIT_SIGNING_KEY=… to \.dev\.vars \(`npm run audit:key` makes one\)/,
  );
  const publicKey = "auditpk_mAQs9BKUrChWGQanekNB8g5ofch7F8Y2293U7OoQZdY=";
  const pasted = { ...SECRETS, AUDIT_SIGNING_KEY: publicKey };
  const wrong = run(configDir({ "wrangler.toml": wranglerToml(GOOD_VARS), ".dev.vars": devVars(pasted) }));
  assert.equal(wrong.code, 1, wrong.all);
  assert.match(wrong.stderr, /AUDIT_SIGNING_KEY: is a public key \(auditpk_…\): it needs the private key/);
});

test("reads a POLICY given as a TOML table and explicit --wrangler/--dev-vars paths", () => {
  const table = `RUNNER_URL = "https://runner.internal/run"\n\n[vars.POLICY]\ndefault_channel = "C0APPROVALS"\n[vars.POLICY.actions."k8s.rollout_restart"]\napprovers = ["U0ALICE"]\n`;
  const dir = configDir({ "custom.toml": wranglerToml(table), "secrets.env": devVars(SECRETS) });
  const out = run(dir, ["--wrangler", join(dir, "custom.toml"), "--dev-vars", join(dir, "secrets.env")]);
  assert.equal(out.code, 0, out.all);
  assert.match(out.stdout, /k8s\.rollout_restart · in C0APPROVALS · U0ALICE/);
});

test("fails naming the field of a bad policy", () => {
  const bad = GOOD_VARS.replace('"max_ttl_seconds": 3600', '"max_ttl_seconds": 60');
  const dir = configDir({ "wrangler.toml": wranglerToml(bad), ".dev.vars": devVars(SECRETS) });
  const out = run(dir);
  assert.equal(out.code, 1, out.all);
  assert.match(out.stderr, /1 problem\(s\)/);
  assert.match(
    out.stderr,
    /POLICY\.actions\["k8s\.rollout_restart"\]\.ttl_seconds: \(default\) 600 is more than max_ttl_seconds \(60\)/,
  );
  assert.equal(out.stdout, "");
});

test("fails naming every bad secret, without printing any", () => {
  const secrets = { ...SECRETS, RUNNER_SECRET: "not-a-webhook-secret-123", SLACK_BOT_TOKEN: "xoxp-user-token-999" };
  const dir = configDir({ "wrangler.toml": wranglerToml(GOOD_VARS), ".dev.vars": devVars(secrets) });
  const out = run(dir);
  assert.equal(out.code, 1, out.all);
  assert.match(out.stderr, /SLACK_BOT_TOKEN: must be a Slack bot token/);
  assert.match(out.stderr, /RUNNER_SECRET: must be whsec_/);
  for (const value of Object.values(secrets)) assert.ok(!out.all.includes(value), "a secret was printed");
});

test("a missing secret says where to put it", () => {
  const { EVENTS_SECRET: _omitted, ...rest } = SECRETS;
  const dir = configDir({ "wrangler.toml": wranglerToml(GOOD_VARS), ".dev.vars": devVars(rest) });
  assert.match(run(dir).stderr, /EVENTS_SECRET: is missing: add EVENTS_SECRET=… to \.dev\.vars/);
  const ci = run(dir, ["--secrets-from-env"], rest);
  assert.equal(ci.code, 1);
  assert.match(ci.stderr, /EVENTS_SECRET: is missing: set it with `wrangler secret put EVENTS_SECRET`/);
});

test("--env checks that environment's own vars, which are not inherited", () => {
  const production = `\n[env.production.vars]\nRUNNER_URL = "https://runner.prod.internal/run"\nPOLICY = '''\n${POLICY_JSON}\n'''\n\n[env.staging]\n`;
  const dir = configDir({ "wrangler.toml": wranglerToml(GOOD_VARS, production) });
  const ok = run(dir, ["--env", "production", "--secrets-from-env"], SECRETS);
  assert.equal(ok.code, 0, ok.all);
  assert.match(ok.stdout, /runner: https:\/\/runner\.prod\.internal\/run/);
  const staging = run(dir, ["--env", "staging", "--secrets-from-env"], SECRETS);
  assert.equal(staging.code, 1);
  assert.match(staging.stderr, /POLICY: is missing from \[env\.staging\.vars\] \(top-level \[vars\] are not inherited/);
  assert.match(staging.stderr, /RUNNER_URL: is missing from \[env\.staging\.vars\]/);
  const missingSecrets = run(dir, ["--env", "production", "--secrets-from-env"]);
  assert.match(
    missingSecrets.stderr,
    /RUNNER_SECRET: is missing: set it with `wrangler secret put RUNNER_SECRET --env production`/,
  );
  const unknown = run(dir, ["--env", "prod"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no \[env\.prod\]/);
});

test("a secret written in clear in [vars] is a problem", () => {
  const vars = `${GOOD_VARS}\nSLACK_BOT_TOKEN = "${SECRETS.SLACK_BOT_TOKEN}"`;
  const dir = configDir({ "wrangler.toml": wranglerToml(vars), ".dev.vars": devVars(SECRETS) });
  const out = run(dir);
  assert.equal(out.code, 1, out.all);
  assert.match(out.stderr, /SLACK_BOT_TOKEN: is in wrangler\.toml \[vars\], in clear/);
});

test("the project's own wrangler.toml passes with the test secrets", () => {
  const repo = fileURLToPath(new URL("../..", import.meta.url));
  const out = run(repo, ["--secrets-from-env"], SECRETS);
  assert.equal(out.code, 0, out.all);
});

test("--vars-only checks the vars of a deploy whose secrets live in Cloudflare", () => {
  const good = run(configDir({ "wrangler.toml": wranglerToml(GOOD_VARS) }), ["--vars-only"]);
  assert.equal(good.code, 0, good.all);
  assert.match(good.stdout, /secrets not checked/);
  const bad = GOOD_VARS.replace('"max_ttl_seconds": 3600', '"max_ttl_seconds": 60');
  const out = run(configDir({ "wrangler.toml": wranglerToml(bad) }), ["--vars-only"]);
  assert.equal(out.code, 1, out.all);
  assert.match(out.stderr, /POLICY\.actions\["k8s\.rollout_restart"\]\.ttl_seconds/);
  assert.doesNotMatch(out.stderr, /SLACK_SIGNING_SECRET/);
  // A mail API in the vars: its token, a secret, is stood in for like the others.
  const mail = `${GOOD_VARS}\nMAIL_API_URL = "https://mail.example.com/emails"\nMAIL_FROM = "signoff <signoff@example.com>"`;
  const withMail = run(configDir({ "wrangler.toml": wranglerToml(mail) }), ["--vars-only"]);
  assert.equal(withMail.code, 0, withMail.all);
});
