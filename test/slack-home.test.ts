// Issue 16, the Slack Home tab: POST /slack/events (signed, url_verification, retries taken once), the view each
// person is shown (approver, group member, requester, outsider, guest), Home-tab buttons through the card's own
// path (one dispatch, one vote per person, a stale view refused and redrawn), and an index that is repaired when
// its write fails and never trusted over the proposal's object.
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { HOME_SQL, homeIndexStatements } from "../src/slack/home-index.ts";
import { signSlackRequest } from "../src/slack/signature.ts";
import { BREAK_GLASS_ACTIONS, SECRETS, SLACK_TEAM_ID } from "./fixtures.ts";
import {
  auditOf,
  BASE,
  click,
  createProposal,
  denySubmission,
  getProposal,
  json,
  runJobsNow,
  settle,
  slackRequest,
  stubOf,
} from "./helpers/api.ts";
import { expectError } from "./helpers/contract.ts";
import { collectFlushWarnings, flushWarnings } from "./helpers/d1-outage.ts";
import { createIn, policyEnv } from "./helpers/policy-env.ts";
import { peer } from "./peer/client.ts";

type Block = { type: string; block_id?: string; text?: { text: string }; fields?: Array<{ text: string }> } & {
  elements?: Array<Record<string, any>>;
};
interface Published {
  user_id: string;
  view: { type: string; blocks: Block[] };
}

let eventSeq = 0;

async function postEvent(body: unknown, options: { secret?: string; retry?: number } = {}): Promise<Response> {
  const text = JSON.stringify(body);
  const ts = Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-slack-request-timestamp": String(ts),
    "x-slack-signature": await signSlackRequest(options.secret ?? SECRETS.SLACK_SIGNING_SECRET, ts, text),
  };
  if (options.retry !== undefined) {
    headers["x-slack-retry-num"] = String(options.retry);
    headers["x-slack-retry-reason"] = "http_timeout";
  }
  return exports.default.fetch(new Request(`${BASE}/slack/events`, { method: "POST", headers, body: text }));
}

function homeOpened(user: string, eventId = `Ev${Date.now()}x${++eventSeq}`, team = SLACK_TEAM_ID) {
  return {
    type: "event_callback",
    team_id: team,
    api_app_id: "A0SIGNOFF",
    event_id: eventId,
    event_time: Math.floor(Date.now() / 1000),
    event: { type: "app_home_opened", user, channel: "D0HOME", tab: "home" },
  };
}

/** Opens `user`'s Home tab and returns the view signoff published for them. */
async function openHome(user: string): Promise<Published> {
  const before = (await peer.slackCalls("views.publish")).length;
  const res = await postEvent(homeOpened(user));
  expect(res.status).toBe(200);
  const published = (await peer.slackCalls("views.publish")) as unknown as Published[];
  expect(published.length).toBe(before + 1);
  const view = published.at(-1)!;
  expect(view.user_id).toBe(user);
  return view;
}

const textOf = (v: Published) => JSON.stringify(v.view.blocks);
/** The Home-tab actions block of a proposal, if the view offers it. */
const actionsFor = (v: Published, id: string) =>
  v.view.blocks.find((b) => b.type === "actions" && b.block_id?.startsWith(`signoff.home:${id}:`));
/** The section right under a header, up to the next header. */
function sectionsUnder(v: Published, header: string): string {
  const start = v.view.blocks.findIndex((b) => b.type === "header" && b.text?.text === header);
  const rest = v.view.blocks.slice(start + 1);
  const end = rest.findIndex((b) => b.type === "header");
  return JSON.stringify(end < 0 ? rest : rest.slice(0, end));
}

function homeClick(kind: "approve" | "deny" | "escalate", id: string, user: string, blockId: string | undefined) {
  return {
    type: "block_actions",
    user: { id: user, team_id: SLACK_TEAM_ID },
    trigger_id: "123.456.home",
    view: { type: "home", id: "V0HOME" },
    container: { type: "view", view_id: "V0HOME" },
    actions: [{ action_id: `signoff.${kind}`, block_id: blockId, value: id, type: "button" }],
  };
}

/** A pending proposal, settled so its audit flush has written its Home index rows. */
async function pending(overrides: Record<string, unknown> = {}) {
  const p = await createProposal(overrides);
  await settle(p.id);
  return p;
}

const FAILOVER = { action: { type: "db.failover", params: { cluster: "main" } }, requested_by: "U0BOB" };

describe("POST /slack/events", () => {
  it("answers url_verification with its challenge", async () => {
    const res = await postEvent({
      type: "url_verification",
      token: "legacy",
      challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY",
    });
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY" });
  });

  it("refuses a bad signature before reading the body, and publishes nothing", async () => {
    for (const body of [homeOpened("U0ALICE"), { type: "url_verification", challenge: "x" }]) {
      const res = await postEvent(body, { secret: "not-the-signing-secret" });
      expect((await expectError(res, 401)).error.code).toBe("bad_signature");
    }
    const unsigned = await exports.default.fetch(
      new Request(`${BASE}/slack/events`, { method: "POST", body: JSON.stringify(homeOpened("U0ALICE")) }),
    );
    expect((await expectError(unsigned, 401)).error.code).toBe("bad_signature");
    expect(await peer.slackCalls("views.publish")).toEqual([]);
  });

  it("takes a retried delivery (X-Slack-Retry-Num) once: one views.publish for one event_id", async () => {
    const event = homeOpened("U0ALICE", "Ev0RETRIED");
    expect((await postEvent(event)).status).toBe(200);
    expect((await postEvent(event, { retry: 1 })).status).toBe(200);
    expect((await postEvent(event, { retry: 2 })).status).toBe(200);
    expect(await peer.slackCalls("views.publish")).toHaveLength(1);
    // Another event of the same person is another delivery.
    expect((await postEvent(homeOpened("U0ALICE", "Ev0NEXT"))).status).toBe(200);
    expect(await peer.slackCalls("views.publish")).toHaveLength(2);
  });

  it("answers 200 to events it does not handle, and to another workspace's, doing nothing", async () => {
    const messages = { ...homeOpened("U0ALICE"), event: { type: "message", user: "U0ALICE", text: "hi" } };
    const messagesTab = {
      ...homeOpened("U0ALICE"),
      event: { type: "app_home_opened", user: "U0ALICE", tab: "messages" },
    };
    for (const body of [
      messages,
      messagesTab,
      homeOpened("U0ALICE", "Ev0OTHERTEAM", "T0OTHERCO"),
      { type: "app_rate_limited" },
    ]) {
      expect((await postEvent(body)).status).toBe(200);
    }
    expect(await peer.slackCalls("views.publish")).toEqual([]);
  });
});

describe("the Home view", () => {
  it("shows an approver what waits for them, with the card's buttons, in their time zone", async () => {
    const p = await pending();
    const view = await openHome("U0ALICE");
    expect(view.view.type).toBe("home");
    const actions = actionsFor(view, p.id)!;
    expect(actions).toBeDefined();
    const buttons = actions.elements!;
    expect(buttons.map((b) => b.action_id)).toEqual(["signoff.approve", "signoff.deny", "signoff.escalate"]);
    expect(buttons.every((b) => b.value === p.id)).toBe(true);
    // The card's confirm dialog, with the plan hash.
    expect(buttons[0]!.confirm.title.text).toBe("Approve this action?");
    expect(buttons[0]!.confirm.text.text).toContain(p.plan_sha256.slice(0, 12));
    const waiting = sectionsUnder(view, "Waiting for you");
    expect(waiting).toContain("Restart deployment api");
    expect(waiting).toContain("k8s.rollout_restart");
    expect(waiting).toContain("0 of 1");
    expect(waiting).toContain("(Europe/Berlin)");
  });

  it("shows a group member what their group may decide, and the requester their own under Yours only", async () => {
    const p = await pending();
    // U0OSCAR is in S0ONCALL.
    expect(actionsFor(await openHome("U0OSCAR"), p.id)).toBeDefined();
    // U0BOB is in S0ONCALL too, but requested it: four-eyes keeps it off his list; it is his, with its status.
    const bob = await openHome("U0BOB");
    expect(actionsFor(bob, p.id)).toBeUndefined();
    expect(sectionsUnder(bob, "Yours")).toContain("Approval needed");
    expect(sectionsUnder(bob, "Yours")).toContain("Restart deployment api");
  });

  it("shows an outsider nothing to decide, and a guest why", async () => {
    const p = await pending();
    const outsider = await openHome("U0ZED");
    expect(textOf(outsider)).not.toContain(p.id);
    expect(sectionsUnder(outsider, "Waiting for you")).toContain("Nothing is waiting for your decision.");
    const guest = await openHome("U0GUEST");
    expect(textOf(guest)).not.toContain(p.id);
    expect(sectionsUnder(guest, "Waiting for you")).toContain("Guest accounts cannot decide");
  });
});

describe("Home-tab buttons go the card's way", () => {
  it("an approval from the Home tab dispatches exactly once, lists it as decided, and a second click counts nothing", async () => {
    const p = await pending();
    const blockId = actionsFor(await openHome("U0ALICE"), p.id)!.block_id;
    const before = (await peer.slackCalls("views.publish")).length;
    expect((await slackRequest(homeClick("approve", p.id, "U0ALICE", blockId))).status).toBe(200);
    expect((await getProposal(p.id)).decision?.outcome).toBe("approved");
    // The view is redrawn at once, saying so, without the proposal in Waiting for you.
    const redrawn = ((await peer.slackCalls("views.publish")) as unknown as Published[]).slice(before);
    expect(redrawn).toHaveLength(1);
    expect(textOf(redrawn[0]!)).toContain("Your approval was recorded.");
    expect(actionsFor(redrawn[0]!, p.id)).toBeUndefined();

    // The same click again (a double click), and on the card: neither counts again.
    await slackRequest(homeClick("approve", p.id, "U0ALICE", blockId));
    await click("approve", p.id, "U0ALICE");
    await runJobsNow(p.id);
    expect(await peer.requests("/runner")).toHaveLength(1);
    const final = await getProposal(p.id);
    expect(final.approvals).toHaveLength(1);
    expect(final.status).toBe("succeeded");
    expect((await auditOf(p.id)).filter((e) => e.type === "approval.recorded")).toHaveLength(1);

    const later = await openHome("U0ALICE");
    expect(sectionsUnder(later, "Recently decided")).toContain("You approved");
    expect(sectionsUnder(later, "Recently decided")).toContain("Succeeded");
  });

  it("one person, one vote: an approval on the card is not counted again from the Home tab", async () => {
    const p = await pending(FAILOVER);
    expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
    await settle(p.id);
    // Freshly drawn after her card approval: the proposal is no longer waiting for her…
    const view = await openHome("U0ALICE");
    expect(actionsFor(view, p.id)).toBeUndefined();
    // …and a Home click drawn on the current state is refused by the card's own check.
    const current = `signoff.home:${p.id}:pending.1.n`;
    await slackRequest(homeClick("approve", p.id, "U0ALICE", current));
    const after = await getProposal(p.id);
    expect(after.status).toBe("pending");
    expect(after.approvals).toHaveLength(1);
    const refused = (await auditOf(p.id)).filter((e) => e.type === "click.refused");
    expect(refused.at(-1)!.details).toMatchObject({ code: "already_approved", via: "slack_home" });
    const redrawn = ((await peer.slackCalls("views.publish")) as unknown as Published[]).at(-1)!;
    expect(textOf(redrawn)).toContain("You already approved");
  });

  it("a button on a proposal that changed since the view was drawn counts nothing, says so and redraws", async () => {
    const p = await pending(FAILOVER);
    const stale = actionsFor(await openHome("U0ALICE"), p.id)!.block_id!;
    expect(stale).toBe(`signoff.home:${p.id}:pending.0.n`);
    // U0DAVE approves on the card meanwhile: 1 of 2.
    await click("approve", p.id, "U0DAVE");
    await settle(p.id);
    const before = (await peer.slackCalls("views.publish")).length;
    await slackRequest(homeClick("approve", p.id, "U0ALICE", stale));
    expect((await getProposal(p.id)).approvals.map((a: { user: string }) => a.user)).toEqual(["U0DAVE"]);
    const refused = (await auditOf(p.id)).filter((e) => e.type === "click.refused").at(-1)!;
    expect(refused.actor).toBe("slack:U0ALICE");
    expect(refused.details).toMatchObject({ code: "changed", via: "slack_home" });
    const redrawn = ((await peer.slackCalls("views.publish")) as unknown as Published[]).slice(before);
    expect(redrawn).toHaveLength(1);
    expect(textOf(redrawn[0]!)).toContain("changed since your Home tab was drawn");
    // The redrawn view shows 1 of 2, and its button counts.
    const fresh = actionsFor(redrawn[0]!, p.id)!.block_id;
    expect(fresh).toBe(`signoff.home:${p.id}:pending.1.n`);
    expect(sectionsUnder(redrawn[0]!, "Waiting for you")).toContain("1 of 2");
    await slackRequest(homeClick("approve", p.id, "U0ALICE", fresh));
    expect((await getProposal(p.id)).decision?.outcome).toBe("approved");
  });

  it("a Home button without signoff's block, or from an outsider, decides nothing", async () => {
    const p = await pending();
    await slackRequest(homeClick("approve", p.id, "U0ALICE", undefined));
    await slackRequest(homeClick("approve", p.id, "U0ZED", `signoff.home:${p.id}:pending.0.n`));
    expect((await getProposal(p.id)).status).toBe("pending");
    const codes = (await auditOf(p.id)).filter((e) => e.type === "click.refused").map((e) => e.details.code);
    expect(codes).toEqual(["changed", "not_an_approver"]);
  });

  it("Deny opens the card's modal, and its submission denies and redraws the Home tab", async () => {
    const p = await pending();
    const blockId = actionsFor(await openHome("U0ALICE"), p.id)!.block_id;
    await slackRequest(homeClick("deny", p.id, "U0ALICE", blockId));
    const [open] = await peer.slackCalls("views.open");
    const modal = (open as { view: { callback_id: string; private_metadata: string } }).view;
    expect(modal.callback_id).toBe("signoff.deny_reason");
    expect(modal.private_metadata).toBe(`home:${p.id}:pending.0.n`);
    const before = (await peer.slackCalls("views.publish")).length;
    const res = await slackRequest({
      type: "view_submission",
      user: { id: "U0ALICE", team_id: SLACK_TEAM_ID },
      view: {
        callback_id: modal.callback_id,
        private_metadata: modal.private_metadata,
        state: { values: { reason: { reason: { type: "plain_text_input", value: "not now" } } } },
      },
    });
    expect(res.status).toBe(200);
    const denied = await getProposal(p.id);
    expect(denied.status).toBe("denied");
    expect(denied.decision.reason).toBe("not now");
    const redrawn = ((await peer.slackCalls("views.publish")) as unknown as Published[]).slice(before);
    expect(textOf(redrawn[0]!)).toContain("You denied it.");
  });

  it("a Deny submitted from the Home tab after the proposal changed is refused, the modal closed and the tab redrawn", async () => {
    const p = await pending(FAILOVER);
    const blockId = actionsFor(await openHome("U0ALICE"), p.id)!.block_id;
    await slackRequest(homeClick("deny", p.id, "U0ALICE", blockId));
    const [open] = await peer.slackCalls("views.open");
    const modal = (open as { view: { callback_id: string; private_metadata: string } }).view;
    // While the modal is open, dave approves on the card: the proposal no longer stands as alice's tab showed it.
    await click("approve", p.id, "U0DAVE");
    await settle(p.id);
    const before = (await peer.slackCalls("views.publish")).length;
    const res = await slackRequest({
      type: "view_submission",
      user: { id: "U0ALICE", team_id: SLACK_TEAM_ID },
      view: {
        callback_id: modal.callback_id,
        private_metadata: modal.private_metadata,
        state: { values: { reason: { reason: { type: "plain_text_input", value: "not now" } } } },
      },
    });
    expect(res.status).toBe(200);
    expect(await res.text()).not.toContain('"errors"');
    await settle(p.id);
    const now = await getProposal(p.id);
    expect(now.status).toBe("pending");
    expect(now.approvals.map((a: { user: string }) => a.user)).toEqual(["U0DAVE"]);
    const refused = (await auditOf(p.id)).filter((e) => e.type === "click.refused");
    expect(refused.map((e) => [e.actor, e.details.action, e.details.code, e.details.via])).toEqual([
      ["slack:U0ALICE", "deny", "changed", "slack_home"],
    ]);
    const redrawn = ((await peer.slackCalls("views.publish")) as unknown as Published[]).slice(before);
    expect(textOf(redrawn[0]!)).toContain("changed since your Home tab was drawn");
    // Drawn again, the same deny counts.
    const fresh = actionsFor(await openHome("U0ALICE"), p.id)!.block_id;
    expect(fresh).toBe(`signoff.home:${p.id}:pending.1.n`);
  });
});

describe("a proposal created in a change freeze", () => {
  // k8s.hotfix: alice and dave approve normally; lead, alice and bob may break the glass. Bob requests it.
  const hour = 3_600_000;
  const freeze = {
    name: "incident review",
    actions: ["k8s.*"],
    start: new Date(Date.now() - hour).toISOString(),
    end: new Date(Date.now() + hour).toISOString(),
  };
  const frozenEnv = policyEnv(BREAK_GLASS_ACTIONS, { freezes: [freeze] });

  it("waits only for its break-glass approvers, with the break-glass button alone; a normal approver is not shown it", async () => {
    const p = await createIn(frozenEnv, {
      action: { type: "k8s.hotfix", params: { service: "api" } },
      summary: "Hotfix api: roll back the bad config",
      requested_by: "U0BOB",
    });
    await settle(p.id);
    for (const user of ["U0LEAD", "U0ALICE"]) {
      const view = await openHome(user);
      const actions = actionsFor(view, p.id);
      expect(
        actions?.elements?.map((b) => b.action_id),
        user,
      ).toEqual(["signoff.break_glass"]);
      expect(sectionsUnder(view, "Waiting for you")).toContain("only break-glass can approve it");
    }
    // Dave could only deny it (on its card); bob requested it, so break-glass is never his.
    expect(sectionsUnder(await openHome("U0DAVE"), "Waiting for you")).not.toContain(p.id);
    expect(sectionsUnder(await openHome("U0BOB"), "Waiting for you")).not.toContain(p.id);

    // Lead breaks the glass from the Home tab: the card's modal, then the approval alone, and the tab redrawn.
    const blockId = actionsFor(await openHome("U0LEAD"), p.id)!.block_id;
    await slackRequest({
      ...homeClick("approve", p.id, "U0LEAD", blockId),
      actions: [{ action_id: "signoff.break_glass", block_id: blockId, value: p.id, type: "button" }],
    });
    const [open] = await peer.slackCalls("views.open");
    const modal = (open as { view: { callback_id: string; private_metadata: string } }).view;
    expect(modal).toMatchObject({
      callback_id: "signoff.break_glass_reason",
      private_metadata: `home:${p.id} ${p.plan_sha256}`,
    });
    const before = (await peer.slackCalls("views.publish")).length;
    const res = await slackRequest({
      type: "view_submission",
      user: { id: "U0LEAD", team_id: SLACK_TEAM_ID },
      view: {
        callback_id: modal.callback_id,
        private_metadata: modal.private_metadata,
        state: { values: { reason: { reason: { type: "plain_text_input", value: "Outage: bad config" } } } },
      },
    });
    expect(res.status).toBe(200);
    await settle(p.id);
    expect(await getProposal(p.id)).toMatchObject({ status: "succeeded", decision: { break_glass: true } });
    const redrawn = ((await peer.slackCalls("views.publish")) as unknown as Published[]).slice(before);
    expect(textOf(redrawn[0]!)).toContain("You approved it alone by break-glass");
    expect(actionsFor(redrawn[0]!, p.id)).toBeUndefined();
  });

  it("a break-glass button from the Home tab that is refused redraws the tab with the reason", async () => {
    const p = await createIn(frozenEnv, {
      action: { type: "k8s.hotfix", params: { service: "api" } },
      summary: "Hotfix api",
      requested_by: "U0BOB",
    });
    await settle(p.id);
    const before = (await peer.slackCalls("views.publish")).length;
    await slackRequest({
      ...homeClick("approve", p.id, "U0BOB", `signoff.home:${p.id}:pending.0.n`),
      actions: [{ action_id: "signoff.break_glass", value: p.id, type: "button" }],
    });
    expect(await peer.slackCalls("views.open")).toEqual([]);
    const redrawn = ((await peer.slackCalls("views.publish")) as unknown as Published[]).slice(before);
    expect(textOf(redrawn[0]!)).toContain("break-glass is never for approving your own request");
  });
});

describe("the index behind Waiting for you", () => {
  it("is never trusted over the object: rows that lie are re-checked away", async () => {
    const p = await pending();
    // A row naming an outsider, and a decided proposal's row put back to pending: the objects say otherwise.
    await env.AUDIT_DB.prepare(
      "UPDATE home_proposals SET deciders = json_insert(deciders, '$[#]', 'U0ZED') WHERE proposal_id = ?1",
    )
      .bind(p.id)
      .run();
    const q = await pending();
    await click("deny", q.id, "U0ALICE");
    const submit = {
      type: "view_submission",
      user: { id: "U0ALICE" },
      view: { callback_id: "signoff.deny_reason", private_metadata: q.id },
    };
    await slackRequest(submit);
    await settle(q.id);
    await env.AUDIT_DB.prepare(
      `UPDATE home_proposals SET status = 'pending', deciders = '["U0ALICE"]' WHERE proposal_id = ?1`,
    )
      .bind(q.id)
      .run();
    expect(textOf(await openHome("U0ZED"))).not.toContain(p.id);
    const alice = await openHome("U0ALICE");
    expect(actionsFor(alice, q.id)).toBeUndefined();
    expect(actionsFor(alice, p.id)).toBeDefined();
  });

  it("follows every change, and a write D1 refused is retried by the audit flush until it lands", async () => {
    const rows = async (id: string) => {
      const row = await env.AUDIT_DB.prepare("SELECT status, deciders FROM home_proposals WHERE proposal_id = ?1")
        .bind(id)
        .first<{ status: string; deciders: string }>();
      const { results } = await env.AUDIT_DB.prepare("SELECT who FROM home_requesters WHERE proposal_id = ?1")
        .bind(id)
        .all<{ who: string }>();
      return {
        status: row?.status,
        deciders: (JSON.parse(row?.deciders ?? "[]") as string[]).sort(),
        requesters: results.map((r) => r.who),
      };
    };
    const p = await pending();
    expect(await rows(p.id)).toEqual({ status: "pending", deciders: ["S0ONCALL", "U0ALICE"], requesters: ["U0BOB"] });
    // The index table is away while the approval is flushed: the flush fails, and nothing is lost.
    collectFlushWarnings();
    await env.AUDIT_DB.exec("ALTER TABLE home_proposals RENAME TO home_proposals_offline");
    try {
      await click("escalate", p.id, "U0ALICE");
      await runJobsNow(p.id, ["audit"]);
    } finally {
      await env.AUDIT_DB.exec("ALTER TABLE home_proposals_offline RENAME TO home_proposals");
    }
    expect(flushWarnings().some((w) => w.includes(p.id) && w.includes("failed"))).toBe(true);
    expect((await rows(p.id)).deciders).toEqual(["S0ONCALL", "U0ALICE"]);
    await runJobsNow(p.id);
    expect(await rows(p.id)).toEqual({ status: "pending", deciders: ["S0SRELEADS"], requesters: ["U0BOB"] });
    expect(actionsFor(await openHome("U0LEAD"), p.id)).toBeDefined();
    // Decided: off every Waiting list, still under its requester's Yours.
    await click("deny", p.id, "U0LEAD");
    await slackRequest(denySubmission(p.id, "U0LEAD"));
    await settle(p.id);
    expect(await rows(p.id)).toEqual({ status: "denied", deciders: [], requesters: ["U0BOB"] });
  });

  it("costs D1 a few rows per proposal: its row, its pending entry and a row per requester, then one at the decision", async () => {
    const p = await pending();
    const proposal = (await stubOf(p.id).read())!;
    // The same proposal under a new id, so its rows are new.
    const copy = { ...proposal, id: `${proposal.id}_copy` };
    const written = async (statements: D1PreparedStatement[]) =>
      (await env.AUDIT_DB.batch(statements)).map((r) => r.meta.rows_written);
    expect(await written(homeIndexStatements(env.AUDIT_DB, copy, 2, Date.now()))).toEqual([2, 1]);
    // A later write while pending (an escalation: new deciders and deadline): the row and its pending entry again;
    // the requester is there already.
    expect(await written(homeIndexStatements(env.AUDIT_DB, copy, 3, Date.now()))).toEqual([2, 0]);
    const decided = { ...copy, status: "approved" as const };
    // Decided: the row, now out of the pending index (D1 counts the entry it removes as no row written).
    expect(await written(homeIndexStatements(env.AUDIT_DB, decided, 9, Date.now()))).toEqual([1, 0]);
    // An older snapshot arriving late changes nothing.
    expect(await written(homeIndexStatements(env.AUDIT_DB, copy, 5, Date.now()))).toEqual([0, 0]);
    const now = Date.now();
    for (const [sql, values] of [
      [HOME_SQL.groups, [now]],
      [HOME_SQL.pendingFor, [now, '["U0ALICE"]', 10]],
    ] as const) {
      const { results } = await env.AUDIT_DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .bind(...values)
        .all<{ detail: string }>();
      expect(results.map((r) => r.detail).join("\n")).toMatch(/USING INDEX home_proposals_pending/);
    }
  });
});
