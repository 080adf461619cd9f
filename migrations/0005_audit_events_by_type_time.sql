-- GET /v1/stats (issue 16) reads the proposals created in a time window: `proposal.created` rows by time.
CREATE INDEX audit_events_by_type_time ON audit_events (type, at_ms);
