// SPEC 9 at the build level: what `wrangler deploy` would upload for production (wrangler.toml's top level)
// contains none of the local Slack stand-in, while the [env.local] build does. Builds with --dry-run: no account.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { LOCAL_IDENTITY_COOKIE } from "../../src/local/access.ts";
import { STANDIN_MARKER } from "../../src/local/marker.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Every file wrangler would upload, concatenated. */
function build(env: string | null): string {
  const out = mkdtempSync(join(tmpdir(), "signoff-bundle-"));
  dirs.push(out);
  const args = [WRANGLER, "deploy", "--dry-run", "--outdir", out, ...(env ? ["--env", env] : [])];
  const result = spawnSync(process.execPath, args, {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
    timeout: 120_000,
  });
  assert.equal(result.status, 0, `wrangler ${args.slice(1).join(" ")} failed:\n${result.stdout}\n${result.stderr}`);
  const files = readdirSync(out, { recursive: true, encoding: "utf8" }).filter((f) => statSync(join(out, f)).isFile());
  assert.ok(
    files.some((f) => f.endsWith(".js")),
    `no JavaScript in ${out}: ${files.join(", ")}`,
  );
  return files.map((f) => readFileSync(join(out, f), "utf8")).join("\n");
}

// Strings only the stand-in has: its marker, its Durable Objects, its routes and page, and the cookie with which its
// local Access issuer signs in whoever the page says (issue 11).
const STANDIN_STRINGS = [
  STANDIN_MARKER,
  "class LocalSlack",
  "class LocalMail",
  "/__local/",
  "signoff · local Slack stand-in",
  LOCAL_IDENTITY_COOKIE,
];

test("the production bundle (top-level wrangler.toml) contains no part of the stand-in", () => {
  const bundle = build(null);
  assert.match(bundle, /\/slack\/interactions|"\/interactions"/, "sanity: this is signoff's bundle");
  for (const marker of STANDIN_STRINGS) {
    assert.ok(!bundle.includes(marker), `production bundle contains ${JSON.stringify(marker)}`);
  }
});

test("the local bundle (--env local) does contain it, so the check above can fail", () => {
  const bundle = build("local");
  for (const marker of STANDIN_STRINGS) {
    assert.ok(bundle.includes(marker), `local bundle lacks ${JSON.stringify(marker)}`);
  }
});
