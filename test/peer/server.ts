// A real HTTP peer on loopback standing in for Slack's Web API, the runner and proposers'
// callback listeners: it records every request, answers from a script, and verifies
// Standard Webhooks signatures with the `standardwebhooks` library (not signoff's code).

import { createPublicKey } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Webhook } from "standardwebhooks";
import { ACCESS_PRIVATE_JWK, SECRETS, SLACK_ACCOUNTS, SLACK_TEAM_ID, USERGROUPS } from "../fixtures.ts";

/** The stand-in Access team's key set: the public half of the fixture key, as Access serves its certs. */
function accessCerts() {
  const { kid, alg } = ACCESS_PRIVATE_JWK;
  const jwk = createPublicKey({ key: ACCESS_PRIVATE_JWK, format: "jwk" }).export({ format: "jwk" });
  return { keys: [{ ...jwk, kid, alg, use: "sig" }] };
}

export interface RecordedRequest {
  seq: number;
  at: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** For /runner* and /events*: whether the Standard Webhooks signature verified. */
  signature_valid?: boolean;
}

export interface ScriptedResponse {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Wait this long before answering (to simulate a hanging peer). */
  delay_ms?: number;
  /** Drop the connection without answering (a network error). */
  destroy?: boolean;
  /** Send the body, then keep the response open this long before ending it (a peer that never stops sending). */
  hold_open_ms?: number;
}

export function startPeer(port = 0): Promise<{ server: Server; port: number }> {
  let requests: RecordedRequest[] = [];
  let scripts = new Map<string, ScriptedResponse[]>();
  let seq = 0;
  let slackTs = 1_700_000_000;
  const verifiers: Array<[string, Webhook]> = [
    ["/runner", new Webhook(SECRETS.RUNNER_SECRET)],
    ["/events", new Webhook(SECRETS.EVENTS_SECRET)],
  ];

  const send = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
    holdOpenMs = 0,
  ) => {
    const text = typeof body === "string" ? body : JSON.stringify(body ?? {});
    res.writeHead(status, { "content-type": "application/json", ...headers });
    if (holdOpenMs <= 0) return void res.end(text);
    res.write(text);
    setTimeout(() => res.end(), holdOpenMs);
  };

  const defaultAnswer = (req: RecordedRequest): ScriptedResponse => {
    if (req.path.startsWith("/slack/api/")) {
      const method = req.path.slice("/slack/api/".length);
      const params = parseBody(req);
      if (method === "usergroups.users.list") {
        const users = USERGROUPS[String(params.usergroup)];
        return { body: users ? { ok: true, users } : { ok: false, error: "no_such_subteam" } };
      }
      if (method === "chat.postMessage") {
        slackTs += 1;
        return { body: { ok: true, channel: params.channel, ts: `${slackTs}.000100` } };
      }
      if (method === "chat.update") return { body: { ok: true, channel: params.channel, ts: params.ts } };
      // The Home tab (issue 16): Slack answers with the view it stored.
      if (method === "views.publish") return { body: { ok: true, view: { id: `V${++slackTs}`, type: "home" } } };
      if (method === "users.info") {
        const id = String(params.user);
        return { body: { ok: true, user: { id, team_id: SLACK_TEAM_ID, ...SLACK_ACCOUNTS[id] } } };
      }
      return { body: { ok: true } };
    }
    if (req.path.startsWith("/runner")) return { body: { status: "succeeded", output: "ran ok" } };
    if (req.path === "/cdn-cgi/access/certs") return { body: accessCerts() };
    return { status: 200, body: { ok: true } };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://peer");
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");

    if (url.pathname.startsWith("/__peer/")) {
      const command = url.pathname.slice("/__peer/".length);
      if (command === "reset") {
        requests = [];
        scripts = new Map();
        return send(res, 200, { ok: true });
      }
      if (command === "requests") {
        const prefix = url.searchParams.get("path") ?? "";
        return send(
          res,
          200,
          requests.filter((r) => r.path.startsWith(prefix)),
        );
      }
      if (command === "script") {
        const { path, responses } = JSON.parse(body) as { path: string; responses: ScriptedResponse[] };
        scripts.set(path, [...(scripts.get(path) ?? []), ...responses]);
        return send(res, 200, { ok: true });
      }
      return send(res, 404, { error: "unknown peer command" });
    }

    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) headers[name] = String(value);
    const recorded: RecordedRequest = {
      seq: ++seq,
      at: Date.now(),
      method: req.method ?? "GET",
      path: url.pathname,
      headers,
      body,
    };
    for (const [prefix, webhook] of verifiers) {
      if (!url.pathname.startsWith(prefix)) continue;
      try {
        webhook.verify(body, headers);
        recorded.signature_valid = true;
      } catch {
        recorded.signature_valid = false;
      }
    }
    requests.push(recorded);

    const queue = scripts.get(url.pathname);
    const answer = queue?.length ? queue.shift()! : defaultAnswer(recorded);
    if (answer.delay_ms) await new Promise((resolve) => setTimeout(resolve, answer.delay_ms));
    if (answer.destroy) return void req.socket.destroy();
    send(res, answer.status ?? 200, answer.body ?? {}, answer.headers, answer.hold_open_ms);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => send(res, 500, { error: String(error) }));
  });
  return new Promise((resolve) => {
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      resolve({ server, port: typeof address === "object" && address ? address.port : port });
    });
  });
}

function parseBody(req: RecordedRequest): Record<string, unknown> {
  const type = req.headers["content-type"] ?? "";
  if (type.includes("application/json")) {
    try {
      return JSON.parse(req.body) as Record<string, unknown>;
    } catch {
      return {};
    }
  }
  return Object.fromEntries(new URLSearchParams(req.body));
}
