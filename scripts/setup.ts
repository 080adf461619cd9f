// `npm run setup [-- --yes --url URL]`: sets a production deployment up from a fresh clone (docs/deploy.md): the D1
// database and its id in wrangler.toml, every generated secret put with `wrangler secret put` (the value on stdin,
// never on a command line), the Slack secrets, the first API key, the remote migrations, and the Slack manifest with
// the Worker's URL. It asks what it cannot make (interactive, @clack/prompts) unless --yes. Safe to re-run: what
// exists is skipped and said so. A secret is shown at most once (the runner's and the API token, at the end), and
// none is ever written to a file: only the database id (not a secret) goes into wrangler.toml.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as clack from "@clack/prompts";
import { newSigningKey as newAuditKey } from "../src/audit/signing.ts";
import { KEY_NAME_PATTERN, newApiKey } from "../src/config/api-keys.ts";
import { parsePolicy } from "../src/config/policy.ts";
import { ConfigError } from "../src/config/problems.ts";
import { newSigningKey } from "../src/webhooks/signing-keys.ts";
import { fail, parseCommandLine } from "./lib/cli.ts";
import { productionFindings, unreachableHost } from "./lib/production.ts";
import { loadWrangler } from "./lib/wrangler.ts";
import { setDatabaseId } from "./lib/wrangler-toml.ts";

const COMMAND = "setup";
const ROOT = resolve(import.meta.dirname, "..");
const AUDIT_BINDING = "AUDIT_DB";
const ZERO_ID = /^[0-]+$/;

const USAGE = `Usage: npm run setup [-- --yes] [--url URL] [--links] [--key-name NAME] [--key-actions PATTERNS]

Sets up signoff in your Cloudflare account (after \`npx wrangler login\`): creates the D1 database and writes its
id into wrangler.toml, generates and puts the secrets, puts the Slack ones, mints the first API key, applies the
D1 migrations and prints the Slack app manifest with the Worker's URL. Safe to re-run: what exists is skipped.
Step by step, and by hand: docs/deploy.md.

  --yes               ask nothing and read no stdin (scripts, CI): the Slack secrets come from the environment
                      variables SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (never from the command line); without
                      them they are skipped, to be set by a later run
  --url URL           the Worker's URL (https://signoff.<subdomain>.workers.dev, or a custom domain), or just
                      your workers.dev subdomain; asked for unless --yes
  --links             also generate LINK_SECRET (default: when an action in POLICY enables signed links)
  --key-name NAME     the first API key's name, the audit log's key:NAME (default: first-key)
  --key-actions LIST  comma-separated action types it may propose (default: every action type in POLICY)`;

const args = parseCommandLine(COMMAND, USAGE, {
  yes: { type: "boolean", short: "y", default: false },
  url: { type: "string" },
  links: { type: "boolean", default: false },
  "key-name": { type: "string", default: "first-key" },
  "key-actions": { type: "string" },
});
const interactive = !args.yes;
if (interactive && !process.stdin.isTTY) {
  fail(COMMAND, "stdin is not a terminal: pass --yes (with --url, and the Slack secrets in the environment)");
}

function signingSecretProblem(value: string): string | undefined {
  if (/^xox/.test(value)) return "that is a token: the signing secret is under Basic Information → App Credentials";
  if (!/^[A-Za-z0-9]{32}$/.test(value)) {
    return "Slack's signing secret is 32 letters and digits (Basic Information → App Credentials → Signing Secret)";
  }
  return undefined;
}
function botTokenProblem(value: string): string | undefined {
  if (/^xoxp-/.test(value)) return "that is a user token (xoxp-): signoff needs the Bot User OAuth Token, xoxb-…";
  if (!/^xoxb-[A-Za-z0-9-]+$/.test(value)) {
    return "must be the Bot User OAuth Token, xoxb-… (OAuth & Permissions, after installing the app)";
  }
  return undefined;
}
// With --yes the Slack secrets come from the environment (a command line is visible to every process), checked now,
// before anything is created, so that a typo stops the run instead of half of it.
const slackFromEnv: Record<string, string> = {};
if (!interactive) {
  for (const [name, problem] of [
    ["SLACK_SIGNING_SECRET", signingSecretProblem],
    ["SLACK_BOT_TOKEN", botTokenProblem],
  ] as const) {
    const value = process.env[name];
    if (value === undefined || value === "") continue;
    const bad = problem(value);
    if (bad) fail(COMMAND, `${name} (from the environment): ${bad}`);
    slackFromEnv[name] = value;
  }
}

// ---- what the repository says ------------------------------------------------------------------------------------

// wrangler's module takes seconds to load: only once the arguments are known to be usable.
const { experimental_readRawConfig } = loadWrangler();
const tomlPath = join(process.cwd(), "wrangler.toml");
if (!existsSync(tomlPath)) fail(COMMAND, "no wrangler.toml here: run it from the repository (npm run setup)");

interface D1Binding {
  binding?: string;
  database_name?: string;
  database_id?: string;
}
interface RawConfig {
  name?: string;
  vars?: Record<string, unknown>;
  d1_databases?: D1Binding[];
}
function readConfig(): RawConfig {
  return experimental_readRawConfig({ config: tomlPath }).rawConfig as RawConfig;
}
const config = readConfig();
const workerName = config.name ?? "signoff";
const audit = config.d1_databases?.find((d) => d.binding === AUDIT_BINDING);
if (!audit) fail(COMMAND, `wrangler.toml has no top-level [[d1_databases]] with binding = "${AUDIT_BINDING}"`);
const databaseName = audit.database_name ?? "signoff-audit";

let policyTypes: string[];
let policyLinks: boolean;
try {
  const policy = parsePolicy(config.vars?.POLICY);
  policyTypes = Object.keys(policy.actions);
  policyLinks = Object.values(policy.actions).some((action) => action.links);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  fail(COMMAND, "POLICY in wrangler.toml [vars] is not valid: `npm run check-config` names what is wrong");
}
const keyName = args["key-name"];
if (!KEY_NAME_PATTERN.test(keyName)) fail(COMMAND, `--key-name must match ${KEY_NAME_PATTERN}`);
const keyActions = (args["key-actions"]?.split(",") ?? policyTypes).map((s) => s.trim()).filter((s) => s !== "");
if (keyActions.length === 0) fail(COMMAND, "--key-actions names no action type");
const keyScopes = ["proposals:write", "proposals:read", "audit:read"];
// Minted now, so that a bad --key-actions stops the run before anything is created; put only if API_KEYS is not set.
let firstKey: Awaited<ReturnType<typeof newApiKey>>;
try {
  firstKey = await newApiKey(keyName, keyScopes, keyActions, []);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  fail(COMMAND, `the first API key is not valid: ${error.details.map((d) => d.message).join("; ")}`);
}

/** The Worker's origin from a URL, a host, or a bare workers.dev subdomain; or why it cannot be one. */
function workerOrigin(input: string): { origin: string } | { problem: string } {
  const text = input.trim();
  const candidate = /^[a-z0-9-]+$/i.test(text)
    ? `https://${workerName}.${text.toLowerCase()}.workers.dev`
    : /^[a-z][a-z0-9+.-]*:\/\//i.test(text)
      ? text
      : `https://${text}`;
  if (!URL.canParse(candidate)) return { problem: "is not a URL" };
  const url = new URL(candidate);
  if (url.protocol !== "https:") return { problem: "must be https: Slack sends clicks only to https URLs" };
  const unreachable = unreachableHost(url.hostname);
  if (unreachable) return { problem: `is ${unreachable}: Slack cannot reach it` };
  if (url.pathname !== "/" || url.search !== "" || url.username !== "") {
    return { problem: "must be the Worker's origin only (https://host), without a path" };
  }
  return { origin: url.origin };
}
let origin: string | null = null;
if (args.url !== undefined) {
  const checked = workerOrigin(args.url);
  if ("problem" in checked) fail(COMMAND, `--url ${checked.problem}`);
  origin = checked.origin;
}

// ---- wrangler ---------------------------------------------------------------------------------------------------

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `wrangler` (node_modules/.bin's under npm) with no terminal: it then asks nothing, reads a secret from stdin
 * and answers its own confirmations with their non-interactive defaults. `input` is the only way a value reaches it.
 */
function wrangler(argv: string[], input?: string): Promise<Run> {
  return new Promise((done, reject) => {
    const child = spawn("wrangler", argv, {
      cwd: process.cwd(),
      env: process.env,
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8");
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    child.on("error", (error: NodeJS.ErrnoException) => {
      reject(
        error.code === "ENOENT"
          ? new SetupError("wrangler is not on PATH: run this through npm (`npm run setup`), after `npm ci`")
          : error,
      );
    });
    child.on("close", (code) => done({ code: code ?? 1, stdout, stderr }));
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** A stop that explains itself; whatever setup did up to then stays done and is listed. */
class SetupError extends Error {}

function failed(what: string, run: Run): SetupError {
  const output = `${run.stdout}\n${run.stderr}`
    .split("\n")
    .filter((line) => line.trim() !== "")
    .slice(-15)
    .map((line) => `    ${line}`)
    .join("\n");
  return new SetupError(`\`wrangler ${what}\` failed (exit ${run.code}):\n${output}`);
}

async function must(argv: string[], input?: string): Promise<Run> {
  const run = await wrangler(argv, input);
  if (run.code !== 0) throw failed(argv.join(" "), run);
  return run;
}

// ---- what setup shows ---------------------------------------------------------------------------------------------

/** Secrets shown once, at the end (or when setup stops, so that nothing put is lost). */
const keep: Array<{ label: string; value: string }> = [];
/** Public values worth keeping: not secret, shown at the end too. */
const notes: string[] = [];
const todo: string[] = [];

function webhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

let summaryShown = false;
function showSummary(): void {
  if (summaryShown) return;
  summaryShown = true;
  if (keep.length > 0) {
    process.stdout.write(
      "\n=== Keep these now: setup never shows them again, and Cloudflare never shows a secret ===\n",
    );
    for (const { label, value } of keep) process.stdout.write(`\n${label}\n\n    ${value}\n`);
    process.stdout.write("\n===\n");
  }
  if (notes.length > 0) process.stdout.write(`\n${notes.join("\n")}\n`);
  if (todo.length > 0) {
    process.stdout.write("\nNext steps (docs/deploy.md has each one):\n");
    for (const [i, step] of todo.entries()) process.stdout.write(`  ${i + 1}. ${step}\n`);
  }
}

function cancelled(): never {
  clack.cancel("Stopped; nothing more was changed.");
  showSummary();
  process.exit(130);
}
process.on("SIGINT", cancelled);

/** A prompt's answer; Ctrl-C or Escape stops setup (with the summary of what it did). */
function answer<T>(value: T): Exclude<T, symbol> {
  if (clack.isCancel(value)) cancelled();
  return value as Exclude<T, symbol>;
}

// ---- the steps ----------------------------------------------------------------------------------------------------

async function login(): Promise<void> {
  for (;;) {
    const run = await wrangler(["whoami", "--json"]);
    let who: { loggedIn?: boolean; email?: string; accounts?: Array<{ id: string; name: string }> } = {};
    try {
      who = JSON.parse(run.stdout) as typeof who;
    } catch {
      if (run.code !== 0) throw failed("whoami --json", run);
    }
    if (run.code === 0 && who.loggedIn) {
      const accounts = who.accounts ?? [];
      // wrangler cannot choose among several accounts without a terminal: choose here, pass it on.
      if (accounts.length > 1 && !process.env.CLOUDFLARE_ACCOUNT_ID) {
        if (!interactive) {
          throw new SetupError(
            `you have ${accounts.length} Cloudflare accounts: say which with CLOUDFLARE_ACCOUNT_ID=… npm run setup -- --yes (ids: \`npx wrangler whoami\`)`,
          );
        }
        process.env.CLOUDFLARE_ACCOUNT_ID = answer(
          await clack.select({
            message: "Which Cloudflare account?",
            options: accounts.map((a) => ({ value: a.id, label: a.name, hint: a.id })),
          }),
        );
      }
      const account = accounts.find((a) => a.id === process.env.CLOUDFLARE_ACCOUNT_ID) ?? accounts[0];
      clack.log.success(`Cloudflare: logged in${who.email ? ` as ${who.email}` : ""}, account ${account?.name ?? "?"}`);
      return;
    }
    if (!interactive) {
      throw new SetupError("not logged in to Cloudflare: run `npx wrangler login` first (or set CLOUDFLARE_API_TOKEN)");
    }
    const go = answer(await clack.confirm({ message: "Not logged in to Cloudflare. Log in now (opens a browser)?" }));
    if (!go) throw new SetupError("not logged in to Cloudflare: run `npx wrangler login`, then `npm run setup` again");
    await new Promise<void>((done, reject) => {
      const child = spawn("wrangler", ["login"], { stdio: "inherit" });
      child.on("error", reject);
      child.on("close", () => done());
    });
  }
}

async function database(): Promise<void> {
  if (audit?.database_id && !ZERO_ID.test(audit.database_id)) {
    clack.log.info(`D1 database ${databaseName}: its id is in wrangler.toml already (${audit.database_id}); skipped`);
    return;
  }
  const listed = await must(["d1", "list", "--json"]);
  let id = (JSON.parse(listed.stdout) as Array<{ name?: string; uuid?: string }>).find(
    (db) => db.name === databaseName,
  )?.uuid;
  if (id) {
    clack.log.info(`D1 database ${databaseName}: exists in your account already (${id}); using it`);
  } else {
    const created = await must(["d1", "create", databaseName]);
    id = /database_id\s*[=:]\s*"([0-9a-f-]{36})"/.exec(created.stdout)?.[1];
    if (!id) throw failed(`d1 create ${databaseName}`, { ...created, code: 0, stderr: "no database_id in its output" });
    clack.log.success(`D1 database ${databaseName}: created (${id})`);
  }
  writeFileSync(tomlPath, setDatabaseId(readFileSync(tomlPath, "utf8"), AUDIT_BINDING, id));
  const written = readConfig().d1_databases?.find((d) => d.binding === AUDIT_BINDING)?.database_id;
  if (written !== id) throw new SetupError(`wrangler.toml does not read back database_id = "${id}": set it by hand`);
  clack.log.success(`wrangler.toml: database_id of [[d1_databases]] ${AUDIT_BINDING} set (commit it: it is no secret)`);
}

/** The names of the Worker's secrets; none when the Worker does not exist yet (the first `secret put` creates it). */
async function existingSecrets(): Promise<Set<string>> {
  const run = await wrangler(["secret", "list", "--format", "json"]);
  if (run.code !== 0) {
    if (/not found/i.test(run.stdout + run.stderr)) {
      clack.log.info(`Worker ${workerName}: not there yet; the first secret creates it (deploying comes later)`);
      return new Set();
    }
    throw failed("secret list --format json", run);
  }
  const start = run.stdout.indexOf("[");
  const list = JSON.parse(start >= 0 ? run.stdout.slice(start) : "[]") as Array<{ name: string }>;
  return new Set(list.map((s) => s.name));
}

async function put(name: string, value: string, why: string): Promise<void> {
  await must(["secret", "put", name], value);
  clack.log.success(`${name}: put (${why})`);
}

async function generatedSecrets(existing: Set<string>): Promise<void> {
  const links = args.links || policyLinks;
  const generated: Array<[string, () => Promise<{ value: string; why: string }>]> = [
    ["RUNNER_SECRET", async () => ({ value: webhookSecret(), why: "signs dispatches; the runner needs it too" })],
    ["EVENTS_SECRET", async () => ({ value: webhookSecret(), why: "signs outcome events v1" })],
    ["EVENTS_SIGNING_KEYS", async () => ({ value: newSigningKey(), why: "signs outcome events v1a, Ed25519" })],
    [
      "AUDIT_SIGNING_KEY",
      async () => {
        const key = await newAuditKey();
        notes.push(
          `Audit log public key (not secret; \`npm run audit:verify -- --remote --public-key …\` needs it): ${key.publicKey}`,
        );
        return { value: key.secret, why: "signs the audit log's chain heads" };
      },
    ],
  ];
  if (links) generated.push(["LINK_SECRET", async () => ({ value: webhookSecret(), why: "signs signed links" })]);
  for (const [name, make] of generated) {
    if (existing.has(name)) {
      clack.log.info(`${name}: set already; skipped`);
      continue;
    }
    const { value, why } = await make();
    await put(name, value, why);
    if (name === "RUNNER_SECRET") {
      keep.push({ label: "RUNNER_SECRET, for the runner (its environment; docs/deploy.md, the runner step):", value });
    }
  }
  if (!links) clack.log.info("LINK_SECRET: no action enables signed links; not needed (--links makes one)");
}

async function migrations(): Promise<void> {
  const run = await must(["d1", "migrations", "apply", databaseName, "--remote"]);
  const applied = run.stdout.includes("No migrations to apply") ? "none were new" : "applied";
  clack.log.success(`D1 migrations (migrations/) on ${databaseName}: ${applied}`);
}

async function manifest(): Promise<void> {
  if (origin === null && interactive) {
    const input = answer(
      await clack.text({
        message: `Your Worker's URL, or just your workers.dev subdomain (gives https://${workerName}.<subdomain>.workers.dev)`,
        placeholder: "empty: not known yet (Cloudflare dashboard → Workers & Pages shows the subdomain)",
        validate: (value) => {
          if (!value?.trim()) return undefined;
          const checked = workerOrigin(value);
          return "problem" in checked ? `It ${checked.problem}` : undefined;
        },
      }),
    );
    if (input.trim() !== "") {
      const checked = workerOrigin(input);
      if ("origin" in checked) origin = checked.origin;
    }
  }
  const text = readFileSync(join(ROOT, "slack", "manifest.yaml"), "utf8");
  // Filled in, the manifest's opening comment ("replace the request URL below") says what it is instead.
  const filled =
    origin === null
      ? text
      : text
          .replace(
            /^(#.*\n)+/,
            `# Slack app manifest for signoff at ${origin} (slack/manifest.yaml, filled in by npm run setup)\n`,
          )
          // Every request URL (interactivity, events), each keeping its path.
          .replace(/^(\s*request_url:\s*)https?:\/\/[^/\s]+(\/\S*)/gm, `$1${origin}$2`);
  process.stdout.write(
    `\n--- Slack app manifest (slack/manifest.yaml${origin === null ? "" : ` with ${origin}`}) ---\n${filled.trimEnd()}\n--- end of manifest ---\n\n`,
  );
  if (origin === null) {
    todo.push(
      `In the manifest, replace https://signoff.example.workers.dev with your Worker's URL (\`npm run deploy\` prints it), or run setup again with --url`,
    );
  }
}

async function slackSecrets(existing: Set<string>): Promise<void> {
  const wanted = (["SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN"] as const).filter((name) => {
    if (existing.has(name)) clack.log.info(`${name}: set already; skipped`);
    return !existing.has(name);
  });
  if (wanted.length === 0) return;
  if (interactive) {
    clack.note(
      [
        "Create the Slack app from the manifest above:",
        "api.slack.com/apps → Create New App → From a manifest → your workspace → paste it (YAML) → Create,",
        "then Install App → Allow. Leave this waiting meanwhile.",
      ].join("\n"),
      "Slack",
    );
  }
  const ask = {
    SLACK_SIGNING_SECRET: {
      message: "Signing Secret (Basic Information → App Credentials; empty: later)",
      problem: signingSecretProblem,
    },
    SLACK_BOT_TOKEN: {
      message: "Bot User OAuth Token, xoxb-… (OAuth & Permissions; empty: later)",
      problem: botTokenProblem,
    },
  };
  const skipped: string[] = [];
  for (const name of wanted) {
    let value = slackFromEnv[name];
    if (interactive) {
      value = answer(
        await clack.password({
          message: ask[name].message,
          validate: (input) => (input ? ask[name].problem(input) : undefined),
        }),
      );
    }
    if (!value) {
      skipped.push(name);
      continue;
    }
    await put(name, value, name === "SLACK_BOT_TOKEN" ? "posts and updates the cards" : "verifies Slack's requests");
  }
  if (skipped.length > 0) {
    clack.log.warn(`${skipped.join(", ")}: not set; signoff answers 503 misconfigured until they are`);
    todo.push(
      interactive
        ? `Create the Slack app from the manifest, then \`npm run setup\` again to put ${skipped.join(" and ")}`
        : `Create the Slack app from the manifest, then put ${skipped.join(" and ")}: \`npm run setup\` (it asks), or ${skipped.map((n) => `${n}=…`).join(" ")} npm run setup -- --yes`,
    );
  }
}

async function apiKey(existing: Set<string>): Promise<void> {
  if (existing.has("API_KEYS")) {
    clack.log.info(
      "API_KEYS: set already; skipped (another key: `npm run key:new`, then put the whole array again with `npx wrangler secret put API_KEYS`)",
    );
    return;
  }
  await put("API_KEYS", JSON.stringify([firstKey.entry]), `one key, "${keyName}"`);
  keep.push({
    label: `API token of key "${keyName}" (${keyScopes.join(", ")}; may propose ${keyActions.join(", ")}): Authorization: Bearer <it>`,
    value: firstKey.token,
  });
}

function nextSteps(): void {
  const fresh = readConfig();
  const findings = productionFindings(fresh.vars ?? {}, fresh.d1_databases);
  if (findings.length > 0) {
    todo.push(
      `Edit wrangler.toml [vars] (\`npm run deploy\` refuses until then):\n${findings.map((f) => `       - ${f.path}: ${f.message}`).join("\n")}`,
    );
  }
  if ((args.links || policyLinks) && fresh.vars?.PUBLIC_URL === undefined) {
    todo.push(
      `Add PUBLIC_URL = "${origin ?? "https://<your worker>"}" to wrangler.toml [vars]: signed links point there`,
    );
  }
  todo.push(
    "Start the runner with RUNNER_SECRET and make it reachable (a Cloudflare Tunnel); its https URL is RUNNER_URL",
  );
  todo.push("`npm run deploy`");
  todo.push(
    `Check: curl -s ${origin ?? "https://<your worker>"}/healthz, then a first proposal with the API token (docs/deploy.md, "Check it works")`,
  );
  todo.push("Invite the bot to each channel of POLICY: /invite @signoff");
}

// ---- run ----------------------------------------------------------------------------------------------------------

clack.intro(`signoff setup: Worker ${workerName}, D1 database ${databaseName}`);
if (interactive) {
  const go = answer(
    await clack.confirm({
      message:
        "This creates the D1 database, puts the Worker's secrets and applies the migrations in your Cloudflare account. Go on?",
    }),
  );
  if (!go) cancelled();
}
try {
  await login();
  await database();
  const existing = await existingSecrets();
  await generatedSecrets(existing);
  await migrations();
  await manifest();
  await slackSecrets(existing);
  await apiKey(existing);
  nextSteps();
  showSummary();
  clack.outro("Setup done.");
} catch (error) {
  // Whatever was put before the stop is shown now: a secret put and never shown could only be replaced.
  if (!(error instanceof SetupError)) {
    showSummary();
    throw error;
  }
  clack.log.error(error.message);
  showSummary();
  clack.outro("Setup stopped; fix the above and run `npm run setup` again: what is done is skipped.");
  process.exit(1);
}
