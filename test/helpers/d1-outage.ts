// Makes D1 refuse audit writes for real (no mocks): the audit table is renamed away, then back.
import { env } from "cloudflare:workers";

const db = env.AUDIT_DB;

export const d1 = {
  async breakAuditTable(): Promise<void> {
    await db.exec("ALTER TABLE audit_events RENAME TO audit_events_offline");
  },
  /** Safe to call when nothing is broken (tests call it in afterEach). */
  async restoreAuditTable(): Promise<void> {
    const { results } = await db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit_events_offline'")
      .all();
    if (results.length > 0) await db.exec("ALTER TABLE audit_events_offline RENAME TO audit_events");
  },
};
