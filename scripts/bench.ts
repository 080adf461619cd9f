// `npm run bench [-- --quick] [-- --no-write]`: measures contract §10's and issue 12's targets in one run, against
// the Worker served locally as `wrangler dev` serves it (esbuild bundle, Miniflare, workerd, the
// bindings of wrangler.toml, a fresh local D1 with the migrations applied), with a fast stand-in
// Slack and runner on loopback. Prints a table and rewrites BENCHMARKS.md's results section.
//
// Phases, in order (each waits for the previous one's background work to finish):
//   warm-up · proposal creation · clicks vs a bare Hono route at 1/10/50/100 concurrent · a hot
//   proposal · where a click's time goes · approval→dispatch · expiry lateness · exactly-once
//   under a flaky runner (1,000 proposals) · audit chains · memory.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { type AuditEvent, verifyChains } from "../src/audit/chain.ts";
import { queryAuditEvents } from "../src/audit/store.ts";
import type { Proposal } from "../src/proposal/types.ts";
import { type CostSample, costRows, dollars, meterDelta, totalOf } from "./bench/cost.ts";
import { ALICE, BOB, MALLORY, OSCAR } from "./bench/fixtures.ts";
import { closedLoop, type LoadResult, type PreparedRequest, quantiles, type Sample, send } from "./bench/load.ts";
import type { PeerStats, PeerSummary, RunnerMode } from "./bench/peers.ts";
import { CpuProfiler, heapUsedMiB, hotspots, hotspotsByModule, moduleLines } from "./bench/profile.ts";
import {
  type BenchResults,
  type CpuProfileSummary,
  emptyResults,
  type MemoryBatch,
  type MemoryReport,
  type MemorySample,
  ms,
  type ProfileRow,
  type RunInfo,
  render,
  type StressReport,
  writeResults,
} from "./bench/report.ts";
import { clickRequest } from "./bench/slack.ts";
import {
  benchSecrets,
  compatibilityOf,
  cpuOf,
  freePort,
  memoryOf,
  openFilesOf,
  type RunningWorker,
  startBare,
  startSignoff,
} from "./bench/worker.ts";
import { parseCommandLine } from "./lib/cli.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const COMMAND = "npm run bench";
const BEFORE_DEFAULT = "5bb70ac";
const STRESS_CONCURRENCY = 25;

const USAGE = `Usage: ${COMMAND} [-- --quick] [--no-write] [--profile [--profile-out FILE]] [--only PHASES] [--state-dir DIR]

  --quick     fewer requests per phase (a smoke run; results are not written)
  --no-write  print the table only, leave BENCHMARKS.md alone
  --profile   also take a CPU profile of the Worker's isolate during approving clicks (after the measurements)
  --profile-out FILE  with --profile, also write that profile as it came (a .cpuprofile DevTools opens)
  --only P,…  run only these phases: cost, clicks (creation, levels, hot, where the time goes, dispatch), expiry, stress,
              memory (RSS over a batch in steady state); nothing is written
  --before REF  the commit whose cost per approval is measured beside the current code's (default ${BEFORE_DEFAULT}, the
              code before issue 12's second part; "none" skips it)
  --state-dir DIR  where the Worker's local state lives during the run (default: the system's temporary directory, on disk as with wrangler dev; /dev/shm shows what the disk costs)`;

const args = parseCommandLine("bench", USAGE, {
  quick: { type: "boolean", default: false },
  "no-write": { type: "boolean", default: false },
  profile: { type: "boolean", default: false },
  "profile-out": { type: "string" },
  only: { type: "string" },
  "state-dir": { type: "string" },
  before: { type: "string", default: BEFORE_DEFAULT },
});
const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `bench: Node ${process.versions.node} is too old; run it as \`${COMMAND}\` (the project's Node 22)\n`,
  );
  process.exit(2);
}

const QUICK = args.quick;
const ONLY = args.only ? new Set(args.only.split(",").map((p) => p.trim())) : null;
/** Concurrency levels and how many clicks each level sends (each on a proposal of its own). */
const LEVELS: Array<{ concurrency: number; requests: number }> = QUICK
  ? [
      { concurrency: 1, requests: 50 },
      { concurrency: 10, requests: 150 },
      { concurrency: 50, requests: 250 },
      { concurrency: 100, requests: 300 },
    ]
  : [
      { concurrency: 1, requests: 100 },
      { concurrency: 10, requests: 200 },
      { concurrency: 50, requests: 300 },
      { concurrency: 100, requests: 400 },
    ];
const CREATE_CONCURRENCY = 20;
const HOT_CLICKS = QUICK ? 200 : 500;
const PROFILE_REQUESTS = QUICK ? 100 : 150;
const PROFILE_CONCURRENCY = 50;
const DISPATCH_SAMPLES = QUICK ? 15 : 30;
const EXPIRY_PROPOSALS = 100;
const STRESS_PROPOSALS = QUICK ? 200 : 1000;
const COST_APPROVALS = QUICK ? 50 : 200;
const MEMORY_PROPOSALS = QUICK ? 200 : 1000;
/** Batches of the memory phase on signoff: the allocator's high-water mark rises with how many objects are open at once. */
const MEMORY_BATCHES = 3;
/** SQLite databases signoff's workerd holds open before any object exists (D1's, each class's metadata). */
let openAtStart = 0;
let bareOpenAtStart = 0;

const log = (line: string) =>
  process.stderr.write(`[bench ${((performance.now() - T0) / 1000).toFixed(1)}s] ${line}\n`);
const T0 = performance.now();
const sleep = (msec: number) => new Promise((resolve) => setTimeout(resolve, msec));

// ---- the peers (a child process) -------------------------------------------------------

interface Peers {
  url: string;
  pid: number | null;
  child: ChildProcess;
  summary(): Promise<PeerSummary>;
  stats(): Promise<PeerStats>;
  runnerMode(mode: RunnerMode): Promise<void>;
}

async function startPeers(runnerSecret: string): Promise<Peers> {
  const child = spawn(process.execPath, [join(ROOT, "scripts/bench/peers.ts"), runnerSecret], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const first = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once("line", resolve);
    child.once("exit", (code) => reject(new Error(`peers exited (${code}) before listening`)));
  });
  const url = `http://127.0.0.1:${(JSON.parse(first) as { port: number }).port}`;
  const get = async <T>(path: string, init?: RequestInit): Promise<T> =>
    (await (await fetch(`${url}${path}`, init)).json()) as T;
  return {
    url,
    pid: child.pid ?? null,
    child,
    summary: () => get<PeerSummary>("/__bench/stats?summary=1"),
    stats: () => get<PeerStats>("/__bench/stats"),
    runnerMode: async (mode) =>
      void (await get("/__bench/runner-mode", { method: "POST", body: JSON.stringify(mode) })),
  };
}

// ---- talking to signoff ------------------------------------------------------------------

type MeteredWorker = Awaited<ReturnType<typeof startSignoff>>;
let signoff: MeteredWorker;
let bare: RunningWorker;
let peers: Peers;
let secrets: ReturnType<typeof benchSecrets>;
const apiAgent = new Agent({ keepAlive: true, maxSockets: 128 });

function apiRequest(method: "GET" | "POST", path: string, body?: unknown, tag?: string): PreparedRequest {
  const headers: Record<string, string> = { authorization: `Bearer ${secrets.token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  return {
    method,
    path,
    headers,
    ...(body !== undefined ? { body: Buffer.from(JSON.stringify(body)) } : {}),
    ...(tag ? { tag } : {}),
  };
}

async function api<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const sample = await send(signoff.url, apiRequest(method, path, body), apiAgent, 70_000);
  return { status: sample.status, body: (sample.body ? JSON.parse(sample.body) : null) as T };
}

let serial = 0;
let createdOnSignoff = 0;
function proposalBody(ttlSeconds?: number) {
  serial += 1;
  return {
    action: { type: "k8s.rollout_restart", params: { deployment: `api-${serial}` } },
    summary: `Restart deployment api-${serial} (rolling)`,
    reason: "OOMKilled x4 in 5m on api-7f9; memory limit 512Mi is below the p99 working set after the 2.14 upgrade",
    blast_radius: "1 of 6 replicas at a time, prod, eu-west-1; error budget 62% left",
    rollback: "kubectl rollout undo deployment/api",
    requested_by: BOB,
    ...(ttlSeconds !== undefined ? { ttl_seconds: ttlSeconds } : {}),
    metadata: { incident: `INC-${serial}`, source: "bench" },
  };
}

function asProposal(view: Record<string, unknown>): Proposal {
  return { ...(view as unknown as Omit<Proposal, "slack">), slack: { messages: [] } } as Proposal;
}

async function createMany(
  n: number,
  concurrency = CREATE_CONCURRENCY,
  ttl?: () => number,
  target: RunningWorker = signoff,
): Promise<{ load: LoadResult; proposals: Proposal[] }> {
  const requests = Array.from({ length: n }, () => apiRequest("POST", "/v1/proposals", proposalBody(ttl?.())));
  const load = await closedLoop(target.url, requests, concurrency);
  if (target === signoff) createdOnSignoff += n;
  const failed = load.samples.filter((s) => s.status !== 201);
  if (failed.length > 0)
    throw new Error(
      `${failed.length} of ${n} creations failed, e.g. HTTP ${failed[0]!.status} ${failed[0]!.body.slice(0, 300)}`,
    );
  return { load, proposals: load.samples.map((s) => asProposal(JSON.parse(s.body) as Record<string, unknown>)) };
}

/** How far D1's audit log has grown (its last sequence number: a key lookup, not a scan). */
async function d1Count(target: RunningWorker = signoff): Promise<number> {
  // Through Miniflare's proxy, whose connection to a busy workerd is sometimes reset: asked again before giving up.
  for (let attempt = 1; ; attempt++) {
    try {
      const db = await target.mf.getD1Database("AUDIT_DB");
      return (await db.prepare("SELECT MAX(seq) AS n FROM audit_events").first<{ n: number | null }>())?.n ?? 0;
    } catch (error) {
      if (attempt >= 3) throw error;
      await sleep(300);
    }
  }
}

/**
 * Waits until the Worker's background work (alarms: Slack, dispatch, audit flushes) is done:
 * the runner has heard of `runnerAccepted` proposals and nothing has moved for `quietMs`.
 */
async function drain(
  label: string,
  expect: { runnerAccepted?: number; quietMs?: number; timeoutMs?: number } = {},
  target: RunningWorker = signoff,
): Promise<void> {
  const quietMs = expect.quietMs ?? 600;
  const deadline = Date.now() + (expect.timeoutMs ?? 60_000);
  let last = "";
  let since = Date.now();
  for (;;) {
    const summary = await peers.summary();
    const signature = `${summary.slackCalls}|${summary.runnerRequests}|${await d1Count(target)}`;
    if (signature !== last) {
      last = signature;
      since = Date.now();
    }
    const enough = expect.runnerAccepted === undefined || summary.runnerAccepted >= expect.runnerAccepted;
    if (enough && Date.now() - since >= quietMs) return;
    if (Date.now() > deadline) {
      log(`drain(${label}): still busy after ${expect.timeoutMs ?? 60_000} ms (${JSON.stringify(summary)}); going on`);
      return;
    }
    await sleep(150);
  }
}

// ---- phases -----------------------------------------------------------------------------

/**
 * What approvals cost: `n` proposals created and each approved by one click (U0ALICE and U0OSCAR alternately, one
 * at a time, so an object's active time is its own and not the queue of a shared workerd), until the runner has every dispatch and the Worker is quiet; counted by the meter inside `target`,
 * the peers and workerd's CPU. Run against the current code and against `--before`'s commit, the same way.
 */
async function phaseCost(target: MeteredWorker, label: string, n: number): Promise<CostSample> {
  await drain(`cost (${label}): quiet first`, {}, target);
  const meterBefore = await target.meter();
  const peersBefore = await peers.stats();
  const cpuBefore = cpuOf(target.pid).cpuMs;
  const { proposals } = await createMany(n, 1, undefined, target);
  // Creation's share, its background work (card, audit flush) included, before any click: logged, not tabled.
  await drain(`cost (${label}): creations`, {}, target);
  const created = meterDelta(await target.meter(), meterBefore);
  const per = (x: number) => (x / n).toFixed(2);
  log(
    `cost (${label}): per creation ${per(cpuOf(target.pid).cpuMs - cpuBefore)} CPU ms, ` +
      `D1 ${per(created.d1RowsWritten)} rows written / ${per(created.d1Statements)} statements, ` +
      `SQLite ${per(created.sqlRowsWritten)} rows written / ${per(created.sqlStatements)} statements, ` +
      `${per(created.alarms)} alarm runs`,
  );
  const accepted = (await peers.summary()).runnerAccepted + n;
  const clicks = await closedLoop(target.url, clicksFor(proposals, [ALICE, OSCAR]), 1);
  expectStatus(clicks, 200, `cost clicks (${label})`);
  await drain(`cost (${label})`, { runnerAccepted: accepted }, target);
  const cpuMs = cpuOf(target.pid).cpuMs - cpuBefore;
  const meter = meterDelta(await target.meter(), meterBefore);
  const peersAfter = await peers.stats();
  const fetchesBy: Record<string, number> = {};
  for (const [method, counter] of Object.entries(peersAfter.slack))
    fetchesBy[`Slack ${method}`] = counter.calls - (peersBefore.slack[method]?.calls ?? 0);
  fetchesBy.runner = peersAfter.runnerRequests - peersBefore.runnerRequests;
  const fetches = Object.values(fetchesBy).reduce((a, b) => a + b, 0);
  // What the audit log keeps per approval: its rows' bytes as stored (text lengths and 8-byte integers).
  const audit = await (await target.mf.getD1Database("AUDIT_DB"))
    .prepare(
      `SELECT COUNT(*) AS events, SUM(LENGTH(proposal_id) + LENGTH(type) + LENGTH(actor) + LENGTH(details)
         + LENGTH(prev_hash) + LENGTH(hash) + COALESCE(LENGTH(head_sig), 0) + 24) AS bytes
       FROM audit_events WHERE proposal_id IN (SELECT value FROM json_each(?1))`,
    )
    .bind(JSON.stringify(proposals.map((p) => p.id)))
    .first<{ events: number; bytes: number }>();
  const sample: CostSample = {
    label,
    approvals: n,
    meter,
    cpuMs,
    fetches,
    fetchesBy,
    auditEvents: audit?.events ?? 0,
    auditBytes: audit?.bytes ?? 0,
  };
  log(`cost (${label}): ${dollars(totalOf(costRows(sample)))} per million approvals`);
  return sample;
}

/** Starts `ref`'s code (git archive of src/, migrations/, wrangler.toml, package.json) metered the same way, for the cost before. */
async function startBefore(ref: string, workDir: string): Promise<MeteredWorker> {
  const dir = join(workDir, "before");
  mkdirSync(dir, { recursive: true });
  execFileSync(
    "sh",
    ["-c", `git archive --format=tar "$1" src migrations wrangler.toml package.json | tar -x -C "$2"`, "sh", ref, dir],
    {
      cwd: ROOT,
    },
  );
  const worker = await startSignoff({
    root: dir,
    workDir,
    name: "before",
    nodeModules: join(ROOT, "node_modules"),
    secrets,
    vars: { SLACK_API_BASE: `${peers.url}/slack/api`, RUNNER_URL: `${peers.url}/runner` },
  });
  await worker.applyMigrations();
  return worker;
}

/** Runs a load and returns it with the serving workerd's CPU per request, background work included. */
async function measured(
  worker: RunningWorker,
  requests: readonly PreparedRequest[],
  concurrency: number,
  after?: () => Promise<void>,
): Promise<{ load: LoadResult; cpuMs: number }> {
  const before = cpuOf(worker.pid);
  const load = await closedLoop(worker.url, requests, concurrency);
  if (after) await after();
  else await sleep(200);
  return { load, cpuMs: (cpuOf(worker.pid).cpuMs - before.cpuMs) / requests.length };
}

function clicksFor(proposals: readonly Proposal[], users: readonly string[]): PreparedRequest[] {
  return proposals.map((p, i) => clickRequest(secrets.SLACK_SIGNING_SECRET, p, users[i % users.length]!));
}

function expectStatus(load: LoadResult, status: number, what: string): void {
  const wrong = load.samples.filter((s) => s.status !== status);
  if (wrong.length > 0)
    throw new Error(
      `${what}: ${wrong.length} answers were not ${status}, e.g. HTTP ${wrong[0]!.status} ${wrong[0]!.body.slice(0, 200)}`,
    );
}

/** Clicks vs the bare route at each concurrency level, and (at 100) what an approving click costs downstream. */
async function phaseLevels(
  pool: Proposal[],
): Promise<Pick<BenchResults, "levels" | "dispatchLoaded" | "perClick" | "sizes">> {
  const out: Pick<BenchResults, "levels" | "dispatchLoaded" | "perClick" | "sizes"> = {
    levels: [],
    dispatchLoaded: [],
    perClick: {},
    sizes: {},
  };
  let accepted = (await peers.summary()).runnerAccepted;
  for (const level of LEVELS) {
    const batch = pool.splice(0, level.requests);
    const requests = clicksFor(batch, [ALICE, OSCAR]);
    const bareRun = await measured(bare, requests, level.concurrency);
    expectStatus(bareRun.load, 200, `bare route at ${level.concurrency}`);
    accepted += batch.length;
    const drained = { at: 0 };
    const clickRun = await measured(signoff, requests, level.concurrency, async () => {
      const started = Date.now();
      await drain(`clicks ×${level.concurrency}`, { runnerAccepted: accepted });
      drained.at = Date.now() - started;
    });
    expectStatus(clickRun.load, 200, `clicks at ${level.concurrency}`);
    out.levels.push({
      concurrency: level.concurrency,
      click: clickRun.load,
      bare: bareRun.load,
      clickCpuMs: clickRun.cpuMs,
      bareCpuMs: bareRun.cpuMs,
    });
    log(
      `clicks ×${level.concurrency}: ${clickRun.load.rps.toFixed(0)}/s, ${clickRun.cpuMs.toFixed(1)} ms CPU each ` +
        `(bare ${bareRun.load.rps.toFixed(0)}/s, ${bareRun.cpuMs.toFixed(2)} ms), p99 ${ms(quantiles(clickRun.load.samples.map((s) => s.ms)).p99)} ms`,
    );
    if (level.concurrency === 100) {
      const stats = await peers.stats();
      out.dispatchLoaded = clickRun.load.samples.map((s) => (stats.runner[s.tag!]?.firstAt ?? NaN) - s.doneAt);
      Object.assign(out, await perClickCosts(batch, stats, drained.at));
    }
  }
  return out;
}

/** Counts what one approving click costs downstream, from the peers and D1. */
async function perClickCosts(
  batch: Proposal[],
  stats: PeerStats,
  drainMs: number,
): Promise<Pick<BenchResults, "perClick" | "sizes">> {
  const db = await signoff.mf.getD1Database("AUDIT_DB");
  const ids = new Set(batch.map((p) => p.id));
  const rows = (
    await db
      .prepare(
        "SELECT seq, proposal_id, type FROM audit_events WHERE seq > (SELECT MAX(seq) - 40000 FROM audit_events) ORDER BY seq",
      )
      .all()
  ).results as Array<{ seq: number; proposal_id: string; type: string }>;
  const mine = rows.filter((r) => ids.has(r.proposal_id));
  // A D1 flush is one batch (one transaction), so its rows are contiguous in seq: runs of one
  // proposal's rows count its flushes (a lower bound, when two flushes land back to back).
  let runs = 0;
  let previous: { seq: number; proposal_id: string } | null = null;
  for (const row of rows) {
    if (
      ids.has(row.proposal_id) &&
      !(previous && previous.proposal_id === row.proposal_id && previous.seq === row.seq - 1)
    )
      runs += 1;
    previous = row;
  }
  const n = batch.length;
  const perType = new Map<string, number>();
  for (const row of mine) perType.set(row.type, (perType.get(row.type) ?? 0) + 1);
  const after = (type: string) => (perType.get(type) ?? 0) / n;
  const perClick: Record<string, number> = {
    "audit events per approval (after creation)":
      mine.filter((r) => !["proposal.created", "slack.message_posted"].includes(r.type)).length / n,
    "D1 flushes per proposal (lower bound)": runs / n,
    "runner requests per approval": batch.reduce((sum, p) => sum + (stats.runner[p.id]?.attempts.length ?? 0), 0) / n,
    "slack.message_updated events per approval": after("slack.message_updated"),
    "background drain after the last click, s": drainMs / 1000,
  };
  const slack = stats.slack;
  const sizes = {
    "chat.update body, bytes": (slack["chat.update"]?.bytes ?? 0) / Math.max(1, slack["chat.update"]?.calls ?? 0),
    "chat.postMessage body, bytes":
      (slack["chat.postMessage"]?.bytes ?? 0) / Math.max(1, slack["chat.postMessage"]?.calls ?? 0),
  };
  perClick["usergroups.users.list calls in the whole run so far"] = slack["usergroups.users.list"]?.calls ?? 0;
  perClick["chat.update calls per approval (whole run so far)"] =
    (slack["chat.update"]?.calls ?? 0) / Math.max(1, (await peers.summary()).runnerAccepted);
  return { perClick, sizes };
}

/** Many clicks on one proposal (one approval, the rest refused), against the bare route. */
async function phaseHot(): Promise<
  Pick<
    BenchResults,
    "hot" | "bareHot" | "hotCpuMs" | "bareHotCpuMs" | "perClick" | "hotEphemeral" | "hotClicks" | "hotClickers"
  >
> {
  const { proposals } = await createMany(1);
  await drain("hot proposal created");
  const requests = Array.from({ length: HOT_CLICKS }, (_, i) =>
    clickRequest(secrets.SLACK_SIGNING_SECRET, proposals[0]!, [ALICE, OSCAR, BOB, MALLORY][i % 4]!),
  );
  const ephemeralBefore = (await peers.stats()).slack["chat.postEphemeral"]?.calls ?? 0;
  const bareRun = await measured(bare, requests, 100);
  const hotRun = await measured(signoff, requests, 100, () => drain("hot proposal"));
  // Every refused click gets its ephemeral reply, all from one object's alarm runs.
  const ephemeral = ((await peers.stats()).slack["chat.postEphemeral"]?.calls ?? 0) - ephemeralBefore;
  expectStatus(hotRun.load, 200, "hot clicks");
  log(`hot proposal ×100: ${hotRun.load.rps.toFixed(0)}/s, ${hotRun.cpuMs.toFixed(1)} ms CPU each`);
  return {
    hot: hotRun.load,
    hotCpuMs: hotRun.cpuMs,
    bareHot: bareRun.load,
    bareHotCpuMs: bareRun.cpuMs,
    hotEphemeral: ephemeral,
    hotClicks: HOT_CLICKS,
    hotClickers: 4,
    perClick: { [`chat.postEphemeral calls for the hot proposal (${HOT_CLICKS} clicks, 1 approval)`]: ephemeral },
  };
}

/** The click path taken apart from outside: each row adds one step to the one above. */
async function phaseProfile(pool: Proposal[]): Promise<ProfileRow[]> {
  const secret = secrets.SLACK_SIGNING_SECRET;
  const decided = pool.splice(0, 1)[0]!;
  await api("POST", "/slack/interactions"); // (unsigned: 401, warms the route)
  const one = await closedLoop(signoff.url, [clickRequest(secret, decided, ALICE)], 1);
  expectStatus(one, 200, "deciding the profile's proposal");
  await drain("profile proposal decided");
  const variants: Array<{ label: string; what: string; requests: PreparedRequest[] }> = [
    // The rows that never reach a proposal are cheap: more of them, for steadier numbers.
    {
      label: "bare Hono route",
      what: "routing, body read, empty 200",
      requests: Array.from({ length: PROFILE_REQUESTS * 5 }, () => clickRequest(secret, decided, ALICE)),
    },
    {
      label: "bad signature → 401",
      what: "+ config, HMAC-SHA256 verify (key imported per request), error JSON",
      requests: Array.from({ length: PROFILE_REQUESTS * 5 }, () =>
        clickRequest(secret, decided, ALICE, { badSignature: true }),
      ),
    },
    {
      label: "signed, not our button → 200",
      what: "+ form + JSON parse of the payload; no Durable Object",
      requests: Array.from({ length: PROFILE_REQUESTS * 5 }, () =>
        clickRequest(secret, decided, ALICE, { actionId: "other.app" }),
      ),
    },
  ];
  // No channel in the payload: a refusal is audited, but no ephemeral message is sent.
  const refused = Array.from({ length: PROFILE_REQUESTS }, () =>
    clickRequest(secret, decided, ALICE, { noChannel: true }),
  );
  variants.push({
    label: "refused click, no channel",
    what: "+ RPC to the proposal's object, 1 audit event sealed, alarm armed, D1 flush",
    requests: refused,
  });
  variants.push({
    label: "refused click (as Slack sends it)",
    what: "+ an ephemeral reply job (chat.postEphemeral) per click",
    requests: Array.from({ length: PROFILE_REQUESTS }, (_, i) =>
      clickRequest(secret, decided, [ALICE, OSCAR, MALLORY][i % 3]!),
    ),
  });
  const approving = pool.splice(0, PROFILE_REQUESTS);
  variants.push({
    label: "approving click",
    what: "+ approval: state change, card update, dispatch, outcome",
    requests: clicksFor(approving, [ALICE, OSCAR]),
  });
  const rows: ProfileRow[] = [];
  for (const variant of variants) {
    const target = variant.label === "bare Hono route" ? bare : signoff;
    const run = await measured(
      target,
      variant.requests,
      PROFILE_CONCURRENCY,
      target === bare ? undefined : () => drain(`profile: ${variant.label}`),
    );
    rows.push({ label: variant.label, what: variant.what, load: run.load, cpuMs: run.cpuMs });
  }
  return rows;
}

/** One click at a time on a quiet Worker: the click's own latency, and how soon the runner hears of it. */
async function phaseDispatchLatency(pool: Proposal[]): Promise<Pick<BenchResults, "dispatchIdle" | "isolated">> {
  const batch = pool.splice(0, DISPATCH_SAMPLES);
  const done: Sample[] = [];
  let accepted = (await peers.summary()).runnerAccepted;
  for (const p of batch) {
    const load = await closedLoop(signoff.url, [clickRequest(secrets.SLACK_SIGNING_SECRET, p, ALICE)], 1);
    done.push(load.samples[0]!);
    accepted += 1;
    await drain("dispatch latency", { runnerAccepted: accepted, quietMs: 150, timeoutMs: 10_000 });
  }
  const stats = await peers.stats();
  return {
    dispatchIdle: done.map((s) => (stats.runner[s.tag!]?.firstAt ?? NaN) - s.doneAt),
    isolated: done.map((s) => s.ms),
  };
}

/** Proposals with TTLs of 1–3 s, each watched by a long-poll: how late their expiry comes. */
async function phaseExpiry(): Promise<Pick<BenchResults, "expiryAlarm" | "expirySeen" | "expiryWrong">> {
  const { proposals } = await createMany(EXPIRY_PROPOSALS, CREATE_CONCURRENCY, () => 1 + Math.floor(Math.random() * 3));
  const polls = proposals.map((p) => apiRequest("GET", `/v1/proposals/${p.id}?wait=15`, undefined, p.id));
  const load = await closedLoop(signoff.url, polls, polls.length);
  const out = { expiryAlarm: [] as number[], expirySeen: [] as number[], expiryWrong: 0 };
  for (const sample of load.samples) {
    const view = JSON.parse(sample.body) as Proposal;
    if (view.status !== "expired") {
      out.expiryWrong += 1;
      continue;
    }
    const deadline = Date.parse(view.expires_at);
    out.expiryAlarm.push(Date.parse(view.decision!.at) - deadline);
    out.expirySeen.push(sample.doneAt - deadline);
  }
  log(`expiry: ${out.expiryAlarm.length} expired, max lateness ${ms(Math.max(...out.expiryAlarm))} ms`);
  await drain("expiry");
  return out;
}

/** Exactly once under a flaky runner: many proposals, concurrent clicks, every dispatch checked against the audit log. */
async function phaseStress(): Promise<StressReport> {
  const started = performance.now();
  const { proposals } = await createMany(STRESS_PROPOSALS);
  await drain("stress proposals created");
  const seqBefore =
    (
      await (
        await signoff.mf.getD1Database("AUDIT_DB")
      )
        .prepare("SELECT MAX(seq) AS n FROM audit_events")
        .first<{ n: number }>()
    )?.n ?? 0;
  // Early attempts fail at random (5xx, 408, 429, a hang past the dispatch timeout, a dropped
  // connection); a later attempt always succeeds (a final result or a 202), so every approved
  // proposal should end with exactly one accepted dispatch.
  await peers.runnerMode({ mode: "chaos", failUpToAttempt: 2, failProbability: 0.4, hangMs: 10_500 });
  // Nine in ten proposals get concurrent clicks from two approvers, the requester and an
  // outsider; one in ten only from the requester and the outsider (never approved).
  const outsidersOnly = new Set(proposals.filter((_, i) => i % 10 === 9).map((p) => p.id));
  const groups = proposals.map((p) =>
    (outsidersOnly.has(p.id) ? [BOB, MALLORY] : [ALICE, OSCAR, BOB, MALLORY]).map((u) =>
      clickRequest(secrets.SLACK_SIGNING_SECRET, p, u),
    ),
  );
  for (let i = groups.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [groups[i], groups[j]] = [groups[j]!, groups[i]!];
  }
  const requests = groups.flat();
  const cpuBefore = cpuOf(signoff.pid).cpuMs;
  // 25, not 100: one local workerd thread serves all ~900 objects, and at 50+ concurrent clicks its outbound
  // fetches sit connected but unwritten past the 10 s deadline, are retried, and leak sockets until EMFILE.
  const load = await closedLoop(signoff.url, requests, STRESS_CONCURRENCY);
  const busyCores = (cpuOf(signoff.pid).cpuMs - cpuBefore) / load.wallMs;
  const expected = proposals.length - outsidersOnly.size;
  log(
    `stress: ${requests.length} clicks in ${(load.wallMs / 1000).toFixed(1)} s; waiting for ${expected} dispatches through the flaky runner`,
  );
  // Done when every approved proposal's accepted dispatch is in the audit log (what the runner
  // answered is not enough: a 2xx that came too late for signoff is followed by a retry).
  const db = await signoff.mf.getD1Database("AUDIT_DB");
  const deadline = Date.now() + 75_000;
  for (;;) {
    const row = await db
      .prepare(
        "SELECT COUNT(DISTINCT proposal_id) AS n FROM audit_events WHERE seq > ?1 AND type IN ('proposal.succeeded', 'proposal.dispatched')",
      )
      .bind(seqBefore)
      .first<{ n: number }>();
    if ((row?.n ?? 0) >= expected || Date.now() > deadline) break;
    await sleep(500);
  }
  await drain("stress", { quietMs: 1_500 });
  await peers.runnerMode({ mode: "ok" });

  const stats = await peers.stats();
  const events = await auditEvents(new Set(proposals.map((p) => p.id)));
  const views = await closedLoop(
    signoff.url,
    proposals.map((p) => apiRequest("GET", `/v1/proposals/${p.id}`, undefined, p.id)),
    50,
  );
  const status = new Map(views.samples.map((s) => [s.tag!, (JSON.parse(s.body) as Proposal).status]));
  const report: StressReport = {
    proposals: proposals.length,
    clicks: requests.length,
    clickErrors: load.errors,
    approved: 0,
    neverApproved: 0,
    exactlyOnce: 0,
    redelivered: 0,
    sendDelays: [],
    lateSendDelays: [],
    runnerRequests: 0,
    retried: 0,
    answers: {},
    statuses: {},
    violations: [],
    seconds: 0,
    busyCores,
  };
  const violate = (id: string, what: string) => report.violations.push(`${id.slice(0, 16)}…: ${what}`);
  for (const p of proposals) {
    const mine = events.get(p.id) ?? [];
    const count = (type: string) => mine.filter((e) => e.type === type).length;
    const runner = stats.runner[p.id];
    const st = status.get(p.id) ?? "?";
    report.statuses[st] = (report.statuses[st] ?? 0) + 1;
    for (const answer of runner?.answers ?? []) report.answers[answer] = (report.answers[answer] ?? 0) + 1;
    report.runnerRequests += runner?.attempts.length ?? 0;
    if (count("proposal.approved") > 1) violate(p.id, "approved twice");
    if (count("proposal.approved") === 0) {
      report.neverApproved += 1;
      if (!outsidersOnly.has(p.id)) violate(p.id, "clicked by two approvers but never approved");
      if (runner) violate(p.id, `never approved, yet the runner got ${runner.attempts.length} dispatch(es)`);
      if (count("dispatch.attempt") > 0) violate(p.id, "never approved, yet a dispatch attempt was audited");
      continue;
    }
    report.approved += 1;
    if (outsidersOnly.has(p.id)) violate(p.id, "approved by clicks from the requester and an outsider only");
    if (!runner) {
      violate(p.id, "approved but the runner never heard of it");
      continue;
    }
    const attempts = count("dispatch.attempt");
    if (attempts > 1) report.retried += 1;
    // Join what the runner answered with what signoff recorded, attempt by attempt. An answer
    // signoff never received (it timed out, or the connection dropped) does not count as taken
    // by signoff; if it was a 2xx, the next attempt is a repeat the runner must drop.
    const answered = mine.filter((e) => e.type === "dispatch.answer");
    for (const event of mine.filter((e) => e.type === "dispatch.attempt")) {
      const arrived = runner.arrivedAt[Number(event.details.attempt)];
      if (arrived !== undefined) report.sendDelays.push(arrived - Date.parse(event.at));
    }
    let received2xx = 0;
    for (const event of answered) {
      const attempt = Number(event.details.attempt);
      const lost = event.details.outcome === "retry" && /timed out|network error/.test(String(event.details.error));
      const label = runner.answerOf[attempt];
      if (!lost && label === undefined)
        violate(p.id, `attempt ${attempt} answered (${String(event.details.outcome)}) but the runner never saw it`);
      if (label === "200" || label === "202") {
        if (lost) {
          report.redelivered += 1;
          const sealed = mine.find((e) => e.type === "dispatch.attempt" && Number(e.details.attempt) === attempt);
          const arrived = runner.arrivedAt[attempt];
          if (sealed && arrived !== undefined) report.lateSendDelays.push(arrived - Date.parse(sealed.at));
        } else received2xx += 1;
      }
    }
    const recorded = answered.filter((e) => ["final", "accepted"].includes(String(e.details.outcome))).length;
    if (received2xx > 1 || recorded > 1)
      violate(p.id, `${received2xx} accepted answers received, ${recorded} recorded`);
    if (received2xx === 1 && recorded === 1) report.exactlyOnce += 1;
    else if (recorded === 0) violate(p.id, `no accepted dispatch (answers ${runner.answers.join(",")}, status ${st})`);
    if (answered.length !== attempts || attempts !== runner.attempts.at(-1))
      violate(
        p.id,
        `${attempts} attempts audited, ${answered.length} answers, last seen by the runner ${runner.attempts.at(-1)}`,
      );
    if (runner.attempts.some((a, i) => i > 0 && a <= runner.attempts[i - 1]!))
      violate(p.id, `attempt numbers out of order: ${runner.attempts.join(",")}`);
    if (new Set(runner.webhookIds).size !== 1 || runner.webhookIds[0] !== `dsp_${p.id}`)
      violate(p.id, "webhook-id changed between attempts");
    if (runner.badSignatures > 0) violate(p.id, "a dispatch failed the runner's signature check");
    if (!["succeeded", "dispatched"].includes(st)) violate(p.id, `ended ${st}`);
  }
  report.seconds = (performance.now() - started) / 1000;
  log(`stress: ${report.exactlyOnce}/${report.approved} exactly once, ${report.violations.length} violation(s)`);
  return report;
}

/**
 * Memory in steady state: once every object the earlier phases woke has been evicted (workerd closes an idle
 * object's database after about 10 s), MEMORY_PROPOSALS more are created and approved and left to be evicted in
 * turn, batch after batch: the first batches raise the allocator's high-water mark, the last one's RSS growth is what
 * a running deployment keeps per proposal. RSS and open object databases are sampled meanwhile (their slope: what
 * an object in memory holds). The bare workerd does the same with as many objects that each write one row: what
 * workerd keeps per object id whatever the object does, the part of signoff's growth that is not signoff's.
 */
async function phaseMemory(inspectorPort?: number): Promise<MemoryReport> {
  const heap = () =>
    inspectorPort ? heapUsedMiB(inspectorPort, (title) => title.includes("core:user:signoff")) : undefined;
  const signoffBatches: MemoryBatch[] = [];
  const bareBatches: MemoryBatch[] = [];
  for (let batch = 1; batch <= MEMORY_BATCHES; batch++) {
    signoffBatches.push(
      await memoryBatch(signoff, openAtStart, `signoff, batch ${batch}`, heap, async () => {
        const accepted = (await peers.summary()).runnerAccepted;
        const { proposals } = await createMany(MEMORY_PROPOSALS);
        await closedLoop(signoff.url, clicksFor(proposals, [ALICE, OSCAR]), 10);
        await drain(`memory batch ${batch}`, { runnerAccepted: accepted + proposals.length });
      }),
    );
  }
  for (let batch = 1; batch <= 2; batch++) {
    bareBatches.push(
      await memoryBatch(
        bare,
        bareOpenAtStart,
        `bare objects, batch ${batch}`,
        () => undefined,
        async () => {
          const touches = Array.from({ length: MEMORY_PROPOSALS }, (_, i) => ({
            method: "POST" as const,
            path: `/__object/memory-${batch}-${i}`,
            headers: {},
          }));
          expectStatus(await closedLoop(bare.url, touches, 10), 200, "waking the bare objects");
        },
      ),
    );
  }
  return { proposals: MEMORY_PROPOSALS, batches: signoffBatches, bare: bareBatches };
}

/** One batch of the memory phase on `target`: evicted before, `work`, evicted after; RSS sampled throughout. */
async function memoryBatch(
  target: RunningWorker,
  openFloor: number,
  label: string,
  heap: () => Promise<number | undefined> | undefined,
  work: () => Promise<void>,
): Promise<MemoryBatch> {
  const sample = (): MemorySample | null => {
    const memory = memoryOf(target.pid);
    return memory ? { ...memory, open: openFilesOf(target.pid)?.sqlite ?? 0 } : null;
  };
  const evicted = async (when: string) => {
    // Down to the databases open before any object existed (D1's, each class's metadata), or as far as 90 s gets.
    const deadline = Date.now() + 90_000;
    let last = sample();
    while (Date.now() < deadline) {
      await sleep(2_000);
      const now = sample();
      if (now && last && now.open <= openFloor + 2 && now.open === last.open) return now;
      last = now;
    }
    log(`memory (${label}): objects still open ${when} after 90 s: ${last?.open}`);
    return last;
  };
  const start = await evicted("before");
  if (start) start.heapMiB = await heap();
  const samples: MemorySample[] = [];
  const timer = setInterval(() => {
    const s = sample();
    if (s) samples.push(s);
  }, 250);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  const end = await evicted("after");
  if (!start || !end) throw new Error(`memory (${label}): /proc of the workerd could not be read`);
  end.heapMiB = await heap();
  log(`memory (${label}): RSS ${start.rssMiB.toFixed(0)} → ${end.rssMiB.toFixed(0)} MiB`);
  const top = samples.reduce((a, b) => (b.rssMiB > a.rssMiB ? b : a), start);
  return { start, top, end, mibPerOpenObject: slope(samples.map((s) => [s.open, s.rssMiB])) };
}

/** The least-squares slope of y over x (0 when x does not vary). */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

/** `--profile`: approving clicks with workerd's sampling profiler on, summarised by source module. */
async function phaseCpuProfile(inspectorPort: number, workDir: string): Promise<CpuProfileSummary> {
  const { proposals } = await createMany(300);
  await drain("profile proposals created");
  const profiler = await CpuProfiler.connect(inspectorPort, (title) => title.includes("core:user:signoff"));
  await profiler.start();
  await closedLoop(signoff.url, clicksFor(proposals, [ALICE, OSCAR]), 10);
  await drain("profiled clicks", { runnerAccepted: (await peers.summary()).runnerAccepted });
  const profile = await profiler.stop();
  profiler.close();
  if (args["profile-out"]) writeFileSync(args["profile-out"], JSON.stringify(profile));
  const moduleOf = moduleLines(readFileSync(join(workDir, "signoff.mjs"), "utf8"));
  const modules = hotspotsByModule(profile, moduleOf, "signoff.mjs");
  const functions = hotspots(profile, 20, (url, line) =>
    url.endsWith("signoff.mjs") ? moduleOf(line) : url || "native",
  );
  return {
    clicks: proposals.length,
    totalMs: modules.totalMs,
    modules: modules.spots.slice(0, 20),
    functions: functions.spots,
  };
}

/** The local D1 database's files (SQLite, with its write-ahead log) under the Worker's state directory, bytes. */
function d1FileBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isFile() && /d1/i.test(path) && /\.sqlite(-wal)?$/.test(entry.name)) total += statSync(path).size;
  }
  return total;
}

/** Every audit event in D1 (optionally only some proposals'), by proposal. */
async function auditEvents(only?: Set<string>): Promise<Map<string, AuditEvent[]>> {
  // Miniflare's D1 binding, read with the Worker's own query (src/audit/store.ts).
  const db = (await signoff.mf.getD1Database("AUDIT_DB")) as unknown as D1Database;
  const byProposal = new Map<string, AuditEvent[]>();
  for (let after = 0; ; ) {
    const page = await queryAuditEvents(db, { after_seq: after, limit: 5000 });
    if (page.length === 0) return byProposal;
    for (const { seq, ...event } of page) {
      after = seq;
      if (only && !only.has(event.proposal_id)) continue;
      const list = byProposal.get(event.proposal_id) ?? [];
      list.push(event);
      byProposal.set(event.proposal_id, list);
    }
  }
}

// ---- the run ----------------------------------------------------------------------------

function version(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")) as { version: string })
      .version;
  } catch {
    return "?";
  }
}

function runInfo(startedAt: Date, wallSeconds: number): RunInfo {
  return {
    startedAt,
    wallSeconds,
    command: COMMAND,
    args: process.argv.slice(2),
    versions: {
      node: process.versions.node,
      workerd: version("workerd"),
      wrangler: version("wrangler"),
      miniflare: version("miniflare"),
    },
    settings: {
      createConcurrency: CREATE_CONCURRENCY,
      expiryProposals: EXPIRY_PROPOSALS,
      profileRequests: PROFILE_REQUESTS,
      profileConcurrency: PROFILE_CONCURRENCY,
    },
  };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  // Filled in as the phases return, so that a run that fails part-way still shows what it measured.
  const results = emptyResults();
  const workDir = mkdtempSync(join(args["state-dir"] ?? tmpdir(), "signoff-bench-"));
  secrets = benchSecrets();
  const cleanups: Array<() => Promise<unknown> | unknown> = [() => rmSync(workDir, { recursive: true, force: true })];
  const cleanup = async () => {
    for (const fn of cleanups.reverse())
      await Promise.resolve()
        .then(fn)
        .catch(() => undefined);
  };
  process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
  try {
    peers = await startPeers(secrets.RUNNER_SECRET);
    cleanups.push(() => peers.child.kill("SIGTERM"));
    const inspectorPort = args.profile ? await freePort() : undefined;
    signoff = await startSignoff({
      root: ROOT,
      workDir,
      secrets,
      vars: { SLACK_API_BASE: `${peers.url}/slack/api`, RUNNER_URL: `${peers.url}/runner` },
      ...(inspectorPort ? { inspectorPort } : {}),
    });
    cleanups.push(() => signoff.stop());
    const migrations = await signoff.applyMigrations();
    bare = await startBare({ root: ROOT, workDir, ...compatibilityOf(ROOT) });
    cleanups.push(() => bare.stop());
    const health = await api<{ ok: boolean }>("GET", "/healthz");
    if (health.status !== 200)
      throw new Error(`signoff answers /healthz with ${health.status}: ${JSON.stringify(health.body)}`);
    log(
      `signoff at ${signoff.url.href} (workerd pid ${signoff.pid}), bare at ${bare.url.href} (pid ${bare.pid}), peers at ${peers.url}; ${migrations} migration(s) applied`,
    );
    results.memory["workerd (signoff)"] = { before: memoryOf(signoff.pid), after: null };
    openAtStart = openFilesOf(signoff.pid)?.sqlite ?? 0;
    bareOpenAtStart = openFilesOf(bare.pid)?.sqlite ?? 0;
    results.memory["workerd (bare route)"] = { before: memoryOf(bare.pid), after: null };
    results.memory["node (bench + load)"] = { before: memoryOf(process.pid), after: null };
    results.memory["node (Slack + runner peers)"] = { before: memoryOf(peers.pid), after: null };

    // Warm-up: JIT, the group cache, D1's first writes. Not measured.
    const warm = await createMany(60);
    results.sizes["click request body, bytes"] = clickRequest(secrets.SLACK_SIGNING_SECRET, warm.proposals[0]!, ALICE)
      .body!.length;
    await closedLoop(bare.url, clicksFor(warm.proposals, [ALICE, OSCAR]), 10);
    await closedLoop(signoff.url, clicksFor(warm.proposals, [ALICE, OSCAR]), 10);
    await drain("warm-up", { runnerAccepted: warm.proposals.length });

    if (!ONLY || ONLY.has("cost")) {
      // Each Worker warmed by a few approvals of its own first (JIT, per-isolate caches), not counted.
      const after = async (target: MeteredWorker, label: string) => {
        await phaseCost(target, `${label}, warm-up`, 20);
        return phaseCost(target, label, COST_APPROVALS);
      };
      if (args.before !== "none") {
        const before = await startBefore(args.before, workDir);
        try {
          results.cost.push(await after(before, `before (${args.before})`));
        } finally {
          await before.stop();
        }
      }
      results.cost.push(await after(signoff, "after"));
    }
    if (!ONLY || ONLY.has("clicks")) {
      const needed = LEVELS.reduce((n, l) => n + l.requests, 0) + PROFILE_REQUESTS + 1 + DISPATCH_SAMPLES;
      const cpuBefore = cpuOf(signoff.pid).cpuMs;
      const created = await createMany(needed);
      results.create = created.load;
      // The bare route gets the same creation requests, at the same concurrency.
      results.bareCreate = (
        await measured(
          bare,
          Array.from({ length: needed }, () => apiRequest("POST", "/v1/proposals", proposalBody())),
          CREATE_CONCURRENCY,
        )
      ).load;
      await drain("creation");
      results.createCpuMs = (cpuOf(signoff.pid).cpuMs - cpuBefore) / needed;
      log(
        `created ${needed} proposals: ${created.load.rps.toFixed(0)}/s, ${results.createCpuMs.toFixed(1)} ms CPU each`,
      );
      const pool = created.proposals;

      const levels = await phaseLevels(pool);
      results.levels = levels.levels;
      results.dispatchLoaded = levels.dispatchLoaded;
      Object.assign(results.perClick, levels.perClick);
      Object.assign(results.sizes, levels.sizes);
      const { perClick, ...hot } = await phaseHot();
      Object.assign(results, hot);
      Object.assign(results.perClick, perClick);
      results.profile = await phaseProfile(pool);
      Object.assign(results, await phaseDispatchLatency(pool));
    }
    if (!ONLY || ONLY.has("expiry")) Object.assign(results, await phaseExpiry());
    if (!ONLY || ONLY.has("stress")) results.stress = await phaseStress();
    if (!ONLY || ONLY.has("memory")) results.steadyMemory = await phaseMemory(inspectorPort);

    const all = await auditEvents();
    const report = verifyChains([...all.values()].flat());
    results.chains = {
      ok: report.ok,
      proposals: report.proposals,
      events: report.events,
      problems: report.problems.length,
    };
    for (const [name, pid] of [
      ["workerd (signoff)", signoff.pid],
      ["workerd (bare route)", bare.pid],
      ["node (bench + load)", process.pid],
      ["node (Slack + runner peers)", peers.pid],
    ] as const) {
      results.memory[name]!.after = memoryOf(pid);
    }
    results.proposalsCreated = createdOnSignoff;
    results.openFiles = openFilesOf(signoff.pid);
    results.d1File = { bytes: d1FileBytes(join(workDir, "state")), events: report.events };
    if (inspectorPort) results.cpuProfile = await phaseCpuProfile(inspectorPort, workDir);
  } finally {
    const wall = (performance.now() - T0) / 1000;
    const text = secrets && (results.levels.length > 0 || ONLY) ? render(results, runInfo(startedAt, wall)) : "";
    await cleanup();
    if (text) {
      process.stdout.write(`\n${text}\n`);
      if (!QUICK && !ONLY && !args["no-write"]) {
        writeResults(join(ROOT, "BENCHMARKS.md"), text);
        log("results written to BENCHMARKS.md");
      }
    }
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
