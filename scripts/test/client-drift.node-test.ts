// Issue 14: the typed client, the Action's bundle and the Worker stay in step. The client's types are what
// openapi-typescript makes of the document GET /openapi.json serves today; action/dist/index.js is what
// `npm run build:action` makes of today's sources; and the Worker never imports the client or the Action.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
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

test("the Worker never imports the client or the Action (they are not bundled into it)", () => {
  const offenders: string[] = [];
  for (const file of readdirSync(join(ROOT, "src"), { recursive: true, encoding: "utf8" })) {
    if (!/\.(ts|js)$/.test(file)) continue;
    const text = readFileSync(join(ROOT, "src", file), "utf8");
    if (/from\s+["'](?:\.\.\/)+(?:client|action)\//.test(text)) offenders.push(file);
  }
  assert.deepEqual(offenders, []);
});
