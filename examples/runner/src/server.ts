// The reference runner's HTTP server: verifies each dispatch, runs allowlisted argv at most once, reports the result.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import {
  type Allowlist,
  type CompiledAction,
  compileAllowlist,
  type Problem,
  parseAllowlist,
  renderArgv,
} from "./allowlist.ts";
import { narrowEnv, runCommand } from "./exec.ts";
import { parseDispatch } from "./payload.ts";
import { DEFAULT_REPORT_POLICY, type ReportPolicy, reportResult } from "./report.ts";

export interface RunnerOptions {
  /** `whsec_<base64>`, the same RUNNER_SECRET signoff signs dispatches with. */
  secret: string;
  /** The allowlist, or the path of its JSON file. */
  actions: Allowlist | string;
  /** Default 8788; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** signoff's base URL; required when any action is async. */
  signoffUrl?: string;
  /** Timeout for actions without their own `timeout_ms`. Default 30 s. */
  timeoutMs?: number;
  /** Default 4096. */
  outputLimitBytes?: number;
  /** Where PATH and the allowlisted variables are read from. Default process.env. */
  env?: Record<string, string | undefined>;
  /** One call per event, for a JSON-lines log. Default: a JSON line on stdout. */
  log?: (event: Record<string, unknown>) => void;
  /** Retries of result reports to signoff. */
  report?: Partial<ReportPolicy>;
  /** Time between SIGTERM and SIGKILL for a timed-out command. Default 2 s. */
  killGraceMs?: number;
}

export interface Runner {
  /** `http://host:port`, the dispatch URL is `${url}/run`. */
  url: string;
  port: number;
  server: Server;
  /** Resolves when no command is running and no result report is pending. */
  idle(): Promise<void>;
  /** Stops listening, kills running commands, abandons pending reports. */
  close(): Promise<void>;
}

type Result = { status: "succeeded" | "failed"; output: string };

interface Job {
  webhookId: string;
  proposalId: string;
  result: Result | null;
  /** Someone was told 202 (or hung up): the result must be POSTed to signoff when it exists. */
  reportLater: boolean;
}

const MAX_BODY_BYTES = 64 * 1024;
/** Finished jobs remembered for deduplication; running jobs are never forgotten. */
const MAX_REMEMBERED = 10_000;

type Json = Record<string, unknown>;

function send(res: ServerResponse, status: number, body: Json): void {
  if (res.writableEnded || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function error(code: string, message: string, details: Problem[] = []): Json {
  return { error: { code, message, details } };
}

class TooLarge extends Error {}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      // Past the limit the rest is read and dropped, so the client still gets its 413 instead of
      // a reset connection; past 16× the limit it is not worth the bandwidth.
      else if (size > 16 * MAX_BODY_BYTES) req.destroy();
    });
    req.on("end", () =>
      size > MAX_BODY_BYTES ? reject(new TooLarge()) : resolve(Buffer.concat(chunks).toString("utf8")),
    );
    req.on("error", reject);
  });
}

function header(req: IncomingMessage, name: string): string {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(" ") : (value ?? "");
}

function defaultLog(event: Record<string, unknown>): void {
  console.log(JSON.stringify({ at: new Date().toISOString(), ...event }));
}

function loadAllowlist(source: Allowlist | string): Allowlist {
  if (typeof source !== "string") return parseAllowlist(source);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(source, "utf8"));
  } catch (cause) {
    throw new Error(`cannot read the runner allowlist ${source}: ${(cause as Error).message}`);
  }
  return parseAllowlist(parsed);
}

export async function startRunner(options: RunnerOptions): Promise<Runner> {
  if (typeof options.secret !== "string" || !options.secret.startsWith("whsec_")) {
    throw new Error("RUNNER_SECRET must be a Standard Webhooks secret: whsec_<base64>");
  }
  let webhook: Webhook;
  try {
    webhook = new Webhook(options.secret);
  } catch (cause) {
    throw new Error(`RUNNER_SECRET is not valid: ${(cause as Error).message}`);
  }
  const allowlist = loadAllowlist(options.actions);
  const actions = compileAllowlist(allowlist);
  const signoffUrl = options.signoffUrl?.trim() || undefined;
  if (signoffUrl !== undefined && !/^https?:\/\/[^/]/.test(signoffUrl))
    throw new Error("SIGNOFF_URL must be an http(s) URL");
  const asyncActions = [...actions.values()].filter((a) => a.spec.async).map((a) => a.type);
  if (asyncActions.length > 0 && signoffUrl === undefined) {
    throw new Error(`SIGNOFF_URL is required: ${asyncActions.join(", ")} report their results asynchronously`);
  }

  const log = options.log ?? defaultLog;
  const sourceEnv = options.env ?? process.env;
  const defaultTimeout = options.timeoutMs ?? 30_000;
  const outputLimit = options.outputLimitBytes ?? 4096;
  const reportPolicy: ReportPolicy = { ...DEFAULT_REPORT_POLICY, ...options.report };
  const shutdown = new AbortController();
  const inFlight = new Set<Promise<unknown>>();
  const byWebhookId = new Map<string, Job>();
  const byProposal = new Map<string, Job>();

  const track = (promise: Promise<unknown>) => {
    inFlight.add(promise);
    void promise.finally(() => inFlight.delete(promise));
  };

  const remember = (job: Job) => {
    byWebhookId.set(job.webhookId, job);
    byProposal.set(job.proposalId, job);
    if (byWebhookId.size <= MAX_REMEMBERED) return;
    // Maps iterate in insertion order: drop the oldest finished job.
    for (const old of byWebhookId.values()) {
      if (old.result === null) continue;
      byWebhookId.delete(old.webhookId);
      if (byProposal.get(old.proposalId) === old) byProposal.delete(old.proposalId);
      break;
    }
  };

  const report = (job: Job) => {
    if (!job.result || shutdown.signal.aborted) return;
    if (signoffUrl === undefined) {
      log({ event: "report_impossible", proposal_id: job.proposalId, reason: "SIGNOFF_URL is not set" });
      return;
    }
    track(
      reportResult({
        signoffUrl,
        webhook,
        proposalId: job.proposalId,
        msgId: `msg_result_${randomUUID()}`,
        result: job.result,
        policy: reportPolicy,
        signal: shutdown.signal,
        log,
      }),
    );
  };

  const run = async (job: Job, action: CompiledAction, argv: string[]): Promise<Result> => {
    log({ event: "run", proposal_id: job.proposalId, webhook_id: job.webhookId, action: action.type, argv });
    const outcome = await runCommand(argv, {
      timeoutMs: action.spec.timeout_ms ?? defaultTimeout,
      env: narrowEnv(sourceEnv, [...allowlist.env, ...action.spec.env]),
      outputLimitBytes: outputLimit,
      killGraceMs: options.killGraceMs,
      signal: shutdown.signal,
    });
    log({
      event: "ran",
      proposal_id: job.proposalId,
      action: action.type,
      status: outcome.status,
      exit_code: outcome.exitCode,
      timed_out: outcome.timedOut,
      duration_ms: outcome.durationMs,
    });
    job.result = { status: outcome.status, output: outcome.output };
    if (job.reportLater) report(job);
    return job.result;
  };

  const handleDispatch = async (req: IncomingMessage, res: ServerResponse) => {
    let raw: string;
    try {
      raw = await readBody(req);
    } catch (cause) {
      if (cause instanceof TooLarge) {
        return send(res, 413, error("too_large", `the body is over ${MAX_BODY_BYTES} bytes`));
      }
      throw cause;
    }

    const headers = {
      "webhook-id": header(req, "webhook-id"),
      "webhook-timestamp": header(req, "webhook-timestamp"),
      "webhook-signature": header(req, "webhook-signature"),
    };
    try {
      // Verified by the reference library, not by code of ours: the runner is what an operator
      // would write with any Standard Webhooks library.
      webhook.verify(raw, headers, { jsonParse: false });
    } catch (cause) {
      log({ event: "refused", reason: "signature", detail: (cause as Error).message });
      return send(
        res,
        401,
        error("unauthorized", `Standard Webhooks verification failed: ${(cause as Error).message}`),
      );
    }

    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return send(res, 400, error("bad_request", "the body is not JSON"));
    }
    const parsed = parseDispatch(body);
    if (!parsed.ok) return send(res, 400, error("bad_request", "not a proposal.approved dispatch", parsed.problems));
    const dispatch = parsed.dispatch;
    const webhookId = headers["webhook-id"];

    // At most once per delivery id and per proposal: signoff keeps webhook-id stable across
    // retries, and a proposal that somehow arrived under a second id must not run again either.
    const seen = byWebhookId.get(webhookId) ?? byProposal.get(dispatch.proposal_id);
    if (seen) {
      log({
        event: "duplicate",
        proposal_id: dispatch.proposal_id,
        webhook_id: webhookId,
        first_webhook_id: seen.webhookId,
      });
      if (seen.result) return send(res, 200, { ...seen.result });
      // Still running: this answer says "dispatched", so the result has to follow by POST.
      seen.reportLater = true;
      return send(res, 202, { accepted: true, duplicate: true });
    }

    const action = actions.get(dispatch.action.type);
    if (!action) {
      log({
        event: "refused",
        reason: "unknown_action",
        proposal_id: dispatch.proposal_id,
        action: dispatch.action.type,
      });
      return send(
        res,
        403,
        error(
          "action_not_allowed",
          `action type ${JSON.stringify(dispatch.action.type)} is not in the runner's allowlist`,
        ),
      );
    }
    const rendered = renderArgv(action, dispatch.action.params);
    if (!rendered.ok) {
      log({
        event: "refused",
        reason: "params",
        proposal_id: dispatch.proposal_id,
        action: action.type,
        problems: rendered.problems,
      });
      return send(
        res,
        422,
        error("params_rejected", "the params do not pass the runner's allowlist", rendered.problems),
      );
    }

    const job: Job = {
      webhookId,
      proposalId: dispatch.proposal_id,
      result: null,
      reportLater: action.spec.async,
    };
    remember(job);
    log({
      event: "accepted",
      proposal_id: job.proposalId,
      webhook_id: webhookId,
      action: action.type,
      approvers: dispatch.approvers,
      requested_by: dispatch.requested_by,
      attempt: dispatch.attempt,
      plan_sha256: dispatch.plan_sha256,
    });
    const running = run(job, action, rendered.argv);
    track(running);

    if (action.spec.async) return send(res, 202, { accepted: true });
    // If signoff gives up on this request (its timeout) before the command ends, its retry
    // gets 202 and the result goes by POST instead of being lost with the connection.
    const onHangUp = () => {
      if (job.result === null && !res.writableEnded) job.reportLater = true;
    };
    res.once("close", onHangUp);
    const result = await running;
    res.off("close", onHangUp);
    send(res, 200, { ...result });
  };

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://runner").pathname;
    const route = async () => {
      if (path === "/healthz") {
        if (req.method !== "GET" && req.method !== "HEAD")
          return send(res, 405, error("method_not_allowed", "use GET"));
        return send(res, 200, { ok: true });
      }
      if (path === "/run" || path === "/") {
        if (req.method !== "POST") return send(res, 405, error("method_not_allowed", "use POST"));
        return handleDispatch(req, res);
      }
      return send(res, 404, error("not_found", "no such route"));
    };
    route().catch((cause: unknown) => {
      log({ event: "internal_error", error: String(cause) });
      send(res, 500, error("internal", "the runner failed; see its log"));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8788, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  log({ event: "listening", url, actions: [...actions.keys()] });

  const idle = async () => {
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
  };

  return {
    url,
    port: address.port,
    server,
    idle,
    close: async () => {
      shutdown.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await Promise.all([closed, idle()]);
    },
  };
}
