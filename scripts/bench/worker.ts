// Starts Workers for the bench the way `wrangler dev` does underneath: the entry bundled by
// esbuild, run by Miniflare in its own workerd process, with the bindings wrangler reads from
// wrangler.toml (Durable Object, D1, [vars]) plus the bench's secrets. No proxy in front:
// requests go straight to workerd's socket, for both the real Worker and the bare route.
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { convertV4MiniflareOptions, Miniflare, type V4WorkerOptionsShape } from "miniflare";
import { unstable_getMiniflareWorkerOptions, unstable_splitSqlQuery } from "wrangler";
import { BENCH_KEY_NAME } from "./fixtures.ts";
import type { MeterTotals } from "./meter.ts";

const METER_MODULE = fileURLToPath(new URL("./meter.ts", import.meta.url));

export interface BenchSecrets {
  SLACK_SIGNING_SECRET: string;
  SLACK_BOT_TOKEN: string;
  RUNNER_SECRET: string;
  EVENTS_SECRET: string;
  AUDIT_SIGNING_KEY: string;
  /** The bench API key's bearer token (API_KEYS holds only its SHA-256). */
  token: string;
}

export function benchSecrets(): BenchSecrets {
  return {
    SLACK_SIGNING_SECRET: randomBytes(32).toString("hex"),
    SLACK_BOT_TOKEN: `xoxb-bench-${randomBytes(12).toString("hex")}`,
    RUNNER_SECRET: `whsec_${randomBytes(32).toString("base64")}`,
    EVENTS_SECRET: `whsec_${randomBytes(32).toString("base64")}`,
    // Any 32 bytes are an Ed25519 private key.
    AUDIT_SIGNING_KEY: `auditsk_${randomBytes(32).toString("base64")}`,
    token: `so_${randomBytes(32).toString("base64url")}`,
  };
}

export interface RunningWorker {
  url: URL;
  mf: Miniflare;
  /** The workerd process serving it (for /proc RSS). */
  pid: number | null;
  stop(): Promise<void>;
}

type WranglerWorkerOptions = Pick<
  V4WorkerOptionsShape,
  "compatibilityDate" | "compatibilityFlags" | "durableObjects" | "d1Databases" | "bindings"
>;

/** The options wrangler derived from wrangler.toml that the bench uses (its .d.ts leaves them untyped). */
function workerOptionsOf(options: unknown): WranglerWorkerOptions {
  return options as WranglerWorkerOptions;
}

async function bundle(entry: string, outfile: string, nodeModules?: string): Promise<void> {
  // The settings wrangler uses for a modules Worker: workerd's export conditions, Node built-ins
  // and cloudflare:* left to the runtime (nodejs_compat), JSON imports inlined.
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2024",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["workerd", "worker", "browser", "module", "main"],
    external: ["node:*", "cloudflare:*"],
    // A copy of src/ outside the repository (scripts/bench/variants.ts) still finds the packages.
    ...(nodeModules ? { nodePaths: [nodeModules] } : {}),
    logLevel: "warning",
  });
}

/** workerd processes that are children of this process, by pid. */
export function workerdChildren(): Set<number> {
  const found = new Set<number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid …: comm may hold spaces, so split after the last ')'.
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (comm === "workerd" && ppid === process.pid) found.add(Number(entry));
    } catch {
      // the process went away meanwhile
    }
  }
  return found;
}

async function launch(options: Parameters<typeof convertV4MiniflareOptions>[0]): Promise<RunningWorker> {
  const before = workerdChildren();
  const mf = new Miniflare(convertV4MiniflareOptions(options));
  const url = await mf.ready;
  const pid = [...workerdChildren()].find((p) => !before.has(p)) ?? null;
  return { url, mf, pid, stop: () => mf.dispose() };
}

/** The Durable Object classes a Worker's options bind (a namespace is a class name or `{ className }`). */
function durableClasses(namespaces: Record<string, unknown> | undefined): Set<string> {
  return new Set(
    Object.values(namespaces ?? {}).map((ns) =>
      typeof ns === "string" ? ns : String((ns as { className?: string }).className ?? ""),
    ),
  );
}

/**
 * signoff itself, from wrangler.toml's top-level (production) environment. `vars` override
 * [vars] the way `--var` does; everything else in [vars] (POLICY above all) is kept as written.
 */
export async function startSignoff(options: {
  root: string;
  workDir: string;
  secrets: BenchSecrets;
  vars: Record<string, string>;
  /** workerd's DevTools port, to take a CPU profile. */
  inspectorPort?: number;
  /** Another entry module than wrangler.toml's `main` (a patched copy of src/, for experiments). */
  entry?: string;
  /** Where the packages are (default: root's node_modules), for a checkout of an older commit without its own. */
  nodeModules?: string;
  /** The bundle's file name in workDir (two Workers may share it). */
  name?: string;
}): Promise<RunningWorker & { applyMigrations(): Promise<number>; meter(): Promise<MeterTotals> }> {
  const config = unstable_getMiniflareWorkerOptions(join(options.root, "wrangler.toml"));
  const wo = workerOptionsOf(config.workerOptions);
  // wrangler also folds .dev.vars (local mode's dev secrets) into the bindings: keep only the
  // [vars] of wrangler.toml, then the bench's secrets and overrides.
  const tomlVars = Object.fromEntries(
    Object.entries(wo.bindings ?? {}).filter(([name]) => ["RUNNER_URL", "SLACK_API_BASE", "POLICY"].includes(name)),
  );
  const { token, ...secrets } = options.secrets;
  const apiKeys = [
    {
      name: BENCH_KEY_NAME,
      sha256: createHash("sha256").update(token).digest("hex"),
      scopes: ["proposals:write", "proposals:read", "audit:read"],
      actions: ["k8s.*"],
      callback_hosts: [],
    },
  ];
  const name = options.name ?? "signoff";
  const script = join(options.workDir, `${name}.mjs`);
  // The Worker wrapped in the bench's meter (scripts/bench/meter.ts): what it counts is what an approval is billed.
  const metered = join(options.workDir, `${name}-metered.ts`);
  writeFileSync(
    metered,
    [
      `import * as worker from ${JSON.stringify(options.entry ?? config.main ?? join(options.root, "src/index.ts"))};`,
      `import { wrap } from ${JSON.stringify(METER_MODULE)};`,
      "const metered = wrap(worker);",
      "export default metered.default;",
      "export const ProposalObject = metered.ProposalObject;",
      // Grouped cards' object (docs/grouping.md), where this checkout's wrangler.toml has it: the bench sends no
      // group_key, so it is exported as it is, unmetered.
      ...(durableClasses(wo.durableObjects).has("ProposalGroup")
        ? ["export const ProposalGroup = worker.ProposalGroup;"]
        : []),
      "",
    ].join("\n"),
  );
  await bundle(metered, script, options.nodeModules ?? join(options.root, "node_modules"));
  const worker = await launch({
    name,
    host: "127.0.0.1",
    port: 0,
    resourcePersistencePath: join(options.workDir, name === "signoff" ? "state" : `${name}-state`),
    ...(options.inspectorPort ? { inspectorPort: options.inspectorPort } : {}),
    compatibilityDate: wo.compatibilityDate,
    compatibilityFlags: wo.compatibilityFlags,
    durableObjects: wo.durableObjects,
    d1Databases: wo.d1Databases,
    modulesRoot: options.workDir,
    modules: [{ type: "ESModule", path: script }],
    bindings: { ...tomlVars, ...secrets, API_KEYS: JSON.stringify(apiKeys), ...options.vars },
  });
  return {
    ...worker,
    /** Applies migrations/*.sql to the local D1, split into statements as wrangler does. */
    async applyMigrations() {
      const db = await worker.mf.getD1Database("AUDIT_DB");
      const dir = join(options.root, "migrations");
      const files = readdirSync(dir)
        .filter((f) => f.endsWith(".sql"))
        .sort();
      for (const file of files) {
        const statements = unstable_splitSqlQuery(readFileSync(join(dir, file), "utf8"));
        await db.batch(statements.map((sql) => db.prepare(sql)));
      }
      return files.length;
    },
    async meter() {
      return (await (await fetch(new URL("/__bench/meter", worker.url))).json()) as MeterTotals;
    },
  };
}

/** The bare Hono route (scripts/bench/bare-worker.ts), bundled and served the same way. */
export async function startBare(options: {
  root: string;
  workDir: string;
  compatibilityDate: string;
  compatibilityFlags: string[];
}): Promise<RunningWorker> {
  const script = join(options.workDir, "bare.mjs");
  await bundle(join(options.root, "scripts/bench/bare-worker.ts"), script);
  return launch({
    name: "bare",
    host: "127.0.0.1",
    port: 0,
    compatibilityDate: options.compatibilityDate,
    compatibilityFlags: options.compatibilityFlags,
    modulesRoot: options.workDir,
    modules: [{ type: "ESModule", path: script }],
    // Its one Durable Object class, on disk like signoff's (the memory phase compares what each object leaves behind).
    durableObjects: { BARE_OBJECT: { className: "BareObject", useSQLite: true } },
    resourcePersistencePath: join(options.workDir, "bare-state"),
  });
}

/** The compatibility settings of wrangler.toml, for the bare Worker to share. */
export function compatibilityOf(root: string): { compatibilityDate: string; compatibilityFlags: string[] } {
  const wo = workerOptionsOf(unstable_getMiniflareWorkerOptions(join(root, "wrangler.toml")).workerOptions);
  return { compatibilityDate: wo.compatibilityDate ?? "2026-10-01", compatibilityFlags: wo.compatibilityFlags ?? [] };
}

export interface Memory {
  /** Resident set size now, MiB. */
  rssMiB: number;
  /** Peak resident set size so far (VmHWM), MiB. */
  peakMiB: number;
  /** The anonymous part of the resident set (RssAnon: heaps, caches), MiB. */
  anonMiB: number;
}

/** RSS of a process from /proc/<pid>/status, or null when it is gone. */
export function memoryOf(pid: number | null): Memory | null {
  if (pid === null) return null;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
    return { rssMiB: kib("VmRSS") / 1024, peakMiB: kib("VmHWM") / 1024, anonMiB: kib("RssAnon") / 1024 };
  } catch {
    return null;
  }
}

export interface CpuTime {
  /** CPU time of all the process's threads, ms. */
  cpuMs: number;
  /** Time its threads were runnable but waited for a CPU (other processes had it), ms. */
  waitMs: number;
}

/** A process's CPU use so far, from /proc/<pid>/task/<tid>/schedstat (nanoseconds, all threads). */
export function cpuOf(pid: number | null): CpuTime {
  const total: CpuTime = { cpuMs: 0, waitMs: 0 };
  if (pid === null) return total;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const [run = "0", wait = "0"] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").trim().split(" ");
        total.cpuMs += Number(run) / 1e6;
        total.waitMs += Number(wait) / 1e6;
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    // the process is gone
  }
  return total;
}

/** A TCP port nobody listens on right now (for workerd's inspector). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A process's open file descriptors: how many, and how many are sockets and SQLite files. */
export function openFilesOf(pid: number | null): { total: number; sockets: number; sqlite: number } | null {
  if (pid === null) return null;
  try {
    const out = { total: 0, sockets: 0, sqlite: 0 };
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target = "";
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue; // closed meanwhile
      }
      out.total += 1;
      if (target.startsWith("socket:")) out.sockets += 1;
      if (target.endsWith(".sqlite")) out.sqlite += 1;
    }
    return out;
  } catch {
    return null;
  }
}
