// SPEC 2: expiry by the Durable Object's alarm, alarms that run twice, and races between
// approval, expiry and cancel — the first transition out of pending wins, once.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ProposalObject } from "../src/proposal/object.ts";
import { TOKENS } from "./fixtures.ts";
import { auditOf, call, click, createProposal, getProposal, json, runAlarm, settle, stubOf } from "./helpers/api.ts";
import { peer } from "./peer/client.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const untilDeadline = (p: Record<string, any>) => Math.max(0, Date.parse(p.expires_at) - Date.now());

const TRANSITIONS_OUT_OF_PENDING = ["proposal.approved", "proposal.denied", "proposal.expired", "proposal.cancelled"];

describe("expiry", () => {
  it("the alarm expires a pending proposal at its deadline, by itself (no polling)", async () => {
    const p = await createProposal({ ttl_seconds: 1 });
    // Long-poll: the answer comes when the alarm changes the status, not after the full wait.
    const started = Date.now();
    const res = await call(`/v1/proposals/${p.id}?wait=10`, { token: TOKENS.reader });
    const after = await json(res);
    expect(after.status).toBe("expired");
    expect(after.decision).toMatchObject({ by: "system", outcome: "expired" });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(Date.parse(after.decision.at)).toBeGreaterThanOrEqual(Date.parse(p.expires_at));
  });

  it("an expiry alarm that runs twice changes nothing the second time", async () => {
    const p = await createProposal({ ttl_seconds: 1 });
    await sleep(untilDeadline(p) + 20);
    await runAlarm(p.id);
    await settle(p.id);
    const once = await auditOf(p.id);
    await runDurableObjectAlarm(stubOf(p.id)); // nothing scheduled: a no-op
    await runInDurableObject(stubOf(p.id), (instance: ProposalObject) => instance.alarm()); // a forced re-run of the handler
    await settle(p.id);
    const twice = await auditOf(p.id);
    expect(twice.filter((e) => e.type === "proposal.expired")).toHaveLength(1);
    expect(twice.map((e) => e.hash)).toEqual(once.map((e) => e.hash));
    expect((await getProposal(p.id)).status).toBe("expired");
  });

  it("an expired card says nothing ran and has no buttons", async () => {
    const p = await createProposal({ ttl_seconds: 1 });
    await settle(p.id);
    await sleep(untilDeadline(p) + 20);
    await runAlarm(p.id);
    await settle(p.id);
    const updates = (await peer.slackCalls("chat.update")).filter((u) => JSON.stringify(u.blocks).includes(p.id));
    const last = updates.at(-1)!;
    expect(JSON.stringify(last.blocks)).toMatch(/nothing ran/i);
    expect((last.blocks as Array<{ type: string }>).some((b) => b.type === "actions")).toBe(false);
  });

  it("a click after the deadline, before the alarm fired, is refused and expires the proposal", async () => {
    const p = await createProposal({ ttl_seconds: 1 });
    await sleep(untilDeadline(p) + 20);
    const res = await click("approve", p.id, "U0ALICE");
    expect(res.status).toBe(200);
    const after = await getProposal(p.id);
    expect(after.status).toBe("expired");
    await settle(p.id);
    const types = (await auditOf(p.id)).map((e) => e.type);
    expect(types).toContain("proposal.expired");
    expect(types).toContain("click.refused");
    expect(types).not.toContain("proposal.approved");
    expect(await peer.requests("/runner")).toHaveLength(0);
  });
});

describe("races: the first transition out of pending wins", () => {
  it("approve vs expire vs cancel at the deadline: exactly one wins, the others are refused and audited", async () => {
    const outcomes: string[] = [];
    for (let round = 0; round < 6; round++) {
      const p = await createProposal({ ttl_seconds: 1 });
      // Fire all three around the deadline, staggered a little differently each round.
      await sleep(Math.max(0, untilDeadline(p) - 15 + round * 6));
      await Promise.all([
        click("approve", p.id, "U0ALICE"),
        call(`/v1/proposals/${p.id}/cancel`, { method: "POST" }),
        runAlarm(p.id),
      ]);
      await settle(p.id);
      const events = await auditOf(p.id);
      const wins = events.filter((e) => TRANSITIONS_OUT_OF_PENDING.includes(e.type));
      expect(wins, JSON.stringify(events.map((e) => e.type))).toHaveLength(1);
      const status = (await getProposal(p.id)).status;
      outcomes.push(wins[0]!.type);
      if (wins[0]!.type === "proposal.approved") expect(["approved", "succeeded"]).toContain(status);
      else expect(`proposal.${status}`).toBe(wins[0]!.type);
    }
    // Whoever won, the runner was called once per approval and never otherwise.
    expect((await peer.requests("/runner")).length).toBe(outcomes.filter((o) => o === "proposal.approved").length);
  });

  it("30 concurrent Approve clicks by approvers: one approval transition, one dispatch", async () => {
    const p = await createProposal();
    const clickers = ["U0ALICE", "U0BOB", "U0OSCAR"]; // U0BOB is the requester: refused by four-eyes
    const responses = await Promise.all(Array.from({ length: 30 }, (_, i) => click("approve", p.id, clickers[i % 3]!)));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    await settle(p.id);
    const events = await auditOf(p.id);
    expect(events.filter((e) => e.type === "proposal.approved")).toHaveLength(1);
    expect(events.filter((e) => e.type === "dispatch.attempt")).toHaveLength(1);
    expect(events.filter((e) => e.type === "click.refused").length).toBe(29);
    expect(await peer.requests("/runner")).toHaveLength(1);
  });

  it("cancel is refused (409) once the proposal is decided, and the refusal is audited", async () => {
    const p = await createProposal();
    await click("approve", p.id, "U0ALICE");
    const res = await call(`/v1/proposals/${p.id}/cancel`, { method: "POST" });
    expect(res.status).toBe(409);
    await settle(p.id);
    expect((await auditOf(p.id)).some((e) => e.type === "cancel.refused")).toBe(true);
  });
});
