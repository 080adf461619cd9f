// Slack user-group membership for "may this person decide?", cached per isolate for at
// most 5 minutes (SPEC 3) so a burst of clicks costs one usergroups.users.list per group.
import { callSlack } from "./web-api.ts";

export const GROUP_CACHE_MS = 5 * 60 * 1000;

const cache = new Map<string, { users: ReadonlySet<string>; until: number }>();

export interface Membership {
  /** The groups (of those asked about) that include the user. */
  memberOf: string[];
  /** Groups whose members could not be fetched (Slack down): the user may be in them. */
  unresolved: string[];
}

export async function membershipOf(
  user: string,
  groups: readonly string[],
  slack: { base: string; token: string },
  now = Date.now(),
): Promise<Membership> {
  const memberOf: string[] = [];
  const unresolved: string[] = [];
  await Promise.all(
    groups.map(async (group) => {
      const users = await groupMembers(group, slack, now);
      if (users === null) unresolved.push(group);
      else if (users.has(user)) memberOf.push(group);
    }),
  );
  return { memberOf, unresolved };
}

/** Lookups under way, shared: a burst of clicks on a cold cache costs one call per group. */
const inFlight = new Map<string, Promise<ReadonlySet<string> | null>>();

function groupMembers(
  group: string,
  slack: { base: string; token: string },
  now: number,
): Promise<ReadonlySet<string> | null> {
  const hit = cache.get(group);
  if (hit && hit.until > now) return Promise.resolve(hit.users);
  let pending = inFlight.get(group);
  if (!pending) {
    pending = fetchMembers(group, slack, now).finally(() => inFlight.delete(group));
    inFlight.set(group, pending);
  }
  return pending;
}

async function fetchMembers(
  group: string,
  slack: { base: string; token: string },
  now: number,
): Promise<ReadonlySet<string> | null> {
  const result = await callSlack(slack.base, slack.token, "usergroups.users.list", { usergroup: group });
  if (result.kind !== "ok") return null;
  const list = (result.data as { users?: unknown }).users;
  const users = new Set(Array.isArray(list) ? list.filter((u): u is string => typeof u === "string") : []);
  cache.set(group, { users, until: now + GROUP_CACHE_MS });
  return users;
}
