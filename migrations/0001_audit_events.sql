-- The append-only audit log (SPEC 8). One row per event; each proposal's rows form a hash
-- chain (idx 1, 2, …; prev_hash = hash of the row before, 64 zeros for the first).
CREATE TABLE audit_events (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT, -- global order of arrival
  proposal_id TEXT    NOT NULL,
  idx         INTEGER NOT NULL,                  -- position in the proposal's chain, from 1
  at_ms       INTEGER NOT NULL,                  -- when it happened, Unix ms
  type        TEXT    NOT NULL,
  actor       TEXT    NOT NULL,                  -- slack:U…, key:<name>, runner, system
  details     TEXT    NOT NULL,                  -- JSON object
  prev_hash   TEXT    NOT NULL,
  hash        TEXT    NOT NULL,
  UNIQUE (proposal_id, idx)
);

CREATE INDEX audit_events_by_type  ON audit_events (type, seq);
CREATE INDEX audit_events_by_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_by_time  ON audit_events (at_ms, seq);

-- The schema itself refuses edits: rows can be added, never changed or removed.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
  SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
  SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
END;
