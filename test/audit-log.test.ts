// SPEC 8: the audit log is append-only by schema, tamper-evident by hash chain, and loses
// nothing while D1 is unavailable (the Durable Object keeps and later writes, in order).
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { type AuditEvent, GENESIS_HASH, verifyChains } from "../src/audit/chain.ts";
import { appendAuditEvents, queryAuditEvents, type StoredAuditEvent } from "../src/audit/store.ts";
import { DECIDED_BY_SQL } from "../src/slack/home-index.ts";
import { CREATED_IN_WINDOW_SQL } from "../src/stats/store.ts";
import { auditOf, click, createProposal, getProposal, jobsOf, runJobsNow, settle, stubOf } from "./helpers/api.ts";
import { d1 } from "./helpers/d1-outage.ts";

const db = env.AUDIT_DB;

async function allEvents(): Promise<AuditEvent[]> {
  return queryAuditEvents(db, { limit: 100_000 });
}

/** How many events wait in the proposal's outbox for D1, as its object reports them. */
async function outboxSize(id: string): Promise<number> {
  return (await stubOf(id).auditHead()).pending.length;
}

/** The outbox's rows as stored (each row's key and events) and the head `meta` holds. */
async function storedOutbox(id: string) {
  return runInDurableObject(stubOf(id), (_instance, state) => {
    const sql = state.storage.sql;
    const rows = sql
      .exec<{ idx: number; event: string }>(`SELECT idx, event FROM outbox ORDER BY idx`)
      .toArray()
      .map((row) => ({ idx: row.idx, events: JSON.parse(row.event) as AuditEvent[] }));
    const meta = sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'chain_head'`).toArray()[0];
    return { rows, meta: meta ? (JSON.parse(meta.value) as { idx: number; hash: string }) : null };
  });
}

afterEach(async () => {
  await d1.restoreAuditTable();
});

describe("append-only", () => {
  it("the schema refuses UPDATE of an audit row", async () => {
    const p = await createProposal();
    await settle(p.id);
    await expect(
      db.prepare("UPDATE audit_events SET actor = 'key:mallory' WHERE proposal_id = ?").bind(p.id).run(),
    ).rejects.toThrow(/append-only/);
  });

  it("the schema refuses DELETE of an audit row", async () => {
    const p = await createProposal();
    await settle(p.id);
    await expect(db.prepare("DELETE FROM audit_events WHERE proposal_id = ?").bind(p.id).run()).rejects.toThrow(
      /append-only/,
    );
    expect((await auditOf(p.id)).length).toBeGreaterThan(0);
  });
});

describe("hash chain", () => {
  it("each proposal's events chain from the genesis hash, and the chains verify", async () => {
    const a = await createProposal();
    const b = await createProposal();
    await click("approve", a.id, "U0ALICE");
    await click("deny", b.id, "U0ALICE");
    await settle(a.id);
    await settle(b.id);
    const events = await auditOf(a.id);
    expect(events[0]).toMatchObject({
      idx: 1,
      type: "proposal.created",
      actor: "key:alertmanager",
      prev_hash: GENESIS_HASH,
    });
    for (const [i, event] of events.slice(1).entries()) expect(event.prev_hash).toBe(events[i]!.hash);
    const report = verifyChains(await allEvents());
    expect(report).toMatchObject({ ok: true, problems: [] });
    expect(report.proposals).toBeGreaterThanOrEqual(2);
  });

  it("a tampered row is detected (even by someone who could bypass the triggers)", async () => {
    const p = await createProposal();
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);
    await db.exec("DROP TRIGGER audit_events_no_update");
    try {
      await db
        .prepare(
          "UPDATE audit_events SET actor = 'slack:U0MALLORY' WHERE proposal_id = ? AND type = 'proposal.approved'",
        )
        .bind(p.id)
        .run();
      const report = verifyChains(await allEvents());
      expect(report.ok).toBe(false);
      expect(report.problems).toContainEqual(
        expect.objectContaining({ proposal_id: p.id, problem: expect.stringMatching(/edited/) }),
      );
    } finally {
      // Put the row back as it was (the hash tells us the original) and the trigger too.
      await db
        .prepare("UPDATE audit_events SET actor = 'slack:U0ALICE' WHERE proposal_id = ? AND type = 'proposal.approved'")
        .bind(p.id)
        .run();
      await db.exec(
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END;",
      );
    }
    expect(verifyChains(await allEvents()).ok).toBe(true);
  });

  it("a missing middle row is detected", async () => {
    const p = await createProposal();
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);
    const events = (await allEvents()).filter((e) => e.proposal_id === p.id);
    const withoutSecond = events.filter((e) => e.idx !== 2);
    expect(verifyChains(withoutSecond).ok).toBe(false);
  });
});

describe("D1 unavailable", () => {
  it("events are kept by the Durable Object and written later, in order, with the chain intact", async () => {
    const p = await createProposal();
    await settle(p.id);
    const before = (await auditOf(p.id)).length;

    await d1.breakAuditTable();
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);
    // The decision and the dispatch went ahead without D1; the events wait in the object.
    expect((await getProposal(p.id)).status).toBe("succeeded");
    const waiting = await outboxSize(p.id);
    expect(waiting).toBeGreaterThanOrEqual(4);
    const [retry] = await jobsOf(p.id, "audit");
    expect(retry?.attempt).toBeGreaterThanOrEqual(1);

    // Each failed flush was logged for the operator (wrangler tail), naming the proposal and D1's error.
    expect(await d1.restoreAuditTable()).toContainEqual(
      expect.stringMatching(new RegExp(`^audit flush for ${p.id} failed \\(attempt 1\\): .*no such table`)),
    );
    await runJobsNow(p.id, ["audit"]);
    expect(await outboxSize(p.id)).toBe(0);
    const events = await auditOf(p.id);
    expect(events.length).toBe(before + waiting);
    expect(events.map((e) => e.idx)).toEqual(events.map((_, i) => i + 1));
    expect(events.map((e) => e.seq)).toEqual([...events.map((e) => e.seq)].sort((x, y) => x - y));
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining([
        "proposal.created",
        "approval.recorded",
        "proposal.approved",
        "dispatch.attempt",
        "proposal.succeeded",
      ]),
    );
    expect(verifyChains(events as AuditEvent[]).ok).toBe(true);
  });

  it("the outbox keeps one row per transaction, and the chain's head reaches meta only when a flush completes", async () => {
    const p = await createProposal();
    await settle(p.id);
    const flushed = await stubOf(p.id).auditHead();
    await d1.breakAuditTable();
    try {
      await click("approve", p.id, "U0ALICE");
      await settle(p.id);
    } finally {
      await d1.restoreAuditTable();
    }
    const waiting = await stubOf(p.id).auditHead();
    const stored = await storedOutbox(p.id);
    // The approval, the attempt, the answer, the card update: one row each, each row its transaction's events.
    expect(stored.rows.map((row) => row.events.map((e) => e.type))).toEqual([
      ["approval.recorded", "proposal.approved"],
      ["dispatch.attempt"],
      ["dispatch.answer", "proposal.succeeded"],
      ["slack.message_updated"],
    ]);
    for (const row of stored.rows) expect(row.idx).toBe(row.events.at(-1)!.idx);
    // The head the object answers with is the last event sealed; meta still holds the last one D1 confirmed.
    expect(waiting.flushed).toEqual(flushed.head);
    expect(stored.meta).toEqual(flushed.head);
    const last = stored.rows.at(-1)!.events.at(-1)!;
    expect(waiting.head).toEqual({ idx: last.idx, hash: last.hash });
    expect(waiting.pending).toHaveLength(6);

    await runJobsNow(p.id, ["audit"]);
    const after = await storedOutbox(p.id);
    expect(after).toEqual({ rows: [], meta: waiting.head });
    expect(await stubOf(p.id).auditHead()).toEqual({ head: waiting.head, flushed: waiting.head, pending: [] });
    const events = await auditOf(p.id);
    expect(events.map((e) => e.idx)).toEqual(events.map((_, i) => i + 1));
    expect(verifyChains(events as AuditEvent[]).ok).toBe(true);
  });

  it("an outbox written before (one event a row, the head in meta at every seal) is read, continued and flushed in order", async () => {
    const p = await createProposal();
    await settle(p.id);
    await d1.breakAuditTable();
    try {
      await click("approve", p.id, "U0ALICE");
      await settle(p.id);
    } finally {
      await d1.restoreAuditTable();
    }
    const sealed = await stubOf(p.id).auditHead();
    // Rewrite the waiting events as the code before stored them, and start a new instance from that storage.
    await runInDurableObject(stubOf(p.id), (_instance, state) => {
      const sql = state.storage.sql;
      const events = sql
        .exec<{ event: string }>(`SELECT event FROM outbox ORDER BY idx`)
        .toArray()
        .flatMap((row) => JSON.parse(row.event) as AuditEvent[]);
      sql.exec(`DELETE FROM outbox`);
      for (const e of events) sql.exec(`INSERT INTO outbox (idx, event) VALUES (?, ?)`, e.idx, JSON.stringify(e));
      sql.exec(
        `UPDATE meta SET value = ? WHERE key = 'chain_head'`,
        JSON.stringify({ idx: sealed.head.idx, hash: sealed.head.hash }),
      );
    });
    await evictDurableObject(stubOf(p.id));
    expect(await stubOf(p.id).auditHead()).toEqual(sealed);
    // A new event chains on from the last old-style row, and everything reaches D1 in order.
    await stubOf(p.id).noteSlackFailure("views.open", "expired_trigger_id");
    await settle(p.id);
    const events = await auditOf(p.id);
    expect(events.map((e) => e.idx)).toEqual(events.map((_, i) => i + 1));
    expect(events.at(-1)).toMatchObject({ idx: sealed.head.idx + 1, type: "slack.failed" });
    expect(verifyChains(events as AuditEvent[]).ok).toBe(true);
    expect(await storedOutbox(p.id)).toEqual({
      rows: [],
      meta: { idx: sealed.head.idx + 1, hash: events.at(-1)!.hash },
    });
  });

  it("a flush repeated after D1 already took the rows writes nothing twice", async () => {
    const p = await createProposal();
    await settle(p.id);
    const events = (await allEvents()).filter((e) => e.proposal_id === p.id);
    // Replay the same rows into D1, as a flush whose answer was lost would.
    const { appendAuditEvents } = await import("../src/audit/store.ts");
    await appendAuditEvents(db, events);
    expect((await auditOf(p.id)).length).toBe(events.length);
  });
});

/** AUDIT_DB, recording each statement it prepares and what each batch wrote (D1's own counts, as D1 bills them). */
function recordingDb(): { db: D1Database; sql: string[]; written: number[] } {
  const sql: string[] = [];
  const written: number[] = [];
  const recording = new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare")
        return (query: string) => {
          sql.push(query);
          return target.prepare(query);
        };
      if (prop === "batch")
        return async (statements: D1PreparedStatement[]) => {
          const results = await target.batch(statements);
          for (const r of results) written.push(r.meta.rows_written);
          return results;
        };
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { db: recording, sql, written };
}

async function planOf(sql: string, ...values: unknown[]): Promise<string> {
  const { results } = await db
    .prepare(`EXPLAIN QUERY PLAN ${sql}`)
    .bind(...values)
    .all<{ detail: string }>();
  return results.map((r) => r.detail).join("\n");
}

describe("what an event costs D1 (migrations/0006)", () => {
  it("two rows written per event (the row and its chain position), three for the events a query finds by type", async () => {
    const p = await createProposal();
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);
    const events = (await allEvents()).filter((e) => e.proposal_id === p.id) as StoredAuditEvent[];
    // The same events again under another proposal id, so they are new rows (the chain is not checked here).
    const copy = events.map((e) => ({ ...e, proposal_id: `${p.id}_copy` }));
    const recording = recordingDb();
    await appendAuditEvents(recording.db, copy);
    const looked = new Set(["proposal.created", "approval.recorded", "proposal.denied", "proposal.escalated"]);
    expect(recording.written).toEqual(copy.map((e) => (looked.has(e.type) ? 3 : 2)));
    // No AUTOINCREMENT: nothing kept in sqlite_sequence for the log.
    const sequence = await db
      .prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'sqlite_sequence'")
      .first<{ n: number }>();
    if (sequence!.n > 0) {
      const row = await db.prepare("SELECT * FROM sqlite_sequence WHERE name = 'audit_events'").first();
      expect(row).toBeNull();
    }
    // seq still grows in arrival order.
    const seqs = (await queryAuditEvents(db, { proposal_id: `${p.id}_copy`, limit: 100 })).map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(seqs[0]).toBeGreaterThan(events.at(-1)!.seq);
  });

  it("every read the code makes has an index: a chain's events, stats' window, the Home tab's decisions", async () => {
    const recording = recordingDb();
    await queryAuditEvents(recording.db, { proposal_id: "prp_x", limit: 10 });
    expect(await planOf(recording.sql[0]!, 0, "prp_x", 10)).toMatch(/USING (COVERING )?INDEX sqlite_autoindex_audit/);
    expect(await planOf(CREATED_IN_WINDOW_SQL, 0, 1, null, 10)).toMatch(/USING INDEX audit_events_created_by_time/);
    expect(await planOf(DECIDED_BY_SQL, "slack:U0ALICE", 10)).toMatch(/USING INDEX audit_events_decisions_by_actor/);
    // The per-proposal reads and joins use the chain's own index.
    for (const sql of [
      "SELECT * FROM audit_events WHERE proposal_id = ?1 AND idx >= ?2 ORDER BY idx",
      "SELECT details FROM audit_events WHERE proposal_id = ?1 AND idx = ?2",
    ]) {
      expect(await planOf(sql, "prp_x", 1)).toMatch(/USING INDEX sqlite_autoindex_audit_events_1/);
    }
    const { results } = await db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events' ORDER BY name")
      .all<{ name: string }>();
    expect(results.map((r) => r.name)).toEqual([
      "audit_events_created_by_time",
      "audit_events_decisions_by_actor",
      "sqlite_autoindex_audit_events_1",
    ]);
  });
});
