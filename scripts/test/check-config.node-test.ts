// `npm run check-config` from Node: passes on a good wrangler.toml + .dev.vars, fails naming the field on a bad one.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { unreachableHost } from "../lib/production.ts";

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
      "escalation": { "approvers": ["S0SRELEADS"], "channel": "C0ESCALATE", "after_seconds": 30 } },
    "demo.echo": { "requester_only": true, "requesters": ["U07QJ8K2ZPL"], "ttl_seconds": 30, "remind_at": [] }
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
  // Issue 16: the automatic escalation and the reminders, defaults included.
  assert.match(
    out.stdout,
    /escalates to S0SRELEADS in C0ESCALATE · by itself after 30s · reminders at 50 %, 90 % of the TTL/,
  );
  assert.match(out.stdout, /demo\.echo · .* · no reminders/);
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

test("validates risk rules and freezes strictly, naming each field with a suggestion, and lists good ones", () => {
  const withRules = (rule: string, freeze: string) =>
    GOOD_VARS.replace('"max_ttl_seconds": 3600,', `"max_ttl_seconds": 3600, "rules": [${rule}],`).replace(
      '"default_channel": "C0APPROVALS",',
      `"default_channel": "C0APPROVALS", "freezes": [${freeze}],`,
    );
  const bad = withRules(
    '{ "when": "parms.deployment == \\"api\\"", "required_approvals": 2 }',
    '{ "name": "weekend", "actions": ["k8s.rollout_restrat"], "cron": "0 17 * * 5", "duration_seconds": 3600 }',
  );
  const badDir = configDir({ "wrangler.toml": wranglerToml(bad), ".dev.vars": devVars(SECRETS) });
  const out = run(badDir);
  assert.equal(out.code, 1, out.all);
  assert.match(out.stderr, /rules\[0\]\.when: uses parms, which is not defined \(did you mean "params"\?\)/);
  assert.match(
    out.stderr,
    /freezes\[0\]\.actions\[0\]: covers no action in the policy \(did you mean "k8s\.rollout_restart"\?\)/,
  );
  const good = withRules(
    '{ "when": "params.deployment == \\"api\\"", "label": "the api", "required_approvals": 2 }',
    '{ "name": "weekend", "actions": ["k8s.*"], "cron": "0 17 * * 5", "duration_seconds": 3600, "timezone": "Europe/Berlin" }',
  );
  const goodDir = configDir({ "wrangler.toml": wranglerToml(good), ".dev.vars": devVars(SECRETS) });
  const ok = run(goodDir);
  assert.equal(ok.code, 0, ok.all);
  assert.match(ok.stdout, /1 risk rule\(s\): the api/);
  assert.match(ok.stdout, /weekend · k8s\.\* · 0 17 \* \* 5 \(Europe\/Berlin\) for 3600s/);
});

const ROUTES = `,
  "adapters": { "alertmanager": { "routes": [
    { "match": { "alertname": "KubePodOOMKilled" }, "match_re": { "severity": "critical|page" },
      "action": "k8s.rollout_restart", "params": { "deployment": "{{ labels.deployment }}" } },
    { "match": { "alertname": "DiskFull" }, "action": "ops.clean_disk", "params": { "host": "{{ labels.instance }}" } }
  ] } }
}`;
/** GOOD_VARS with `extra` before the policy's closing brace, and one more action (ops.clean_disk, outside k8s.*). */
const withRoutes = (extra: string) =>
  GOOD_VARS.replace(/\n}\n'''$/, `${extra}\n'''`).replace(
    '"actions": {',
    '"actions": {\n    "ops.clean_disk": { "approvers": ["U0ALICE"] },',
  );

test("adapters.alertmanager.routes: listed in the summary; a route no key may propose is a warning", () => {
  const out = run(configDir({ "wrangler.toml": wranglerToml(withRoutes(ROUTES)), ".dev.vars": devVars(SECRETS) }));
  assert.equal(out.code, 0, out.all);
  assert.match(out.stdout, /alertmanager routes \(2\):/);
  assert.match(out.stdout, /alertname="KubePodOOMKilled", severity=~"critical\|page" → k8s\.rollout_restart/);
  // The only key's actions are k8s.*: the ops.clean_disk route would refuse every alert it matches.
  assert.match(
    out.stderr,
    /warning: POLICY\.adapters\.alertmanager\.routes\[1\]: no key with proposals:write may propose ops\.clean_disk/,
  );
});

test("fails on a route to a requester_only action: whoever writes alerts would choose who confirms", () => {
  const route = `,
  "adapters": { "alertmanager": { "routes": [
    { "match": { "alertname": "EchoMe" }, "action": "demo.echo", "requested_by": "{{ labels.requester }}" }
  ] } }
}`;
  const out = run(configDir({ "wrangler.toml": wranglerToml(withRoutes(route)), ".dev.vars": devVars(SECRETS) }));
  assert.equal(out.code, 1, out.all);
  assert.match(out.stderr, /POLICY\.adapters\.alertmanager\.routes\[0\]\.action: demo\.echo is requester_only/);
});

test("fails naming a bad route template, with the field it meant", () => {
  const bad = withRoutes(ROUTES.replace("{{ labels.deployment }}", "{{ label.deployment }}"));
  const out = run(configDir({ "wrangler.toml": wranglerToml(bad), ".dev.vars": devVars(SECRETS) }));
  assert.equal(out.code, 1, out.all);
  assert.match(
    out.stderr,
    /POLICY\.adapters\.alertmanager\.routes\[0\]\.params\.deployment: \{\{ label\.deployment \}\} is not a field of the alert \(did you mean "\{\{ labels\.deployment \}\}"\?\)/,
  );
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

// What works on one machine only: `npm run deploy` (--production) refuses it, any other check of a deployable
// configuration warns, and local mode's own configuration (where it is the point) is left alone.

const D1 = (id: string) =>
  `\n[[d1_databases]]\nbinding = "AUDIT_DB"\ndatabase_name = "signoff-audit"\ndatabase_id = "${id}"\nmigrations_dir = "migrations"\n`;
const REAL_D1 = D1("6f1c2a4e-93b1-4d0e-8c55-0a9e3b7d2f10");
/** GOOD_VARS with ids of a real-looking workspace instead of the demo ones. */
const REAL_VARS = Object.entries({
  U0ALICE: "U07QJ8K2ZPL",
  S0ONCALL: "S07QJ8K2ZPN",
  C0APPROVALS: "C07QJ8K2ZPM",
  S0SRELEADS: "S07QJ8K2ZPQ",
  C0ESCALATE: "C07QJ8K2ZPR",
}).reduce((vars, [demo, real]) => vars.replaceAll(demo, real), GOOD_VARS);

test("`npm run deploy` runs check-config with --vars-only --production before wrangler deploy", () => {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL("../../package.json", import.meta.url)), "utf8")) as {
    scripts: Record<string, string>;
  };
  assert.match(pkg.scripts.deploy!, /^npm run check-config -- --vars-only --production && wrangler deploy\b/);
});

test("--production refuses a loopback or private RUNNER_URL: Cloudflare cannot reach it", () => {
  const vars = (url: string) => REAL_VARS.replace("https://runner.internal/run", url);
  const refused = run(configDir({ "wrangler.toml": wranglerToml(vars("http://192.168.1.20:8788/run"), REAL_D1) }), [
    "--vars-only",
    "--production",
  ]);
  assert.equal(refused.code, 1, refused.all);
  assert.match(refused.stderr, /1 problem\(s\)/);
  assert.match(
    refused.stderr,
    /RUNNER_URL: 192\.168\.1\.20 is a private address \(RFC 1918\): Cloudflare's network cannot reach it\. Put the runner behind a Cloudflare Tunnel/,
  );
  const loopback = run(configDir({ "wrangler.toml": wranglerToml(vars("http://localhost:8788/run"), REAL_D1) }), [
    "--vars-only",
    "--production",
  ]);
  assert.equal(loopback.code, 1, loopback.all);
  assert.match(loopback.stderr, /RUNNER_URL: localhost is localhost: Cloudflare's network cannot reach it/);
  // The same configuration checked without --production passes, with the refusal as a warning.
  const warned = run(configDir({ "wrangler.toml": wranglerToml(vars("http://192.168.1.20:8788/run"), REAL_D1) }), [
    "--vars-only",
  ]);
  assert.equal(warned.code, 0, warned.all);
  assert.match(warned.stderr, /warning: RUNNER_URL: 192\.168\.1\.20 is a private address/);
  assert.match(warned.stderr, /warning: `npm run deploy` refuses the above/);
});

test("which RUNNER_URL hosts Cloudflare cannot reach: loopback, RFC 1918, link-local, .local, localhost", () => {
  const unreachable: Record<string, RegExp> = {
    "127.0.0.1": /loopback/,
    "127.8.9.10": /loopback/,
    localhost: /localhost/,
    "LOCALHOST.": /localhost/,
    "runner.localhost": /localhost/,
    "10.1.2.3": /RFC 1918/,
    "172.16.0.1": /RFC 1918/,
    "172.31.255.254": /RFC 1918/,
    "192.168.0.10": /RFC 1918/,
    "169.254.169.254": /link-local/,
    "runner.local": /\.local/,
    "0.0.0.0": /unspecified/,
    "100.64.1.2": /RFC 6598/,
    "[::1]": /loopback/,
    "[fe80::1]": /link-local/,
    "[fd12:3456::1]": /unique local/,
  };
  for (const [host, reason] of Object.entries(unreachable)) {
    // Through URL, as the check sees it: [::ffff:10.0.0.1] arrives as [::ffff:a00:1].
    assert.match(unreachableHost(new URL(`http://${host}/run`).hostname) ?? "null", reason, host);
  }
  assert.match(unreachableHost(new URL("http://[::ffff:10.0.0.1]/").hostname) ?? "null", /RFC 1918/);
  for (const host of [
    "runner.example.com",
    "172.32.0.1",
    "192.169.0.1",
    "8.8.8.8",
    "[2606:4700::1]",
    "local.example",
  ]) {
    assert.equal(unreachableHost(new URL(`https://${host}/`).hostname), null, host);
  }
});

test("--production refuses the all-zero D1 database_id that `npm run setup` replaces", () => {
  const dir = configDir({ "wrangler.toml": wranglerToml(REAL_VARS, D1("00000000-0000-0000-0000-000000000000")) });
  const out = run(dir, ["--vars-only", "--production"]);
  assert.equal(out.code, 1, out.all);
  assert.match(out.stderr, /1 problem\(s\)/);
  assert.match(out.stderr, /d1_databases\[AUDIT_DB\]\.database_id: is the all-zero placeholder: `npm run setup`/);
  assert.equal(run(dir, ["--vars-only"]).code, 0);
  // With the id `npm run setup` wrote, the same configuration deploys.
  const real = run(configDir({ "wrangler.toml": wranglerToml(REAL_VARS, REAL_D1) }), ["--vars-only", "--production"]);
  assert.equal(real.code, 0, real.all);
  assert.equal(real.stderr, "");
});

test("--production refuses local mode's demo Slack ids anywhere in POLICY, naming each place", () => {
  const policy = `{
    "default_channel": "C0APPROVALS",
    "actions": {
      "deploy.release": { "approvers": ["U07QJ8K2ZPL", "U0ALICE", "S0ONCALL"], "channel": "C07QJ8K2ZPM",
        "escalation": { "approvers": ["S0SRELEADS"], "channel": "C0ESCALATE" } },
      "verify.login": { "kind": "verify", "verify_labels": { "unsure": "Ask U0CAROL" } }
    }
  }`;
  const vars = `RUNNER_URL = "https://runner.example.com/run"\nPOLICY = '''\n${policy}\n'''`;
  const out = run(configDir({ "wrangler.toml": wranglerToml(vars, REAL_D1) }), ["--vars-only", "--production"]);
  assert.equal(out.code, 1, out.all);
  assert.match(out.stderr, /6 problem\(s\)/);
  for (const [path, id] of [
    ["POLICY.default_channel", "C0APPROVALS"],
    ['POLICY.actions["deploy.release"].approvers[1]', "U0ALICE"],
    ['POLICY.actions["deploy.release"].approvers[2]', "S0ONCALL"],
    ['POLICY.actions["deploy.release"].escalation.approvers[0]', "S0SRELEADS"],
    ['POLICY.actions["deploy.release"].escalation.channel', "C0ESCALATE"],
    ['POLICY.actions["verify.login"].verify_labels.unsure', "U0CAROL"],
  ] as const) {
    const escaped = path.replace(/[.[\]"]/g, "\\$&");
    assert.match(out.stderr, new RegExp(`${escaped}: ${id} is a demo id of local mode, not one of your workspace`));
  }
  assert.doesNotMatch(out.stderr, /U07QJ8K2ZPL|C07QJ8K2ZPM/);
});

test("a configuration like a fresh clone's is refused on every count by `npm run deploy`'s check", () => {
  const vars = `RUNNER_URL = "http://127.0.0.1:8788/run"\nPOLICY = '''\n${POLICY_JSON}\n'''`;
  const dir = configDir({ "wrangler.toml": wranglerToml(vars, D1("00000000-0000-0000-0000-000000000000")) });
  const out = run(dir, ["--vars-only", "--production"]);
  assert.equal(out.code, 1, out.all);
  assert.match(out.stderr, /RUNNER_URL: 127\.0\.0\.1 is a loopback address/);
  assert.match(out.stderr, /d1_databases\[AUDIT_DB\]\.database_id: is the all-zero placeholder/);
  assert.match(out.stderr, /POLICY\.default_channel: C0APPROVALS is a demo id/);
});

test("--env local checks local mode's configuration: [env.local] with .dev.vars, its demo values left alone", () => {
  const local = `\n[env.local]\nname = "signoff-local"\n${D1("00000000-0000-0000-0000-000000000000").replace("[[d1_databases]]", "[[env.local.d1_databases]]")}\n[env.local.vars]\nLOCAL_MODE = "1"\nRUNNER_URL = "http://127.0.0.1:8788/run"\nSLACK_API_BASE = "http://127.0.0.1:8787/__local/slack/api"\nPOLICY = '''\n${POLICY_JSON}\n'''\n`;
  const dir = configDir({ "wrangler.toml": wranglerToml(GOOD_VARS, local), ".dev.vars": devVars(SECRETS) });
  const ok = run(dir, ["--env", "local"]);
  assert.equal(ok.code, 0, ok.all);
  assert.match(
    ok.stdout,
    /^OK: signoff configuration \(wrangler\.toml \[env\.local\] \(local mode\); secrets from \.dev\.vars\)/,
  );
  assert.equal(ok.stderr, "", "local mode's loopback runner and demo ids are not warned about");
  // A secret missing from .dev.vars is local mode's to write, not Cloudflare's.
  const { RUNNER_SECRET: _omitted, ...rest } = SECRETS;
  const missing = run(configDir({ "wrangler.toml": wranglerToml(GOOD_VARS, local), ".dev.vars": devVars(rest) }), [
    "--env",
    "local",
  ]);
  assert.equal(missing.code, 1, missing.all);
  assert.match(missing.stderr, /RUNNER_SECRET: is missing: `npm start` writes it to \.dev\.vars on its first run/);
  assert.doesNotMatch(missing.stderr, /wrangler secret put/);
  // And local mode's configuration is never one to deploy.
  const deploy = run(dir, ["--env", "local", "--production"]);
  assert.equal(deploy.code, 1, deploy.all);
  assert.match(
    deploy.stderr,
    /LOCAL_MODE: \[env\.local\] is local mode's configuration \(LOCAL_MODE = "1"\): it is never deployed/,
  );
});

test("the project's own [env.local] passes `npm run check-config -- --env local` with local mode's secrets", () => {
  const repo = fileURLToPath(new URL("../..", import.meta.url));
  // What `npm start` writes besides: the demo decides one action through mailed links.
  const local = {
    ...SECRETS,
    LINK_SECRET: "whsec_bGluay1zZWNyZXQtZm9yLXRlc3RzLTAwMDAwMDAw",
    MAIL_API_TOKEN: "local-mail",
  };
  const devVarsPath = join(configDir({ ".dev.vars": devVars(local) }), ".dev.vars");
  const out = run(repo, ["--env", "local", "--dev-vars", devVarsPath]);
  assert.equal(out.code, 0, out.all);
  assert.equal(out.stderr, "");
});
