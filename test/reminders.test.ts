// Issue 16: reminders at fractions of the TTL and the automatic escalation, in workerd with real Durable Objects,
// alarms and the loopback Slack. Time is never waited out: a job is moved to "now" through JobTable's own API
// (reschedule) and the alarm is fired with runDurableObjectAlarm.
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../src/index.ts";
import { type JobKind, JobTable } from "../src/proposal/scheduler.ts";
import { POLICY, TOKENS } from "./fixtures.ts";
import {
  auditOf,
  BASE,
  call,
  click,
  createdThisTest,
  createProposal,
  denySubmission,
  getProposal,
  inJobTable,
  jobsOf,
  json,
  proposalBody,
  settle,
  slackRequest,
  stubOf,
} from "./helpers/api.ts";
import { peer } from "./peer/client.ts";

/** Actions beside the bindings' POLICY (config tests pin its list), named so the writer key (k8s.*) may propose them. */
const ACTIONS = {
  // Reminders switched off.
  "k8s.hush": { approvers: ["U0ALICE"], channel: "C0INCIDENT", remind_at: [] },
  // Two of Alice and Dave; undecided after 2 min it escalates by itself to Alice and the lead, 5 min more to decide.
  "k8s.auto": {
    approvers: ["U0ALICE", "U0DAVE"],
    required_approvals: 2,
    channel: "C0INCIDENT",
    remind_at: [0.25],
    escalation: {
      approvers: ["U0ALICE", "U0LEAD"],
      channel: "C0ESCALATE",
      after_seconds: 120,
      extend_ttl_seconds: 300,
    },
  },
} as const;

const extended: Cloudflare.Env = {
  ...env,
  POLICY: JSON.stringify({ ...POLICY, actions: { ...POLICY.actions, ...ACTIONS } }),
};

/** Creates a proposal of one of ACTIONS through the Worker with the extended policy. */
async function proposeWith(type: keyof typeof ACTIONS, overrides: Record<string, unknown> = {}) {
  const ctx = createExecutionContext();
  const request = new Request(`${BASE}/v1/proposals`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKENS.writer}`, "content-type": "application/json" },
    body: JSON.stringify(proposalBody({ action: { type, params: {} }, ...overrides })),
  });
  const res = await worker.fetch!(request as Request<unknown, IncomingRequestCfProperties>, extended, ctx);
  await waitOnExecutionContext(ctx);
  const body = await json(res);
  expect(res.status, JSON.stringify(body)).toBe(201);
  createdThisTest.add(body.id);
  return body;
}

/** Makes one job due now (as if its time had come) and runs what is due. */
async function fire(id: string, kind: JobKind, key: string): Promise<void> {
  await inJobTable(id, (jobs) => jobs.reschedule(kind, key, Date.now()));
  await settle(id);
}

/**
 * A run of `kind`/`key` that was already claimed when the decision landed (the decision cancelled the row): put it
 * back, due now, with the alarm set, and let it run.
 */
async function lateRun(id: string, kind: JobKind, key: string): Promise<void> {
  await runInDurableObject(stubOf(id), async (_instance, state) => {
    new JobTable(state.storage.sql).schedule(kind, key, Date.now());
    await state.storage.setAlarm(Date.now());
  });
  await settle(id);
}

/** The reminders posted so far: chat.postMessage calls that reply in a thread or carry no blocks (not a card). */
async function reminders() {
  return (await peer.slackCalls("chat.postMessage")).filter((m) => String(m.text).includes("Reminder"));
}

describe("reminders (issue 16)", () => {
  it("at 50 % and 90 % of the TTL: a threaded reply on the card naming who may still decide, with the time left, once each", async () => {
    const p = await createProposal({ requested_by: "U0BOB", ttl_seconds: 600 });
    await settle(p.id);
    const created = Date.parse(p.created_at);
    const due = async () => (await jobsOf(p.id, "remind")).map((j) => [j.key, j.due_at - created, j.attempt]);
    // One job at a time: the first fraction's, which moves on to the next once it is sent.
    expect(await due()).toEqual([["0.5", 300_000, 0]]);
    const { ts } = (await getProposalSlack(p.id)) ?? {};
    expect(ts).toBeDefined();

    await fire(p.id, "remind", "0.5");
    const [first] = await reminders();
    expect(first).toMatchObject({ channel: "C0INCIDENT", thread_ts: ts });
    // U0ALICE by mention, the on-call group by handle; not the requester U0BOB (a member of S0ONCALL: Slack's part).
    expect(String(first!.text)).toContain("<@U0ALICE>");
    expect(String(first!.text)).toContain("<!subteam^S0ONCALL>");
    expect(String(first!.text)).not.toContain("<@U0BOB>");
    expect(String(first!.text)).toMatch(/(9|10) min( \d+ s)? left/);
    expect(await due()).toEqual([["0.9", 540_000, 0]]);

    await fire(p.id, "remind", "0.9");
    await settle(p.id);
    expect(await reminders()).toHaveLength(2);
    // Each once: nothing is left to send, and another alarm sends nothing more.
    expect(await jobsOf(p.id, "remind")).toEqual([]);
    await settle(p.id);
    expect(await reminders()).toHaveLength(2);
    const sent = (await auditOf(p.id)).filter((e) => e.type === "reminder.sent");
    expect(sent.map((e) => [e.actor, e.details.fraction, e.details.thread_ts])).toEqual([
      ["system", 0.5, ts],
      ["system", 0.9, ts],
    ]);
    expect(sent[0]!.details.reminded).toEqual(["U0ALICE", "S0ONCALL"]);
  });

  it("names only those who have not approved yet (2 of 3: Alice approved, Dave and Erin are reminded)", async () => {
    const p = await createProposal({ action: { type: "db.failover", params: {} }, requested_by: "U0BOB" });
    await settle(p.id);
    expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    await fire(p.id, "remind", "0.5");
    const [reminder] = await reminders();
    expect(String(reminder!.text)).not.toContain("U0ALICE");
    expect(String(reminder!.text)).toContain("<@U0DAVE>, <@U0ERIN>");
  });

  it("none after a decision, an expiry or a cancellation: the jobs are gone, and a late run sends nothing", async () => {
    const approved = await createProposal({ requested_by: "U0BOB" });
    const cancelled = await createProposal({ requested_by: "U0BOB" });
    await Promise.all([settle(approved.id), settle(cancelled.id)]);
    expect((await click("approve", approved.id, "U0ALICE")).status).toBe(200);
    expect((await call(`/v1/proposals/${cancelled.id}/cancel`, { method: "POST" })).status).toBe(200);
    for (const p of [approved, cancelled]) {
      await settle(p.id);
      expect(await jobsOf(p.id, "remind")).toEqual([]);
    }
    // A reminder already claimed when the decision landed finds the proposal decided and stays silent.
    await lateRun(approved.id, "remind", "0.5");
    expect(await reminders()).toEqual([]);
    expect((await auditOf(approved.id)).filter((e) => e.type === "reminder.sent")).toEqual([]);
  });

  it("a reminder Slack refuses for good is given up, audited, and the job moves on to the next fraction", async () => {
    const p = await createProposal({ requested_by: "U0BOB" });
    await settle(p.id);
    await peer.script("/slack/api/chat.postMessage", [{ body: { ok: false, error: "channel_not_found" } }]);
    await fire(p.id, "remind", "0.5");
    const failed = (await auditOf(p.id)).filter((e) => e.type === "slack.failed" && e.details.job === "0.5");
    expect(failed.map((e) => e.details.final)).toEqual([true]);
    const [next] = await jobsOf(p.id, "remind");
    expect(next).toMatchObject({ key: "0.9", attempt: 0, lease_until: 0 });
    expect(next!.due_at).toBe(
      Math.round(Date.parse(p.created_at) + 0.9 * (Date.parse(p.expires_at) - Date.parse(p.created_at))),
    );
    await fire(p.id, "remind", "0.9");
    expect((await auditOf(p.id)).filter((e) => e.type === "reminder.sent").map((e) => e.details.fraction)).toEqual([
      0.9,
    ]);
    expect(await jobsOf(p.id, "remind")).toEqual([]);
  });

  it("an object from before (one job per fraction) sends each once: the first, moving on, takes the second's place", async () => {
    const p = await createProposal({ requested_by: "U0BOB" });
    await settle(p.id);
    const created = Date.parse(p.created_at);
    const ninety = Math.round(created + 0.9 * (Date.parse(p.expires_at) - created));
    await inJobTable(p.id, (jobs) => jobs.schedule("remind", "0.9", ninety));
    await fire(p.id, "remind", "0.5");
    expect((await jobsOf(p.id, "remind")).map((j) => [j.key, j.due_at])).toEqual([["0.9", ninety]]);
    await fire(p.id, "remind", "0.9");
    expect((await auditOf(p.id)).filter((e) => e.type === "reminder.sent").map((e) => e.details.fraction)).toEqual([
      0.5, 0.9,
    ]);
    expect(await jobsOf(p.id, "remind")).toEqual([]);
  });

  it("none when remind_at is [], and none for a TTL under a minute", async () => {
    const hush = await proposeWith("k8s.hush", { requested_by: "U0BOB" });
    const short = await createProposal({ requested_by: "U0BOB", ttl_seconds: 59 });
    expect(hush.rule.remind_at).toEqual([]);
    expect(await jobsOf(hush.id, "remind")).toEqual([]);
    expect(await jobsOf(short.id, "remind")).toEqual([]);
  });

  it("a requester_only action's reminder is a DM to the requester, not a thread", async () => {
    const p = await createProposal({
      action: { type: "demo.echo", params: {} },
      requested_by: "U0ALICE",
      ttl_seconds: 120,
    });
    await settle(p.id);
    await fire(p.id, "remind", "0.5");
    const [dm] = await reminders();
    expect(dm).toMatchObject({ channel: "U0ALICE" });
    expect(dm!.thread_ts).toBeUndefined();
    expect(String(dm!.text)).toMatch(/still waits for your answer — (1 min \d+ s|2 min) left/);
  });

  it("a card Slack refused for good: the reminder still goes to the card's channel, unthreaded", async () => {
    await peer.script("/slack/api/chat.postMessage", [{ body: { ok: false, error: "not_in_channel" } }]);
    const p = await createProposal({ requested_by: "U0BOB" });
    await settle(p.id);
    expect((await auditOf(p.id)).find((e) => e.type === "slack.failed")?.details).toMatchObject({ final: true });
    await fire(p.id, "remind", "0.5");
    const [reminder] = await reminders();
    expect(reminder).toMatchObject({ channel: "C0INCIDENT" });
    expect(reminder!.thread_ts).toBeUndefined();
  });

  it("Slack 429 and 5xx: retried (Retry-After honoured), audited, and sent once in the end", async () => {
    const p = await createProposal({ requested_by: "U0BOB" });
    await settle(p.id);
    await peer.script("/slack/api/chat.postMessage", [
      { status: 429, headers: { "retry-after": "3" }, body: { ok: false, error: "ratelimited" } },
      { status: 503 },
    ]);
    await fire(p.id, "remind", "0.5");
    const [job] = await jobsOf(p.id, "remind");
    expect(job).toMatchObject({ key: "0.5", attempt: 1 });
    expect(job!.due_at - Date.now()).toBeGreaterThan(2_000);
    await fire(p.id, "remind", "0.5"); // the 503
    await fire(p.id, "remind", "0.5"); // delivered
    const calls = await peer.requests("/slack/api/chat.postMessage");
    expect(calls.filter((c) => c.body.includes("Reminder"))).toHaveLength(3);
    const audit = await auditOf(p.id);
    const failed = audit.filter((e) => e.type === "slack.failed" && e.details.job === "0.5");
    expect(failed.map((e) => e.details.final)).toEqual([false, false]);
    expect(audit.filter((e) => e.type === "reminder.sent")).toHaveLength(1);
    expect((await jobsOf(p.id, "remind")).map((j) => j.key)).toEqual(["0.9"]);
  });
});

describe("automatic escalation (issue 16)", () => {
  it("undecided after escalation.after_seconds: escalates exactly as a click would, as signoff, and is no one's vote", async () => {
    const p = await proposeWith("k8s.auto", { requested_by: "U0BOB", ttl_seconds: 600 });
    await settle(p.id);
    const [job] = await jobsOf(p.id, "escalate");
    expect(job!.due_at - Date.parse(p.created_at)).toBe(120_000);
    expect((await click("approve", p.id, "U0DAVE")).status).toBe(200);
    await fire(p.id, "escalate", "auto");

    const escalated = await getProposal(p.id);
    expect(escalated.status).toBe("pending");
    expect(escalated.escalated).toMatchObject({ by: "signoff", prior_approvals: [{ user: "U0DAVE" }] });
    expect(escalated.approvals).toEqual([]);
    expect(Date.parse(escalated.expires_at) - Date.parse(p.expires_at)).toBe(300_000);
    const event = (await auditOf(p.id)).find((e) => e.type === "proposal.escalated");
    expect(event).toMatchObject({ actor: "signoff", details: { automatic: true, after_seconds: 120 } });
    // As after a click: the escalation message goes to the escalation channel; the reminder moved with the deadline.
    const posted = await peer.slackCalls("chat.postMessage");
    expect(posted.map((m) => m.channel)).toEqual(["C0INCIDENT", "C0ESCALATE"]);
    const [remind] = await jobsOf(p.id, "remind");
    expect(remind!.due_at).toBe(
      Math.round(Date.parse(p.created_at) + 0.25 * (Date.parse(escalated.expires_at) - Date.parse(p.created_at))),
    );
    expect(await jobsOf(p.id, "escalate")).toEqual([]);

    // The requester never counts; an escalation approver decides (the clock excluded nobody, and voted for no one).
    expect((await click("approve", p.id, "U0BOB")).status).toBe(200);
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    expect((await click("approve", p.id, "U0LEAD")).status).toBe(200);
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("succeeded");
  });

  it("after a click escalation the clock does nothing: the escalator stays excluded (escalate, then approve alone)", async () => {
    const p = await proposeWith("k8s.auto", { requested_by: "U0BOB" });
    await settle(p.id);
    expect((await click("escalate", p.id, "U0ALICE")).status).toBe(200);
    await settle(p.id);
    expect(await jobsOf(p.id, "escalate")).toEqual([]);
    // Even a run that was already under way changes nothing: the proposal is escalated, by Alice.
    await lateRun(p.id, "escalate", "auto");
    expect((await getProposal(p.id)).escalated).toMatchObject({ by: "slack:U0ALICE" });
    expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    const refused = (await auditOf(p.id)).filter((e) => e.type === "click.refused");
    expect(refused.map((e) => e.details.code)).toEqual(["escalated_by_you"]);
    expect((await auditOf(p.id)).filter((e) => e.type === "proposal.escalated")).toHaveLength(1);
  });

  it("decided before after_seconds: no escalation", async () => {
    const p = await proposeWith("k8s.auto", { requested_by: "U0BOB" });
    await settle(p.id);
    expect((await slackRequest(denySubmission(p.id, "U0ALICE", "not now"))).status).toBe(200);
    await settle(p.id);
    expect(await jobsOf(p.id, "escalate")).toEqual([]);
    await lateRun(p.id, "escalate", "auto");
    const after = await getProposal(p.id);
    expect(after).toMatchObject({ status: "denied", escalated: null });
  });
});

/** The card's Slack message as the proposal recorded it. */
async function getProposalSlack(id: string): Promise<{ channel: string; ts: string } | undefined> {
  const events = await auditOf(id);
  const posted = events.find((e) => e.type === "slack.message_posted" && e.details.role === "card");
  return posted ? { channel: posted.details.channel, ts: posted.details.ts } : undefined;
}
