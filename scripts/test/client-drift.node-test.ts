// Issue 14: the typed client, the Action's bundle and the Worker stay in step. The client's types are what
// openapi-typescript makes of the document GET /openapi.json serves today; action/dist/index.js is what
// `npm run build:action` makes of today's sources; and the Worker never imports the client or the Action.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { ACTION_BUNDLE, buildAction, buildCli } from "../build-action.ts";
import { generatedTypes, TYPES_PATH } from "../client-types.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

test("client/src/api-types.ts is what openapi-typescript makes of the served /openapi.json (npm run client:types)", async () => {
  const fresh = await generatedTypes();
  assert.ok(fresh.includes('"/v1/actions"'), "the generated types cover GET /v1/actions");
  assert.ok(
    readFileSync(TYPES_PATH, "utf8") === fresh,
    "client/src/api-types.ts differs from the served document's types: run `npm run client:types` and commit it",
  );
});

test("action/dist/index.js is a fresh build of the Action's sources (npm run build:action)", {
  timeout: 300_000,
}, async () => {
  const fresh = await buildAction();
  assert.ok(
    readFileSync(ACTION_BUNDLE, "utf8") === fresh,
    "action/dist/index.js is stale: run `npm run build:action` and commit it",
  );
});

test("the CLI packs as one file that runs by itself (npm pack ./client builds it)", { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "signoff-cli-pack-"));
  try {
    const bin = join(dir, "signoff.js");
    writeFileSync(bin, await buildCli());
    writeFileSync(join(dir, "package.json"), '{"type":"module"}');
    const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: "utf8" });
    const version = run(["--version"]);
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout, `${JSON.parse(readFileSync(join(ROOT, "client", "package.json"), "utf8")).version}\n`);
    const unreachable = run(["actions", "--url", "http://127.0.0.1:9", "--token", "t"]);
    assert.equal(unreachable.status, 3);
    assert.match(unreachable.stderr, /^signoff actions: unreachable: cannot reach http:\/\/127\.0\.0\.1:9/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the Worker never imports the client or the Action (they are not bundled into it)", () => {
  const offenders: string[] = [];
  for (const file of readdirSync(join(ROOT, "src"), { recursive: true, encoding: "utf8" })) {
    if (!/\.(ts|js)$/.test(file)) continue;
    const text = readFileSync(join(ROOT, "src", file), "utf8");
    if (/from\s+["'](?:\.\.\/)+(?:client|action)\//.test(text)) offenders.push(file);
  }
  assert.deepEqual(offenders, []);
});
