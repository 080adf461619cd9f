// Draws one user's Home tab and publishes it (views.publish): candidates from the D1 index (src/slack/home-index.ts)
// and the audit log, every one re-checked against its proposal's Durable Object before it is shown: the index may
// lag or be wrong, the object never is.
import type { Config } from "../config/load.ts";
import { groupsOf, homeOffer, type Standing, standingRefusal } from "../proposal/lifecycle.ts";
import { proposalStub } from "../proposal/stub.ts";
import type { Proposal } from "../proposal/types.ts";
import { type DecidedItem, HOME_LIMITS, renderHome } from "./home.ts";
import { decidedBy, pendingDeciderGroups, pendingFor, requestedBy, slackAccountsOf } from "./home-index.ts";
import { standingOf, timeZoneOf } from "./standing.ts";
import { membershipOf } from "./usergroups.ts";
import { callSlack, type SlackCallResult } from "./web-api.ts";

/** Candidates read from the index beyond what is shown: rows the re-check drops leave room for the next. */
const WAITING_CANDIDATES = 50;
const PUBLISH_TIMEOUT_MS = 2_500;

export interface HomeViewer {
  user: string;
  /** The workspace the signed payload puts them in, when it says (compared with SLACK_TEAM_ID). */
  team: string | null;
}

/**
 * Draws `viewer`'s Home tab and publishes it. Never throws: a view that cannot be drawn (D1 unavailable) or
 * published is logged and answered as a failure, so a click that already counted is never answered with an error.
 */
export async function publishHome(
  env: Env,
  config: Config,
  viewer: HomeViewer,
  notice: string | null = null,
): Promise<SlackCallResult> {
  let view: ReturnType<typeof renderHome>;
  try {
    view = renderHome(await homeModel(env, config, viewer, notice));
  } catch (error) {
    console.error(`a Home tab could not be drawn: ${(error as Error).message}`);
    return { kind: "failed", error: "not_drawn" };
  }
  const result = await callSlack(
    config.slackApiBase,
    config.slackBotToken,
    "views.publish",
    { user_id: viewer.user, view },
    fetch,
    PUBLISH_TIMEOUT_MS,
  );
  if (result.kind !== "ok") console.warn(`views.publish of a Home tab failed: ${result.error}`);
  return result;
}

async function homeModel(env: Env, config: Config, viewer: HomeViewer, notice: string | null) {
  const { user } = viewer;
  const slack = { base: config.slackApiBase, token: config.slackBotToken };
  const db = env.AUDIT_DB;
  const now = Date.now();
  const [standing, timeZone, groups, yoursIds, decidedRows] = await Promise.all([
    standingOf(user, viewer.team, config.slackTeamId, slack, now),
    timeZoneOf(user, slack, now),
    pendingDeciderGroups(db, now),
    requestedBy(db, user, HOME_LIMITS.yours),
    decidedBy(db, user, HOME_LIMITS.decided),
  ]);
  const cannotDecide = standingRefusal(standing);
  const waitingIds =
    cannotDecide === null
      ? await pendingFor(
          db,
          [user, ...(await membershipOf(user, groups, slack, now)).memberOf],
          WAITING_CANDIDATES,
          now,
        )
      : [];

  const proposals = await readAll(env, [...waitingIds, ...yoursIds, ...decidedRows.map((d) => d.proposal_id)]);
  const waiting: Proposal[] = [];
  for (const id of waitingIds) {
    const p = proposals.get(id);
    if (p && (await waitsFor(p, user, standing, slack, now))) waiting.push(p);
  }
  // Only to a full member: requested_by is the proposer's word, so a guest or an outsider it names sees nothing of it.
  const yours =
    cannotDecide === null
      ? yoursIds
          .map((id) => proposals.get(id))
          .filter((p): p is Proposal => p !== undefined && slackAccountsOf(p, p.requested_by).includes(user))
      : [];
  const decided: DecidedItem[] = decidedRows.flatMap((d) => {
    const p = proposals.get(d.proposal_id);
    return p ? [{ proposal: p, type: d.type, at: new Date(d.at_ms).toISOString() }] : [];
  });
  return {
    waiting: waiting.slice(0, HOME_LIMITS.waiting),
    waitingMore: Math.max(0, waiting.length - HOME_LIMITS.waiting),
    yours,
    decided,
    timeZone,
    nowMs: now,
    notice,
    cannotDecide,
  };
}

/**
 * The object's word on an index row: pending, before its deadline, and this user may approve it now (listed
 * directly or through a group, the card's own checks: lifecycle.ts homeOffer) or, created in a change freeze, break
 * the glass on it. A proposal they already approved, or may only deny (their own under four-eyes, a frozen one as a
 * normal approver), is not waiting for them.
 */
async function waitsFor(
  p: Proposal,
  user: string,
  standing: Standing,
  slack: { base: string; token: string },
  now: number,
): Promise<boolean> {
  if (p.kind !== "approval" || p.status !== "pending" || now >= Date.parse(p.expires_at)) return false;
  const { memberOf } = await membershipOf(user, groupsOf(p), slack, now);
  return homeOffer(p, user, memberOf, standing) !== null;
}

/** The proposals behind `ids` as their objects hold them now; ids whose object has none are left out. */
async function readAll(env: Env, ids: readonly string[]): Promise<Map<string, Proposal>> {
  const unique = [...new Set(ids)];
  const read = await Promise.all(unique.map((id) => proposalStub(env.PROPOSALS, id)?.read() ?? null));
  const found = new Map<string, Proposal>();
  read.forEach((p, i) => {
    if (p) found.set(unique[i]!, p);
  });
  return found;
}
