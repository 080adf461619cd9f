-- The Slack Home tab's index (docs/slack.md "Home tab") with far fewer D1 rows written (issue 12): one row per
-- proposal, its deciders in a column, instead of one row (and two index entries) per decider and requester that
-- every decision deleted and wrote again. Still an index, never the truth: each proposal it names is re-read from
-- its Durable Object and re-checked before it is shown or acted on, and the object's audit flush writes it in the
-- same D1 batch as the change's events, retried with them.
--   home_proposals:  per approval, its status, deadline and, while pending, the Slack users (U…/W…) and user groups
--                    (S…) who may decide it now, as a JSON array (`[]` once decided). `version` is the audit chain
--                    position the row was written at: an older snapshot never replaces a newer one. Only pending
--                    rows are in `home_proposals_pending`, which the Home tab scans (the pending set is small).
--   home_requesters: one row per Slack account of whoever requested a proposal, written once (requested_by never
--                    changes), newest first by the proposal's creation time.
CREATE TABLE home_proposals (
  proposal_id TEXT    PRIMARY KEY,
  status      TEXT    NOT NULL,
  expires_ms  INTEGER NOT NULL,
  deciders    TEXT    NOT NULL,
  version     INTEGER NOT NULL,
  updated_ms  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX home_proposals_pending ON home_proposals (expires_ms) WHERE status = 'pending';

CREATE TABLE home_requesters (
  who         TEXT    NOT NULL,
  created_ms  INTEGER NOT NULL,
  proposal_id TEXT    NOT NULL,
  PRIMARY KEY (who, created_ms, proposal_id)
) WITHOUT ROWID;

-- What 0004's index said, carried over: each proposal's newest rows (a bare column beside MAX() comes from the row
-- holding the maximum), its deciders gathered, its requesters dated by the proposal's first audit event.
INSERT INTO home_proposals (proposal_id, status, expires_ms, deciders, version, updated_ms)
  SELECT h.proposal_id, h.status, h.expires_ms,
         (SELECT json_group_array(d.who) FROM home_index AS d
          WHERE d.proposal_id = h.proposal_id AND d.role = 'decider' AND d.status = 'pending'),
         MAX(h.version), h.updated_ms
  FROM home_index AS h GROUP BY h.proposal_id;

INSERT OR IGNORE INTO home_requesters (who, created_ms, proposal_id)
  SELECT h.who, COALESCE((SELECT a.at_ms FROM audit_events AS a WHERE a.proposal_id = h.proposal_id AND a.idx = 1),
                         h.updated_ms), h.proposal_id
  FROM home_index AS h WHERE h.role = 'requester';

DROP TABLE home_index;
