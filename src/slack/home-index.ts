// The Home tab's index in D1 (migrations/0007): which pending proposals a Slack user or group may decide, and which
// proposals a user requested, so the Home tab never scans every object. One row per proposal (its deciders in a
// column) and one per requester account, so a proposal costs D1 a few rows written, not one row per person per
// change. Never trusted: whoever reads a row re-checks it against the proposal's Durable Object. Written by the
// object's audit flush job (in the same D1 batch as the change's audit events), so a failed write is retried with
// them; `version` keeps an older snapshot from replacing a newer one.
import { deciders } from "../proposal/lifecycle.ts";
import type { Proposal } from "../proposal/types.ts";

const SLACK_USER = /^[UW][A-Z0-9]{2,}$/;
const SLACK_USER_OR_GROUP = /^[UWS][A-Z0-9]{2,}$/;

/**
 * Who may decide `p` now, as the index lists them: while pending, the Slack users and groups its rule in force lets
 * decide (after escalation, the escalation approvers; requester_only, the requester; created in a change freeze, the
 * break-glass approvers, the only ones who can approve it); nobody once it is not. Verification prompts are not on the
 * Home tab (they are answered in their DM).
 */
export function homeDeciders(p: Proposal): string[] {
  if (p.kind !== "approval" || p.status !== "pending") return [];
  const listed = p.rule.freeze ? (p.rule.break_glass?.approvers ?? []) : deciders(p).approvers;
  return [...new Set(listed)].filter((who) => SLACK_USER_OR_GROUP.test(who));
}

/** What the rows depend on (requested_by never changes): the flush writes them again only when this changes. */
export function homeIndexKey(p: Proposal): string {
  return `${p.status}|${p.expires_at}|${p.escalated ? "e" : "n"}`;
}

/** The Slack user ids of the person behind `identity` (itself if it is one, and the people directory's others). */
export function slackAccountsOf(p: Proposal, identity: string | null): string[] {
  if (identity === null) return [];
  const people = p.rule.people ?? {};
  const person = people[identity] ?? identity;
  const ids = new Set<string>();
  if (SLACK_USER.test(identity)) ids.add(identity);
  for (const [id, name] of Object.entries(people)) if (name === person && SLACK_USER.test(id)) ids.add(id);
  return [...ids];
}

/**
 * The statements that make the index say what `p` says as of audit chain position `version`: its row, unless a newer
 * version is already there, and its requesters' rows, which a later write finds there and skips (no row written).
 * Nothing for a verification prompt.
 */
export function homeIndexStatements(db: D1Database, p: Proposal, version: number, now: number): D1PreparedStatement[] {
  if (p.kind !== "approval") return [];
  const row = db
    .prepare(
      `INSERT INTO home_proposals (proposal_id, status, expires_ms, deciders, version, updated_ms)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6)
       ON CONFLICT (proposal_id) DO UPDATE SET status = excluded.status, expires_ms = excluded.expires_ms,
         deciders = excluded.deciders, version = excluded.version, updated_ms = excluded.updated_ms
       WHERE excluded.version >= home_proposals.version`,
    )
    .bind(p.id, p.status, Date.parse(p.expires_at), JSON.stringify(homeDeciders(p)), version, now);
  const requesters = slackAccountsOf(p, p.requested_by);
  if (requesters.length === 0) return [row];
  const requested = db
    .prepare(
      `INSERT OR IGNORE INTO home_requesters (who, created_ms, proposal_id)
       SELECT value, ?2, ?3 FROM json_each(?1)`,
    )
    .bind(JSON.stringify(requesters), Date.parse(p.created_at), p.id);
  return [row, requested];
}

/**
 * The Home tab's reads. Pending proposals still before their deadline are found through the partial index
 * `home_proposals_pending`, which SQLite uses only because each WHERE holds its condition `status = 'pending'` as the
 * migration writes it (test/slack-home.test.ts checks the plans).
 */
export const HOME_SQL = {
  groups: `SELECT DISTINCT d.value AS who FROM home_proposals AS h, json_each(h.deciders) AS d
    WHERE h.status = 'pending' AND h.expires_ms > ?1 AND d.value >= 'S' AND d.value < 'T' LIMIT 200`,
  pendingFor: `SELECT h.proposal_id FROM home_proposals AS h
    WHERE h.status = 'pending' AND h.expires_ms > ?1
      AND EXISTS (SELECT 1 FROM json_each(h.deciders) AS d WHERE d.value IN (SELECT value FROM json_each(?2)))
    ORDER BY h.expires_ms LIMIT ?3`,
  requestedBy: `SELECT proposal_id FROM home_requesters WHERE who = ?1 ORDER BY created_ms DESC LIMIT ?2`,
} as const;

/** The user groups that pending proposals list as deciders: the only groups whose membership the Home tab asks. */
export async function pendingDeciderGroups(db: D1Database, now: number): Promise<string[]> {
  const { results } = await db.prepare(HOME_SQL.groups).bind(now).all<{ who: string }>();
  return results.map((r) => r.who);
}

/** Proposals the index says `ids` (a user and their groups) may decide, soonest deadline first. */
export async function pendingFor(
  db: D1Database,
  ids: readonly string[],
  limit: number,
  now: number,
): Promise<string[]> {
  if (ids.length === 0) return [];
  const { results } = await db
    .prepare(HOME_SQL.pendingFor)
    .bind(now, JSON.stringify(ids), limit)
    .all<{ proposal_id: string }>();
  return results.map((r) => r.proposal_id);
}

/** Proposals the index says `user` requested, most recently created first. */
export async function requestedBy(db: D1Database, user: string, limit: number): Promise<string[]> {
  const { results } = await db.prepare(HOME_SQL.requestedBy).bind(user, limit).all<{ proposal_id: string }>();
  return results.map((r) => r.proposal_id);
}

/** What a user decided in Slack, newest first, one entry per proposal: from the audit log itself. */
export interface DecidedEntry {
  proposal_id: string;
  type: string;
  at_ms: number;
}

/**
 * A person's decisions in the audit log, read through the partial index `audit_events_decisions_by_actor`
 * (migrations/0006): SQLite uses it only when the query's WHERE holds the index's condition as the migration writes
 * it, so the types are written into the statement, in the migration's order (test/audit-log.test.ts checks the plan).
 */
export const DECIDED_BY_SQL = `SELECT proposal_id, type, MAX(at_ms) AS at_ms FROM audit_events
  WHERE actor = ?1 AND type IN ('approval.recorded', 'proposal.denied', 'proposal.escalated')
  GROUP BY proposal_id ORDER BY at_ms DESC LIMIT ?2`;

export async function decidedBy(db: D1Database, user: string, limit: number): Promise<DecidedEntry[]> {
  const { results } = await db.prepare(DECIDED_BY_SQL).bind(`slack:${user}`, limit).all<DecidedEntry>();
  return results;
}
