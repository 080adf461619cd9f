// SPEC 6 and 7: dispatch to the runner (signed, retried, exactly one accepted delivery),
// asynchronous results, and outcome events to the proposer — all verified by the loopback
// peer with the `standardwebhooks` reference library, not with signoff's own code.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { classifyRunnerResponse, MAX_REFUSAL_REASON_CHARS, refusalReason } from "../src/dispatch/runner-answer.ts";
import { readCapped } from "../src/lib/read-capped.ts";
import { MAX_ANSWER_BYTES } from "../src/proposal/jobs/dispatch.ts";
import type { ProposalObject } from "../src/proposal/object.ts";
import { SECRETS } from "./fixtures.ts";
import {
  auditOf,
  call,
  click,
  createProposal,
  getProposal,
  jobsOf,
  runJobsNow,
  runnerSignedHeaders,
  settle,
  stubOf,
} from "./helpers/api.ts";
import { expectError } from "./helpers/contract.ts";
import { peer } from "./peer/client.ts";

const PEER = env.TEST_PEER;

async function approved(overrides: Record<string, unknown> = {}) {
  const p = await createProposal(overrides);
  const res = await click("approve", p.id, "U0ALICE");
  expect(res.status).toBe(200);
  return p;
}

function signedResult(id: string, body: unknown, options: { msgId?: string; date?: Date; secret?: string } = {}) {
  const text = JSON.stringify(body);
  return call(`/v1/proposals/${id}/result`, {
    token: null,
    rawBody: text,
    headers: { "content-type": "application/json", ...runnerSignedHeaders(text, options) },
  });
}

describe("dispatch", () => {
  it("the approved plan is POSTed to RUNNER_URL, signed per Standard Webhooks, with the SPEC 6 body", async () => {
    const p = await approved();
    await settle(p.id);
    const [dispatch, ...more] = await peer.requests("/runner");
    expect(more).toHaveLength(0);
    expect(dispatch!.signature_valid).toBe(true);
    expect(dispatch!.headers["idempotency-key"]).toBe(p.id);
    expect(dispatch!.headers["webhook-id"]).toBeTruthy();
    const body = JSON.parse(dispatch!.body);
    expect(body).toEqual({
      type: "proposal.approved",
      proposal_id: p.id,
      action: { type: "k8s.rollout_restart", params: { deployment: "api" } },
      approvers: ["U0ALICE"],
      requested_by: "U0BOB",
      approved_at: expect.any(String),
      plan_sha256: p.plan_sha256,
      attempt: 1,
    });
    const after = await getProposal(p.id);
    expect(after).toMatchObject({
      status: "succeeded",
      result: { status: "succeeded", output: "ran ok" },
      dispatch: { attempts: 1 },
    });
  });

  it("408/429/5xx are retried with backoff and the same webhook-id: 500, 503, then 200 → three attempts", async () => {
    await peer.script("/runner", [
      { status: 500 },
      { status: 503 },
      { status: 200, body: { status: "succeeded", output: "third time" } },
    ]);
    const p = await approved();
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("approved");
    const retry = (await auditOf(p.id)).filter((e) => e.type === "dispatch.answer").at(-1)!;
    const waitMs = Date.parse(retry.details.retry_at) - Date.parse(retry.at);
    expect(waitMs).toBeGreaterThanOrEqual(1_800); // from 2 s (±10 % jitter)
    expect(waitMs).toBeLessThanOrEqual(2_200);
    await runJobsNow(p.id, ["dispatch"]);
    await runJobsNow(p.id, ["dispatch"]);
    await settle(p.id);
    const attempts = await peer.requests("/runner");
    expect(attempts).toHaveLength(3);
    expect(new Set(attempts.map((a) => a.headers["webhook-id"])).size).toBe(1);
    expect(attempts.map((a) => JSON.parse(a.body).attempt)).toEqual([1, 2, 3]);
    expect(attempts.every((a) => a.signature_valid)).toBe(true);
    expect(await getProposal(p.id)).toMatchObject({
      status: "succeeded",
      result: { output: "third time" },
      dispatch: { attempts: 3 },
    });
    const answers = (await auditOf(p.id)).filter((e) => e.type === "dispatch.answer").map((e) => e.details.outcome);
    expect(answers).toEqual(["retry", "retry", "final"]);
  });

  it("a permanent 4xx is dispatch_failed after one attempt", async () => {
    await peer.script("/runner", [{ status: 403, body: { error: "action not allowed here" } }]);
    const p = await approved();
    await settle(p.id);
    const after = await getProposal(p.id);
    expect(after.status).toBe("dispatch_failed");
    // signoff's own error never quotes the runner; its reason is kept apart, as data (issue 13).
    expect(after.dispatch.last_error).toBe("runner refused with HTTP 403");
    expect(after.dispatch.refusal).toEqual({ http_status: 403, reason: '{"error":"action not allowed here"}' });
    expect(await peer.requests("/runner")).toHaveLength(1);
  });

  it("the runner's refusal reason is shown on the card, escaped and cut, and audited with its answer", async () => {
    const hostile = `<!channel> <https://evil.example|your bank> \u202e&${"params_rejected ".repeat(40)}`;
    await peer.script("/runner", [{ status: 422, body: hostile }]);
    const p = await approved();
    await settle(p.id);
    const after = await getProposal(p.id);
    const reason: string = after.dispatch.refusal.reason;
    expect(after.dispatch.refusal.http_status).toBe(422);
    expect([...reason]).toHaveLength(300);
    expect(reason.endsWith("…")).toBe(true);
    expect(reason).toMatch(/^<!channel> <https:\/\/evil\.example\|your bank> \uFFFD&params_rejected /);

    const answer = (await auditOf(p.id)).find((e) => e.type === "dispatch.answer");
    expect(answer?.details).toMatchObject({ outcome: "refused", http_status: 422, runner_reason: reason });

    // The card as Slack last got it: an update, or, when the card's first post already carried the outcome (card
    // changes coalesce within one alarm run), the post itself.
    const posts = [...(await peer.slackCalls("chat.postMessage")), ...(await peer.slackCalls("chat.update"))];
    const card = posts.filter((c) => JSON.stringify(c.blocks).includes(p.id)).at(-1)!;
    const text = JSON.stringify(card.blocks);
    expect(text).toContain(
      "Dispatch failed: the runner refused (HTTP 422): ```&lt;!channel&gt; &lt;https://evil.example|your bank&gt;",
    );
    expect(text).not.toContain("<!channel>");
    expect(text).not.toContain("\u202e");
  });

  it("a server error's or a redirect's body is never kept, only a refusal's", async () => {
    await peer.script("/runner", [
      { status: 503, body: "STACK TRACE" },
      { status: 307, body: "SEE OTHER" },
    ]);
    const p = await approved();
    await settle(p.id);
    await runJobsNow(p.id, ["dispatch"]);
    await settle(p.id);
    const after = await getProposal(p.id);
    expect(after).toMatchObject({
      status: "dispatch_failed",
      dispatch: { last_error: "runner refused with HTTP 307" },
    });
    expect(after.dispatch.refusal).toEqual({ http_status: 307, reason: null });
    expect(JSON.stringify(after) + JSON.stringify(await auditOf(p.id))).not.toMatch(/STACK TRACE|SEE OTHER/);
  });

  it("retries exhausted → dispatch_failed (DISPATCH_MAX_ATTEMPTS, default 8)", async () => {
    await peer.script(
      "/runner",
      Array.from({ length: 8 }, () => ({ status: 502 })),
    );
    const p = await approved();
    await settle(p.id);
    for (let i = 0; i < 8; i++) await runJobsNow(p.id, ["dispatch"]);
    await settle(p.id);
    expect(await peer.requests("/runner")).toHaveLength(8);
    expect(await getProposal(p.id)).toMatchObject({
      status: "dispatch_failed",
      dispatch: { attempts: 8, last_error: "runner answered HTTP 502" },
    });
  });

  it("a runner that hangs times out and is retried", async () => {
    await peer.script("/runner", [{ delay_ms: 4_000, body: { status: "succeeded", output: "too late" } }]);
    const p = await approved();
    await settle(p.id);
    const after = await getProposal(p.id);
    expect(after.status).toBe("approved");
    expect(after.dispatch.last_error).toMatch(/timed out/);
    await runJobsNow(p.id, ["dispatch"]);
    await settle(p.id);
    expect(await getProposal(p.id)).toMatchObject({
      status: "succeeded",
      result: { output: "ran ok" },
      dispatch: { attempts: 2 },
    });
  });

  it("an alarm that runs twice never dispatches twice", async () => {
    const p = await approved();
    await settle(p.id);
    await runJobsNow(p.id);
    await runJobsNow(p.id);
    expect(await peer.requests("/runner")).toHaveLength(1);
  });

  // Issue 11 item 8: the runner's answer is read up to 64 KiB, never whole.
  it("an answer over 64 KiB is read only up to 64 KiB and the cut is audited; with no status left to read it is dispatched", async () => {
    await peer.script("/runner", [{ status: 200, body: { status: "succeeded", output: "x".repeat(100 * 1024) } }]);
    const p = await approved();
    await settle(p.id);
    expect(await getProposal(p.id)).toMatchObject({ status: "dispatched", result: null, dispatch: { attempts: 1 } });
    const answers = (await auditOf(p.id)).filter((e) => e.type === "dispatch.answer");
    expect(answers.map((e) => e.details)).toEqual([
      { attempt: 1, outcome: "accepted", ms: expect.any(Number), truncated: true },
    ]);
  });

  it("reading stops at 64 KiB: an answer that never ends is not waited on until the timeout", async () => {
    await peer.script("/runner", [{ status: 200, body: "x".repeat(70 * 1024), hold_open_ms: 5_000 }]);
    const p = await approved();
    await settle(p.id);
    expect(await getProposal(p.id)).toMatchObject({
      status: "dispatched",
      dispatch: { attempts: 1, last_error: null },
    });
    const [answer] = (await auditOf(p.id)).filter((e) => e.type === "dispatch.answer");
    expect(answer!.details).toMatchObject({ outcome: "accepted", truncated: true });
  });

  it("an answer within 64 KiB is read whole and its audit says nothing of a cut", async () => {
    const output = "y".repeat(60 * 1024);
    await peer.script("/runner", [{ status: 200, body: { status: "failed", output } }]);
    const p = await approved();
    await settle(p.id);
    expect(await getProposal(p.id)).toMatchObject({ status: "failed", result: { output: output.slice(0, 16_384) } });
    const [answer] = (await auditOf(p.id)).filter((e) => e.type === "dispatch.answer");
    expect(answer!.details).not.toHaveProperty("truncated");
  });

  it("a 202 (accepted) moves to dispatched and is never sent again", async () => {
    await peer.script("/runner", [{ status: 202, body: {} }]);
    const p = await approved();
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("dispatched");
    await runJobsNow(p.id);
    expect(await peer.requests("/runner")).toHaveLength(1);
  });
});

/**
 * Runs `during` while every alarm run of the proposal's object does nothing but count itself, then puts the alarm
 * back and runs it once (the runs it skipped consumed the platform's alarm). What `during` sees happened without the
 * alarm; the count says whether the platform tried.
 */
async function withoutAlarms<R>(id: string, during: () => Promise<R>): Promise<{ result: R; skipped: number }> {
  let skipped = 0;
  const original = await runInDurableObject(stubOf(id), (instance: ProposalObject) => {
    const alarm = instance.alarm;
    instance.alarm = async () => {
      skipped += 1;
    };
    return alarm;
  });
  try {
    return { result: await during(), skipped };
  } finally {
    await runInDurableObject(stubOf(id), async (instance: ProposalObject) => {
      instance.alarm = original;
      await instance.alarm();
    });
  }
}

/** Polls `check` (every 20 ms, at most `ms`) until it holds. */
async function until(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("until: still not so");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("dispatch from the approving click (issue 12)", () => {
  it("the runner receives the dispatch and its answer is recorded with no alarm run at all", async () => {
    const p = await createProposal();
    await settle(p.id); // the card is posted
    const { result: answered } = await withoutAlarms(p.id, async () => {
      expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
      await until(async () => (await getProposal(p.id)).status === "succeeded");
      return getProposal(p.id);
    });
    expect(answered).toMatchObject({ status: "succeeded", dispatch: { attempts: 1 } });
    const [request, ...more] = await peer.requests("/runner");
    expect(more).toHaveLength(0);
    expect(JSON.parse(request!.body)).toMatchObject({ proposal_id: p.id, attempt: 1 });
    expect(await jobsOf(p.id, "dispatch")).toEqual([]);
    // What the alarm is for afterwards: the card and the audit flush, in one run.
    await settle(p.id);
    const updates = (await peer.slackCalls("chat.update")).filter((u) => JSON.stringify(u.blocks).includes(p.id));
    expect(updates).toHaveLength(1);
    expect(JSON.stringify(updates[0]!.blocks)).toMatch(/[Ss]ucceeded/);
    const types = (await auditOf(p.id)).map((e) => e.type);
    expect(types.slice(types.indexOf("approval.recorded"))).toEqual([
      "approval.recorded",
      "proposal.approved",
      "dispatch.attempt",
      "dispatch.answer",
      "proposal.succeeded",
      "slack.message_updated",
    ]);
  });

  it("while the click's send is under way the job is held: an alarm run meanwhile sends nothing", async () => {
    await peer.script("/runner", [{ delay_ms: 600, body: { status: "succeeded", output: "once" } }]);
    const p = await createProposal();
    await settle(p.id);
    expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
    await until(async () => (await peer.requests("/runner")).length === 1);
    const [held] = await jobsOf(p.id, "dispatch");
    expect(held!.lease_until).toBeGreaterThan(Date.now());
    // Alarm runs at once, twice, while the runner is still answering: the held job is not theirs to send.
    await runInDurableObject(stubOf(p.id), (instance: ProposalObject) =>
      Promise.all([instance.alarm(), instance.alarm()]),
    );
    await settle(p.id);
    expect(await peer.requests("/runner")).toHaveLength(1);
    expect(await getProposal(p.id)).toMatchObject({ status: "succeeded", dispatch: { attempts: 1 } });
  });

  it("a send from the click that fails is retried by the alarm from the job row: same webhook-id, one answer accepted", async () => {
    await peer.script("/runner", [{ destroy: true }]);
    const p = await createProposal();
    await settle(p.id);
    const { result: first } = await withoutAlarms(p.id, async () => {
      expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
      await until(async () => (await getProposal(p.id)).dispatch.last_error !== null);
      return getProposal(p.id);
    });
    expect(first).toMatchObject({
      status: "approved",
      dispatch: { attempts: 1, last_error: "runner unreachable (network error)" },
    });
    const [retry] = await jobsOf(p.id, "dispatch");
    expect(retry).toMatchObject({ attempt: 1, lease_until: 0 });
    await runJobsNow(p.id, ["dispatch"]);
    expect(await getProposal(p.id)).toMatchObject({ status: "succeeded", dispatch: { attempts: 2 } });
    const requests = await peer.requests("/runner");
    expect(requests.map((r) => JSON.parse(r.body).attempt)).toEqual([1, 2]);
    expect(new Set(requests.map((r) => r.headers["webhook-id"]))).toEqual(new Set([`dsp_${p.id}`]));
    const answers = (await auditOf(p.id)).filter((e) => e.type === "dispatch.answer").map((e) => e.details.outcome);
    expect(answers).toEqual(["retry", "final"]);
  });
});

describe("reading a runner's answer: at most 64 KiB", () => {
  const KiB = 1024;
  /** A body of `chunks` chunks of 16 KiB (endless when null) that counts what was pulled and whether it was cancelled. */
  function body(chunks: number | null) {
    const seen = { pulled: 0, cancelled: false };
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (chunks !== null && seen.pulled >= chunks) return controller.close();
        seen.pulled += 1;
        controller.enqueue(new TextEncoder().encode("z".repeat(16 * KiB)));
      },
      cancel() {
        seen.cancelled = true;
      },
    });
    return { stream, seen };
  }

  it("a body of exactly 64 KiB is read whole and not called cut", async () => {
    const { stream } = body(4);
    const read = await readCapped(stream, MAX_ANSWER_BYTES);
    expect(read).toEqual({ text: "z".repeat(64 * KiB), truncated: false });
  });

  it("an endless body: reading stops at the cap and the stream is cancelled", async () => {
    const { stream, seen } = body(null);
    const read = await readCapped(stream, MAX_ANSWER_BYTES);
    expect(read.text.length).toBe(64 * KiB);
    expect(read.truncated).toBe(true);
    expect(seen.cancelled).toBe(true);
    expect(seen.pulled).toBeLessThanOrEqual(6); // the four that fit, the one that overflows, maybe one queued ahead
  });

  it("no body is an empty answer", async () => {
    expect(await readCapped(null, MAX_ANSWER_BYTES)).toEqual({ text: "", truncated: false });
  });
});

describe("a runner's refusal reason is data (issue 13)", () => {
  it("only a 4xx keeps its body; every other answer keeps none", () => {
    expect(classifyRunnerResponse(422, "bad params")).toEqual({
      kind: "refused",
      error: "runner refused with HTTP 422",
      httpStatus: 422,
      reason: "bad params",
    });
    expect(classifyRunnerResponse(302, "elsewhere")).toMatchObject({ kind: "refused", httpStatus: 302, reason: null });
    expect(classifyRunnerResponse(503, "trace")).toEqual({ kind: "retry", error: "runner answered HTTP 503" });
  });

  it("is cut to 300 code points, with invisible characters shown and line breaks kept", () => {
    expect(refusalReason("  \r\n\t ")).toBeNull();
    expect(refusalReason("line one\r\nline two\rthree")).toBe("line one\nline two\nthree");
    expect(refusalReason("a\u202eb\u200bc\u0007d\tе")).toBe("a\uFFFDb\uFFFDc\uFFFDd\tе");
    const long = refusalReason("👍".repeat(400))!;
    expect([...long]).toHaveLength(MAX_REFUSAL_REASON_CHARS);
    expect(long).toBe(`${"👍".repeat(299)}…`);
    expect(refusalReason("x".repeat(300))).toBe("x".repeat(300));
  });
});

describe("asynchronous results", () => {
  async function dispatched() {
    await peer.script("/runner", [{ status: 202, body: {} }]);
    const p = await approved();
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("dispatched");
    return p;
  }

  it("a signed result is recorded, shown on the card and audited", async () => {
    const p = await dispatched();
    const res = await signedResult(p.id, { status: "failed", output: "deployment <api> not found & <!channel>" });
    expect(res.status).toBe(200);
    await settle(p.id);
    expect(await getProposal(p.id)).toMatchObject({
      status: "failed",
      result: { status: "failed", output: "deployment <api> not found & <!channel>" },
    });
    const card = (await peer.slackCalls("chat.update")).filter((u) => JSON.stringify(u.blocks).includes(p.id)).at(-1)!;
    const text = JSON.stringify(card.blocks);
    expect(text).toContain("deployment &lt;api&gt; not found &amp; &lt;!channel&gt;");
    expect((await auditOf(p.id)).map((e) => e.type)).toContain("proposal.failed");
  });

  it("one output rule whichever way a result arrives: text, at most 16,384 characters kept, longer cut not refused", async () => {
    // Answered at once, in the dispatch's answer.
    await peer.script("/runner", [{ status: 200, body: { status: "succeeded", output: "a".repeat(20_000) } }]);
    const atOnce = await approved();
    await settle(atOnce.id);
    expect((await getProposal(atOnce.id)).result.output).toBe("a".repeat(16_384));
    // Reported later, close to the 64 KiB body limit.
    const later = await dispatched();
    expect((await signedResult(later.id, { status: "succeeded", output: "b".repeat(61_000) })).status).toBe(200);
    expect((await getProposal(later.id)).result.output).toBe("b".repeat(16_384));
    // Output that is not a string is kept as its JSON text, by either way.
    const structured = await dispatched();
    expect((await signedResult(structured.id, { status: "failed", output: { exit: 1 } })).status).toBe(200);
    expect((await getProposal(structured.id)).result.output).toBe('{"exit":1}');
    await Promise.all([atOnce, later, structured].map((p) => settle(p.id)));
  });

  it("unsigned, wrongly signed or stale results are 401 and change nothing", async () => {
    const p = await dispatched();
    const unsigned = await call(`/v1/proposals/${p.id}/result`, {
      token: null,
      body: { status: "succeeded", output: "x" },
    });
    expect((await expectError(unsigned, 401)).error.code).toBe("bad_signature");
    const forged = await signedResult(p.id, { status: "succeeded" }, { secret: SECRETS.EVENTS_SECRET });
    expect(forged.status).toBe(401);
    const stale = await signedResult(p.id, { status: "succeeded" }, { date: new Date(Date.now() - 10 * 60_000) });
    expect(stale.status).toBe(401);
    expect((await getProposal(p.id)).status).toBe("dispatched");
  });

  it("a replayed result is 401; a second, different result is 409", async () => {
    const p = await dispatched();
    const first = await signedResult(p.id, { status: "succeeded", output: "done" }, { msgId: "res_one" });
    expect(first.status).toBe(200);
    const replay = await signedResult(p.id, { status: "succeeded", output: "done" }, { msgId: "res_one" });
    expect(replay.status).toBe(401);
    const second = await signedResult(p.id, { status: "failed", output: "oops" }, { msgId: "res_two" });
    expect(second.status).toBe(409);
    expect(await getProposal(p.id)).toMatchObject({ status: "succeeded", result: { output: "done" } });
  });

  it("a result naming another proposal in its signed body is refused (401) and changes nothing", async () => {
    const a = await dispatched();
    const b = await dispatched();
    const res = await signedResult(b.id, { status: "failed", output: "A's disk is full", proposal_id: a.id });
    expect((await expectError(res, 401)).error.code).toBe("wrong_proposal");
    expect(await getProposal(b.id)).toMatchObject({ status: "dispatched", result: null });
    expect((await signedResult(b.id, { status: "succeeded", output: "B done", proposal_id: b.id })).status).toBe(200);
  });

  it("a webhook-id serves one proposal only: the same signed result replayed on another is 401", async () => {
    const a = await dispatched();
    const b = await dispatched();
    const msgId = `res_${crypto.randomUUID()}`;
    expect((await signedResult(a.id, { status: "failed", output: "x" }, { msgId })).status).toBe(200);
    const replay = await signedResult(b.id, { status: "failed", output: "x" }, { msgId });
    expect((await expectError(replay, 401)).error.code).toBe("replayed");
    expect((await getProposal(b.id)).status).toBe("dispatched");
  });

  it("a result for a proposal that was never dispatched is 409", async () => {
    const p = await createProposal();
    const res = await signedResult(p.id, { status: "succeeded", output: "?" });
    expect(res.status).toBe(409);
    expect((await getProposal(p.id)).status).toBe("pending");
  });
});

describe("outcome events (SPEC 7)", () => {
  const callback = (name: string) => `${PEER}/events/${name}`;

  async function events(name: string) {
    const requests = await peer.requests(`/events/${name}`);
    for (const request of requests) expect(request.signature_valid, "signed with EVENTS_SECRET").toBe(true);
    return requests.map((r) => JSON.parse(r.body) as { type: string; timestamp: string; data: Record<string, any> });
  }

  it("approved then succeeded, each signed, in the SPEC 7 envelope with the proposal's state", async () => {
    const p = await approved({ callback_url: callback("ok") });
    await settle(p.id);
    const received = await events("ok");
    expect(received.map((e) => e.type)).toEqual(["proposal.approved", "proposal.succeeded"]);
    expect(received[1]!.data).toMatchObject({ id: p.id, status: "succeeded", result: { output: "ran ok" } });
    expect(Date.parse(received[0]!.timestamp)).not.toBeNaN();
  });

  it("denied (with the reason), expired and cancelled are sent too", async () => {
    const denied = await createProposal({ callback_url: callback("denied") });
    await click("deny", denied.id, "U0ALICE");
    const { slackRequest, denySubmission } = await import("./helpers/api.ts");
    await slackRequest(denySubmission(denied.id, "U0ALICE", "not during the sale"));
    await settle(denied.id);
    const [deniedEvent] = await events("denied");
    expect(deniedEvent).toMatchObject({
      type: "proposal.denied",
      data: { decision: { reason: "not during the sale" } },
    });

    const cancelled = await createProposal({ callback_url: callback("cancelled") });
    await call(`/v1/proposals/${cancelled.id}/cancel`, { method: "POST" });
    await settle(cancelled.id);
    expect((await events("cancelled")).map((e) => e.type)).toEqual(["proposal.cancelled"]);

    const expiring = await createProposal({ callback_url: callback("expired"), ttl_seconds: 1 });
    await call(`/v1/proposals/${expiring.id}?wait=5`, {
      token: null,
      headers: { authorization: "Bearer so_test_reader_token_0000000000000000000000" },
    });
    await settle(expiring.id);
    expect((await events("expired")).map((e) => e.type)).toEqual(["proposal.expired"]);
  });

  it("dispatched then failed (asynchronous result)", async () => {
    await peer.script("/runner", [{ status: 202 }]);
    const p = await approved({ callback_url: callback("async") });
    await settle(p.id);
    await signedResult(p.id, { status: "failed", output: "exit 1" });
    await settle(p.id);
    expect((await events("async")).map((e) => e.type)).toEqual([
      "proposal.approved",
      "proposal.dispatched",
      "proposal.failed",
    ]);
  });

  it("a failing listener is retried, audited, and never changes the proposal", async () => {
    await peer.script("/events/flaky", [{ status: 500 }, { status: 500 }]);
    const p = await createProposal({ callback_url: callback("flaky") });
    await call(`/v1/proposals/${p.id}/cancel`, { method: "POST" });
    await settle(p.id);
    await runJobsNow(p.id, ["notify"]);
    await runJobsNow(p.id, ["notify"]);
    await settle(p.id);
    const deliveries = await peer.requests("/events/flaky");
    expect(deliveries).toHaveLength(3);
    expect(new Set(deliveries.map((d) => d.headers["webhook-id"])).size).toBe(1);
    const audit = (await auditOf(p.id)).map((e) => e.type);
    expect(audit.filter((t) => t === "notify.failed")).toHaveLength(2);
    expect(audit).toContain("notify.delivered");
    expect((await getProposal(p.id)).status).toBe("cancelled");
  });
});
