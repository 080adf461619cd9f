// Where a Slack clicker stands (SPEC 12): a full member of signoff's own workspace decides; a guest account
// (`is_restricted` / `is_ultra_restricted` from users.info) or someone from another workspace (a Slack Connect
// channel) never counts. users.info answers are cached per isolate for at most 5 minutes, like group membership;
// a lookup Slack cannot answer just now denies, never allows.

import { LookupCache } from "../lib/lookup-cache.ts";
import type { Standing } from "../proposal/lifecycle.ts";
import { GROUP_CACHE_MS } from "./usergroups.ts";
import { callSlack } from "./web-api.ts";

interface Account {
  team: string | null;
  guest: boolean;
  /** Deactivated users and bots never decide either. */
  inactive: boolean;
  /** Their time zone (`tz`, an IANA name), for the Home tab's deadlines; null when Slack gives none. */
  tz: string | null;
}

/**
 * `team` is the workspace the signed payload says the clicker belongs to (`user.team_id`); `homeTeam` is
 * SLACK_TEAM_ID, when configured. Without it only guests and inactive accounts are told apart.
 */
export async function standingOf(
  user: string,
  team: string | null,
  homeTeam: string | null,
  slack: { base: string; token: string },
  now = Date.now(),
): Promise<Standing> {
  if (homeTeam !== null && team !== null && team !== homeTeam) return "other_workspace";
  const account = await accountOf(user, slack, now);
  if (account === null) return "unknown";
  if (homeTeam !== null && account.team !== null && account.team !== homeTeam) return "other_workspace";
  if (account.guest) return "guest";
  if (account.inactive) return "unknown";
  return "member";
}

/** The user's time zone from the same cached users.info answer; null when unknown (shown in UTC then). */
export async function timeZoneOf(
  user: string,
  slack: { base: string; token: string },
  now = Date.now(),
): Promise<string | null> {
  return (await accountOf(user, slack, now))?.tz ?? null;
}

const accounts = new LookupCache<Account>(GROUP_CACHE_MS);

function accountOf(user: string, slack: { base: string; token: string }, now: number): Promise<Account | null> {
  return accounts.get(user, now, () => fetchAccount(user, slack));
}

async function fetchAccount(user: string, slack: { base: string; token: string }): Promise<Account | null> {
  const result = await callSlack(slack.base, slack.token, "users.info", { user });
  if (result.kind !== "ok") return null;
  const info = (result.data as { user?: Record<string, unknown> }).user;
  if (!info || info.id !== user) return null;
  return {
    team: typeof info.team_id === "string" ? info.team_id : null,
    guest: info.is_restricted === true || info.is_ultra_restricted === true,
    inactive: info.deleted === true || info.is_bot === true,
    tz: typeof info.tz === "string" && info.tz.length <= 64 ? info.tz : null,
  };
}
