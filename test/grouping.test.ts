// Grouped proposals (docs/grouping.md): a proposer's pending proposals of one action and group_key share one Slack
// card; Approve all is one click per item by that person, each decided by the item's own object (SPEC 12); the card
// stays truthful as items are decided, expire or are cancelled.
import { describe, expect, it } from "vitest";
import { GROUP_CARD_MAX_ITEMS } from "../src/group/limits.ts";
import type { Proposal } from "../src/proposal/types.ts";
import {
  GROUP_ACTION_IDS,
  ITEM_BLOCK_BUDGET,
  itemBlockCost,
  itemBlocks,
  parseGroupCardRef,
  renderGroupCard,
} from "../src/slack/group-card.ts";
import { SLACK_LIMITS } from "../src/slack/mrkdwn.ts";
import { TOKENS } from "./fixtures.ts";
import {
  auditOf,
  call,
  click,
  createProposal,
  denySubmission,
  getProposal,
  json,
  proposalBody,
  settle,
  slackRequest,
} from "./helpers/api.ts";
import { clickAll, groupCardCalls, groupOf, groupRefOf, lastGroupCard, settleAll } from "./helpers/group.ts";
import { EXPIRES_AT, makeProposal } from "./helpers/proposal-factory.ts";
import { peer } from "./peer/client.ts";

const restart = (deployment: string, groupKey: string, extra: Record<string, unknown> = {}) =>
  createProposal({
    action: { type: "k8s.rollout_restart", params: { deployment } },
    summary: `Restart deployment ${deployment} (rolling)`,
    group_key: groupKey,
    ...extra,
  });

/** Three restarts under one key, settled onto their card; their ids and the card's Approve all value. */
async function storm(groupKey: string, extra: Record<string, unknown> = {}) {
  const ids: string[] = [];
  for (const deployment of ["api", "web", "worker"]) ids.push((await restart(deployment, groupKey, extra)).id);
  await settleAll(ids, groupOf(groupKey));
  return { ids, ref: await groupRefOf(/3 × k8s\.rollout_restart/) };
}

/** The runner's dispatches, by proposal id. */
async function dispatches(): Promise<string[]> {
  return (await peer.requests("/runner")).map((r) => JSON.parse(r.body).proposal_id as string);
}

describe("grouped proposals", () => {
  it("three proposals with one key: one card, one chat.postMessage, no single cards", async () => {
    const { ids } = await storm("storm-1");
    const { posts } = await groupCardCalls();
    expect(posts).toHaveLength(1);
    expect(await peer.slackCalls("chat.postMessage")).toHaveLength(1);
    // Posted at the first report, then edited as the others joined (at most once a second).
    const { updates } = await groupCardCalls();
    expect((updates.at(-1) ?? posts[0])!.text).toBe("Approval needed: 3 × k8s.rollout_restart: api, web, worker");
    const card = await lastGroupCard();
    for (const id of ids) expect(card).toContain(id);
    expect(card).toContain("signoff.group_approve_all");
    // Each item keeps its own buttons, whose value is its own proposal id.
    const blocks = JSON.parse(card) as Array<{ type: string; elements?: Array<{ action_id: string; value: string }> }>;
    const approves = blocks.flatMap((b) => b.elements ?? []).filter((e) => e.action_id === "signoff.approve");
    expect(approves.map((e) => e.value)).toEqual(ids);
    // Each item's audit chain records the card it is on; the API shows its group_key.
    for (const id of ids) {
      const posted = (await auditOf(id)).find((e) => e.type === "slack.message_posted");
      expect(posted?.details).toMatchObject({ role: "group_card", channel: "C0INCIDENT" });
      expect((await getProposal(id)).group_key).toBe("storm-1");
    }
  });

  it("Approve all by an approver with M=1: three dispatches, each exactly once, and the card says so", async () => {
    const { ids, ref } = await storm("storm-2");
    const res = await clickAll("approve", ref, "U0ALICE");
    expect(res.status).toBe(200);
    await settleAll(ids, groupOf("storm-2"));
    // A second press after they ran changes nothing and dispatches nothing more.
    await clickAll("approve", ref, "U0ALICE");
    await settleAll(ids, groupOf("storm-2"));
    expect((await dispatches()).sort()).toEqual([...ids].sort());
    for (const id of ids) {
      const p = await getProposal(id);
      expect(p.status).toBe("succeeded");
      expect(p.approvals.map((a: { user: string }) => a.user)).toEqual(["U0ALICE"]);
      expect((await auditOf(id)).filter((e) => e.type === "dispatch.attempt")).toHaveLength(1);
    }
    const card = await lastGroupCard();
    expect(card).toContain("Decided: 3 × k8s.rollout_restart");
    expect(card.match(/Succeeded/g)!.length).toBeGreaterThanOrEqual(3);
    expect(card).not.toContain("signoff.group_approve_all");
    expect(await peer.slackCalls("chat.postMessage")).toHaveLength(1);
  });

  it("mixed outcomes: one denied on its own button, one expired, one approved; the card tells each truthfully", async () => {
    const denied = (await restart("api", "storm-3")).id;
    const expired = (await restart("web", "storm-3", { ttl_seconds: 2 })).id;
    const approved = (await restart("worker", "storm-3")).id;
    const ids = [denied, expired, approved];
    await settleAll(ids, groupOf("storm-3"));
    await slackRequest(denySubmission(denied, "U0ALICE", "not this one"));
    expect((await click("approve", approved, "U0OSCAR")).status).toBe(200);
    // The alarm expires it at its deadline by itself; the long poll answers when it has.
    const res = await call(`/v1/proposals/${expired}?wait=10`, { token: TOKENS.reader });
    expect((await json(res)).status).toBe("expired");
    await settleAll(ids, groupOf("storm-3"));
    expect((await getProposal(denied)).status).toBe("denied");
    expect((await getProposal(expired)).status).toBe("expired");
    expect((await getProposal(approved)).status).toBe("succeeded");
    expect(await dispatches()).toEqual([approved]);
    const card = await lastGroupCard();
    expect(card).toContain("1 denied");
    expect(card).toContain("1 expired, nothing ran");
    expect(card).toContain("1 succeeded");
    expect(card).toContain("not this one");
    expect(card).toContain("Decided: 3 × k8s.rollout_restart");
    // Nothing is left to decide: no buttons at all.
    expect(card).not.toContain('"type":"actions"');
  });

  it("a cancelled item shows as cancelled; Approve all then decides only the others", async () => {
    const { ids, ref } = await storm("storm-4");
    const res = await call(`/v1/proposals/${ids[1]}/cancel`, { method: "POST", body: { reason: "resolved" } });
    expect(res.status, JSON.stringify(await json(res))).toBe(200);
    await settleAll(ids, groupOf("storm-4"));
    expect(await lastGroupCard()).toContain("1 cancelled, nothing ran");
    await clickAll("approve", ref, "U0ALICE");
    await settleAll(ids, groupOf("storm-4"));
    expect((await dispatches()).sort()).toEqual([ids[0], ids[2]].sort());
    expect((await getProposal(ids[1]!)).status).toBe("cancelled");
  });

  it("a different key or action gets a card of its own", async () => {
    const alpha = [(await restart("api", "alpha")).id, (await restart("web", "alpha")).id];
    const beta = [(await restart("worker", "beta")).id];
    const failover = [
      (await createProposal({ action: { type: "db.failover", params: { cluster: "pg-main" } }, group_key: "alpha" }))
        .id,
    ];
    await settleAll(alpha, groupOf("alpha"));
    await settleAll(beta, groupOf("beta"));
    await settleAll(failover, groupOf("alpha", "db.failover"));
    const { posts, updates } = await groupCardCalls();
    expect(posts).toHaveLength(3);
    expect(await peer.slackCalls("chat.postMessage")).toHaveLength(3);
    const last = [...posts, ...updates].map((c) => String(c.text));
    expect(last).toContain("Approval needed: 1 × k8s.rollout_restart: worker");
    expect(last).toContain("Approval needed: 1 × db.failover: pg-main");
    // web joined api's card (posted with api alone or with both, then edited to show both).
    expect(last).toContain("Approval needed: 2 × k8s.rollout_restart: api, web");
    expect(last.filter((t) => t.includes("web") && !t.includes("api"))).toEqual([]);
  });

  it("a full card (20 items) is not added to: the 21st item opens a second card", async () => {
    const ids: string[] = [];
    for (let i = 0; i < GROUP_CARD_MAX_ITEMS + 1; i++) ids.push((await restart(`svc-${i}`, "full")).id);
    await settleAll(ids, groupOf("full"));
    const { posts, updates } = await groupCardCalls();
    expect(posts).toHaveLength(2);
    const texts = [...posts, ...updates].map((c) => String(c.text));
    expect(texts.some((t) => t.startsWith(`Approval needed: ${GROUP_CARD_MAX_ITEMS} × k8s.rollout_restart`))).toBe(
      true,
    );
    expect(texts).toContain(`Approval needed: 1 × k8s.rollout_restart: svc-${GROUP_CARD_MAX_ITEMS}`);
    for (const call of [...posts, ...updates])
      expect((call.blocks as unknown[]).length).toBeLessThanOrEqual(SLACK_LIMITS.blocksPerMessage);
  });

  it("Slack down: the card's post is retried (one card, not one per item); given up, each item's audit says so", async () => {
    await peer.script("/slack/api/chat.postMessage", [
      { status: 503 },
      { status: 429, headers: { "retry-after": "1" } },
    ]);
    await storm("down-1");
    // Two refused attempts, then the one post that went through; every edit after it is of that one message.
    const { posts, updates } = await groupCardCalls();
    expect(posts).toHaveLength(3);
    expect(await peer.slackCalls("chat.postMessage")).toHaveLength(3);
    expect(new Set(updates.map((u) => u.ts)).size).toBeLessThanOrEqual(1);
    // Refused for good (not a passing fault): every item's own audit chain records that its card was not sent.
    await peer.script("/slack/api/chat.postMessage", [{ body: { ok: false, error: "channel_not_found" } }]);
    const lone = (await restart("api", "down-2")).id;
    await settleAll([lone], groupOf("down-2"));
    const failed = (await auditOf(lone)).find((e) => e.type === "slack.failed");
    expect(failed?.details).toMatchObject({ method: "group chat.postMessage", final: true });
  });

  it("group_key is validated: blank, control characters or too long are 400, nothing is created", async () => {
    for (const group_key of ["", " x", "a\u0007b", "x".repeat(65), "é"]) {
      const res = await call("/v1/proposals", { body: proposalBody({ group_key }) });
      const body = await json(res);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(body.error.details.map((d: { path: string }) => d.path)).toContain("group_key");
    }
    // A requester_only action's card is its requester's DM: grouping it is refused.
    const res = await call("/v1/proposals", {
      body: proposalBody({ action: { type: "demo.echo", params: {} }, group_key: "x" }),
    });
    expect(res.status).toBe(422);
    expect((await json(res)).error.code).toBe("group_key_not_allowed");
  });
});

describe("grouped proposals: Approve all never lets one party act alone (SPEC 12)", () => {
  it("the requester pressing Approve all is refused for their own item only, and told which", async () => {
    const own = (await restart("api", "self-1", { requested_by: "U0BOB" })).id;
    const others = [
      (await restart("web", "self-1", { requested_by: "U0RITA" })).id,
      (await restart("worker", "self-1", { requested_by: "U0RITA" })).id,
    ];
    const ids = [own, ...others];
    await settleAll(ids, groupOf("self-1"));
    const ref = await groupRefOf(/3 × k8s\.rollout_restart/);
    // U0BOB is in S0ONCALL, an approver of the action, and the requester of `api`.
    expect((await clickAll("approve", ref, "U0BOB")).status).toBe(200);
    await settleAll(ids, groupOf("self-1"));
    const mine = await getProposal(own);
    expect(mine.status).toBe("pending");
    expect(mine.approvals).toEqual([]);
    expect((await dispatches()).sort()).toEqual([...others].sort());
    const refusal = (await auditOf(own)).find((e) => e.type === "click.refused");
    expect(refusal).toMatchObject({ actor: "slack:U0BOB" });
    const replies = await peer.slackCalls("chat.postEphemeral");
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ user: "U0BOB", channel: "C0INCIDENT" });
    expect(String(replies[0]!.text)).toContain("2 of 3 counted");
    expect(String(replies[0]!.text)).toContain(`\`api\` (\`${own}\`) refused`);
    // The card still offers the requester's own item to someone else.
    expect(await lastGroupCard()).toContain("Approval needed: 3 × k8s.rollout_restart");
  });

  it("Approve all by one approver on items needing 2 approvals dispatches none; a second person completes each", async () => {
    const ids: string[] = [];
    for (const cluster of ["pg-a", "pg-b"])
      ids.push((await createProposal({ action: { type: "db.failover", params: { cluster } }, group_key: "m2" })).id);
    const group = groupOf("m2", "db.failover");
    await settleAll(ids, group);
    const ref = await groupRefOf(/2 × db\.failover/);
    await clickAll("approve", ref, "U0ALICE", "C0APPROVALS");
    await settleAll(ids, group);
    expect(await dispatches()).toEqual([]);
    for (const id of ids) {
      const p = await getProposal(id);
      expect(p.status).toBe("pending");
      expect(p.approvals.map((a: { user: string }) => a.user)).toEqual(["U0ALICE"]);
    }
    // The same person again: one person, one vote, per item.
    await clickAll("approve", ref, "U0ALICE", "C0APPROVALS");
    await settleAll(ids, group);
    expect(await dispatches()).toEqual([]);
    const again = (await peer.slackCalls("chat.postEphemeral")).at(-1);
    expect(String(again?.text)).toContain("0 of 2 counted");
    // A second approver completes each, each dispatched once.
    await clickAll("approve", ref, "U0DAVE", "C0APPROVALS");
    await settleAll(ids, group);
    expect((await dispatches()).sort()).toEqual([...ids].sort());
  });

  it("Deny all by someone who may not decide denies nothing", async () => {
    const { ids, ref } = await storm("deny-1");
    await clickAll("deny", ref, "U0MALLORY");
    await settleAll(ids, groupOf("deny-1"));
    for (const id of ids) expect((await getProposal(id)).status).toBe("pending");
    const reply = (await peer.slackCalls("chat.postEphemeral")).at(-1);
    expect(String(reply?.text)).toContain("Deny all: 0 of 3 counted");
    await clickAll("deny", ref, "U0ALICE");
    await settleAll(ids, groupOf("deny-1"));
    for (const id of ids) expect((await getProposal(id)).status).toBe("denied");
    expect(await dispatches()).toEqual([]);
    await settle(ids[0]!);
  });
});

describe("grouped proposals: Approve all decides only what the card showed when it was drawn", () => {
  /** The last ephemeral reply to a group press. */
  const lastReply = async () => String((await peer.slackCalls("chat.postEphemeral")).at(-1)?.text);
  /** Whether `user` left any trace in the item's audit chain (a counted or a refused click). */
  const touchedBy = async (id: string, user: string) => (await auditOf(id)).some((e) => e.actor === `slack:${user}`);

  it("an item that joined after the card was drawn is not clicked by Approve all pressed on the older card", async () => {
    const group = groupOf("late-1");
    const drawn = [(await restart("api", "late-1")).id, (await restart("web", "late-1")).id];
    await settleAll(drawn, group);
    const ref = await groupRefOf(/2 × k8s\.rollout_restart/);
    // The proposer's key adds a third item: it joins the same card at once; the card's redraw has not gone out.
    const late = (await restart("worker", "late-1")).id;
    await settle(late);
    expect((await clickAll("approve", ref, "U0ALICE")).status).toBe(200);
    await settleAll([...drawn, late], group);
    // Only what the confirm dialog named ran; the late item is untouched and still waits for a decision.
    expect((await dispatches()).sort()).toEqual([...drawn].sort());
    const waiting = await getProposal(late);
    expect(waiting.status).toBe("pending");
    expect(waiting.approvals).toEqual([]);
    expect(await touchedBy(late, "U0ALICE")).toBe(false);
    const reply = await lastReply();
    expect(reply).toContain("Approve all: 2 of 2 counted");
    expect(reply).toContain("The card changed since you saw it: 1 item that joined it since");
    expect(reply).not.toContain(late);
    // The redrawn card shows it on the same card and offers it; a press there decides it.
    const redrawn = await groupRefOf(/3 × k8s\.rollout_restart/);
    expect(redrawn).toContain(late);
    await clickAll("approve", redrawn, "U0ALICE");
    await settleAll([...drawn, late], group);
    expect((await dispatches()).sort()).toEqual([...drawn, late].sort());
  });

  it("an escalated item is not clicked by Approve all, even by an escalation approver", async () => {
    const group = groupOf("esc-1");
    const { ids } = await storm("esc-1");
    const escalated = ids[2]!;
    expect((await click("escalate", escalated, "U0ALICE")).status).toBe(200);
    await settleAll(ids, group);
    expect((await getProposal(escalated)).escalated).toBeTruthy();
    // The card shows it escalated, without buttons; neither the confirm dialog nor the value names it.
    const ref = await groupRefOf(/3 × k8s\.rollout_restart/);
    expect(ref).not.toContain(escalated);
    // U0LEAD decides the escalation, not the other two: Approve all by them must not approve the escalated item.
    expect((await clickAll("approve", ref, "U0LEAD")).status).toBe(200);
    await settleAll(ids, group);
    expect(await dispatches()).toEqual([]);
    const p = await getProposal(escalated);
    expect(p.status).toBe("pending");
    expect(p.approvals).toEqual([]);
    expect(await touchedBy(escalated, "U0LEAD")).toBe(false);
    const reply = await lastReply();
    expect(reply).toContain("Approve all: 0 of 2 counted");
    expect(reply).not.toContain(escalated);
  });

  it("a value from before the card named its items clicks nothing: press again on the redrawn card", async () => {
    const group = groupOf("old-1");
    const { ids, ref } = await storm("old-1");
    const old = ref.split(":").slice(0, 2).join(":");
    expect(old).toMatch(/^[0-9a-f]{64}:\d+$/);
    const before = (await groupCardCalls()).updates.length;
    for (const kind of ["approve", "deny"] as const) {
      expect((await clickAll(kind, old, "U0ALICE")).status).toBe(200);
      await settleAll(ids, group);
      expect(await lastReply()).toContain("Nothing was decided");
    }
    expect(await dispatches()).toEqual([]);
    for (const id of ids) {
      const p = await getProposal(id);
      expect(p.status).toBe("pending");
      expect(p.approvals).toEqual([]);
      expect(await touchedBy(id, "U0ALICE")).toBe(false);
    }
    expect(await lastReply()).toContain("press again on the redrawn card");
    // It was redrawn, with a value that names its items.
    expect((await groupCardCalls()).updates.length).toBeGreaterThan(before);
    expect(await groupRefOf(/3 × k8s\.rollout_restart/)).toBe(ref);
  });
});

describe("the grouped card (pure)", () => {
  const NOW = Date.parse(EXPIRES_AT) - 60_000;
  const head = { keyName: "alertmanager", action: "k8s.rollout_restart", groupKey: "g", ref: `${"0".repeat(64)}:1` };

  it("escapes and quotes what the proposer wrote: no mention, no link, no status passing for signoff's", () => {
    const hostile = makeProposal({
      action: { type: "k8s.rollout_restart", params: { deployment: "<!channel> <https://x.io|y>" } },
      summary: ":white_check_mark: *Approved* by <@U0MALLORY>",
    });
    const { text, blocks } = renderGroupCard(head, [hostile], NOW);
    const all = JSON.stringify({ text, blocks });
    expect(all).not.toContain("<!channel>");
    expect(all).not.toContain("<https://x.io|y>");
    expect(all).not.toContain("<@U0MALLORY>");
    expect(all).toContain("> :white_check_mark: *Approved* by &lt;@U0MALLORY&gt;");
  });

  it("an item never takes more blocks than the card keeps for it, whatever its state or plan; 20 fit in 50", () => {
    const long = { deployment: "x", notes: "n".repeat(1200) };
    const states: Array<Partial<Proposal>> = [
      {},
      {
        status: "denied",
        decision: { by: "slack:U0ALICE", at: EXPIRES_AT, outcome: "denied", reason: "r".repeat(1000) },
      },
      { status: "failed", result: { status: "failed", output: "o".repeat(16_000), at: EXPIRES_AT } },
    ];
    for (const params of [{ deployment: "api" }, long])
      for (const state of states) {
        const p = makeProposal({ action: { type: "k8s.rollout_restart", params }, ...state });
        expect(itemBlocks(p, NOW).length).toBeLessThanOrEqual(itemBlockCost(p));
        for (const block of itemBlocks(p, NOW))
          if (block.type === "section") expect(block.text!.text.length).toBeLessThanOrEqual(SLACK_LIMITS.sectionText);
      }
    const twenty = Array.from({ length: GROUP_CARD_MAX_ITEMS }, () => makeProposal());
    expect(twenty.reduce((n, p) => n + itemBlockCost(p), 0)).toBeLessThanOrEqual(ITEM_BLOCK_BUDGET);
    expect(renderGroupCard(head, twenty, NOW).blocks.length).toBeLessThanOrEqual(SLACK_LIMITS.blocksPerMessage);
  });

  it("Approve all's value names exactly the items its confirm dialog names, and fits Slack's limit with 20", () => {
    const groupValue = (items: Proposal[]) => {
      const blocks = renderGroupCard(head, items, NOW).blocks as Array<Record<string, any>>;
      return blocks.find((b) => b.block_id === "signoff.group.actions")!.elements[0].value as string;
    };
    const id = (n: number) => `prp_${n.toString(16).padStart(64, "0")}`;
    const open = makeProposal({ id: id(1) });
    const escalated = makeProposal({
      id: id(2),
      escalated: { by: "slack:U0ALICE", at: EXPIRES_AT, prior_approvals: [] },
    });
    const denied = makeProposal({ id: id(3), status: "denied" });
    const value = groupValue([open, escalated, denied]);
    expect(value).toBe(`${head.ref}:${id(1)}`);
    expect(parseGroupCardRef(value)).toEqual({ objectId: "0".repeat(64), card: 1, offered: [id(1)] });
    const twenty = Array.from({ length: GROUP_CARD_MAX_ITEMS }, (_, i) => makeProposal({ id: id(i + 10) }));
    const full = groupValue(twenty);
    expect(full.length).toBeLessThanOrEqual(SLACK_LIMITS.buttonValue);
    expect(parseGroupCardRef(full)?.offered).toEqual(twenty.map((p) => p.id));
    // A value from before it named the items parses with none, which the group answers by clicking nothing.
    expect(parseGroupCardRef(head.ref)).toEqual({ objectId: "0".repeat(64), card: 1, offered: null });
    expect(parseGroupCardRef(`${head.ref}:`)).toBeNull();
    expect(parseGroupCardRef(`${head.ref}:${id(1)},not-an-id`)).toBeNull();
  });

  it("offers Approve all only while an item can be decided here: not once decided, escalated or past its deadline", () => {
    const buttons = (items: Proposal[], now = NOW) =>
      JSON.stringify(renderGroupCard(head, items, now).blocks).includes(GROUP_ACTION_IDS.approveAll);
    expect(buttons([makeProposal()])).toBe(true);
    expect(buttons([makeProposal({ status: "denied" })])).toBe(false);
    expect(buttons([makeProposal({ escalated: { by: "slack:U0ALICE", at: EXPIRES_AT, prior_approvals: [] } })])).toBe(
      false,
    );
    expect(buttons([makeProposal()], Date.parse(EXPIRES_AT))).toBe(false);
  });
});
