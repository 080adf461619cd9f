// `npm run setup` against a stand-in `wrangler` first on PATH: a small script that records each call's argv and
// stdin and answers like wrangler 4 does (the `database_id` line of `d1 create`, secret lists as JSON, "Worker not
// found" before the first secret). Checks the exact commands, that every secret went through stdin and into no
// file or argv, that wrangler.toml got the id in the right block, what is shown (a secret at most once), and re-runs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { experimental_readRawConfig } from "wrangler";
import { signingKeyProblem } from "../../src/audit/signing.ts";
import { checkConfig } from "../../src/config/check.ts";
import { parseSecretKey } from "../../src/webhooks/signing-keys.ts";
import { setDatabaseId } from "../lib/wrangler-toml.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SCRIPT = join(ROOT, "scripts", "setup.ts");
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const DB_ID = "6f1c2a4e-93b1-4d0e-8c55-0a9e3b7d2f10";
const ZERO_ID = "00000000-0000-0000-0000-000000000000";
const SLACK = { SLACK_SIGNING_SECRET: "3c9f0e7a51b24d8e9f6a0b1c2d3e4f5a", SLACK_BOT_TOKEN: "xoxb-1234-5678-AbCdEfGh" };

/** The stand-in: plain CommonJS, so any Node runs it; its state and the calls live beside it. */
const STAND_IN = `#!/usr/bin/env node
const fs = require("node:fs");
const path = require("node:path");
const dir = __dirname;
const stateFile = path.join(dir, "state.json");
const state = JSON.parse(fs.readFileSync(stateFile, "utf8"));
const argv = process.argv.slice(2);
const stdin = fs.readFileSync(0, "utf8");
fs.appendFileSync(path.join(dir, "calls.jsonl"), JSON.stringify({ argv, stdin }) + "\\n");
const save = () => fs.writeFileSync(stateFile, JSON.stringify(state));
const out = (text) => process.stdout.write(text + "\\n");
const cmd = argv.join(" ");
if (cmd === "whoami --json") {
  if (!state.loggedIn) { out(JSON.stringify({ loggedIn: false })); process.exit(1); }
  out(JSON.stringify({ loggedIn: true, authType: "OAuth Token", email: "ops@example.com", accounts: state.accounts }));
} else if (cmd === "d1 list --json") {
  out(JSON.stringify(state.databases.map((d) => ({ uuid: d.uuid, name: d.name, created_at: "2026-12-01T12:00:00Z", version: "production", num_tables: 0 })), null, 2));
} else if (argv[0] === "d1" && argv[1] === "create" && argv.length === 3) {
  state.databases.push({ name: argv[2], uuid: state.nextUuid }); save();
  out("\\n \\u26c5\\ufe0f wrangler 4.156.2\\n\\u2500\\u2500\\u2500\\u2500\\n\\u2705 Successfully created DB '" + argv[2] + "' in region WEUR\\nCreated your new D1 database.\\n");
  out("To access your new D1 Database in your Worker, add the following snippet to your configuration file:");
  out('[[d1_databases]]\\nbinding = "signoff_audit"\\ndatabase_name = "' + argv[2] + '"\\ndatabase_id = "' + state.nextUuid + '"');
} else if (cmd === "secret list --format json") {
  if (!state.worker) { process.stderr.write('\\u2718 [ERROR] Worker "signoff" not found.\\n\\nIf this is a new Worker, run \\x60wrangler deploy\\x60 first to create it.\\n'); process.exit(1); }
  out(JSON.stringify(state.secrets.map((name) => ({ name, type: "secret_text" })), null, "  "));
} else if (argv[0] === "secret" && argv[1] === "put" && argv.length === 3) {
  if (!state.worker) { out('? There doesn\\'t seem to be a Worker called "signoff". Do you want to create a new Worker with that name and add secrets to it?\\n\\ud83e\\udd16 Using fallback value in non-interactive context: yes\\n\\ud83c\\udf00 Creating new Worker "signoff"...'); state.worker = true; }
  if (!state.secrets.includes(argv[2])) state.secrets.push(argv[2]);
  save();
  out('\\ud83c\\udf00 Creating the secret for the Worker "signoff"\\n\\u2728 Success! Uploaded secret ' + argv[2]);
} else if (cmd === "d1 migrations apply signoff-audit --remote") {
  if (state.migrated) { out("\\u2705 No migrations to apply!"); }
  else { state.migrated = true; save(); out("Migrations to be applied:\\n\\u2502 0001_audit.sql \\u2502\\n\\u2705 0001_audit.sql"); }
} else {
  process.stderr.write("stand-in wrangler: unexpected command: " + cmd + "\\n");
  process.exit(3);
}
`;

interface State {
  loggedIn: boolean;
  accounts: Array<{ id: string; name: string }>;
  databases: Array<{ name: string; uuid: string }>;
  nextUuid: string;
  worker: boolean;
  secrets: string[];
  migrated: boolean;
}
interface Call {
  argv: string[];
  stdin: string;
}

/** A deployment-to-be: a copy of the repository's wrangler.toml, and the stand-in wrangler in a directory of its own. */
function workspace(state: Partial<State> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "signoff-setup-"));
  const bin = mkdtempSync(join(tmpdir(), "signoff-wrangler-"));
  dirs.push(dir, bin);
  cpSync(join(ROOT, "wrangler.toml"), join(dir, "wrangler.toml"));
  writeFileSync(join(bin, "wrangler"), STAND_IN);
  chmodSync(join(bin, "wrangler"), 0o755);
  const initial: State = {
    loggedIn: true,
    accounts: [{ id: "0123456789abcdef0123456789abcdef", name: "Acme" }],
    databases: [],
    nextUuid: DB_ID,
    worker: false,
    secrets: [],
    migrated: false,
    ...state,
  };
  writeFileSync(join(bin, "state.json"), JSON.stringify(initial));
  writeFileSync(join(bin, "calls.jsonl"), "");
  const calls = (): Call[] =>
    readFileSync(join(bin, "calls.jsonl"), "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as Call);
  const run = (args: string[], env: Record<string, string> = {}) => {
    const before = calls().length;
    const result = spawnSync(process.execPath, [SCRIPT, ...args], {
      cwd: dir,
      encoding: "utf8",
      // A bare environment: only the stand-in and Node on PATH, nothing of the developer's Cloudflare login.
      env: { PATH: `${bin}:${process.env.PATH ?? ""}`, NO_COLOR: "1", ...env } as unknown as NodeJS.ProcessEnv,
      timeout: 60_000,
    });
    return {
      code: result.status,
      stdout: result.stdout,
      stderr: result.stderr,
      all: `${result.stdout}\n${result.stderr}`,
      calls: calls().slice(before),
    };
  };
  return { dir, bin, run, calls };
}

/** How often `needle` occurs in `haystack`. */
function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

/** Every file under `dir`, as text. */
function filesUnder(dir: string): Array<{ path: string; text: string }> {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isFile())
    .map((path) => ({ path, text: readFileSync(path, "utf8") }));
}

const puts = (calls: Call[]) =>
  Object.fromEntries(
    calls.filter((c) => c.argv[0] === "secret" && c.argv[1] === "put").map((c) => [c.argv[2]!, c.stdin]),
  );

test("--yes sets a deployment up with exactly these wrangler commands, every secret on stdin", () => {
  const repoToml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const ws = workspace();
  const original = readFileSync(join(ws.dir, "wrangler.toml"), "utf8");
  const out = ws.run(["--yes", "--url", "https://signoff.acme.workers.dev"], SLACK);
  assert.equal(out.code, 0, out.all);

  assert.deepEqual(
    out.calls.map((c) => c.argv.join(" ")),
    [
      "whoami --json",
      "d1 list --json",
      "d1 create signoff-audit",
      "secret list --format json",
      "secret put RUNNER_SECRET",
      "secret put EVENTS_SECRET",
      "secret put EVENTS_SIGNING_KEYS",
      "secret put AUDIT_SIGNING_KEY",
      "d1 migrations apply signoff-audit --remote",
      "secret put SLACK_SIGNING_SECRET",
      "secret put SLACK_BOT_TOKEN",
      "secret put API_KEYS",
    ],
  );
  // Only `secret put` reads stdin, and nothing else ever gets any.
  for (const call of out.calls) {
    assert.equal(call.stdin !== "", call.argv[1] === "put", `stdin of wrangler ${call.argv.join(" ")}`);
  }

  const secrets = puts(out.calls);
  const webhook = /^whsec_[A-Za-z0-9+/]{43}=$/;
  assert.match(secrets.RUNNER_SECRET!, webhook);
  assert.match(secrets.EVENTS_SECRET!, webhook);
  assert.notEqual(secrets.RUNNER_SECRET, secrets.EVENTS_SECRET);
  assert.ok(parseSecretKey(secrets.EVENTS_SIGNING_KEYS!), "EVENTS_SIGNING_KEYS is one whsk_ Ed25519 key");
  assert.equal(signingKeyProblem(secrets.AUDIT_SIGNING_KEY!), null);
  assert.equal(secrets.SLACK_SIGNING_SECRET, SLACK.SLACK_SIGNING_SECRET);
  assert.equal(secrets.SLACK_BOT_TOKEN, SLACK.SLACK_BOT_TOKEN);

  // The API token: shown once, at the end; API_KEYS holds its SHA-256, for the POLICY's action types.
  const tokens = out.stdout.match(/so_[A-Za-z0-9_-]{43}/g) ?? [];
  assert.equal(tokens.length, 1, "the API token is shown exactly once");
  const token = tokens[0]!;
  assert.ok(out.stdout.lastIndexOf(token) > out.stdout.indexOf("--- end of manifest ---"), "the token comes last");
  const [entry] = JSON.parse(secrets.API_KEYS!) as Array<{ name: string; sha256: string; actions: string[] }>;
  assert.equal(entry!.name, "first-key");
  assert.equal(entry!.sha256, createHash("sha256").update(token).digest("hex"));
  assert.deepEqual(entry!.actions, ["k8s.rollout_restart"]);

  // The runner's secret once (the runner needs it); every other secret never; none on any command line.
  assert.equal(count(out.stdout, secrets.RUNNER_SECRET!), 1);
  for (const [name, value] of Object.entries(secrets)) {
    if (name !== "RUNNER_SECRET") assert.equal(count(out.all, value), 0, `${name} is never shown`);
    for (const call of out.calls) assert.ok(!call.argv.some((arg) => arg.includes(value)), `${name} on a command line`);
  }
  assert.equal(count(out.stderr, secrets.RUNNER_SECRET!), 0);

  // What was put is a configuration the Worker accepts, with the vars of wrangler.toml.
  const raw = experimental_readRawConfig({ config: join(ws.dir, "wrangler.toml") }).rawConfig as {
    vars: Record<string, unknown>;
    d1_databases: Array<{ database_id: string }>;
    env: { local: { d1_databases: Array<{ database_id: string }> } };
  };
  const checked = checkConfig({ ...raw.vars, ...secrets });
  assert.ok(checked.ok, JSON.stringify(!checked.ok && checked.problems));

  // wrangler.toml: the new id in the top-level block, [env.local]'s placeholder kept, and no other byte changed.
  assert.equal(raw.d1_databases[0]!.database_id, DB_ID);
  assert.equal(raw.env.local.d1_databases[0]!.database_id, ZERO_ID);
  const after = readFileSync(join(ws.dir, "wrangler.toml"), "utf8");
  assert.equal(after, original.replace(`database_id = "${ZERO_ID}"`, `database_id = "${DB_ID}"`));

  // No secret in any file of the deployment (its wrangler.toml is the tracked one), nor in the repository's.
  for (const file of filesUnder(ws.dir)) {
    for (const [name, value] of [...Object.entries(secrets), ["API token", token] as const]) {
      assert.ok(!file.text.includes(value), `${name} written to ${file.path}`);
    }
  }
  assert.equal(readFileSync(join(ROOT, "wrangler.toml"), "utf8"), repoToml, "the repository's wrangler.toml");

  // The manifest with the Worker's URL; the next steps name what the deploy check will still refuse.
  assert.match(out.stdout, /^ {4}request_url: https:\/\/signoff\.acme\.workers\.dev\/slack\/interactions$/m);
  // The Home tab's event subscription (issue 16) gets the Worker's URL too.
  assert.match(out.stdout, /^ {4}request_url: https:\/\/signoff\.acme\.workers\.dev\/slack\/events$/m);
  assert.doesNotMatch(out.stdout, /signoff\.example\.workers\.dev/);
  assert.match(out.stdout, /Audit log public key .*auditpk_/);
  assert.match(out.stdout, /Next steps/);
  assert.match(out.stdout, /RUNNER_URL: 127\.0\.0\.1 is a loopback address/);
  assert.match(out.stdout, /POLICY\.default_channel: C0APPROVALS is a demo id/);
  assert.doesNotMatch(out.stdout, /database_id: is the all-zero placeholder/);
});

test("a second run skips what exists, says so, and shows no secret", () => {
  const ws = workspace();
  assert.equal(ws.run(["--yes", "--url", "acme"], SLACK).code, 0);
  const toml = readFileSync(join(ws.dir, "wrangler.toml"), "utf8");
  const again = ws.run(["--yes", "--url", "acme"]);
  assert.equal(again.code, 0, again.all);
  assert.deepEqual(
    again.calls.map((c) => c.argv.join(" ")),
    ["whoami --json", "secret list --format json", "d1 migrations apply signoff-audit --remote"],
  );
  assert.match(again.stdout, /D1 database signoff-audit: its id is in wrangler\.toml already .*; skipped/);
  for (const name of [
    "RUNNER_SECRET",
    "EVENTS_SECRET",
    "EVENTS_SIGNING_KEYS",
    "AUDIT_SIGNING_KEY",
    "SLACK_SIGNING_SECRET",
    "SLACK_BOT_TOKEN",
  ]) {
    assert.match(again.stdout, new RegExp(`${name}: set already; skipped`));
  }
  assert.match(again.stdout, /API_KEYS: set already; skipped \(another key: `npm run key:new`/);
  assert.match(again.stdout, /D1 migrations .*: none were new/);
  assert.doesNotMatch(again.all, /whsec_|whsk_|auditsk_|so_[A-Za-z0-9_-]{43}|Keep these now/);
  // The bare subdomain gave the workers.dev URL.
  assert.match(again.stdout, /request_url: https:\/\/signoff\.acme\.workers\.dev\/slack\/interactions/);
  assert.equal(readFileSync(join(ws.dir, "wrangler.toml"), "utf8"), toml);
});

test("--yes without Slack secrets or URL skips them and says how to finish; --links adds LINK_SECRET", () => {
  const ws = workspace();
  const out = ws.run(["--yes", "--links", "--key-name", "alertmanager", "--key-actions", "k8s.*"]);
  assert.equal(out.code, 0, out.all);
  const secrets = puts(out.calls);
  assert.deepEqual(Object.keys(secrets), [
    "RUNNER_SECRET",
    "EVENTS_SECRET",
    "EVENTS_SIGNING_KEYS",
    "AUDIT_SIGNING_KEY",
    "LINK_SECRET",
    "API_KEYS",
  ]);
  assert.match(secrets.LINK_SECRET!, /^whsec_/);
  assert.ok(![secrets.RUNNER_SECRET, secrets.EVENTS_SECRET].includes(secrets.LINK_SECRET));
  assert.equal(count(out.all, secrets.LINK_SECRET!), 0);
  const [entry] = JSON.parse(secrets.API_KEYS!) as Array<{ name: string; actions: string[] }>;
  assert.deepEqual([entry!.name, entry!.actions], ["alertmanager", ["k8s.*"]]);
  assert.match(out.stdout, /SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN: not set; signoff answers 503 misconfigured/);
  assert.match(out.stdout, /SLACK_SIGNING_SECRET=… SLACK_BOT_TOKEN=… npm run setup -- --yes/);
  // The manifest as it is, and what to replace in it; PUBLIC_URL for the links.
  assert.match(out.stdout, /request_url: https:\/\/signoff\.example\.workers\.dev\/slack\/interactions/);
  assert.match(out.stdout, /replace https:\/\/signoff\.example\.workers\.dev with your Worker's URL/);
  assert.match(out.stdout, /Add PUBLIC_URL = "https:\/\/<your worker>" to wrangler\.toml \[vars\]/);
});

test("a D1 database already in the account is used, not created again", () => {
  const ws = workspace({ databases: [{ name: "signoff-audit", uuid: "0b7d5a3c-1e2f-4a6b-9c8d-7e6f5a4b3c2d" }] });
  const out = ws.run(["--yes", "--url", "acme"]);
  assert.equal(out.code, 0, out.all);
  assert.ok(!out.calls.some((c) => c.argv[1] === "create"), "no d1 create");
  assert.match(out.stdout, /exists in your account already \(0b7d5a3c-1e2f-4a6b-9c8d-7e6f5a4b3c2d\); using it/);
  assert.match(
    readFileSync(join(ws.dir, "wrangler.toml"), "utf8"),
    /database_id = "0b7d5a3c-1e2f-4a6b-9c8d-7e6f5a4b3c2d"/,
  );
});

test("what cannot work stops before anything is changed", () => {
  const ws = workspace();
  const xoxp = ws.run(["--yes"], { ...SLACK, SLACK_BOT_TOKEN: "xoxp-1234-user-token" });
  assert.equal(xoxp.code, 2, xoxp.all);
  assert.match(xoxp.stderr, /SLACK_BOT_TOKEN \(from the environment\): that is a user token/);
  assert.doesNotMatch(xoxp.all, /xoxp-1234-user-token/);
  const verification = ws.run(["--yes"], { ...SLACK, SLACK_SIGNING_SECRET: "aB3dE5gH7jK9mN1pQ3sT5vW7" });
  assert.equal(verification.code, 2, verification.all);
  assert.match(verification.stderr, /SLACK_SIGNING_SECRET .*32 letters and digits/);
  const loopback = ws.run(["--yes", "--url", "http://127.0.0.1:8787"]);
  assert.equal(loopback.code, 2);
  assert.match(loopback.stderr, /--url must be https/);
  const withPath = ws.run(["--yes", "--url", "https://signoff.acme.workers.dev/slack/interactions"]);
  assert.equal(withPath.code, 2);
  assert.match(withPath.stderr, /--url must be the Worker's origin only/);
  const badKey = ws.run(["--yes", "--key-actions", "k8s.*.*"]);
  assert.equal(badKey.code, 2, badKey.all);
  assert.match(badKey.stderr, /the first API key is not valid: must be an action type, `prefix\.\*` or `\*`/);
  // Without --yes it needs a terminal to ask on; a pipe is not one.
  const piped = ws.run([]);
  assert.equal(piped.code, 2);
  assert.match(piped.stderr, /stdin is not a terminal: pass --yes/);
  assert.deepEqual(ws.calls(), [], "wrangler was never called");

  const loggedOut = workspace({ loggedIn: false });
  const out = loggedOut.run(["--yes"]);
  assert.equal(out.code, 1, out.all);
  assert.match(out.stdout, /not logged in to Cloudflare: run `npx wrangler login` first/);
  assert.deepEqual(
    out.calls.map((c) => c.argv.join(" ")),
    ["whoami --json"],
  );
  const accounts = workspace({
    accounts: [
      { id: "0123456789abcdef0123456789abcdef", name: "Acme" },
      { id: "fedcba9876543210fedcba9876543210", name: "Acme staging" },
    ],
  });
  const two = accounts.run(["--yes"]);
  assert.equal(two.code, 1, two.all);
  assert.match(two.stdout, /you have 2 Cloudflare accounts: say which with CLOUDFLARE_ACCOUNT_ID=…/);
});

test("setDatabaseId changes the one line of the top-level block and nothing else", () => {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const changed = setDatabaseId(toml, "AUDIT_DB", DB_ID);
  const diff = toml.split("\n").filter((line, i) => line !== changed.split("\n")[i]);
  assert.deepEqual(diff, [`database_id = "${ZERO_ID}"`]);
  assert.equal(count(changed, ZERO_ID), 1, "[env.local] keeps its placeholder");
  assert.ok(changed.indexOf(DB_ID) < changed.indexOf("\n[env.local]\n"));

  // A header-like line inside a multi-line string is text; a block without database_id gets one after its name.
  const tricky = `name = "x"\nPOLICY = '''\n[[d1_databases]]\nbinding = "AUDIT_DB"\n'''\n\n[[d1_databases]] # the audit log\nbinding = "AUDIT_DB"\ndatabase_name = "signoff-audit"\nmigrations_dir = "migrations"\n\n[[env.local.d1_databases]]\nbinding = "AUDIT_DB"\ndatabase_id = "${ZERO_ID}"\n`;
  assert.equal(
    setDatabaseId(tricky, "AUDIT_DB", DB_ID),
    tricky.replace('database_name = "signoff-audit"\n', `database_name = "signoff-audit"\ndatabase_id = "${DB_ID}"\n`),
  );
  assert.throws(
    () => setDatabaseId(`[[env.local.d1_databases]]\nbinding = "AUDIT_DB"\n`, "AUDIT_DB", DB_ID),
    /no top-level/,
  );
  assert.throws(() => setDatabaseId(toml, "AUDIT_DB", "1; rm -rf /"), /not a D1 database id/);
});
