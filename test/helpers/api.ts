// Driving the Worker from outside, as a proposer, Slack or the runner would: real requests
// through `exports.default.fetch`, plus helpers to fire and inspect Durable Object alarms.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { expect } from "vitest";
import { type Job, type JobKind, JobTable } from "../../src/proposal/scheduler.ts";
import { type ProposalStub, proposalStub } from "../../src/proposal/stub.ts";
import { signSlackRequest } from "../../src/slack/signature.ts";
import { SECRETS, TOKENS } from "../fixtures.ts";

export const BASE = "https://signoff.test";

export interface CallOptions {
  method?: string;
  token?: string | null;
  body?: unknown;
  rawBody?: BodyInit;
  headers?: Record<string, string>;
}

export async function call(path: string, options: CallOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token === undefined ? TOKENS.writer : options.token;
  if (token) headers.authorization = `Bearer ${token}`;
  let body: BodyInit | undefined = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  return exports.default.fetch(
    new Request(`${BASE}${path}`, { method: options.method ?? (body ? "POST" : "GET"), headers, body }),
  );
}

export async function json<T = Record<string, any>>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

export function proposalBody(overrides: Record<string, unknown> = {}) {
  return {
    action: { type: "k8s.rollout_restart", params: { deployment: "api" } },
    summary: "Restart deployment api (rolling)",
    reason: "OOMKilled x4 in 5m on api-7f9",
    blast_radius: "1 of 6 replicas at a time, prod",
    rollback: "kubectl rollout undo deployment/api",
    requested_by: "U0BOB",
    ...overrides,
  };
}

/** Proposals made by the current test, settled after it so their late jobs never leak into the next. */
export const createdThisTest = new Set<string>();

/** Creates a proposal through the API (as `token`, with extra `headers`) and returns its JSON, asserting 201. */
export async function createProposal(
  overrides: Record<string, unknown> = {},
  options: { token?: string; headers?: Record<string, string> } = {},
) {
  const res = await call("/v1/proposals", {
    body: proposalBody(overrides),
    token: options.token ?? TOKENS.writer,
    headers: options.headers ?? {},
  });
  const body = await json(res);
  expect(res.status, JSON.stringify(body)).toBe(201);
  createdThisTest.add(body.id);
  return body;
}

export async function getProposal(id: string) {
  const res = await call(`/v1/proposals/${id}`, { token: TOKENS.reader });
  expect(res.status).toBe(200);
  return json(res);
}

export function stubOf(id: string): ProposalStub {
  const stub = proposalStub(env.PROPOSALS, id);
  if (!stub) throw new Error(`stubOf(${id}): not a proposal id`);
  return stub;
}

// ---- the proposal's jobs (src/proposal/scheduler.ts), through JobTable's own API ----------

/** Runs `fn` on the proposal's job table, inside its Durable Object. */
export function inJobTable<R>(id: string, fn: (jobs: JobTable) => R): Promise<R> {
  return runInDurableObject(stubOf(id), (_instance, state) => fn(new JobTable(state.storage.sql)));
}

/** The proposal's jobs (of one kind), earliest first. */
export function jobsOf(id: string, kind?: JobKind): Promise<Job[]> {
  return inJobTable(id, (jobs) => jobs.list().filter((job) => kind === undefined || job.kind === kind));
}

/**
 * Jobs that wait for a time of their own (the deadline, a reminder, the automatic escalation), not for a retry: never
 * hurried by default. A test that wants one moves it itself (`inJobTable(id, (jobs) => jobs.reschedule(…))`).
 */
export const CLOCK_KINDS: readonly JobKind[] = ["expire", "remind", "escalate"];

/** Makes the proposal's jobs (of `kinds`, or all but CLOCK_KINDS) due now, as if their retry time had come. */
export function makeDue(id: string, kinds?: readonly JobKind[]): Promise<void> {
  return inJobTable(id, (jobs) => {
    const chosen =
      kinds ??
      new Set(
        jobs
          .list()
          .map((job) => job.kind)
          .filter((kind) => !CLOCK_KINDS.includes(kind)),
      );
    for (const kind of chosen) jobs.makeDue(kind);
  });
}

/** Makes the proposal's jobs (of `kinds`, or all but CLOCK_KINDS) due now and lets them run to the end. */
export async function runJobsNow(id: string, kinds?: readonly JobKind[]): Promise<void> {
  await settle(id);
  await makeDue(id, kinds);
  await settle(id);
}

/** Runs the proposal's alarm now if one is set (jobs not yet due stay put). */
export async function runAlarm(id: string): Promise<boolean> {
  const stub = stubOf(id);
  await runInDurableObject(stub, async (_instance, state) => {
    // Alarms set in the past fire at once in workerd; make sure ours is due for the helper.
    const alarm = await state.storage.getAlarm();
    if (alarm !== null && alarm > Date.now()) await state.storage.setAlarm(Date.now());
  });
  return runDurableObjectAlarm(stub);
}

/**
 * Lets the jobs that are due now (Slack sync, audit flush, dispatch, notifications) run to
 * the end, including runs the platform alarm started by itself (their lease is waited out).
 */
export async function settle(id: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { due, running } = await inJobTable(id, (jobs) => {
      const now = Date.now();
      const waiting = jobs.list().filter((job) => job.kind !== "expire");
      return {
        due: waiting.filter((job) => job.due_at <= now && job.lease_until <= now).length,
        running: waiting.filter((job) => job.lease_until > now).length,
      };
    });
    if (due === 0 && running === 0) return;
    if (due > 0) await runAlarm(id);
    else await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`settle(${id}): jobs still due or running after ${timeoutMs} ms`);
}

/** Audit events of one proposal as the API shows them. */
export async function auditOf(id: string): Promise<Array<Record<string, any>>> {
  const res = await call(`/v1/audit?proposal_id=${id}&limit=1000`, { token: TOKENS.auditor });
  expect(res.status).toBe(200);
  return (await json<{ events: Array<Record<string, any>> }>(res)).events;
}

// ---- Slack ---------------------------------------------------------------------------

export async function slackRequest(
  payload: unknown,
  options: { timestamp?: number; secret?: string } = {},
): Promise<Response> {
  return signedSlackBody(`payload=${encodeURIComponent(JSON.stringify(payload))}`, options);
}

/** Any raw form body, signed as Slack signs it (junk included). */
export async function signedSlackBody(
  body: string,
  options: { timestamp?: number; secret?: string } = {},
): Promise<Response> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const signature = await signSlackRequest(options.secret ?? SECRETS.SLACK_SIGNING_SECRET, timestamp, body);
  return exports.default.fetch(
    new Request(`${BASE}/slack/interactions`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": String(timestamp),
        "x-slack-signature": signature,
      },
      body,
    }),
  );
}

export function clickPayload(
  kind: "approve" | "deny" | "escalate",
  proposalId: string,
  user: string,
  channel = "C0INCIDENT",
) {
  return {
    type: "block_actions",
    user: { id: user },
    trigger_id: "123.456.abc",
    channel: { id: channel },
    container: { type: "message", channel_id: channel },
    actions: [{ action_id: `signoff.${kind}`, value: proposalId, type: "button" }],
  };
}

export async function click(
  kind: "approve" | "deny" | "escalate",
  proposalId: string,
  user: string,
): Promise<Response> {
  return slackRequest(clickPayload(kind, proposalId, user));
}

export function denySubmission(proposalId: string, user: string, reason?: string) {
  return {
    type: "view_submission",
    user: { id: user },
    view: {
      callback_id: "signoff.deny_reason",
      private_metadata: proposalId,
      state: { values: { reason: { reason: { type: "plain_text_input", value: reason ?? null } } } },
    },
  };
}

// ---- the runner --------------------------------------------------------------------------

/** Standard Webhooks headers for a runner result body, signed by the reference library. */
export function runnerSignedHeaders(
  text: string,
  options: { msgId?: string; date?: Date; secret?: string } = {},
): Record<string, string> {
  const msgId = options.msgId ?? `res_${crypto.randomUUID()}`;
  const date = options.date ?? new Date();
  return {
    "webhook-id": msgId,
    "webhook-timestamp": String(Math.floor(date.getTime() / 1000)),
    "webhook-signature": new Webhook(options.secret ?? SECRETS.RUNNER_SECRET).sign(msgId, date, text),
  };
}
