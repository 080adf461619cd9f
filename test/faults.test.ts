// Fault injection (SPEC 5, 6, 8, 10): D1 down during a busy period, a runner down for many
// minutes, Slack 429/5xx storms, a Durable Object evicted mid-flow. The failures are real: D1's
// table is renamed away, the loopback peer answers 5xx/429/hangs/drops, workerd evicts the object.
import { abortAllDurableObjects, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { type AuditEvent, verifyChains } from "../src/audit/chain.ts";
import { queryAuditEvents } from "../src/audit/store.ts";
import type { ProposalObject } from "../src/proposal/object.ts";
import { JobTable } from "../src/proposal/scheduler.ts";
import { TOKENS } from "./fixtures.ts";
import {
  auditOf,
  call,
  click,
  createProposal,
  denySubmission,
  getProposal,
  inJobTable,
  jobsOf,
  json,
  runAlarm,
  runJobsNow,
  runnerSignedHeaders,
  settle,
  slackRequest,
  stubOf,
} from "./helpers/api.ts";
import { d1 } from "./helpers/d1-outage.ts";
import { peer, type RecordedRequest, type ScriptedResponse } from "./peer/client.ts";

const db = env.AUDIT_DB;
const PEER = env.TEST_PEER;

/** A proposal as the API returns it. */
type P = Record<string, any>;
/** Up to ten proposals made together, destructured by name (the test made that many). */
type Ten<T> = [T, T, T, T, T, T, T, T, T, T];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(async () => {
  await d1.restoreAuditTable();
});

async function d1Events(ids: readonly string[]): Promise<Map<string, AuditEvent[]>> {
  const wanted = new Set(ids);
  const byProposal = new Map<string, AuditEvent[]>(ids.map((id) => [id, []]));
  for (const event of await queryAuditEvents(db, { limit: 1_000_000 })) {
    if (wanted.has(event.proposal_id)) byProposal.get(event.proposal_id)!.push(event);
  }
  return byProposal;
}

/** The object's own view of its audit trail: how far its chain goes and what still waits for D1. */
async function objectAudit(
  id: string,
): Promise<{ head: number; outbox: number; auditJob: { attempt: number; due_at: number } | null }> {
  return runInDurableObject(stubOf(id), async (instance: ProposalObject, state) => {
    const { head, pending } = await instance.auditHead();
    const job = new JobTable(state.storage.sql).list().find((j) => j.kind === "audit");
    return {
      head: head.idx,
      outbox: pending.length,
      auditJob: job ? { attempt: job.attempt, due_at: job.due_at } : null,
    };
  });
}

/** Dispatches the runner received for one proposal (other tests' objects may still be retrying theirs). */
async function runnerRequestsOf(id: string): Promise<RecordedRequest[]> {
  return (await peer.requests("/runner")).filter(
    (r) => (JSON.parse(r.body) as { proposal_id: string }).proposal_id === id,
  );
}

/** When the object's alarm should fire next: its earliest job (or the end of a run that holds it). */
function nextWake(id: string): Promise<number | null> {
  return inJobTable(id, (jobs) => jobs.nextWake());
}

/** The i-th request to a scripted path got the i-th scripted answer (the peer answers in arrival order). */
function answersOf(
  requests: RecordedRequest[],
  script: ScriptedResponse[],
): Array<{ request: RecordedRequest; status: number }> {
  return requests.map((request, i) => ({
    request,
    status: script[i] ? (script[i]!.destroy ? 0 : (script[i]!.status ?? 200)) : 200,
  }));
}

describe("D1 unavailable during a busy period", () => {
  it("decisions go ahead; every event waits in its object's outbox, retried with backoff, then reaches D1 in order with the chains intact", async () => {
    // Busy: proposals in every state of play when D1 goes away.
    const proposals = await Promise.all(Array.from({ length: 10 }, () => createProposal()));
    await Promise.all(proposals.map((p) => settle(p.id)));
    const before = await d1Events(proposals.map((p) => p.id));
    const [a1, a2, a3, d1p, d2p, c1, o1, m1, m2, idle] = proposals as Ten<P>;
    const multi = [await createProposal({ action: { type: "db.failover", params: { cluster: "pg" } } })];

    await d1.breakAuditTable();
    // While D1 is down: approvals (one by a group member), denials with and without a reason,
    // a cancel, an outsider's click, a 2-of-3 approval in two steps, a new proposal.
    const clicks = await Promise.all([
      click("approve", a1.id, "U0ALICE"),
      click("approve", a2.id, "U0OSCAR"),
      click("approve", a3.id, "U0ALICE"),
      click("approve", a3.id, "U0OSCAR"),
      click("deny", d1p.id, "U0ALICE"),
      click("deny", d2p.id, "U0ALICE"),
      click("approve", o1.id, "U0MALLORY"),
      click("approve", m1.id, "U0BOB"),
      click("approve", multi[0]!.id, "U0ALICE"),
    ]);
    for (const res of clicks) expect(res.status).toBe(200);
    expect((await slackRequest(denySubmission(d1p.id, "U0ALICE", "not during the freeze"))).status).toBe(200);
    expect((await slackRequest(denySubmission(d2p.id, "U0ALICE"))).status).toBe(200);
    expect((await call(`/v1/proposals/${c1.id}/cancel`, { method: "POST" })).status).toBe(200);
    expect((await click("approve", multi[0]!.id, "U0DAVE")).status).toBe(200);
    const born = await createProposal(); // creating needs no D1 either
    const all = [...proposals, multi[0]!, born];

    // Several alarm runs while D1 stays down: dispatch, Slack and outcome work goes on, flushes fail.
    for (let round = 0; round < 4; round++) await Promise.all(all.map((p) => runJobsNow(p.id)));

    const statuses = Object.fromEntries(
      await Promise.all(all.map(async (p) => [p.id, (await getProposal(p.id)).status] as const)),
    );
    expect([statuses[a1.id], statuses[a2.id], statuses[a3.id], statuses[multi[0]!.id]]).toEqual([
      "succeeded",
      "succeeded",
      "succeeded",
      "succeeded",
    ]);
    expect([statuses[d1p.id], statuses[d2p.id], statuses[c1.id]]).toEqual(["denied", "denied", "cancelled"]);
    expect([statuses[o1.id], statuses[m1.id], statuses[m2.id], statuses[idle.id], statuses[born.id]]).toEqual([
      "pending",
      "pending",
      "pending",
      "pending",
      "pending",
    ]);
    expect(await peer.requests("/runner")).toHaveLength(4);

    // Nothing new reached D1; it all waits in the objects, the flush job retried with backoff.
    const waiting = await Promise.all(all.map((p) => objectAudit(p.id)));
    const touched = all.filter((p) => p.id !== idle.id && p.id !== m2.id);
    for (const p of touched) {
      const audit = waiting[all.indexOf(p)]!;
      expect(audit.outbox, p.id).toBeGreaterThan(0);
      expect(audit.auditJob, p.id).not.toBeNull();
      expect(audit.auditJob!.attempt, p.id).toBeGreaterThanOrEqual(4);
      // 1 s doubling (±10 %), capped at a minute: a backoff, never given up.
      expect(audit.auditJob!.due_at - Date.now(), p.id).toBeGreaterThan(5_000);
      expect(audit.auditJob!.due_at - Date.now(), p.id).toBeLessThanOrEqual(60_000);
    }
    expect(waiting[all.indexOf(idle)]!.outbox).toBe(0);

    // More flush attempts than the cap needs: the events are still kept.
    for (let round = 0; round < 4; round++) await Promise.all(touched.map((p) => runJobsNow(p.id, ["audit"])));
    const stillWaiting = await Promise.all(touched.map((p) => objectAudit(p.id)));
    for (const [i, audit] of stillWaiting.entries()) {
      expect(audit.outbox, touched[i]!.id).toBe(waiting[all.indexOf(touched[i]!)]!.outbox);
    }
    // By now the wait has reached its cap: about a minute (54–60 s with jitter), and it stays there.
    for (const audit of stillWaiting) {
      expect(audit.auditJob!.attempt).toBeGreaterThanOrEqual(8);
      expect(audit.auditJob!.due_at - Date.now()).toBeGreaterThan(50_000);
      expect(audit.auditJob!.due_at - Date.now()).toBeLessThanOrEqual(60_000);
    }

    // Every failed flush was logged for the operator, each naming its proposal and D1's error.
    const warned = await d1.restoreAuditTable();
    for (const p of touched) {
      expect(warned.filter((w) => w.startsWith(`audit flush for ${p.id} failed`)).length, p.id).toBeGreaterThanOrEqual(
        8,
      );
    }
    expect(warned.every((w) => w.includes("no such table: audit_events"))).toBe(true);
    await Promise.all(all.map((p) => runJobsNow(p.id, ["audit"])));

    const after = await d1Events(all.map((p) => p.id));
    const heads = await Promise.all(all.map((p) => objectAudit(p.id)));
    all.forEach((p, i) => {
      const events = after.get(p.id)!;
      expect(heads[i]!.outbox, p.id).toBe(0);
      // Every sealed event is in D1 exactly once, positions 1…n, written in chain order.
      expect(
        events.map((e) => e.idx),
        p.id,
      ).toEqual(Array.from({ length: heads[i]!.head }, (_, k) => k + 1));
      const seqs = (events as Array<AuditEvent & { seq: number }>).map((e) => e.seq);
      expect(seqs, p.id).toEqual([...seqs].sort((x, y) => x - y));
      // What D1 had before the outage is untouched.
      const earlier = before.get(p.id) ?? [];
      expect(
        events.slice(0, earlier.length).map((e) => e.hash),
        p.id,
      ).toEqual(earlier.map((e) => e.hash));
    });
    const report = verifyChains([...after.values()].flat());
    expect(report).toMatchObject({ ok: true, problems: [] });

    const typesOf = (id: string) => after.get(id)!.map((e) => e.type);
    expect(typesOf(a2.id)).toEqual(
      expect.arrayContaining([
        "approval.recorded",
        "proposal.approved",
        "dispatch.attempt",
        "dispatch.answer",
        "proposal.succeeded",
      ]),
    );
    expect(typesOf(d1p.id)).toContain("proposal.denied");
    expect(after.get(d1p.id)!.find((e) => e.type === "proposal.denied")!.details).toMatchObject({
      reason: "not during the freeze",
    });
    expect(typesOf(c1.id)).toContain("proposal.cancelled");
    expect(typesOf(o1.id)).toContain("click.refused");
    expect(typesOf(m1.id)).toContain("click.refused");
    expect(typesOf(multi[0]!.id).filter((t) => t === "approval.recorded")).toHaveLength(2);
    expect(typesOf(born.id)).toContain("proposal.created");
    expect(typesOf(a1.id)).toContain("slack.message_updated");
  });
});

describe("runner down for many minutes", () => {
  /** Waits (ms) between each failed attempt and the retry it scheduled, from the audit trail. */
  async function schedule(id: string): Promise<number[]> {
    return (await auditOf(id))
      .filter((e) => e.type === "dispatch.answer" && e.details.retry_at)
      .map((e) => Date.parse(e.details.retry_at) - Date.parse(e.at));
  }

  function expectBackoff(waits: number[], expected: number[]): void {
    expect(waits).toHaveLength(expected.length);
    waits.forEach((wait, i) => {
      // ±10 % jitter around 2 s · 2^(n-1), capped at 5 min (and jitter never goes past the cap).
      expect(wait, `retry ${i + 1}`).toBeGreaterThanOrEqual(Math.floor(expected[i]! * 0.9) - 5);
      expect(wait, `retry ${i + 1}`).toBeLessThanOrEqual(Math.min(300_000, Math.ceil(expected[i]! * 1.1)) + 5);
    });
  }

  it("down for 6 attempts (5xx, 429, 408, a hang, a dropped connection) over two minutes, then up: retried 2 s, 4 s, 8 s … and dispatched once", async () => {
    const down: ScriptedResponse[] = [
      { status: 503 },
      { status: 502 },
      { destroy: true },
      { status: 429, headers: { "retry-after": "1" } },
      { status: 504, delay_ms: 1_700 }, // beyond DISPATCH_TIMEOUT_MS (1.5 s in tests)
      { status: 408 },
    ];
    await peer.script("/runner", down);
    const p = await createProposal();
    expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
    await settle(p.id);
    for (let i = 0; i < down.length; i++) {
      const during = await getProposal(p.id);
      expect(during).toMatchObject({ status: "approved", dispatch: { attempts: i + 1 } });
      expect(during.dispatch.last_error).toMatch(/runner (answered HTTP|timed out|unreachable)/);
      // A click meanwhile changes nothing.
      await click("approve", p.id, "U0OSCAR");
      await runJobsNow(p.id, ["dispatch"]);
    }
    await settle(p.id);

    expectBackoff(await schedule(p.id), [2_000, 4_000, 8_000, 16_000, 32_000, 64_000]);
    const all = await peer.requests("/runner");
    const requests = await runnerRequestsOf(p.id);
    expect(requests).toEqual(all);
    expect(requests).toHaveLength(7);
    expect(requests.map((r) => JSON.parse(r.body).attempt)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(new Set(requests.map((r) => r.headers["webhook-id"]))).toEqual(new Set([`dsp_${p.id}`]));
    expect(answersOf(requests, down).filter((a) => a.status >= 200 && a.status < 300)).toHaveLength(1);
    const answers = (await auditOf(p.id)).filter((e) => e.type === "dispatch.answer").map((e) => e.details.outcome);
    expect(answers).toEqual(["retry", "retry", "retry", "retry", "retry", "retry", "final"]);
    expect(await getProposal(p.id)).toMatchObject({ status: "succeeded", dispatch: { attempts: 7, last_error: null } });

    // Alarms that run again afterwards send nothing more.
    await runJobsNow(p.id);
    await runAlarm(p.id);
    expect(await runnerRequestsOf(p.id)).toHaveLength(7);
  });

  it("down for all 8 attempts (about four minutes of backoff): dispatch_failed, the card says nothing ran, nothing is sent again", async () => {
    await peer.script(
      "/runner",
      Array.from(
        { length: 8 },
        (_, i): ScriptedResponse => (i % 3 === 2 ? { destroy: true } : { status: 500 + (i % 4) }),
      ),
    );
    const p = await createProposal();
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);
    for (let i = 0; i < 7; i++) await runJobsNow(p.id, ["dispatch"]);
    await settle(p.id);
    const waits = await schedule(p.id);
    expectBackoff(waits, [2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000]);
    expect(waits.reduce((sum, w) => sum + w, 0)).toBeGreaterThan(3.5 * 60_000);
    const after = await getProposal(p.id);
    expect(after).toMatchObject({ status: "dispatch_failed", dispatch: { attempts: 8 } });
    expect((await auditOf(p.id)).find((e) => e.type === "proposal.dispatch_failed")!.details).toMatchObject({
      reason: "retries_exhausted",
      attempts: 8,
    });
    const card = (await peer.slackCalls("chat.update")).at(-1)!;
    expect(JSON.stringify(card.blocks)).toMatch(/nothing ran/i);
    expect((card.blocks as Array<{ type: string }>).some((b) => b.type === "actions")).toBe(false);

    await runJobsNow(p.id);
    await runAlarm(p.id);
    expect(await runnerRequestsOf(p.id)).toHaveLength(8);
    expect((await jobsOf(p.id, "dispatch")).length).toBe(0);
  });

  it("with DISPATCH_MAX_ATTEMPTS 12 the wait stops growing at 5 minutes", async () => {
    await peer.script(
      "/runner",
      Array.from({ length: 11 }, () => ({ status: 503 })),
    );
    const p = await createProposal();
    // The operator's knob (1–50), given to this one object: the same code reads it through loadConfig.
    await runInDurableObject(stubOf(p.id), (instance) => {
      const object = instance as unknown as { env: Record<string, unknown> };
      object.env = { ...object.env, DISPATCH_MAX_ATTEMPTS: "12" };
    });
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);
    for (let i = 0; i < 11; i++) await runJobsNow(p.id, ["dispatch"]);
    await settle(p.id);
    expectBackoff(
      await schedule(p.id),
      [2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000, 300_000],
    );
    expect(await getProposal(p.id)).toMatchObject({ status: "succeeded", dispatch: { attempts: 12 } });
    expect(await runnerRequestsOf(p.id)).toHaveLength(12);
  });
});

describe("forged and malicious runner answers", () => {
  it("a runner answer is data: a redirect is not followed, a huge hostile output is cut and escaped, no body reaches an error", async () => {
    const hostileOutput = `<!channel> <https://evil.example|your bank> ${"A".repeat(40_000)}`;
    await peer.script("/runner", [
      {
        status: 302,
        headers: { location: `${PEER}/internal/metadata` },
        body: { leaked: "RUNNER-BODY-MUST-NOT-LEAK" },
      },
      { status: 200, body: { status: "failed", output: hostileOutput } },
    ]);
    const redirected = await createProposal();
    await click("approve", redirected.id, "U0ALICE");
    await settle(redirected.id);
    const hostile = await createProposal();
    await click("approve", hostile.id, "U0ALICE");
    await settle(hostile.id);

    // A redirect is an answer, not an instruction: not followed, and the dispatch ends.
    const afterRedirect = await getProposal(redirected.id);
    expect(afterRedirect).toMatchObject({
      status: "dispatch_failed",
      dispatch: { attempts: 1, last_error: "runner refused with HTTP 302" },
    });
    expect(await peer.requests("/internal")).toHaveLength(0);
    expect(JSON.stringify(afterRedirect) + JSON.stringify(await auditOf(redirected.id))).not.toContain(
      "RUNNER-BODY-MUST-NOT-LEAK",
    );

    // A huge hostile result is kept to 16 KiB, and the card shows an escaped excerpt.
    const afterHostile = await getProposal(hostile.id);
    expect(afterHostile.status).toBe("failed");
    expect(afterHostile.result.output).toBe(hostileOutput.slice(0, 16_384));
    // The card as last sent: clicked before its first post went out, it is posted already showing the result.
    const card = [...(await peer.slackCalls("chat.postMessage")), ...(await peer.slackCalls("chat.update"))]
      .filter((c) => JSON.stringify(c.blocks).includes(hostile.id))
      .at(-1)!;
    const text = JSON.stringify(card.blocks);
    expect(text).toContain("&lt;!channel&gt;");
    expect(text).not.toContain("<!channel>");
    expect(text).not.toContain("<https://evil.example");
    expect(text.length).toBeLessThan(8_000);
  });

  it("a correctly signed result for one proposal is refused on another", async () => {
    await peer.script("/runner", [
      { status: 202, body: {} },
      { status: 202, body: {} },
    ]);
    const a = await createProposal();
    const b = await createProposal();
    await Promise.all([click("approve", a.id, "U0ALICE"), click("approve", b.id, "U0ALICE")]);
    await Promise.all([settle(a.id), settle(b.id)]);
    expect((await getProposal(b.id)).status).toBe("dispatched");

    // The runner reports on A with a random webhook-id and, like a runner older than
    // proposal_id in results, nothing in the signed body that names A.
    const body = JSON.stringify({ status: "failed", output: "A's disk is full" });
    const headers = {
      "content-type": "application/json",
      ...runnerSignedHeaders(body, { msgId: `msg_result_${crypto.randomUUID()}` }),
    };
    expect((await call(`/v1/proposals/${a.id}/result`, { token: null, rawBody: body, headers })).status).toBe(200);

    // Whoever saw that request replays it, byte for byte, against B.
    const replayed = await call(`/v1/proposals/${b.id}/result`, { token: null, rawBody: body, headers });
    // Refused: B still waits for its own result.
    expect(replayed.status).not.toBe(200);
    expect(await getProposal(b.id)).toMatchObject({ status: "dispatched", result: null });
  });
  it("a signed result reported while D1 is down is still recorded: the decision path never needs D1 (SPEC 8)", async () => {
    await peer.script("/runner", [{ status: 202, body: {} }]);
    const p = await createProposal();
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("dispatched");
    const body = JSON.stringify({ status: "succeeded", output: "done while D1 was away", proposal_id: p.id });
    const headers = {
      "content-type": "application/json",
      ...runnerSignedHeaders(body, { msgId: `msg_result_${crypto.randomUUID()}` }),
    };
    await d1.breakAuditTable();
    await db.exec("ALTER TABLE runner_result_ids RENAME TO runner_result_ids_offline");
    let res: Response;
    try {
      res = await call(`/v1/proposals/${p.id}/result`, { token: null, rawBody: body, headers });
    } finally {
      await db.exec("ALTER TABLE runner_result_ids_offline RENAME TO runner_result_ids");
    }
    // Expected: 200 and the result recorded, its events waiting in the outbox like any other.
    // (A 5xx makes the runner retry for a few minutes and then give up: the proposal would stay
    // "dispatched" for ever if D1 is away longer.)
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await getProposal(p.id)).toMatchObject({
      status: "succeeded",
      result: { output: "done while D1 was away" },
    });
  });
});

describe("Slack 429/5xx storms", () => {
  const rateLimited: ScriptedResponse = {
    status: 429,
    headers: { "retry-after": "2" },
    body: { ok: false, error: "ratelimited" },
  };
  const storm = (n: number): ScriptedResponse[] =>
    Array.from(
      { length: n },
      (_, i) =>
        [
          rateLimited,
          { status: 500 },
          { status: 503 },
          { status: 502 },
          { status: 200, body: { ok: false, error: "service_unavailable" } },
        ][i % 5]!,
    );

  /** What the message for proposal `id` says now: the last successful post or update that names it. */
  async function lastMessage(id: string, scripts: Record<string, ScriptedResponse[]>) {
    const calls: Array<{ seq: number; ok: boolean; body: Record<string, unknown> }> = [];
    for (const method of ["chat.postMessage", "chat.update"]) {
      const requests = await peer.requests(`/slack/api/${method}`);
      requests.forEach((request, i) => {
        const scripted = scripts[method]?.[i];
        const ok =
          !scripted ||
          ((scripted.status ?? 200) === 200 && (scripted.body as { ok?: boolean } | undefined)?.ok !== false);
        calls.push({ seq: request.seq, ok, body: JSON.parse(request.body) as Record<string, unknown> });
      });
    }
    return calls
      .filter((c) => c.ok && JSON.stringify(c.body.blocks).includes(id))
      .sort((x, y) => x.seq - y.seq)
      .at(-1);
  }

  it("posts and updates fail for a while: every decision still lands at once, and every card ends up telling the truth", async () => {
    const scripts = { "chat.postMessage": storm(14), "chat.update": storm(14) };
    await peer.script("/slack/api/chat.postMessage", scripts["chat.postMessage"]);
    const proposals = await Promise.all(Array.from({ length: 6 }, () => createProposal()));
    await Promise.all(proposals.map((p) => settle(p.id)));
    // The storm goes on (the scripted failures are not used up yet); nothing is decided by it.
    expect((await peer.requests("/slack/api/chat.postMessage")).length).toBeLessThan(
      scripts["chat.postMessage"].length,
    );
    const statuses = await Promise.all(proposals.map(async (p) => (await getProposal(p.id)).status));
    expect(statuses).toEqual(proposals.map(() => "pending"));
    const [approved, approved2, denied, cancelled, refused, pending] = proposals as Ten<P>;

    // Retry-After is honoured: a card whose last post was rate-limited waits as long as Slack said.
    const failures = (await Promise.all(proposals.map((p) => auditOf(p.id))))
      .flat()
      .filter((e) => e.type === "slack.failed");
    expect(failures.length).toBeGreaterThan(0);
    for (const failure of failures) expect(failure.details).toMatchObject({ final: false });
    let honoured = 0;
    for (const p of proposals) {
      const last = failures.filter((f) => f.proposal_id === p.id).at(-1);
      if (!last || !/429/.test(String(last.details.error))) continue;
      const [job] = (await jobsOf(p.id, "slack")).filter((j) => j.key === "card");
      expect(job!.due_at - Date.parse(last.at), p.id).toBeGreaterThanOrEqual(2_000);
      expect(job!.due_at - Date.parse(last.at), p.id).toBeLessThan(2_100);
      honoured += 1;
    }
    expect(honoured).toBeGreaterThan(0);

    await peer.script("/slack/api/chat.update", scripts["chat.update"]);
    const started = Date.now();
    const decisions = await Promise.all([
      click("approve", approved.id, "U0ALICE"),
      click("approve", approved2.id, "U0OSCAR"),
      click("deny", denied.id, "U0ALICE"),
      click("approve", refused.id, "U0MALLORY"),
      call(`/v1/proposals/${cancelled.id}/cancel`, { method: "POST" }),
    ]);
    await slackRequest(denySubmission(denied.id, "U0ALICE", "storm"));
    for (const res of decisions) expect(res.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(2_000);
    // Decided, and dispatched, while Slack is still failing.
    await Promise.all(proposals.map((p) => runJobsNow(p.id, ["dispatch", "audit", "notify"])));
    expect((await getProposal(approved.id)).status).toBe("succeeded");
    expect((await getProposal(approved2.id)).status).toBe("succeeded");
    expect((await getProposal(denied.id)).status).toBe("denied");
    expect((await getProposal(cancelled.id)).status).toBe("cancelled");
    expect(await runnerRequestsOf(approved.id)).toHaveLength(1);
    expect(await runnerRequestsOf(approved2.id)).toHaveLength(1);

    // Let the Slack jobs retry until the storm is over.
    for (let round = 0; round < 12; round++) {
      const left = (await Promise.all(proposals.map((p) => jobsOf(p.id, "slack")))).flat().length;
      if (left === 0) break;
      await Promise.all(proposals.map((p) => runJobsNow(p.id, ["slack"])));
    }
    expect((await Promise.all(proposals.map((p) => jobsOf(p.id, "slack")))).flat()).toHaveLength(0);

    const truth: Array<[P, RegExp, boolean]> = [
      [approved, /Succeeded/, false],
      [approved2, /Succeeded/, false],
      [denied, /Denied[\s\S]*storm/, false],
      [cancelled, /Cancelled[\s\S]*Nothing ran/, false],
      [refused, /Approve/, true],
      [pending, /Approve/, true],
    ];
    for (const [p, says, buttons] of truth) {
      const message = await lastMessage(p.id, scripts);
      expect(message, p.id).toBeDefined();
      expect(JSON.stringify(message!.body.blocks), p.id).toMatch(says);
      expect(
        (message!.body.blocks as Array<{ type: string }>).some((b) => b.type === "actions"),
        p.id,
      ).toBe(buttons);
    }
    // Every failure was audited, none of them final (the storm was shorter than the retry budget).
    const all = (await Promise.all(proposals.map((p) => auditOf(p.id)))).flat();
    const slackFailures = all.filter((e) => e.type === "slack.failed");
    expect(slackFailures.length).toBeGreaterThanOrEqual(10);
    expect(slackFailures.filter((e) => e.details.final === true && e.details.method !== "chat.postEphemeral")).toEqual(
      [],
    );
  });
});

describe("a Durable Object evicted mid-flow", () => {
  // Eviction waits for the object's work in flight to drain, and a Slack call leaves a 10 s
  // timeout timer behind (src/slack/web-api.ts), so an eviction takes up to ~10 s: the three
  // objects below are evicted together, with their pending jobs due well after that.
  it("a scheduled dispatch retry, the expiry and events waiting for D1 all survive eviction and complete once", async () => {
    // A: approved, runner down for 4 attempts: the next retry is ~16 s away.
    await peer.script("/runner", [{ status: 503 }, { status: 503 }, { status: 500 }, { status: 502 }]);
    const a = await createProposal();
    await click("approve", a.id, "U0ALICE");
    await settle(a.id);
    for (let i = 0; i < 3; i++) await runJobsNow(a.id, ["dispatch"]);
    const [retry] = await jobsOf(a.id, "dispatch");
    expect(retry).toMatchObject({ attempt: 4 });
    expect(retry!.due_at - Date.now()).toBeGreaterThan(12_000);
    // B: pending, its deadline after the eviction is over.
    const b = await createProposal({ ttl_seconds: 13 });
    // C: decided while D1 is down: its events wait in the outbox.
    const c = await createProposal();
    await settle(b.id);
    await settle(c.id);
    await d1.breakAuditTable();
    await click("deny", c.id, "U0ALICE");
    await slackRequest(denySubmission(c.id, "U0ALICE", "evicted meanwhile"));
    await settle(c.id);
    const waiting = await objectAudit(c.id);
    expect(waiting.outbox).toBeGreaterThanOrEqual(2);

    await Promise.all([a, b, c].map((p) => evictDurableObject(stubOf(p.id))));

    // New instances, from storage alone: state, jobs, alarms and the outbox are all there.
    expect(await getProposal(a.id)).toMatchObject({
      status: "approved",
      dispatch: { attempts: 4, last_error: "runner answered HTTP 502" },
    });
    expect(await jobsOf(a.id, "dispatch")).toEqual([retry]);
    expect(await getProposal(b.id)).toMatchObject({ status: "pending" });
    expect(await getProposal(c.id)).toMatchObject({ status: "denied", decision: { reason: "evicted meanwhile" } });
    expect((await objectAudit(c.id)).outbox).toBe(waiting.outbox);
    for (const p of [a, b, c]) {
      // The platform alarm is still armed, for the earliest job (C's flush may have retried meanwhile).
      const alarm = await runInDurableObject(stubOf(p.id), (_i, state) => state.storage.getAlarm());
      const wake = await nextWake(p.id);
      expect(alarm, p.id).not.toBeNull();
      expect(alarm!, p.id).toBeLessThanOrEqual(Math.max(wake!, Date.now()));
    }
    expect(await nextWake(b.id)).toBe(Date.parse(b.expires_at));

    // B expires by its stored alarm alone, on time; a long-poll on the fresh instance sees it.
    const expired = await json(await call(`/v1/proposals/${b.id}?wait=15`, { token: TOKENS.reader }));
    expect(expired.status).toBe("expired");
    const late = Date.parse(expired.decision.at) - Date.parse(b.expires_at);
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThan(1_000);

    // A's retry runs when its time comes (made due now), once.
    await runJobsNow(a.id, ["dispatch"]);
    expect(await getProposal(a.id)).toMatchObject({ status: "succeeded", dispatch: { attempts: 5 } });
    const requests = await runnerRequestsOf(a.id);
    expect(requests.map((r) => JSON.parse(r.body).attempt)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(requests.map((r) => r.headers["webhook-id"]))).toEqual(new Set([`dsp_${a.id}`]));

    // C's events reach D1 once it is back, in order.
    await d1.restoreAuditTable();
    await Promise.all([a, b, c].map((p) => runJobsNow(p.id, ["audit"])));
    for (const p of [a, b, c]) {
      const head = await objectAudit(p.id);
      const events = (await d1Events([p.id])).get(p.id)!;
      expect(head.outbox).toBe(0);
      expect(events.map((e) => e.idx)).toEqual(Array.from({ length: head.head }, (_, i) => i + 1));
      expect(verifyChains(events).ok).toBe(true);
    }
    expect((await auditOf(b.id)).filter((e) => e.type === "proposal.expired")).toHaveLength(1);
    expect((await auditOf(c.id)).find((e) => e.type === "proposal.denied")!.details).toMatchObject({
      reason: "evicted meanwhile",
    });
  }, 60_000);

  it("evicted while a dispatch is in flight: the proposal still ends with one accepted dispatch, under one webhook-id", {
    timeout: 60_000,
  }, async () => {
    await peer.script("/runner", [
      { delay_ms: 600, status: 200, body: { status: "succeeded", output: "slow but fine" } },
    ]);
    const p = await createProposal();
    await settle(p.id);
    await click("approve", p.id, "U0ALICE");
    // The click's own call (or this alarm) is sending the dispatch when the object goes away.
    const inFlight = runAlarm(p.id).catch(() => false);
    await sleep(150);
    await evictDurableObject(stubOf(p.id)).catch(() => undefined);
    await inFlight;
    // Whatever the eviction cut short is picked up again (a held lease runs out first).
    for (let i = 0; i < 3 && !["succeeded", "dispatched"].includes((await getProposal(p.id)).status); i++) {
      await runJobsNow(p.id, ["dispatch"]);
    }
    await settle(p.id, 15_000);
    const after = await getProposal(p.id);
    expect(after.status).toBe("succeeded");
    const requests = await runnerRequestsOf(p.id);
    expect(requests.length).toBeGreaterThanOrEqual(1);
    expect(new Set(requests.map((r) => r.headers["webhook-id"]))).toEqual(new Set([`dsp_${p.id}`]));
    expect(new Set(requests.map((r) => r.headers["idempotency-key"]))).toEqual(new Set([p.id]));
    const recorded = (await auditOf(p.id)).filter(
      (e) => e.type === "dispatch.answer" && ["final", "accepted"].includes(e.details.outcome),
    );
    expect(recorded).toHaveLength(1);
    expect(after.dispatch.attempts).toBe(requests.length);
  });
  it("crashed (not evicted) while a dispatch is in flight: once the run's lease runs out the same dispatch goes again, same webhook-id, one answer recorded", {
    timeout: 60_000,
  }, async () => {
    // The runner takes it (200) but signoff dies before it hears the answer.
    await peer.script("/runner", [
      { delay_ms: 800, status: 200, body: { status: "succeeded", output: "ran, answer lost" } },
    ]);
    const p = await createProposal();
    await settle(p.id);
    await click("approve", p.id, "U0ALICE");
    await sleep(300); // the approving click's own call is sending it now
    expect(await runnerRequestsOf(p.id)).toHaveLength(1);
    await abortAllDurableObjects();
    // Attempt 1 was counted and audited before it left; the job is still leased by the dead run.
    const [held] = await jobsOf(p.id, "dispatch");
    expect(held).toBeDefined();
    expect(await getProposal(p.id)).toMatchObject({ status: "approved", dispatch: { attempts: 1 } });
    await settle(p.id, 20_000); // waits out the lease (DISPATCH_TIMEOUT_MS + 5 s), then runs the job
    expect(await getProposal(p.id)).toMatchObject({ status: "succeeded", dispatch: { attempts: 2 } });
    const requests = await runnerRequestsOf(p.id);
    // The runner was sent the same dispatch twice: it must drop the repeat (README: "Exactly once, precisely").
    expect(requests.map((r) => JSON.parse(r.body).attempt)).toEqual([1, 2]);
    expect(new Set(requests.map((r) => r.headers["webhook-id"]))).toEqual(new Set([`dsp_${p.id}`]));
    expect(new Set(requests.map((r) => r.headers["idempotency-key"]))).toEqual(new Set([p.id]));
    const answers = (await auditOf(p.id)).filter((e) => e.type === "dispatch.answer");
    expect(answers.map((e) => [e.details.attempt, e.details.outcome])).toEqual([[2, "final"]]);
  });
});
