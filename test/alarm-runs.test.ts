// What one decision costs downstream (issue 12): the alarm run it sets off dispatches first, then sends one card
// update showing where the proposal ended, then one D1 flush; a slow runner does not hold the card back; one run
// does a bounded number of jobs; a click storm on one card gets one ephemeral reply per person, not per click.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ProposalObject } from "../src/proposal/object.ts";
import { CARD_WAIT_MS, JOBS_IN_FLIGHT, JOBS_PER_RUN } from "../src/proposal/object.ts";
import { JobTable } from "../src/proposal/scheduler.ts";
import { auditOf, click, createProposal, getProposal, jobsOf, settle, stubOf } from "./helpers/api.ts";
import { peer } from "./peer/client.ts";

/** This proposal's card updates, in order. */
async function updatesOf(id: string) {
  return (await peer.slackCalls("chat.update")).filter((u) => JSON.stringify(u.blocks).includes(id));
}

/** How many D1 flushes carried this proposal's events: each flush signs its last event as the chain's head. */
async function flushesOf(id: string, afterIdx: number): Promise<number> {
  const row = await env.AUDIT_DB.prepare(
    "SELECT COUNT(*) AS n FROM audit_events WHERE proposal_id = ?1 AND idx > ?2 AND head_sig IS NOT NULL",
  )
    .bind(id, afterIdx)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

async function lastIdx(id: string): Promise<number> {
  const row = await env.AUDIT_DB.prepare("SELECT MAX(idx) AS n FROM audit_events WHERE proposal_id = ?1")
    .bind(id)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

describe("an approval's downstream work, in one alarm run", () => {
  it("a runner that answers at once: one chat.update, already showing the result, and one D1 flush", async () => {
    const p = await createProposal();
    await settle(p.id); // the card is posted
    const before = await lastIdx(p.id);
    expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
    await settle(p.id);

    expect((await getProposal(p.id)).status).toBe("succeeded");
    const updates = await updatesOf(p.id);
    expect(updates).toHaveLength(1);
    expect(JSON.stringify(updates[0]!.blocks)).toMatch(/[Ss]ucceeded/);
    expect(await flushesOf(p.id, before)).toBe(1);
    expect(await lastIdx(p.id)).toBe(before + 6); // approval, approved, attempt, answer, succeeded, card updated
  });

  it(`a runner slower than CARD_WAIT_MS (${CARD_WAIT_MS} ms): the card shows the approval first, then the result`, async () => {
    await peer.script("/runner", [{ delay_ms: CARD_WAIT_MS + 300, body: { status: "succeeded", output: "ok" } }]);
    const p = await createProposal();
    await settle(p.id);
    const clicked = Date.now();
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);

    const updates = await updatesOf(p.id);
    expect(updates).toHaveLength(2);
    expect(JSON.stringify(updates[0]!.blocks)).not.toMatch(/[Ss]ucceeded/);
    expect(JSON.stringify(updates[1]!.blocks)).toMatch(/[Ss]ucceeded/);
    const sent = (await peer.requests("/slack/api/chat.update")).filter((r) => r.body.includes(p.id));
    // The first update did not wait for the runner's answer, only for CARD_WAIT_MS.
    expect(sent[0]!.at - clicked).toBeLessThan(CARD_WAIT_MS + 300);
  });
});

describe("refusal replies in a click storm", () => {
  it("many refused clicks by two people: every one is audited, each person gets one ephemeral reply", async () => {
    const p = await createProposal();
    await settle(p.id);
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => click("approve", p.id, i % 2 === 0 ? "U0BOB" : "U0MALLORY")),
    );
    await settle(p.id);
    const replies = await peer.slackCalls("chat.postEphemeral");
    expect(replies.map((r) => r.user).sort()).toEqual(["U0BOB", "U0MALLORY"]);
    expect((await auditOf(p.id)).filter((e) => e.type === "click.refused")).toHaveLength(30);

    // Within the next minute a new refusal is audited but not replied to again.
    await click("approve", p.id, "U0MALLORY");
    await settle(p.id);
    expect(await peer.slackCalls("chat.postEphemeral")).toHaveLength(2);
    expect((await auditOf(p.id)).filter((e) => e.type === "click.refused")).toHaveLength(31);
  });

  it(`one alarm run does at most JOBS_PER_RUN (${JOBS_PER_RUN}) jobs and re-arms for the rest`, async () => {
    const p = await createProposal();
    await settle(p.id);
    const people = Array.from({ length: JOBS_PER_RUN + 10 }, (_, i) => `U0OUT${String(i).padStart(3, "0")}`);
    expect(await repliesLeftByOneRun(p.id, people)).toBe(people.length - JOBS_PER_RUN);
    await settle(p.id);
    expect(await peer.requests("/slack/api/chat.postEphemeral")).toHaveLength(people.length);
    expect(await jobsOf(p.id, "slack")).toEqual([]);
  });

  it(`one alarm run has at most JOBS_IN_FLIGHT (${JOBS_IN_FLIGHT}) replies in flight: inside an invocation's six connections`, async () => {
    const p = await createProposal();
    await settle(p.id);
    const people = Array.from({ length: 3 * JOBS_IN_FLIGHT }, (_, i) => `U0WAVE${String(i).padStart(3, "0")}`);
    // Each reply is held 400 ms: a run that sent more than JOBS_IN_FLIGHT at once would show them all at the start.
    await peer.script(
      "/slack/api/chat.postEphemeral",
      people.map(() => ({ delay_ms: 400, body: { ok: true } })),
    );
    expect(await repliesLeftByOneRun(p.id, people)).toBe(0);

    const sent = (await peer.requests("/slack/api/chat.postEphemeral")).map((r) => r.at).sort((a, b) => a - b);
    expect(sent).toHaveLength(people.length);
    for (const start of sent)
      expect(sent.filter((at) => at >= start && at < start + 300).length).toBeLessThanOrEqual(JOBS_IN_FLIGHT);
  });
});

/**
 * Queues a refusal reply to each of `people` and makes exactly one alarm run in the object itself, so no run the
 * platform or settle() starts can take part of them (in production the platform never runs two alarms of an object at
 * once; a test's runAlarm beside the platform's would); returns how many replies that run left for the next.
 */
function repliesLeftByOneRun(id: string, people: string[]): Promise<number> {
  return runInDurableObject(stubOf(id), async (instance: ProposalObject, state) => {
    const jobs = new JobTable(state.storage.sql);
    for (const user of people)
      jobs.schedule(
        "slack",
        `ephemeral:${user}`,
        Date.now(),
        JSON.stringify({ channel: "C0APPROVALS", user, text: "no" }),
      );
    await instance.alarm();
    return jobs.list().filter((job) => job.key.startsWith("ephemeral:")).length;
  });
}
