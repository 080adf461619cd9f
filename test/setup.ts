// Per-file setup: the D1 audit schema, and a clean loopback peer.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach } from "vitest";
import { createdThisTest, settle } from "./helpers/api.ts";
import { peer } from "./peer/client.ts";

await applyD1Migrations(env.AUDIT_DB, env.TEST_MIGRATIONS);

beforeEach(async () => {
  await peer.reset();
});

afterEach(async () => {
  // Let the test's proposals finish what is due (card updates, flushes) before the next test
  // resets the peer; a failing settle here only means a job is still retrying, which is fine.
  for (const id of createdThisTest) await settle(id, 3_000).catch(() => undefined);
  createdThisTest.clear();
});
