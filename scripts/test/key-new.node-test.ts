// `npm run key:new` from Node: the printed token authenticates against the printed entry, bad input names the flag.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { authenticate, parseApiKeys, TOKEN_PATTERN } from "../../src/config/api-keys.ts";

const SCRIPT = fileURLToPath(new URL("../key-new.ts", import.meta.url));

function run(...args: string[]) {
  const result = spawnSync(process.execPath, [SCRIPT, ...args], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "" } as unknown as NodeJS.ProcessEnv,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test("prints a token and an entry that authenticates it", async () => {
  const out = run(
    "--name",
    "alertmanager",
    "--scopes",
    "proposals:write,proposals:read",
    "--actions",
    "k8s.*",
    "--callback-hosts",
    "hooks.example.com",
  );
  assert.equal(out.code, 0, out.stderr);
  const token = /^\s+(so_\S+)$/m.exec(out.stdout)?.[1];
  assert.ok(token && TOKEN_PATTERN.test(token), out.stdout);
  const entryLine = out.stdout.split("\n").find((line) => line.trim().startsWith('{"name"'));
  assert.ok(entryLine, out.stdout);
  const keys = parseApiKeys([JSON.parse(entryLine)]);
  assert.deepEqual(keys[0], {
    name: "alertmanager",
    sha256: keys[0]!.sha256,
    scopes: ["proposals:write", "proposals:read"],
    actions: ["k8s.*"],
    callback_hosts: ["hooks.example.com"],
  });
  assert.equal((await authenticate(keys, `Bearer ${token}`))?.name, "alertmanager");
  assert.equal(await authenticate(keys, `Bearer ${token}x`), null);
  assert.match(out.stdout, /wrangler secret put API_KEYS/);
  // The entry stores the hash only.
  assert.ok(!entryLine.includes(token));
});

test("--json prints one object; scopes default to proposals:write,proposals:read", async () => {
  const out = run("--name", "ci", "--actions", "k8s.rollout_restart", "--json");
  assert.equal(out.code, 0, out.stderr);
  const { token, entry } = JSON.parse(out.stdout) as { token: string; entry: unknown };
  const keys = parseApiKeys([entry]);
  assert.deepEqual(keys[0]!.scopes, ["proposals:write", "proposals:read"]);
  assert.deepEqual(keys[0]!.callback_hosts, []);
  assert.equal((await authenticate(keys, `Bearer ${token}`))?.name, "ci");
});

test("every run mints a new token", () => {
  const a = JSON.parse(run("--name", "a", "--actions", "x", "--json").stdout) as { token: string };
  const b = JSON.parse(run("--name", "a", "--actions", "x", "--json").stdout) as { token: string };
  assert.notEqual(a.token, b.token);
});

test("--actions is required for proposer keys, optional for audit-only keys", () => {
  const missing = run("--name", "x");
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--actions is required/);
  assert.equal(missing.stdout, "");
  assert.equal(run("--name", "auditor", "--scopes", "audit:read", "--json").code, 0);
});

test("--actions '*' works but warns", () => {
  const out = run("--name", "x", "--actions", "*", "--json");
  assert.equal(out.code, 0);
  assert.match(out.stderr, /warning: .*every action type/);
});

test("bad input names each flag and prints no token", () => {
  const out = run(
    "--name",
    "bad name",
    "--scopes",
    "proposals:delete",
    "--actions",
    "K8S",
    "--callback-hosts",
    "https://x.com",
  );
  assert.equal(out.code, 2);
  for (const flag of ["--name", "--scopes", "--actions", "--callback-hosts"])
    assert.match(out.stderr, new RegExp(`${flag}: `));
  assert.doesNotMatch(out.stdout + out.stderr, /so_[A-Za-z0-9_-]{43}/);
  assert.equal(run("--name").code, 2);
  assert.equal(run("--name", "x", "--actions", "x", "--bogus").code, 2);
});
