// The Home tab's index in D1 (migrations/0004): which pending proposals a Slack user or group may decide, and which
// proposals a user requested, so the Home tab never scans every object. Never trusted: whoever reads a row re-checks
// it against the proposal's Durable Object. Written by the object's audit flush job (in the same D1 batch as the
// change's audit events), so a failed write is retried with them; `version` keeps an older snapshot from replacing
// a newer one.
import { deciders } from "../proposal/lifecycle.ts";
import type { Proposal } from "../proposal/types.ts";

const SLACK_USER = /^[UW][A-Z0-9]{2,}$/;
const SLACK_USER_OR_GROUP = /^[UWS][A-Z0-9]{2,}$/;

export interface HomeIndexRow {
  role: "decider" | "requester";
  who: string;
}

/**
 * The rows a proposal stands for now. Deciders only while pending: the Slack users and groups its rule in force lets
 * decide (after escalation, the escalation approvers; requester_only, the requester; created in a change freeze, the
 * break-glass approvers, the only ones who can approve it). Requester rows whatever the
 * status: `requested_by` and every Slack account the policy's people directory gives the same person. Verification
 * prompts are not on the Home tab (they are answered in their DM).
 */
export function homeIndexRows(p: Proposal): HomeIndexRow[] {
  if (p.kind !== "approval") return [];
  const rows: HomeIndexRow[] = [];
  if (p.status === "pending") {
    const listed = p.rule.freeze ? (p.rule.break_glass?.approvers ?? []) : deciders(p).approvers;
    for (const who of new Set(listed)) {
      if (SLACK_USER_OR_GROUP.test(who)) rows.push({ role: "decider", who });
    }
  }
  for (const who of slackAccountsOf(p, p.requested_by)) rows.push({ role: "requester", who });
  return rows;
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
 * The statements that make the index say what `p` says as of audit chain position `version`: rows of older versions
 * go, rows of this one are written, and nothing is written if a newer version is already there.
 */
export function homeIndexStatements(db: D1Database, p: Proposal, version: number, now: number): D1PreparedStatement[] {
  const clear = db.prepare("DELETE FROM home_index WHERE proposal_id = ?1 AND version < ?2").bind(p.id, version);
  const insert = db.prepare(
    `INSERT OR REPLACE INTO home_index (proposal_id, role, who, status, expires_ms, version, updated_ms)
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
     WHERE NOT EXISTS (SELECT 1 FROM home_index WHERE proposal_id = ?1 AND version > ?6)`,
  );
  const expires = Date.parse(p.expires_at);
  return [
    clear,
    ...homeIndexRows(p).map((row) => insert.bind(p.id, row.role, row.who, p.status, expires, version, now)),
  ];
}

/** The user groups that pending proposals list as deciders: the only groups whose membership the Home tab asks. */
export async function pendingDeciderGroups(db: D1Database): Promise<string[]> {
  const { results } = await db
    .prepare(
      `SELECT DISTINCT who FROM home_index
       WHERE role = 'decider' AND status = 'pending' AND who >= 'S' AND who < 'T' LIMIT 200`,
    )
    .all<{ who: string }>();
  return results.map((r) => r.who);
}

/** Proposals the index says `ids` (a user and their groups) may decide, soonest deadline first. */
export async function pendingFor(db: D1Database, ids: readonly string[], limit: number): Promise<string[]> {
  if (ids.length === 0) return [];
  const marks = ids.map((_, i) => `?${i + 2}`).join(", ");
  const { results } = await db
    .prepare(
      `SELECT proposal_id, MIN(expires_ms) AS expires_ms FROM home_index
       WHERE role = 'decider' AND status = 'pending' AND who IN (${marks})
       GROUP BY proposal_id ORDER BY expires_ms LIMIT ?1`,
    )
    .bind(limit, ...ids)
    .all<{ proposal_id: string }>();
  return results.map((r) => r.proposal_id);
}

/** Proposals the index says `user` requested, most recently changed first. */
export async function requestedBy(db: D1Database, user: string, limit: number): Promise<string[]> {
  const { results } = await db
    .prepare(
      `SELECT proposal_id FROM home_index WHERE role = 'requester' AND who = ?1
       ORDER BY updated_ms DESC LIMIT ?2`,
    )
    .bind(user, limit)
    .all<{ proposal_id: string }>();
  return results.map((r) => r.proposal_id);
}

/** What a user decided in Slack, newest first, one entry per proposal: from the audit log itself. */
export interface DecidedEntry {
  proposal_id: string;
  type: string;
  at_ms: number;
}

const DECISION_TYPES = ["approval.recorded", "proposal.denied", "proposal.escalated"] as const;

export async function decidedBy(db: D1Database, user: string, limit: number): Promise<DecidedEntry[]> {
  const { results } = await db
    .prepare(
      `SELECT proposal_id, type, MAX(at_ms) AS at_ms FROM audit_events
       WHERE actor = ?1 AND type IN (?2, ?3, ?4)
       GROUP BY proposal_id ORDER BY at_ms DESC LIMIT ?5`,
    )
    .bind(`slack:${user}`, ...DECISION_TYPES, limit)
    .all<DecidedEntry>();
  return results;
}
