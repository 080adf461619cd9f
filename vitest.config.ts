// Runs the tests inside workerd with the real Durable Objects, alarms and D1 of wrangler.toml.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { configDefaults, defineConfig } from "vitest/config";
import { SECRET_NAMES } from "./src/config/check.ts";
import {
  ACCESS_AUD,
  KEY_ENTRIES,
  LINK_BINDINGS,
  MAIL_API_TOKEN,
  MAIL_FROM,
  MAIL_PATH,
  POLICY,
  SECRETS,
  SLACK_TEAM_ID,
} from "./test/fixtures.ts";
import { startFilePeer } from "./test/peer/pool.ts";

/**
 * Files whose assertions read the clock under load: alarm-runs' "at most JOBS_PER_RUN per run" counts the replies
 * sent within 300 ms of the first, and the stress test's 300 proposals wait on retries with timeouts. Beside another
 * file on two cores their alarm runs and clicks interleave differently, so they run on their own.
 */
const ALONE = ["test/alarm-runs.test.ts", "test/stress-exactly-once.test.ts"];

const apiKeys = KEY_ENTRIES.map(({ token, ...entry }) => ({
  ...entry,
  sha256: createHash("sha256").update(token).digest("hex"),
}));

export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
  return {
    plugins: [
      dropPackageSourceMaps,
      // Called each time the pool starts a file's Miniflare: the file gets a loopback peer of its own (test/peer/pool.ts).
      cloudflareTest(async () => {
        const peer = `http://127.0.0.1:${await startFilePeer()}`;
        return {
          wrangler: { configPath: "./wrangler.toml" },
          miniflare: {
            bindings: {
              // The plugin also folds .dev.vars into the bindings, as `wrangler dev` does, and `npm start` writes
              // local mode's secrets there: MAIL_API_TOKEN alone (one of an all-or-nothing group) would make every
              // request misconfigured. Every secret is blanked first, so the suite sees only the secrets set here,
              // on every machine (scripts/bench/worker.ts drops .dev.vars for the same reason).
              ...Object.fromEntries(SECRET_NAMES.map((name) => [name, ""])),
              ...SECRETS,
              ...LINK_BINDINGS,
              API_KEYS: JSON.stringify(apiKeys),
              POLICY: JSON.stringify(POLICY),
              SLACK_API_BASE: `${peer}/slack/api`,
              SLACK_TEAM_ID,
              RUNNER_URL: `${peer}/runner`,
              // Approval links: Access in front of /l/* (the peer stands in for the team domain and its keys) and
              // the mail API that delivers them, which the proposals' Durable Objects call with these bindings.
              ACCESS_TEAM_DOMAIN: peer,
              ACCESS_AUD,
              MAIL_API_URL: `${peer}${MAIL_PATH}`,
              MAIL_FROM,
              MAIL_API_TOKEN,
              // Short enough that the "runner hangs" test does not wait 10 s.
              DISPATCH_TIMEOUT_MS: "1500",
              TEST_PEER: peer,
              TEST_MIGRATIONS: migrations,
            },
          },
        };
      }),
    ],
    test: {
      globalSetup: ["./test/peer/global-setup.ts"],
      setupFiles: ["./test/setup.ts"],
      // Each file has its own stand-in Slack/runner (test/peer/pool.ts), so files run side by side: two at a time,
      // even on two cores (vitest's default there is one), as much of a file's time is spent waiting on workerd.
      maxWorkers: 2,
      // ...except the files that measure time or load (ALONE): they run afterwards, one at a time with nothing beside
      // them, as every file did before.
      projects: [
        { extends: true as const, test: { name: "workers", exclude: [...configDefaults.exclude, ...ALONE] } },
        {
          extends: true as const,
          test: { name: "alone", include: ALONE, fileParallelism: false, sequence: { groupOrder: 1 } },
        },
      ],
      testTimeout: 20_000,
      // The plugin loads the whole Worker into every file's fresh workerd, one module per request to vite: bundled
      // once up front, each dependency is one module instead of hundreds (zod alone is over a hundred), which halves
      // the per-file start. Same packages, same entry points (the workerd conditions); a dependency left off the list
      // still works, only loads slower.
      deps: {
        optimizer: {
          ssr: {
            enabled: true,
            include: [
              "zod",
              "hono",
              "hono/body-limit",
              "hono/factory",
              "hono/cookie",
              "jose",
              "standardwebhooks",
              "@cfworker/json-schema",
              "@modelcontextprotocol/sdk/validation/cfworker",
              "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js",
              "@modelcontextprotocol/sdk/server/mcp.js",
              "@modelcontextprotocol/sdk/client/streamableHttp.js",
              "@modelcontextprotocol/sdk/client/index.js",
              "croner",
              "@marcbachmann/cel-js",
              "fast-check",
              "parse-prometheus-text-format",
            ],
          },
        },
      },
    },
  };
});

/**
 * Packages that ship source maps without their sources: loaded without the map, so vite does not warn
 * "Sourcemap for … points to missing source files" once per file (the MCP SDK has dozens of them).
 */
const dropPackageSourceMaps = {
  name: "signoff:drop-package-source-maps",
  enforce: "pre" as const,
  async load(id: string) {
    const file = id.split("?")[0]!;
    if (!/\/node_modules\/(@modelcontextprotocol\/sdk|standardwebhooks)\/.*\.js$/.test(file)) return null;
    return (await readFile(file, "utf8")).replace(/^\/\/# sourceMappingURL=.*$/gm, "");
  },
};
