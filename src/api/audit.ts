// GET /v1/audit: filtered, cursor-paged reads of the audit log, as JSON, NDJSON or CSV (SPEC 4, 8); and
// GET /v1/audit/checkpoint: the log's chain heads, checked against each proposal's Durable Object and signed (SPEC 12).
import { Hono } from "hono";
import { AuditMismatch, takeCheckpoint } from "../audit/checkpoint.ts";
import { toCsv, toNdjson } from "../audit/export-formats.ts";
import { auditSigner } from "../audit/signing.ts";
import { queryAuditEvents } from "../audit/store.ts";
import { ApiError } from "../errors.ts";
import { proposalStub } from "../proposal/stub.ts";
import { type AppEnv, queryOf, validate } from "./http.ts";
import { requireScope, withConfig } from "./middleware.ts";
import { AuditCheckpointParams, AuditQueryParams } from "./schemas.ts";

/** A 409 names at most this many chains (the message gives the total). */
const MAX_MISMATCH_DETAILS = 100;

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

auditRoutes.get("/checkpoint", withConfig, requireScope("audit:read"), async (c) => {
  const config = c.var.config;
  validate(AuditCheckpointParams, queryOf(c), "query");
  const ns = c.env.PROPOSALS;
  try {
    const checkpoint = await takeCheckpoint({
      db: c.env.AUDIT_DB,
      signer: await auditSigner(config.auditSigningKey),
      now: Date.now(),
      objectHead: async (proposalId) => (await proposalStub(ns, proposalId)?.auditHead()) ?? null,
    });
    return c.json(checkpoint);
  } catch (error) {
    if (!(error instanceof AuditMismatch)) throw error;
    // Tampering found: nothing is signed. Not a 5xx: the Worker works, the log is what is wrong.
    throw new ApiError(
      409,
      "audit_mismatch",
      `${error.message}; no checkpoint was signed. Run \`npm run audit:verify\` against your last checkpoint`,
      error.problems
        .slice(0, MAX_MISMATCH_DETAILS)
        .map(({ proposal_id, problem }) => ({ path: proposal_id ?? "log", message: problem })),
    );
  }
});
