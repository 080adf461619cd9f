// The bench's results: what a run measured (the phases of scripts/bench.ts return their parts of it),
// rendered as Markdown tables for the terminal and BENCHMARKS.md with the machine description, and the
// rewrite of BENCHMARKS.md's results section (between its markers).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { type CostSample, PRICES_READ, renderCost, renderCounts } from "./cost.ts";
import { type LoadResult, type Quantiles, quantiles } from "./load.ts";
import type { Memory } from "./worker.ts";

export const RESULTS_START = "<!-- bench:results:start (written by `npm run bench`; edit outside these markers) -->";
export const RESULTS_END = "<!-- bench:results:end -->";

export function ms(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return "–";
  return value >= 100 ? value.toFixed(0) : value.toFixed(digits);
}

export function int(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "–";
}

/** A Markdown table, one line per row and no padding (the repository's docs rule: merges touch only changed rows). */
export function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

export function latencyCells(q: Quantiles): string[] {
  return [ms(q.p50), ms(q.p95), ms(q.p99), ms(q.max)];
}

export function machine(versions: { node: string; workerd: string; wrangler: string; miniflare: string }): string[] {
  let model = cpus()[0]?.model ?? "unknown";
  try {
    model = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? model;
  } catch {
    // not Linux: os.cpus() said it
  }
  return [
    `- CPU: ${model} × ${cpus().length} (nproc ${cpus().length})`,
    `- Memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `- Node ${versions.node}, workerd ${versions.workerd}, wrangler ${versions.wrangler}, miniflare ${versions.miniflare}`,
    `- OS: ${readFileSync("/proc/version", "utf8").split(" ").slice(0, 3).join(" ")}`,
  ];
}

/** Replaces the results section of BENCHMARKS.md (or appends one), leaving the rest alone. */
export function writeResults(path: string, section: string): void {
  const block = `${RESULTS_START}\n${section.trim()}\n${RESULTS_END}`;
  const current = existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n";
  const start = current.indexOf(RESULTS_START);
  const end = current.indexOf(RESULTS_END);
  const next =
    start >= 0 && end > start
      ? current.slice(0, start) + block + current.slice(end + RESULTS_END.length)
      : `${current.trimEnd()}\n\n${block}\n`;
  writeFileSync(path, next);
}

// ---- what a run measured -------------------------------------------------------------------

export interface LevelResult {
  concurrency: number;
  click: LoadResult;
  bare: LoadResult;
  /** workerd CPU per request, ms: for clicks up to the end of their background work. */
  clickCpuMs: number;
  bareCpuMs: number;
}

/** One row of "where a click's time goes". */
export interface ProfileRow {
  label: string;
  what: string;
  load: LoadResult;
  cpuMs: number;
}

export interface StressReport {
  proposals: number;
  clicks: number;
  clickErrors: number;
  approved: number;
  neverApproved: number;
  exactlyOnce: number;
  /** 2xx answers signoff never received (timed out or dropped): the same dispatch went again. */
  redelivered: number;
  /** Dispatch attempt audited (just before fetch) → the request arrived at the runner, ms. */
  sendDelays: number[];
  /** The same, for the attempts whose 2xx came too late for signoff. */
  lateSendDelays: number[];
  runnerRequests: number;
  retried: number;
  answers: Record<string, number>;
  statuses: Record<string, number>;
  violations: string[];
  seconds: number;
  /** workerd's CPU use while the clicks were sent, in cores (1 = one core all the time). */
  busyCores: number;
}

export interface CpuProfileSummary {
  clicks: number;
  totalMs: number;
  modules: Array<{ name: string; selfMs: number; share: number }>;
  functions: Array<{ name: string; selfMs: number; share: number }>;
}

/** Everything render() shows; a phase that did not run leaves its part empty. */
export interface BenchResults {
  levels: LevelResult[];
  create: LoadResult | null;
  createCpuMs: number;
  hot: LoadResult | null;
  bareHot: LoadResult | null;
  hotCpuMs: number;
  bareHotCpuMs: number;
  profile: ProfileRow[];
  /** Latencies of clicks sent one at a time on a quiet Worker, ms. */
  isolated: number[];
  perClick: Record<string, number>;
  sizes: Record<string, number>;
  /** Click answered → the runner receives the dispatch, ms: one click at a time, and at 100 concurrent. */
  dispatchIdle: number[];
  dispatchLoaded: number[];
  /** Expiry: status flip − deadline, and a waiting GET answered − deadline, ms. */
  expiryAlarm: number[];
  expirySeen: number[];
  /** Long-polls that came back without the proposal expired. */
  expiryWrong: number;
  stress: StressReport | null;
  chains: { ok: boolean; proposals: number; events: number; problems: number } | null;
  cpuProfile: CpuProfileSummary | null;
  /** What approvals cost, per commit measured (the one before first). */
  cost: CostSample[];
  /** The local D1 database's size on disk at the end of the run, and the audit events it holds. */
  d1File: { bytes: number; events: number } | null;
  /** The bare route answering the same creation requests. */
  bareCreate: LoadResult | null;
  /** Ephemeral replies the hot proposal's clicks caused, how many clicks and how many different people. */
  hotEphemeral: number | null;
  hotClicks: number;
  hotClickers: number;
  /** Proposals created on signoff's workerd in the whole run (for memory per 1,000). */
  proposalsCreated: number;
  /** signoff's workerd's open files at the end: objects still in memory hold their SQLite files open. */
  openFiles: { total: number; sockets: number; sqlite: number } | null;
  memory: Record<string, { before: Memory | null; after: Memory | null }>;
  /** The memory phase: RSS over a batch of proposals in steady state (earlier objects evicted first). */
  steadyMemory: MemoryReport | null;
}

/** RSS of signoff's workerd at one moment, with how many objects' databases it had open then. */
export interface MemorySample extends Memory {
  open: number;
  /** The Worker isolate's JS heap in use (V8 usedSize), MiB: only with `--profile`, which opens the inspector. */
  heapMiB?: number;
}

export interface MemoryReport {
  /** Proposals per batch. */
  proposals: number;
  /** The first batch (after the earlier phases), then the next ones; the last is the steady state. */
  batches: MemoryBatch[];
  /** The same on the bare workerd, with objects that each write one row (scripts/bench/bare-worker.ts). */
  bare: MemoryBatch[];
}

export interface MemoryBatch {
  /** Before the batch, every earlier object evicted. */
  start: MemorySample;
  /** The largest RSS sampled during the batch. */
  top: MemorySample;
  /** After the batch, its objects evicted in turn. */
  end: MemorySample;
  /** Slope of RSS over open object databases while the batch ran: what one object in memory holds, MiB. */
  mibPerOpenObject: number;
}

/** A row of the memory phase's table. */
function memoryRow(label: string, b: MemoryBatch, proposals: number): string[] {
  return [
    label,
    b.start.rssMiB.toFixed(0),
    `${b.top.rssMiB.toFixed(0)} (${int(b.top.open)})`,
    b.end.rssMiB.toFixed(0),
    b.end.anonMiB.toFixed(0),
    `${growthPerThousand(b, proposals).toFixed(0)} MiB`,
    b.mibPerOpenObject.toFixed(2),
    b.start.heapMiB === undefined || b.end.heapMiB === undefined
      ? "–"
      : `${b.start.heapMiB.toFixed(1)} → ${b.end.heapMiB.toFixed(1)}`,
  ];
}

/** RSS growth over a batch, MiB per 1,000 proposals. */
function growthPerThousand(batch: MemoryBatch, proposals: number): number {
  return ((batch.end.rssMiB - batch.start.rssMiB) / proposals) * 1000;
}

export function emptyResults(): BenchResults {
  return {
    levels: [],
    create: null,
    createCpuMs: NaN,
    hot: null,
    bareHot: null,
    hotCpuMs: NaN,
    bareHotCpuMs: NaN,
    profile: [],
    isolated: [],
    perClick: {},
    sizes: {},
    dispatchIdle: [],
    dispatchLoaded: [],
    expiryAlarm: [],
    expirySeen: [],
    expiryWrong: 0,
    stress: null,
    chains: null,
    cpuProfile: null,
    cost: [],
    d1File: null,
    bareCreate: null,
    hotEphemeral: null,
    hotClicks: 0,
    hotClickers: 0,
    proposalsCreated: 0,
    openFiles: null,
    memory: {},
    steadyMemory: null,
  };
}

/** How the run was made: shown in the section's first lines, and the phase sizes its text names. */
export interface RunInfo {
  startedAt: Date;
  wallSeconds: number;
  /** The command as the operator types it, and the arguments it was given. */
  command: string;
  args: string[];
  versions: { node: string; workerd: string; wrangler: string; miniflare: string };
  settings: { createConcurrency: number; expiryProposals: number; profileRequests: number; profileConcurrency: number };
}

// ---- the results section -------------------------------------------------------------------

/** The results section of BENCHMARKS.md (and the terminal's table): every phase that ran, then the targets. */
export function render(results: BenchResults, run: RunInfo): string {
  const out: string[] = [];
  const { createConcurrency, expiryProposals, profileRequests, profileConcurrency } = run.settings;
  out.push(
    `Measured ${run.startedAt.toISOString()} with \`${run.command}${run.args.length ? ` -- ${run.args.join(" ")}` : ""}\` (${run.wallSeconds.toFixed(0)} s in all).`,
    "",
  );
  out.push(...machine(run.versions), "");

  const cpu = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : "–");
  if (results.levels.length > 0) {
    out.push("### Clicks vs a bare Hono route", "");
    out.push(
      "Correctly signed `block_actions` Approve clicks (Slack's payload with the card's blocks, " +
        `~${int(results.sizes["click request body, bytes"] ?? NaN)} bytes), ` +
        "each on a pending proposal of its own (U0ALICE directly, U0OSCAR through S0ONCALL, alternately); " +
        "the bare route gets the same requests. Closed loop, keep-alive, latency = request sent → answer read.",
      "",
    );
    const rows: string[][] = [];
    for (const level of results.levels) {
      const click = quantiles(level.click.samples.map((s) => s.ms));
      const bareQ = quantiles(level.bare.samples.map((s) => s.ms));
      rows.push([
        `click ×${level.concurrency}`,
        int(level.click.samples.length),
        int(level.click.rps),
        ...latencyCells(click),
        cpu(level.clickCpuMs),
        String(level.click.errors),
      ]);
      rows.push([
        `bare ×${level.concurrency}`,
        int(level.bare.samples.length),
        int(level.bare.rps),
        ...latencyCells(bareQ),
        cpu(level.bareCpuMs),
        String(level.bare.errors),
      ]);
    }
    if (results.hot && results.bareHot) {
      rows.push([
        "hot: 1 proposal ×100",
        int(results.hot.samples.length),
        int(results.hot.rps),
        ...latencyCells(quantiles(results.hot.samples.map((s) => s.ms))),
        cpu(results.hotCpuMs),
        String(results.hot.errors),
      ]);
      rows.push([
        "bare (same) ×100",
        int(results.bareHot.samples.length),
        int(results.bareHot.rps),
        ...latencyCells(quantiles(results.bareHot.samples.map((s) => s.ms))),
        cpu(results.bareHotCpuMs),
        String(results.bareHot.errors),
      ]);
    }
    if (results.isolated.length > 0) {
      rows.push([
        "click, one at a time on a quiet Worker",
        int(results.isolated.length),
        "–",
        ...latencyCells(quantiles(results.isolated)),
        "–",
        "0",
      ]);
    }
    out.push(
      table(["requests", "n", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "CPU ms/req", "errors"], rows),
      "",
    );
    out.push(
      "CPU ms/req: CPU time of the serving workerd process (all threads, /proc/<pid>/task/*/schedstat) per request, " +
        "counted until the Worker's background work for those requests (alarms: audit flushes to D1, Slack updates, dispatch) has finished — " +
        "a measure of work that depends much less than req/s on what else the machine is doing (contention still raises it somewhat).",
      "",
    );
    out.push(
      table(
        [
          "concurrency",
          "click req/s",
          "bare req/s",
          "ratio click/bare",
          "CPU ratio bare/click",
          "target ≥ 0.25 (hot ≥ 0.5)",
        ],
        [
          ...results.levels.map((l) => {
            const ratio = l.click.rps / l.bare.rps;
            return [
              String(l.concurrency),
              int(l.click.rps),
              int(l.bare.rps),
              ratio.toFixed(2),
              (l.bareCpuMs / l.clickCpuMs).toFixed(2),
              l.concurrency === 1 ? "–" : ratio >= 0.25 ? "met" : "NOT met",
            ];
          }),
          ...(results.hot && results.bareHot
            ? [
                [
                  "100, one hot proposal",
                  int(results.hot.rps),
                  int(results.bareHot.rps),
                  (results.hot.rps / results.bareHot.rps).toFixed(2),
                  (results.bareHotCpuMs / results.hotCpuMs).toFixed(2),
                  results.hot.rps / results.bareHot.rps >= 0.5 ? "met" : "NOT met",
                ],
              ]
            : []),
        ],
      ),
      "",
    );
  }

  if (results.create) {
    const q = quantiles(results.create.samples.map((s) => s.ms));
    out.push("### Proposal creation", "");
    out.push(
      table(
        ["POST /v1/proposals", "n", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "CPU ms/req"],
        [
          [
            `×${createConcurrency}`,
            int(results.create.samples.length),
            int(results.create.rps),
            ...latencyCells(q),
            cpu(results.createCpuMs),
          ],
        ],
      ),
      "",
    );
  }

  out.push("### Approval → dispatch, expiry", "");
  const idle = quantiles(results.dispatchIdle.filter(Number.isFinite));
  const loaded = quantiles(results.dispatchLoaded.filter(Number.isFinite));
  const alarm = quantiles(results.expiryAlarm);
  const seen = quantiles(results.expirySeen);
  out.push(
    table(
      ["measure", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"],
      [
        ["click answered → runner receives the dispatch (one click at a time)", int(idle.n), ...latencyCells(idle)],
        ["the same, for the 100-concurrent level's clicks", int(loaded.n), ...latencyCells(loaded)],
        [
          `expiry: status flip − deadline (TTL 1–3 s, ${expiryProposals} proposals)`,
          int(alarm.n),
          ...latencyCells(alarm),
        ],
        ["expiry: a waiting GET ?wait= answered − deadline", int(seen.n), ...latencyCells(seen)],
      ],
    ),
    "",
  );
  if (results.expiryWrong > 0)
    out.push(`${results.expiryWrong} of ${expiryProposals} long-polls came back without the proposal expired.`, "");

  if (results.stress) {
    const s = results.stress;
    const delays = (values: number[]) => {
      const q = quantiles(values);
      return q.n === 0 ? "–" : `${ms(q.p50)} / ${ms(q.p99)} / ${ms(q.max)} (n ${q.n})`;
    };
    out.push(`### Exactly once: ${s.proposals.toLocaleString("en-US")} proposals, a flaky runner`, "");
    out.push(
      `${int(s.clicks)} concurrent signed clicks (×25; U0ALICE, U0OSCAR, the requester U0BOB and the outsider U0MALLORY on 9 in 10 proposals, only U0BOB and U0MALLORY on the rest); ` +
        "the runner fails attempts 1–2 at random (40 %: 500, 503, 408, 429, a dropped connection, and on first attempts a hang past the 10 s dispatch timeout), then answers 200 with a result or 202.",
      "",
    );
    out.push(
      table(
        ["measure", "value"],
        [
          ["approved (exactly one `proposal.approved` each)", `${s.approved}`],
          ["never approved (outsiders only)", `${s.neverApproved}`],
          [
            "approved with exactly one accepted dispatch (2xx received = recorded = 1)",
            `${s.exactlyOnce} of ${s.approved}`,
          ],
          ["2xx sent after signoff had given up (sent again, same webhook-id)", `${s.redelivered}`],
          ["attempt audited → request at the runner, ms (p50 / p99 / max)", delays(s.sendDelays)],
          ["the same, for the attempts answered too late", delays(s.lateSendDelays)],
          ["runner requests (with retries) / proposals retried", `${s.runnerRequests} / ${s.retried}`],
          [
            "runner answers",
            Object.entries(s.answers)
              .map(([k, v]) => `${k}: ${v}`)
              .join(", "),
          ],
          [
            "final statuses",
            Object.entries(s.statuses)
              .map(([k, v]) => `${k}: ${v}`)
              .join(", "),
          ],
          ["click errors (non-200)", String(s.clickErrors)],
          [
            "violations",
            s.violations.length === 0 ? "none" : `${s.violations.length}: ${s.violations.slice(0, 5).join("; ")}`,
          ],
          ["workerd CPU while the clicks were sent, cores", s.busyCores.toFixed(2)],
          ["phase time, s", s.seconds.toFixed(1)],
        ],
      ),
      "",
    );
  }
  if (results.chains) {
    const c = results.chains;
    out.push(
      `Audit chains after the run: ${c.ok ? "all verify" : `${c.problems} PROBLEM(S)`} — ${int(c.events)} events of ${int(c.proposals)} proposals (\`verifyChains\`, src/audit/chain.ts).`,
      "",
    );
  }

  if (results.profile.length > 0) {
    out.push("### Where a click's time goes", "");
    out.push(
      `${profileRequests} requests per row (${profileRequests * 5} for the first three) at ${profileConcurrency} concurrent; each row adds one step to the row above. CPU ms/req as above; "+CPU" is what the step adds.`,
      "",
    );
    let previous: number | null = null;
    out.push(
      table(
        ["requests", "what it adds", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "+CPU ms"],
        results.profile.map(({ label, what, load, cpuMs }) => {
          const delta = previous === null ? "–" : `${cpuMs - previous >= 0 ? "+" : ""}${(cpuMs - previous).toFixed(2)}`;
          previous = cpuMs;
          const q = quantiles(load.samples.map((s) => s.ms));
          return [label, what, int(load.rps), ms(q.p50), ms(q.p99), cpuMs.toFixed(2), delta];
        }),
      ),
      "",
    );
    out.push(
      table(
        ["per approving click (the 100-concurrent level)", "value"],
        [
          ...Object.entries(results.perClick).map(([k, v]) => [k, Number.isInteger(v) ? String(v) : v.toFixed(2)]),
          ...Object.entries(results.sizes).map(([k, v]) => [k, int(v)]),
        ],
      ),
      "",
    );
  }

  if (results.cpuProfile) {
    const p = results.cpuProfile;
    out.push(
      `### CPU profile of the Worker's isolate (\`--profile\`): ${p.clicks} approving clicks ×10 and their background work`,
      "",
    );
    out.push(
      "Self time by source module of the bundle (workerd's sampling profiler over DevTools); \"(idle)\" is time the isolate waited, e.g. while workerd ran D1's or the entry worker's code.",
      "",
    );
    out.push(
      table(
        ["module or native", "self ms", "share"],
        p.modules.map((m) => [m.name, m.selfMs.toFixed(0), `${(m.share * 100).toFixed(1)} %`]),
      ),
      "",
    );
    out.push(
      table(
        ["function · module", "self ms", "share"],
        p.functions.map((m) => [m.name, m.selfMs.toFixed(0), `${(m.share * 100).toFixed(1)} %`]),
      ),
      "",
    );
  }

  if (results.cost.length > 0) {
    const n = results.cost.at(-1)!.approvals;
    out.push("### What 1 million approvals cost on Workers Paid", "");
    out.push(
      `${n} proposals created through the API and each approved by one signed click (U0ALICE and U0OSCAR alternately, ` +
        "one at a time), counted until the runner had every dispatch and the Worker was quiet: the card posted and updated, " +
        "the dispatch, every audit flush. Counted by a meter bundled around the Worker for the bench only " +
        "(scripts/bench/meter.ts), the Slack and runner stand-ins, and workerd's CPU; " +
        `multiplied by the prices beyond the plan's included usage, read ${PRICES_READ} (sources in the text above this section).`,
      "",
    );
    out.push(renderCost(results.cost), "");
    out.push(renderCounts(results.cost), "");
  }
  if (results.d1File && results.d1File.events > 0) {
    const { bytes, events } = results.d1File;
    out.push(
      `D1 on disk at the end of the run: ${(bytes / 2 ** 20).toFixed(1)} MiB for ${int(events)} audit events, ` +
        `${int(bytes / events)} bytes per event with its indexes — an upper bound: SQLite's write-ahead log is counted, and a small database is mostly free pages.`,
      "",
    );
  }

  out.push("### Memory (RSS from /proc, MiB)", "");
  out.push(
    table(
      ["process", "before", "after", "peak"],
      Object.entries(results.memory).map(([name, m]) => [
        name,
        m.before ? m.before.rssMiB.toFixed(0) : "–",
        m.after ? m.after.rssMiB.toFixed(0) : "–",
        m.after ? m.after.peakMiB.toFixed(0) : "–",
      ]),
    ),
    "",
  );

  if (results.openFiles)
    out.push(
      `workerd (signoff) at the end: ${int(results.proposalsCreated)} proposals created in the run, ` +
        `${int(results.openFiles.sqlite)} objects' SQLite databases still open (objects in memory), ` +
        `${int(results.openFiles.sockets)} sockets, ${int(results.openFiles.total)} open files in all.`,
      "",
    );

  const steady = results.steadyMemory;
  if (steady) {
    out.push(
      `Steady state (the memory phase): once every object of the earlier phases had been evicted, a batch of ${int(steady.proposals)} proposals was created and approved (×10) and its objects left to be evicted in turn; then more batches the same way. The bare workerd did the same with ${int(steady.proposals)} Durable Objects per batch that each write one row and nothing else: what workerd itself keeps per object. RSS and open object databases sampled every 250 ms; "per object in memory" is the slope of RSS over open object databases during the batch.`,
      "",
      table(
        [
          "batch",
          "RSS before MiB",
          "largest MiB (objects open)",
          "after, evicted MiB",
          "of it anonymous MiB",
          "growth per 1,000",
          "MiB per object in memory",
          "JS heap in use MiB (`--profile`)",
        ],
        [
          ...steady.batches.map((b, i) => memoryRow(`signoff, batch ${i + 1}`, b, steady.proposals)),
          ...steady.bare.map((b, i) => memoryRow(`bare objects writing one row, batch ${i + 1}`, b, steady.proposals)),
        ],
      ),
      "",
    );
  }

  out.push("### Targets (contract §10 and issue 12)", "");
  out.push(table(["target", "measured", "verdict"], targetRows(results, alarm)));
  return out.join("\n");
}

const verdict = (ok: boolean | null) => (ok === null ? "–" : ok ? "met" : "NOT met");

/** One row per target: what was measured in this run, and whether it meets the target. */
function targetRows(results: BenchResults, alarm: Quantiles): string[][] {
  const rows: string[][] = [];
  const level = (c: number) => results.levels.find((l) => l.concurrency === c);
  const p99 = (load: LoadResult) => quantiles(load.samples.map((x) => x.ms)).p99;
  if (results.levels.length > 0) {
    const cpus = results.levels.map((l) => l.clickCpuMs);
    rows.push([
      "workerd CPU per approving click, background work included, ≤ 3 ms",
      `${results.levels.map((l) => `×${l.concurrency}: ${l.clickCpuMs.toFixed(1)}`).join(", ")} ms`,
      verdict(Math.max(...cpus) <= 3),
    ]);
    const ratios = [10, 50, 100].map((c) => level(c)).filter((l) => l !== undefined);
    rows.push([
      "click throughput ≥ 0.25 × bare at 10, 50, 100 concurrent",
      ratios.map((l) => `×${l.concurrency}: ${(l.click.rps / l.bare.rps).toFixed(2)}`).join(", "),
      verdict(ratios.every((l) => l.click.rps / l.bare.rps >= 0.25)),
    ]);
  }
  if (results.hot && results.bareHot) {
    const ratio = results.hot.rps / results.bareHot.rps;
    rows.push(["hot proposal: click throughput ≥ 0.5 × bare", ratio.toFixed(2), verdict(ratio >= 0.5)]);
  }
  const top = level(100);
  if (top) {
    const ratio = p99(top.click) / p99(top.bare);
    rows.push([
      "click p99 at 100 concurrent ≤ 3 × the bare route's p99",
      `${ms(p99(top.click))} / ${ms(p99(top.bare))} ms = ${ratio.toFixed(1)} ×`,
      verdict(ratio <= 3),
    ]);
    rows.push([
      "click acknowledged far inside Slack's 3 s: p99 at 100 concurrent (contract §10)",
      `${ms(p99(top.click))} ms`,
      verdict(p99(top.click) < 3000),
    ]);
  }
  const loaded = quantiles(results.dispatchLoaded.filter(Number.isFinite));
  if (loaded.n > 0)
    rows.push([
      "approval → the runner has the dispatch, during the 100-concurrent burst: p50 ≤ 250 ms, p99 ≤ 1 s",
      `p50 ${ms(loaded.p50)} ms, p99 ${ms(loaded.p99)} ms`,
      verdict(loaded.p50 <= 250 && loaded.p99 <= 1000),
    ]);
  if (results.create) {
    rows.push([
      "creation: ≤ 3 ms workerd CPU per proposal",
      `${results.createCpuMs.toFixed(1)} ms`,
      verdict(results.createCpuMs <= 3),
    ]);
    if (results.bareCreate) {
      const ratio = results.create.rps / results.bareCreate.rps;
      rows.push([
        "creation throughput ≥ 0.25 × bare",
        `${int(results.create.rps)} / ${int(results.bareCreate.rps)} req/s = ${ratio.toFixed(2)}`,
        verdict(ratio >= 0.25),
      ]);
    }
  }
  const cost = results.cost.at(-1);
  if (cost) {
    const n = Math.max(1, cost.approvals);
    const updates = (cost.fetchesBy["Slack chat.update"] ?? 0) / n;
    const batches = cost.meter.d1Batches / n;
    rows.push([
      "one `chat.update` per approval when the runner answers at once",
      `${updates.toFixed(2)} per approval`,
      verdict(updates <= 1),
    ]);
    rows.push([
      "one D1 batch per proposal per decision",
      `${batches.toFixed(2)} batches per approval (creation's and the decision's)`,
      verdict(batches <= 2),
    ]);
  }
  if (results.hotEphemeral !== null)
    rows.push([
      `refusal replies coalesced: ${results.hotClicks} clicks on one card → at most one ephemeral per person a minute`,
      `${results.hotEphemeral} ephemerals for ${results.hotClickers} people; at most 20 jobs per alarm run`,
      verdict(results.hotEphemeral <= results.hotClickers),
    ]);
  const rss = results.memory["workerd (signoff)"];
  const memory = results.steadyMemory;
  const steady = memory?.batches.at(-1);
  if (memory && steady) {
    const perThousand = growthPerThousand(steady, memory.proposals);
    const bareSteady = memory.bare.at(-1);
    const workerd = bareSteady ? growthPerThousand(bareSteady, memory.proposals) : 0;
    rows.push([
      "workerd RSS growth ≤ 100 MiB per 1,000 proposals, in steady state (the memory phase's last batch)",
      `${perThousand.toFixed(0)} MiB per 1,000 (workerd's own, for objects that write one row: ${workerd.toFixed(0)} MiB per 1,000)`,
      verdict(perThousand <= 100),
    ]);
  }
  if (rss?.before && rss.after && results.proposalsCreated > 0) {
    const perThousand = ((rss.after.rssMiB - rss.before.rssMiB) / results.proposalsCreated) * 1000;
    rows.push([
      "workerd RSS from a cold start to the end of the run (not a target: the high-water mark of objects in memory at once, which the memory phase then reuses)",
      `${perThousand.toFixed(0)} MiB per 1,000 (${int(rss.after.rssMiB - rss.before.rssMiB)} MiB for ${int(results.proposalsCreated)})`,
      "–",
    ]);
  }
  const st = results.stress;
  if (st)
    rows.push([
      "exactly one dispatch per approved proposal, none unapproved (contract §10)",
      `${st.exactlyOnce}/${st.approved} exactly once, ${st.violations.length} violations`,
      verdict(st.violations.length === 0 && st.exactlyOnce === st.approved),
    ]);
  if (results.chains)
    rows.push([
      "zero lost audit events: chains verify (contract §10)",
      `${results.chains.problems} chain problems in ${int(results.chains.events)} events`,
      verdict(results.chains.ok),
    ]);
  if (alarm.n > 0)
    rows.push([
      "expiry within 1 s of the deadline (contract §10)",
      `max ${ms(alarm.max)} ms (p99 ${ms(alarm.p99)} ms)`,
      verdict(alarm.max <= 1000 && results.expiryWrong === 0),
    ]);
  return rows;
}
