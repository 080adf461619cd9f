// GET /v1/audit: filtered, cursor-paged reads of the audit log, as JSON, NDJSON or CSV (SPEC 4, 8).
import { Hono } from "hono";
import { toCsv, toNdjson } from "../audit/export-formats.ts";
import { queryAuditEvents } from "../audit/store.ts";
import { type AppEnv, queryOf, validate } from "./http.ts";
import { requireScope, withConfig } from "./middleware.ts";
import { AuditQueryParams } from "./schemas.ts";

export const auditRoutes = new Hono<AppEnv>();

auditRoutes.get("/", withConfig, requireScope("audit:read"), async (c) => {
  const q = validate(AuditQueryParams, queryOf(c), "query");
  // One row more than asked tells whether another page exists.
  const rows = await queryAuditEvents(c.env.AUDIT_DB, {
    proposal_id: q.proposal_id,
    type: q.type,
    actor: q.actor,
    since_ms: q.since,
    until_ms: q.until,
    after_seq: q.cursor ? Number(q.cursor) : 0,
    limit: q.limit + 1,
  });
  const events = rows.slice(0, q.limit);
  const nextCursor = rows.length > q.limit ? String(events.at(-1)!.seq) : null;
  if (nextCursor) c.header("x-next-cursor", nextCursor);
  if (q.format === "ndjson") {
    return c.body(toNdjson(events), 200, { "content-type": "application/x-ndjson; charset=utf-8" });
  }
  if (q.format === "csv") {
    return c.body(toCsv(events), 200, { "content-type": "text/csv; charset=utf-8" });
  }
  return c.json({ events, next_cursor: nextCursor });
});
