-- Fewer D1 rows written per audit event (issue 12): D1 bills every b-tree entry an INSERT writes, and each event
-- wrote six or seven (the row, `UNIQUE (proposal_id, idx)`, four filter indexes and `sqlite_sequence` for
-- AUTOINCREMENT). Now it writes two, plus one for the few events a query looks up by type:
--   - `seq` stays the rowid, without AUTOINCREMENT: rows are never deleted (the triggers below), so the next rowid
--     is always the highest so far plus one and `seq` keeps growing in arrival order as before.
--   - `UNIQUE (proposal_id, idx)` stays: it is the chain's order, what a retried flush skips on, and every per-chain
--     read (`readChainFrom`, `readChainHeads`, stats' rows of given proposals, the joins to a chain's first event).
--   - `by_type`, `by_actor`, `by_time` go: GET /v1/audit's optional filters never used them (its `?n IS NULL OR …`
--     terms leave SQLite one plan, the rowid from the cursor on). `by_type_time` goes too; two partial indexes keep
--     what the other reads need, on the events they need only:
--       `proposal.created` by time: GET /v1/stats's window (src/stats/store.ts statsRows);
--       a person's decisions by actor: the Home tab's Recently decided (src/slack/home-index.ts decidedBy).
-- The table is copied (SQLite cannot drop AUTOINCREMENT in place); every row keeps its `seq`.
CREATE TABLE audit_events_lean (
  seq         INTEGER PRIMARY KEY,               -- global order of arrival
  proposal_id TEXT    NOT NULL,
  idx         INTEGER NOT NULL,                  -- position in the proposal's chain, from 1
  at_ms       INTEGER NOT NULL,                  -- when it happened, Unix ms
  type        TEXT    NOT NULL,
  actor       TEXT    NOT NULL,                  -- slack:U…, key:<name>, runner, system
  details     TEXT    NOT NULL,                  -- JSON object
  prev_hash   TEXT    NOT NULL,
  hash        TEXT    NOT NULL,
  head_sig    TEXT,                              -- on the last event of each flush (migration 0003)
  UNIQUE (proposal_id, idx)
);

INSERT INTO audit_events_lean (seq, proposal_id, idx, at_ms, type, actor, details, prev_hash, hash, head_sig)
  SELECT seq, proposal_id, idx, at_ms, type, actor, details, prev_hash, hash, head_sig FROM audit_events ORDER BY seq;

-- Dropping a table fires no DELETE trigger; its indexes and triggers go with it.
DROP TABLE audit_events;
ALTER TABLE audit_events_lean RENAME TO audit_events;

-- A query uses a partial index only when its WHERE holds the index's condition as written here: keep them identical.
CREATE INDEX audit_events_created_by_time ON audit_events (at_ms) WHERE type = 'proposal.created';
CREATE INDEX audit_events_decisions_by_actor ON audit_events (actor, at_ms)
  WHERE type IN ('approval.recorded', 'proposal.denied', 'proposal.escalated');

-- The schema itself refuses edits: rows can be added, never changed or removed.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
  SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
  SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
END;
