// Makes D1 refuse audit writes for real (no mocks): the audit table is renamed away, then back. While it is away,
// each failed flush logs a warning (src/proposal/jobs/audit-flush.ts, for `wrangler tail`); those are collected
// here instead of flooding the test output, and handed to the test, which can assert them.
import { env } from "cloudflare:workers";
import { type MockInstance, vi } from "vitest";

const db = env.AUDIT_DB;
const FLUSH_WARNING = /^audit flush for prp_[0-9a-f]+ (failed|waits)/;

let spy: MockInstance<typeof console.warn> | null = null;
let warned: string[] = [];

/** Collects the audit flush's warnings (the proposals' objects run in this isolate); passes any other through. */
export function collectFlushWarnings(): void {
  if (spy) return;
  warned = [];
  const original = console.warn.bind(console);
  spy = vi.spyOn(console, "warn").mockImplementation((...args: unknown[]) => {
    const text = args.map(String).join(" ");
    if (FLUSH_WARNING.test(text)) warned.push(text);
    else original(...args);
  });
}

/** Stops collecting; the warnings collected since collectFlushWarnings(). */
export function flushWarnings(): string[] {
  spy?.mockRestore();
  spy = null;
  return warned;
}

export const d1 = {
  async breakAuditTable(): Promise<void> {
    collectFlushWarnings();
    await db.exec("ALTER TABLE audit_events RENAME TO audit_events_offline");
  },
  /**
   * Safe to call when nothing is broken (tests call it in afterEach). Returns the flush warnings logged while the
   * table was away: each names the proposal, the attempt and D1's error.
   */
  async restoreAuditTable(): Promise<string[]> {
    const { results } = await db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit_events_offline'")
      .all();
    if (results.length > 0) await db.exec("ALTER TABLE audit_events_offline RENAME TO audit_events");
    return flushWarnings();
  },
};
