// What an approval costs on Cloudflare's Workers Paid plan: the operations the bench counted for a batch of
// approvals (scripts/bench/meter.ts inside the Worker, the peers outside it, workerd's CPU) times the published
// unit prices, as the cost of one million approvals. Prices beyond the plan's included usage, read on the dates
// below (BENCHMARKS.md cites the pages); the $5 monthly minimum and the included amounts are left out, so this is
// the marginal cost of the millionth-and-later approval.
import type { MeterTotals } from "./meter.ts";

export const PRICES_READ = "2026-12-01";

export interface Price {
  /** US dollars per million units. */
  perMillion: number;
  unit: string;
  source: string;
}

export const PRICES = {
  workerRequests: { perMillion: 0.3, unit: "requests", source: "Workers pricing (Standard)" },
  workerCpuMs: { perMillion: 0.02, unit: "CPU ms", source: "Workers pricing (Standard)" },
  doRequests: { perMillion: 0.15, unit: "requests", source: "Durable Objects pricing" },
  doGbSeconds: { perMillion: 12.5, unit: "GB-s", source: "Durable Objects pricing" },
  sqlRowsRead: { perMillion: 0.001, unit: "rows", source: "Durable Objects pricing (SQLite storage)" },
  sqlRowsWritten: { perMillion: 1.0, unit: "rows", source: "Durable Objects pricing (SQLite storage)" },
  d1RowsRead: { perMillion: 0.001, unit: "rows", source: "D1 pricing" },
  d1RowsWritten: { perMillion: 1.0, unit: "rows", source: "D1 pricing" },
  subrequests: { perMillion: 0, unit: "fetches", source: "not billed (Workers limits: at most 10,000 per invocation)" },
} satisfies Record<string, Price>;

/** A Durable Object is billed for 128 MB while active, whatever it uses. */
export const DO_MEMORY_GB = 0.128;

/** What a batch of approvals used, as the bench counted it. */
export interface CostSample {
  label: string;
  approvals: number;
  meter: MeterTotals;
  /** workerd CPU for the whole batch (creation, clicks, background work), ms: an upper bound of billed CPU. */
  cpuMs: number;
  /** Outbound fetches the peers saw (Slack Web API calls and runner requests). */
  fetches: number;
  /** Of which, by Slack method or "runner". */
  fetchesBy: Record<string, number>;
  /** The audit events these approvals left in D1, and their rows' bytes (without indexes). */
  auditEvents: number;
  auditBytes: number;
}

export interface CostRow {
  operation: string;
  perApproval: number;
  price: Price;
  /** Dollars for one million approvals. */
  perMillionApprovals: number;
}

export function costRows(sample: CostSample): CostRow[] {
  const n = Math.max(1, sample.approvals);
  const m = sample.meter;
  const row = (operation: string, total: number, price: Price): CostRow => ({
    operation,
    perApproval: total / n,
    price,
    perMillionApprovals: (total / n) * price.perMillion,
  });
  return [
    row("Worker requests", m.workerRequests, PRICES.workerRequests),
    row("workerd CPU ms (upper bound: Worker, object, local D1)", sample.cpuMs, PRICES.workerCpuMs),
    row("Durable Object requests (RPC calls + alarm runs)", m.doRequests, PRICES.doRequests),
    row(
      "Durable Object duration, GB-s (128 MB × active wall time)",
      (m.doActiveMs / 1000) * DO_MEMORY_GB,
      PRICES.doGbSeconds,
    ),
    row("Durable Object SQLite rows read", m.sqlRowsRead, PRICES.sqlRowsRead),
    row("Durable Object SQLite rows written", m.sqlRowsWritten, PRICES.sqlRowsWritten),
    row("D1 rows read", m.d1RowsRead, PRICES.d1RowsRead),
    row("D1 rows written", m.d1RowsWritten, PRICES.d1RowsWritten),
    row("subrequests (Slack Web API, runner)", sample.fetches, PRICES.subrequests),
  ];
}

export function totalOf(rows: readonly CostRow[]): number {
  return rows.reduce((sum, r) => sum + r.perMillionApprovals, 0);
}

/** Subtracts one meter reading from a later one. */
export function meterDelta(after: MeterTotals, before: MeterTotals): MeterTotals {
  const doRpc: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.doRpc)) doRpc[k] = v - (before.doRpc[k] ?? 0);
  return {
    workerRequests: after.workerRequests - before.workerRequests,
    doRequests: after.doRequests - before.doRequests,
    doRpc,
    alarms: after.alarms - before.alarms,
    doActiveMs: after.doActiveMs - before.doActiveMs,
    sqlStatements: after.sqlStatements - before.sqlStatements,
    sqlRowsRead: after.sqlRowsRead - before.sqlRowsRead,
    sqlRowsWritten: after.sqlRowsWritten - before.sqlRowsWritten,
    d1Batches: after.d1Batches - before.d1Batches,
    d1Statements: after.d1Statements - before.d1Statements,
    d1RowsRead: after.d1RowsRead - before.d1RowsRead,
    d1RowsWritten: after.d1RowsWritten - before.d1RowsWritten,
    bySql: Object.fromEntries(
      Object.entries(after.bySql).map(([k, [n, r, w]]) => {
        const [n0, r0, w0] = before.bySql[k] ?? [0, 0, 0];
        return [k, [n - n0, r - r0, w - w0]];
      }),
    ),
  };
}

/** Money with enough digits to tell small costs apart. */
export function dollars(value: number): string {
  if (value === 0) return "$0";
  if (value < 0.01) return `$${value.toFixed(4)}`;
  return `$${value.toFixed(2)}`;
}

function count(value: number): string {
  if (value === 0) return "0";
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

/** The cost table: one row per operation, before (if measured) and after side by side. */
export function renderCost(samples: readonly CostSample[]): string {
  const tables = samples.map(costRows);
  const head = [
    "operation",
    ...samples.flatMap((s) => [`per approval (${s.label})`, `1M approvals (${s.label})`]),
    "unit price",
  ];
  const lines = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  const first = tables[0] ?? [];
  first.forEach((row, i) => {
    const cells = tables.flatMap((t) => [count(t[i]!.perApproval), dollars(t[i]!.perMillionApprovals)]);
    const price = row.price.perMillion === 0 ? "–" : `$${row.price.perMillion} / M ${row.price.unit}`;
    lines.push(`| ${row.operation} | ${cells.join(" | ")} | ${price} |`);
  });
  const totals = tables.flatMap((t) => ["–", `**${dollars(totalOf(t))}**`]);
  lines.push(`| **total** | ${totals.join(" | ")} | – |`);
  return lines.join("\n");
}

/** The counts behind the table that are not billed themselves: what an approval does, operation by operation. */
export function renderCounts(samples: readonly CostSample[]): string {
  const head = ["per approval", ...samples.map((s) => s.label)];
  const per = (s: CostSample, v: number) => count(v / Math.max(1, s.approvals));
  const keys = new Set<string>();
  for (const s of samples) for (const k of Object.keys(s.meter.doRpc)) keys.add(k);
  const fetchKeys = new Set<string>();
  for (const s of samples) for (const k of Object.keys(s.fetchesBy)) fetchKeys.add(k);
  const rows: string[][] = [
    ["alarm runs", ...samples.map((s) => per(s, s.meter.alarms))],
    ...[...keys].sort().map((k) => [`RPC \`${k}\``, ...samples.map((s) => per(s, s.meter.doRpc[k] ?? 0))]),
    ["object active wall time, ms", ...samples.map((s) => per(s, s.meter.doActiveMs))],
    ["SQLite statements", ...samples.map((s) => per(s, s.meter.sqlStatements))],
    ["D1 batches", ...samples.map((s) => per(s, s.meter.d1Batches))],
    ["D1 statements", ...samples.map((s) => per(s, s.meter.d1Statements))],
    ...[...fetchKeys].sort().map((k) => [`fetch: ${k}`, ...samples.map((s) => per(s, s.fetchesBy[k] ?? 0))]),
    ["workerd CPU ms", ...samples.map((s) => per(s, s.cpuMs))],
    ["audit events kept in D1", ...samples.map((s) => per(s, s.auditEvents))],
    ["audit row bytes in D1 (without indexes)", ...samples.map((s) => per(s, s.auditBytes))],
  ];
  // The statements that write most, for the last sample (the current code): where the SQLite rows go.
  const last = samples.at(-1);
  if (last)
    for (const [text] of Object.entries(last.meter.bySql)
      .sort((a, b) => b[1][2] - a[1][2])
      .slice(0, 10))
      rows.push([
        `rows written by \`${text.replace(/\|/g, "/")}\``,
        ...samples.map((s) => per(s, s.meter.bySql[text]?.[2] ?? 0)),
      ]);
  return [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}
