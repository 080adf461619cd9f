// Local mode's moving parts (SPEC 9), startable and stoppable from code: dev secrets on first run, local D1
// migrations, the reference runner, and `wrangler dev --env local` (the Worker with the Slack stand-in, the local
// Access issuer and the mail catcher, which it serves itself). `npm start` (scripts/start.ts) and the browser test
// (e2e/) both use startLocal().
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseEnv } from "node:util";
import { newSigningKey as newAuditKey } from "../../src/audit/signing.ts";
import { newApiKey, parseApiKeys } from "../../src/config/api-keys.ts";
import { ConfigError } from "../../src/config/problems.ts";
import type { ErrorDetail } from "../../src/errors.ts";
import { sha256Hex } from "../../src/lib/crypto.ts";
import { LOCAL_JWKS_PATH, newLocalAccessKey } from "../../src/local/access.ts";
import { describeProblems, localProblems } from "../../src/local/diagnose.ts";
import { newSigningKey } from "../../src/webhooks/signing-keys.ts";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
const RUNNER = join(ROOT, "examples", "runner", "src", "main.ts");
const RUNNER_ACTIONS = join(ROOT, "scripts", "local", "runner-actions.json");
export const DEMO_KEY_NAME = "local-demo";

export interface LocalOptions {
  /** The Worker's port; 0 picks a free one. Default 8787. */
  port?: number;
  /** The reference runner's port; 0 picks a free one. Default 8788. */
  runnerPort?: number;
  /** wrangler's --persist-to (local D1 and Durable Objects). Default .wrangler/state. */
  persistTo?: string;
  /** The dev secrets file, created on first run. Default .dev.vars. */
  devVarsPath?: string;
  /** Where the demo API key's token is kept so that later runs can print it. Default .local/demo-token. */
  tokenPath?: string;
  /** Each output line of the children, prefixed with its source. Default: print to stdout. */
  log?: (line: string) => void;
  /** How long to wait for everything to answer. Default 90 s (the first wrangler start bundles). */
  readyTimeoutMs?: number;
}

export interface LocalStack {
  /** http://localhost:<port>: the stand-in page is at `/`, the API at /v1/…. */
  url: string;
  port: number;
  runnerUrl: string;
  /** Where the local Access issuer serves its keys (ACCESS_JWKS_URL). */
  jwksUrl: string;
  /** Where the mail catcher takes signoff's mail (MAIL_API_URL). */
  mailUrl: string;
  token: string;
  devVarsPath: string;
  tokenPath: string;
  persistTo: string;
  /** The last lines the children printed (for a failing test's message). */
  recentOutput(): string;
  /** Process ids of the runner and of wrangler, each the leader of its own process group. */
  pids: number[];
  /** Stops the Worker and the runner (their whole process groups) and waits for them to exit. */
  stop(): Promise<void>;
}

/** Node ≥ 22.12 (type stripping, and what wrangler 4 needs); npm scripts get it from the `node` package. */
export function checkNode(): void {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  if (major < 22 || (major === 22 && minor < 12)) {
    throw new Error(
      `Node ${process.versions.node} is too old: run this through npm (\`npm start\`), which uses the project's Node 22`,
    );
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function webhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

/** A dotenv value that survives wrangler's and Node's parsers: single-quoted (no escapes inside). */
function dotenvLine(name: string, value: string): string {
  if (value.includes("'") || value.includes("\n")) throw new Error(`${name} cannot be written to a dotenv file`);
  return `${name}='${value}'`;
}

/**
 * Creates the dev secrets file on first run and adds whatever a later version needs, never changing a value
 * already there. The demo key's token goes to .dev.vars (the stand-in's form proposes with it) and to tokenPath.
 */
export async function ensureDevVars(
  devVarsPath: string,
  tokenPath: string,
): Promise<{ token: string; created: string[]; warnings: string[] }> {
  const existing = existsSync(devVarsPath) ? parseEnv(readFileSync(devVarsPath, "utf8")) : {};
  const add: Record<string, string> = {};
  const warnings: string[] = [];
  if (!existing.SLACK_SIGNING_SECRET) add.SLACK_SIGNING_SECRET = randomBytes(32).toString("hex");
  if (!existing.SLACK_BOT_TOKEN) add.SLACK_BOT_TOKEN = `xoxb-local-${randomBytes(18).toString("hex")}`;
  if (!existing.RUNNER_SECRET) add.RUNNER_SECRET = webhookSecret();
  if (!existing.EVENTS_SECRET) add.EVENTS_SECRET = webhookSecret();
  if (!existing.EVENTS_SIGNING_KEYS) add.EVENTS_SIGNING_KEYS = newSigningKey();
  // Signs the local audit log's chain heads; `npm run audit:verify` reads its public half from this file.
  if (!existing.AUDIT_SIGNING_KEY) add.AUDIT_SIGNING_KEY = (await newAuditKey()).secret;
  // Issue 11: the demo policy's link action needs its link secret, the mail API's token (the local catcher checks
  // it) and the local Access issuer's private key (an RSA JWK made with jose; its public half is served as JWKS).
  if (!existing.LINK_SECRET) add.LINK_SECRET = webhookSecret();
  if (!existing.MAIL_API_TOKEN) add.MAIL_API_TOKEN = `re_local_${randomBytes(24).toString("hex")}`;
  if (!existing.LOCAL_ACCESS_KEY) add.LOCAL_ACCESS_KEY = await newLocalAccessKey();

  let token = existing.LOCAL_DEMO_TOKEN ?? "";
  if (!existing.API_KEYS) {
    const minted = await newApiKey(
      DEMO_KEY_NAME,
      ["proposals:write", "proposals:read", "audit:read"],
      ["demo.*", "k8s.*"],
      ["127.0.0.1", "localhost"],
    );
    token = minted.token;
    add.API_KEYS = JSON.stringify([minted.entry]);
    add.LOCAL_DEMO_TOKEN = token;
  } else if (apiKeysParse(existing.API_KEYS) && (!token || !(await keysInclude(existing.API_KEYS, token)))) {
    // Only about keys that parse: a typo in API_KEYS is not a missing LOCAL_DEMO_TOKEN, and the Worker's
    // configuration check names it, with its "did you mean", once it starts (issue 13).
    warnings.push(
      `${relative(ROOT, devVarsPath)} has API_KEYS of its own without LOCAL_DEMO_TOKEN matching one of them: the page's form cannot propose ` +
        `(add LOCAL_DEMO_TOKEN='<a token of one of those keys>', or delete the file to start afresh)`,
    );
  }

  const names = Object.keys(add);
  if (names.length > 0) {
    const fresh = !existsSync(devVarsPath);
    const header = fresh
      ? "# Local mode's dev secrets, written by `npm start` (never committed: .dev.vars is gitignored).\n" +
        "# Delete this file to get new ones. LOCAL_DEMO_TOKEN is the demo API key's token, for the stand-in's form;\n" +
        "# LOCAL_ACCESS_KEY is the private key of the local stand-in for Cloudflare Access.\n"
      : "\n# Added by `npm start`:\n";
    const needsNewline = !fresh && !readFileSync(devVarsPath, "utf8").endsWith("\n");
    appendFileSync(
      devVarsPath,
      `${(needsNewline ? "\n" : "") + header + names.map((n) => dotenvLine(n, add[n]!)).join("\n")}\n`,
      { mode: 0o600 },
    );
  }
  if (token) {
    mkdirSync(dirname(tokenPath), { recursive: true });
    writeFileSync(tokenPath, `${token}\n`, { mode: 0o600 });
    chmodSync(tokenPath, 0o600);
  } else if (existsSync(tokenPath)) {
    token = readFileSync(tokenPath, "utf8").trim();
  }
  return { token, created: names, warnings };
}

function apiKeysParse(apiKeys: string): boolean {
  try {
    parseApiKeys(apiKeys);
    return true;
  } catch (error) {
    if (error instanceof ConfigError) return false;
    throw error;
  }
}

async function keysInclude(apiKeys: string, token: string): Promise<boolean> {
  try {
    const digest = await sha256Hex(token);
    return parseApiKeys(apiKeys).some((key) => key.sha256 === digest);
  } catch {
    return false;
  }
}

/** Runs a command to completion; rejects with its output when it fails. */
function run(args: string[], env: NodeJS.ProcessEnv, log: (line: string) => void, label: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    const output: string[] = [];
    const collect = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line.trim() === "" || line.includes("npm warn Unknown user config")) continue;
        output.push(line);
        log(`[${label}] ${line}`);
      }
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${label} failed (exit ${code}):\n${output.slice(-30).join("\n")}`));
    });
  });
}

/** Environment for wrangler here: never prompt, no telemetry, no lookup of Cloudflare's request.cf (no internet). */
function wranglerEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CI: "true",
    WRANGLER_SEND_METRICS: "false",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    NO_COLOR: "1",
    FORCE_COLOR: "0",
  };
}

export function migrateArgs(persistTo?: string): string[] {
  return [
    "d1",
    "migrations",
    "apply",
    "signoff-audit",
    "--local",
    "--env",
    "local",
    ...(persistTo ? ["--persist-to", persistTo] : []),
  ];
}

async function waitFor(url: string, deadline: number, exited: () => string | null): Promise<Response> {
  let last = "no answer";
  for (;;) {
    const gone = exited();
    if (gone) throw new Error(gone);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      if (res.status !== 502 && res.status !== 503) return res;
      const body = await res.text();
      last = `HTTP ${res.status}: ${body}`;
      // 503 misconfigured is final: waiting would not fix .dev.vars.
      if (body.includes('"misconfigured"')) return new Response(body, { status: 503 });
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer in time (${last})`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Why the Worker is not healthy, in words: each configuration problem once, with where to fix it (issue 13). */
async function unhealthy(res: Response): Promise<string> {
  const text = await res.text();
  let details: ErrorDetail[] | null = null;
  try {
    const body = JSON.parse(text) as { error?: { code?: string; details?: ErrorDetail[] } };
    if (body.error?.code === "misconfigured" && Array.isArray(body.error.details)) details = body.error.details;
  } catch {
    // not signoff's JSON
  }
  return details ? describeProblems(localProblems(details)) : `the Worker answers ${res.status}: ${text}`;
}

/**
 * Output that says nothing about this run. `wrangler dev --env local` compares worker-configuration.d.ts with types
 * it generates for the local entry (src/local/index.ts, whose Durable Object imports differ), never for the
 * production entry the file is generated from (`npm run types`), so it always suggests re-running `wrangler types`,
 * which would change nothing.
 */
const EXPECTED_NOISE = /Your types might be out of date/;

/** Starts the child in its own process group, so that stopping it also stops what it started (workerd). */
function launch(
  args: string[],
  env: NodeJS.ProcessEnv,
  label: string,
  log: (line: string) => void,
  keep: string[],
): ChildProcess {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (line.trim() === "" || EXPECTED_NOISE.test(line)) continue;
      keep.push(`[${label}] ${line}`);
      if (keep.length > 400) keep.splice(0, keep.length - 400);
      log(`[${label}] ${line}`);
    }
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  return child;
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM to the child's process group, SIGKILL after `timeoutMs`; resolves once no process of the group is left. */
async function stopGroup(child: ChildProcess, timeoutMs = 8_000): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig); // the group this child leads (detached), so workerd goes too
    } catch {
      // already gone
    }
  };
  const running = child.exitCode === null && child.signalCode === null;
  if (running) {
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    signal("SIGTERM");
    const timer = setTimeout(() => signal("SIGKILL"), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
  // Whatever the child left behind in its group (workerd, a running command) goes with it.
  signal("SIGKILL");
  for (let waited = 0; groupAlive(pid) && waited < 5_000; waited += 50)
    await new Promise((resolve) => setTimeout(resolve, 50));
}

export async function startLocal(options: LocalOptions = {}): Promise<LocalStack> {
  checkNode();
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const port = options.port === 0 ? await freePort() : (options.port ?? 8787);
  const runnerPort = options.runnerPort === 0 ? await freePort() : (options.runnerPort ?? 8788);
  const inspectorPort = await freePort();
  const persistTo = options.persistTo ?? join(ROOT, ".wrangler", "state");
  const devVarsPath = options.devVarsPath ?? join(ROOT, ".dev.vars");
  const tokenPath = options.tokenPath ?? join(ROOT, ".local", "demo-token");
  const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);

  const vars = await ensureDevVars(devVarsPath, tokenPath);
  if (vars.created.length > 0)
    log(`[start] wrote ${vars.created.join(", ")} to ${relative(ROOT, devVarsPath) || devVarsPath}`);
  for (const warning of vars.warnings) log(`[start] warning: ${warning}`);
  const secrets = parseEnv(readFileSync(devVarsPath, "utf8"));

  await run([WRANGLER, ...migrateArgs(persistTo)], wranglerEnv(), log, "d1");

  const url = `http://localhost:${port}`;
  // The Worker reaches the runner and the stand-in's Web API on IPv4 loopback, as wrangler dev listens there.
  const workerBase = `http://127.0.0.1:${port}`;
  const runnerUrl = `http://127.0.0.1:${runnerPort}/run`;
  const jwksUrl = `${workerBase}${LOCAL_JWKS_PATH}`;
  const mailUrl = `${workerBase}/__local/mail/api/emails`;
  // Every var of [env.local] that holds a port, for the ports of this run (wrangler.toml has them for 8787).
  const portVars: Record<string, string> = {
    RUNNER_URL: runnerUrl,
    SLACK_API_BASE: `${workerBase}/__local/slack/api`,
    // Links point where the page is (`localhost`), so the stand-in's sign-in cookie goes along when one is opened.
    PUBLIC_URL: url,
    ACCESS_TEAM_DOMAIN: workerBase,
    ACCESS_JWKS_URL: jwksUrl,
    MAIL_API_URL: mailUrl,
  };
  const output: string[] = [];
  const children: ChildProcess[] = [];
  const exits: string[] = [];
  const watch = (child: ChildProcess, label: string) => {
    children.push(child);
    child.on("exit", (code, sig) =>
      exits.push(`${label} exited (${sig ?? `code ${code}`}) before it was ready:\n${output.slice(-40).join("\n")}`),
    );
  };
  const stop = async () => {
    await Promise.all(children.map((child) => stopGroup(child)));
  };

  try {
    watch(
      launch(
        [RUNNER],
        {
          ...process.env,
          PORT: String(runnerPort),
          HOST: "127.0.0.1",
          RUNNER_SECRET: secrets.RUNNER_SECRET ?? "",
          SIGNOFF_URL: workerBase,
          RUNNER_ACTIONS,
        },
        "runner",
        log,
        output,
      ),
      "runner",
    );
    watch(
      launch(
        [
          WRANGLER,
          "dev",
          "--env",
          "local",
          "--ip",
          "127.0.0.1",
          "--port",
          String(port),
          "--inspector-port",
          String(inspectorPort),
          "--persist-to",
          persistTo,
          "--env-file",
          devVarsPath,
          ...Object.entries(portVars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
          "--show-interactive-dev-session=false",
        ],
        wranglerEnv(),
        "worker",
        log,
        output,
      ),
      "wrangler dev",
    );
    const exited = () => exits[0] ?? null;
    await waitFor(`http://127.0.0.1:${runnerPort}/healthz`, deadline, exited);
    const health = await waitFor(`${workerBase}/healthz`, deadline, exited);
    if (!health.ok) throw new Error(await unhealthy(health));
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    url,
    port,
    runnerUrl,
    jwksUrl,
    mailUrl,
    token: vars.token,
    devVarsPath,
    tokenPath,
    persistTo,
    recentOutput: () => output.join("\n"),
    pids: children.map((child) => child.pid).filter((pid): pid is number => pid !== undefined),
    stop,
  };
}
