// The D1 migrations keep what is already stored: each one is applied in order to a database holding rows written
// under the migrations before it (SQLite in memory, the engine D1 runs), and what those rows said must survive.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { ROOT } from "../local/stack.ts";

const DIR = join(ROOT, "migrations");
const FILES = readdirSync(DIR)
  .filter((f) => f.endsWith(".sql"))
  .sort();

/** A database with every migration before `number` applied (as `wrangler d1 migrations apply` would). */
function migratedUpTo(number: number): { db: DatabaseSync; apply: (n: number) => void } {
  const db = new DatabaseSync(":memory:");
  const apply = (n: number) => {
    const file = FILES.find((f) => f.startsWith(String(n).padStart(4, "0")));
    assert.ok(file, `migration ${n} exists`);
    db.exec(readFileSync(join(DIR, file), "utf8"));
  };
  for (let n = 1; n < number; n++) apply(n);
  return { db, apply };
}

function insertEvent(db: DatabaseSync, e: { proposal_id: string; idx: number; type: string; actor: string }): void {
  db.prepare(
    `INSERT INTO audit_events (proposal_id, idx, at_ms, type, actor, details, prev_hash, hash, head_sig)
     VALUES (?, ?, ?, ?, ?, '{}', ?, ?, ?)`,
  ).run(
    e.proposal_id,
    e.idx,
    1_000 * e.idx,
    e.type,
    e.actor,
    `prev${e.idx}`,
    `hash${e.idx}`,
    e.idx === 2 ? "k:s" : null,
  );
}

test("0006 copies every audit row with its seq, keeps the log append-only, and seq goes on growing", () => {
  const { db, apply } = migratedUpTo(6);
  insertEvent(db, { proposal_id: "prp_a", idx: 1, type: "proposal.created", actor: "key:ci" });
  insertEvent(db, { proposal_id: "prp_b", idx: 1, type: "proposal.created", actor: "key:ci" });
  insertEvent(db, { proposal_id: "prp_a", idx: 2, type: "approval.recorded", actor: "slack:U0ALICE" });
  const before = db.prepare("SELECT * FROM audit_events ORDER BY seq").all();
  apply(6);
  assert.deepEqual(db.prepare("SELECT * FROM audit_events ORDER BY seq").all(), before);
  assert.deepEqual(db.prepare("SELECT name FROM sqlite_sequence").all(), []);
  assert.throws(() => db.exec("UPDATE audit_events SET actor = 'x'"), /append-only: UPDATE refused/);
  assert.throws(() => db.exec("DELETE FROM audit_events"), /append-only: DELETE refused/);
  insertEvent(db, { proposal_id: "prp_b", idx: 2, type: "proposal.denied", actor: "slack:U0ALICE" });
  const seqs = db.prepare("SELECT seq FROM audit_events ORDER BY seq").all();
  assert.deepEqual(
    seqs.map((r) => r.seq),
    [1, 2, 3, 4],
  );
  // A retried flush still skips a row already there.
  db.exec(`INSERT INTO audit_events (proposal_id, idx, at_ms, type, actor, details, prev_hash, hash)
           VALUES ('prp_b', 2, 0, 'x', 'x', '{}', 'x', 'x') ON CONFLICT (proposal_id, idx) DO NOTHING`);
  assert.equal(db.prepare("SELECT COUNT(*) AS n FROM audit_events").get()!.n, 4);
});

test("every migration applies in order to an empty database", () => {
  const { db, apply } = migratedUpTo(1);
  for (let n = 1; n <= FILES.length; n++) apply(n);
  assert.equal(db.prepare("SELECT COUNT(*) AS n FROM audit_events").get()!.n, 0);
});

test("0007 turns 0004's Home index rows into one row per proposal and its requesters, dated by creation", () => {
  const { db, apply } = migratedUpTo(7);
  insertEvent(db, { proposal_id: "prp_a", idx: 1, type: "proposal.created", actor: "key:ci" });
  const row = db.prepare(
    `INSERT INTO home_index (proposal_id, role, who, status, expires_ms, version, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  row.run("prp_a", "decider", "U0ALICE", "pending", 9_000, 2, 5_000);
  row.run("prp_a", "decider", "S0ONCALL", "pending", 9_000, 2, 5_000);
  row.run("prp_a", "requester", "U0BOB", "pending", 9_000, 2, 5_000);
  row.run("prp_b", "requester", "U0BOB", "denied", 8_000, 4, 6_000);
  apply(7);
  const rows = db.prepare("SELECT * FROM home_proposals ORDER BY proposal_id").all();
  assert.deepEqual(
    rows.map((r) => ({ ...r, deciders: JSON.parse(String(r.deciders)).sort() })),
    [
      {
        proposal_id: "prp_a",
        status: "pending",
        expires_ms: 9_000,
        deciders: ["S0ONCALL", "U0ALICE"],
        version: 2,
        updated_ms: 5_000,
      },
      { proposal_id: "prp_b", status: "denied", expires_ms: 8_000, deciders: [], version: 4, updated_ms: 6_000 },
    ],
  );
  assert.deepEqual(
    db
      .prepare("SELECT who, created_ms, proposal_id FROM home_requesters ORDER BY proposal_id")
      .all()
      .map((r) => ({ ...r })),
    [
      { who: "U0BOB", created_ms: 1_000, proposal_id: "prp_a" },
      { who: "U0BOB", created_ms: 6_000, proposal_id: "prp_b" },
    ],
  );
  assert.equal(db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'home_index'").get()!.n, 0);
});
