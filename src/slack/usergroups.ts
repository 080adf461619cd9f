// Slack user-group membership for "may this person decide?", cached per isolate for at
// most 5 minutes (SPEC 3) so a burst of clicks costs one usergroups.users.list per group.
import { LookupCache } from "../lib/lookup-cache.ts";
import { callSlack } from "./web-api.ts";

export const GROUP_CACHE_MS = 5 * 60 * 1000;

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

const memberLists = new LookupCache<ReadonlySet<string>>(GROUP_CACHE_MS);

function groupMembers(
  group: string,
  slack: { base: string; token: string },
  now: number,
): Promise<ReadonlySet<string> | null> {
  return memberLists.get(group, now, () => fetchMembers(group, slack));
}

async function fetchMembers(
  group: string,
  slack: { base: string; token: string },
): Promise<ReadonlySet<string> | null> {
  const result = await callSlack(slack.base, slack.token, "usergroups.users.list", { usergroup: group });
  if (result.kind !== "ok") return null;
  const list = (result.data as { users?: unknown }).users;
  return new Set(Array.isArray(list) ? list.filter((u): u is string => typeof u === "string") : []);
}
