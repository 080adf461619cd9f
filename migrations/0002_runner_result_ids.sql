-- Runner-result webhook ids already accepted, across all proposals: a signed result
-- replayed against another proposal is refused (the signature does not name the proposal
-- unless the body carries proposal_id). Rows are never changed.
CREATE TABLE runner_result_ids (
  webhook_id  TEXT    PRIMARY KEY,
  proposal_id TEXT    NOT NULL,
  at_ms       INTEGER NOT NULL
);
