// Per-file setup: the D1 audit schema, and a clean loopback peer.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach } from "vitest";
import { createdThisTest, settle } from "./helpers/api.ts";
import { peer } from "./peer/client.ts";

const testEnv = env as unknown as { AUDIT_DB: D1Database; TEST_MIGRATIONS: Parameters<typeof applyD1Migrations>[1] };
await applyD1Migrations(testEnv.AUDIT_DB, testEnv.TEST_MIGRATIONS);

beforeEach(async () => {
  await peer.reset();
});

afterEach(async () => {
  // Let the test's proposals finish what is due (card updates, flushes) before the next test
  // resets the peer; a failing settle here only means a job is still retrying, which is fine.
  for (const id of createdThisTest) await settle(id, 3_000).catch(() => undefined);
  createdThisTest.clear();
});
