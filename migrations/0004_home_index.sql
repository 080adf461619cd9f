-- The Slack Home tab (docs/slack.md "Home tab"). An index, never the truth: each row is re-checked against the
-- proposal's Durable Object before it is shown or acted on, and the object's audit flush job rewrites a proposal's
-- rows after every change (retried until D1 takes them), so a lost write is repaired by the next.
--   role 'decider':   while pending, a Slack user (U…/W…) or user group (S…) who may decide it now.
--   role 'requester': the Slack accounts of whoever requested it (via the policy's people directory), any status.
-- `version` is the proposal's audit chain position when the rows were written: an older snapshot never replaces
-- a newer one.
CREATE TABLE home_index (
  proposal_id TEXT    NOT NULL,
  role        TEXT    NOT NULL CHECK (role IN ('decider', 'requester')),
  who         TEXT    NOT NULL,
  status      TEXT    NOT NULL,
  expires_ms  INTEGER NOT NULL,
  version     INTEGER NOT NULL,
  updated_ms  INTEGER NOT NULL,
  PRIMARY KEY (proposal_id, role, who)
);

CREATE INDEX home_index_by_who ON home_index (who, role, status, updated_ms);

-- Events API deliveries already taken (Slack retries with X-Slack-Retry-Num when an answer is slow or lost):
-- one row per event_id, pruned after an hour, well past Slack's last retry.
CREATE TABLE slack_events_seen (
  event_id TEXT    PRIMARY KEY,
  at_ms    INTEGER NOT NULL
);

CREATE INDEX slack_events_seen_by_time ON slack_events_seen (at_ms);
