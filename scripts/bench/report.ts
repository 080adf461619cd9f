// Formatting the bench's results: Markdown tables for the terminal and BENCHMARKS.md, the machine
// description, and the rewrite of BENCHMARKS.md's results section (between its markers).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import type { Quantiles } from "./load.ts";

export const RESULTS_START = "<!-- bench:results:start (written by `npm run bench`; edit outside these markers) -->";
export const RESULTS_END = "<!-- bench:results:end -->";

export function ms(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return "–";
  return value >= 100 ? value.toFixed(0) : value.toFixed(digits);
}

export function int(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "–";
}

export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
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
