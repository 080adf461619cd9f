// Per-file setup: the D1 audit schema, and a clean loopback peer.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach } from "vitest";
import { peer } from "./peer/client.ts";

const testEnv = env as unknown as { AUDIT_DB: D1Database; TEST_MIGRATIONS: Parameters<typeof applyD1Migrations>[1] };
await applyD1Migrations(testEnv.AUDIT_DB, testEnv.TEST_MIGRATIONS);

beforeEach(async () => {
  await peer.reset();
});
