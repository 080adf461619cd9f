// The bench's loopback peers, run as their own process so that answering the Worker's
// outbound calls never shares an event loop with the load generator: a fast stand-in for
// Slack's Web API and a runner that verifies every dispatch with the `standardwebhooks`
// library and records, per proposal, what it received and what it answered.
//
//   node scripts/bench/peers.ts <runner-secret>   → prints {"port":N} on its first line
//
// Control (same port): GET /__bench/stats, POST /__bench/runner-mode {"mode":"ok"|"chaos",…},
// POST /__bench/reset.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Webhook } from "standardwebhooks";
import { BENCH_USERGROUPS } from "./fixtures.ts";

/** What the runner does with a dispatch: always succeed, or fail at random for early attempts. */
export interface RunnerMode {
  mode: "ok" | "chaos";
  /** chaos: attempts up to this one may fail (later ones always succeed, so the run ends). */
  failUpToAttempt?: number;
  /** chaos: probability that an early attempt fails. */
  failProbability?: number;
  /** chaos: how long a "hang" lasts before the runner answers 504 (beyond the dispatch timeout). */
  hangMs?: number;
}

export interface RunnerRecord {
  /** Requests received, in order, with the `attempt` field of each body. */
  attempts: number[];
  /** First arrival (ms since the epoch, this process's clock). */
  firstAt: number;
  /** 2xx answers actually sent (final results and 202s). */
  accepted: number;
  answers: string[];
  /** What each attempt (by its `attempt` field) was answered: "200", "503", "hang", "drop", … */
  answerOf: Record<number, string>;
  /** When each attempt arrived (ms since the epoch). */
  arrivedAt: Record<number, number>;
  webhookIds: string[];
  badSignatures: number;
}

export interface PeerStats {
  slack: Record<string, { calls: number; bytes: number }>;
  runner: Record<string, RunnerRecord>;
  runnerRequests: number;
  now: number;
}

export interface PeerSummary {
  slackCalls: number;
  runnerRequests: number;
  /** Proposals the runner has heard of. */
  runnerProposals: number;
  /** Proposals the runner has accepted (answered 2xx) at least once. */
  runnerAccepted: number;
}

const secret = process.argv[2];
if (!secret) {
  process.stderr.write("usage: peers.ts <runner-secret>\n");
  process.exit(2);
}
const webhook = new Webhook(secret);

let slack: PeerStats["slack"] = {};
let runner: PeerStats["runner"] = {};
let runnerRequests = 0;
let mode: RunnerMode = { mode: "ok" };
let ts = 1_700_000_000;

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(text)),
    // workerd opens a connection per outbound request and did not close its end when this server's keep-alive
    // timeout closed ours: thousands stayed in CLOSE-WAIT until workerd ran out of file descriptors.
    connection: "close",
    ...headers,
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function slackAnswer(method: string, body: string, contentType: string): unknown {
  const params: Record<string, unknown> = contentType.includes("json")
    ? (JSON.parse(body) as Record<string, unknown>)
    : Object.fromEntries(new URLSearchParams(body));
  switch (method) {
    case "usergroups.users.list": {
      const users = BENCH_USERGROUPS[String(params.usergroup)];
      return users ? { ok: true, users } : { ok: false, error: "no_such_subteam" };
    }
    case "chat.postMessage":
      ts += 1;
      return { ok: true, channel: params.channel, ts: `${ts}.000100` };
    case "chat.update":
      return { ok: true, channel: params.channel, ts: params.ts };
    case "users.info":
      return { ok: true, user: { id: params.user, team_id: "T0BENCH" } };
    default:
      return { ok: true };
  }
}

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}

async function runnerAnswer(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
  runnerRequests += 1;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) headers[name] = String(value);
  let signed = true;
  try {
    webhook.verify(body, headers);
  } catch {
    signed = false;
  }
  const dispatch = JSON.parse(body) as { proposal_id: string; attempt: number };
  runner[dispatch.proposal_id] ??= {
    attempts: [],
    firstAt: Date.now(),
    accepted: 0,
    answers: [],
    answerOf: {},
    arrivedAt: {},
    webhookIds: [],
    badSignatures: 0,
  };
  const record = runner[dispatch.proposal_id]!;
  record.attempts.push(dispatch.attempt);
  record.arrivedAt[dispatch.attempt] = Date.now();
  record.webhookIds.push(headers["webhook-id"] ?? "");
  if (!signed) record.badSignatures += 1;

  const answer = (label: string, status: number, payload: unknown) => {
    record.answers.push(label);
    record.answerOf[dispatch.attempt] = label;
    if (status >= 200 && status < 300) record.accepted += 1;
    send(res, status, payload);
  };
  if (!signed) return answer("401", 401, { error: "bad signature" });

  const chaos =
    mode.mode === "chaos" &&
    dispatch.attempt <= (mode.failUpToAttempt ?? 3) &&
    Math.random() < (mode.failProbability ?? 0.4);
  if (!chaos) {
    // Success comes in both shapes the runner protocol allows: a final result, or 202 and a result later.
    if (mode.mode === "chaos" && Math.random() < 0.3) return answer("202", 202, {});
    return answer("200", 200, { status: "succeeded", output: "ran ok" });
  }
  // A hang costs a whole dispatch timeout (10 s): only first attempts hang, so the run ends sooner.
  const failure = pick(
    dispatch.attempt === 1
      ? (["500", "503", "408", "429", "hang", "drop"] as const)
      : (["500", "503", "408", "429", "drop"] as const),
  );
  if (failure === "drop") {
    record.answers.push("drop");
    record.answerOf[dispatch.attempt] = "drop";
    req.socket.destroy();
    return;
  }
  if (failure === "hang") {
    // Longer than the dispatch timeout, then a 5xx: signoff has given up on it, and a late
    // 2xx would be an accepted dispatch that signoff never saw.
    await new Promise((resolve) => setTimeout(resolve, mode.hangMs ?? 11_000));
    if (!res.destroyed) return answer("hang", 504, { error: "too slow" });
    record.answers.push("hang");
    record.answerOf[dispatch.attempt] = "hang";
    return;
  }
  return answer(failure, Number(failure), { error: "flaky" });
}

const server = createServer((req, res) => {
  void (async () => {
    const url = new URL(req.url ?? "/", "http://peer");
    const body = await readBody(req);
    if (url.pathname === "/__bench/stats") {
      if (url.searchParams.get("summary") === "1") {
        const summary: PeerSummary = {
          slackCalls: Object.values(slack).reduce((n, m) => n + m.calls, 0),
          runnerRequests,
          runnerProposals: Object.keys(runner).length,
          runnerAccepted: Object.values(runner).filter((r) => r.accepted > 0).length,
        };
        return send(res, 200, summary);
      }
      return send(res, 200, { slack, runner, runnerRequests, now: Date.now() } satisfies PeerStats);
    }
    if (url.pathname === "/__bench/reset") {
      slack = {};
      runner = {};
      runnerRequests = 0;
      return send(res, 200, { ok: true });
    }
    if (url.pathname === "/__bench/runner-mode") {
      mode = JSON.parse(body) as RunnerMode;
      return send(res, 200, { ok: true });
    }
    if (url.pathname.startsWith("/slack/api/")) {
      const method = url.pathname.slice("/slack/api/".length);
      slack[method] ??= { calls: 0, bytes: 0 };
      const counter = slack[method]!;
      counter.calls += 1;
      counter.bytes += Buffer.byteLength(body);
      return send(res, 200, slackAnswer(method, body, req.headers["content-type"] ?? ""));
    }
    if (url.pathname === "/runner") return runnerAnswer(req, res, body);
    return send(res, 404, { error: "no such peer path" });
  })().catch((error: unknown) => {
    if (!res.headersSent) send(res, 500, { error: String(error) });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === "object" && address ? address.port : 0 })}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
