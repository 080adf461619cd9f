// SPEC 4 (HTTP API v1) as a black-box contract: every status code and error case of every route,
// driven through `exports.default.fetch`, checking the exact status, the error shape, and that a
// refused request changed nothing (no card on the stand-in Slack, no new proposal in the audit log,
// its Idempotency-Key still unused).
import { env, exports } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { bodyText } from "../src/lib/encoding.ts";
import { signSlackRequest } from "../src/slack/signature.ts";
import { SECRETS, TOKENS } from "./fixtures.ts";
import {
  auditOf,
  BASE,
  call,
  clickPayload,
  createdThisTest,
  createProposal,
  json,
  proposalBody,
  runnerSignedHeaders,
  settle,
  signedSlackBody,
  slackRequest,
} from "./helpers/api.ts";
import { expectError } from "./helpers/contract.ts";
import { api as linkApi } from "./helpers/links.ts";
import { countedStream, paddedForm } from "./helpers/streams.ts";
import { peer } from "./peer/client.ts";

type Json = Record<string, any>;

const PUBLIC_ID = /^prp_[0-9a-f]{64}$/;
const KiB = 1024;

// ---- helpers -------------------------------------------------------------------------

/** A proposal made by a raw request: settled after the test like createProposal's (test/setup.ts). */
function track(body: Json): Json {
  if (typeof body.id === "string" && PUBLIC_ID.test(body.id)) createdThisTest.add(body.id);
  return body;
}

/**
 * How many proposals the audit log knows: a refused create must not add one. (Rows of proposals
 * created earlier may still be arriving from their alarms, so the row count is no measure.)
 */
async function auditedProposals(): Promise<number> {
  return (
    (await env.AUDIT_DB.prepare("SELECT COUNT(DISTINCT proposal_id) AS n FROM audit_events").first<number>("n")) ?? 0
  );
}

async function cardsPosted(): Promise<Json[]> {
  return peer.slackCalls("chat.postMessage");
}

function cardsMentioning(cards: Json[], id: string): Json[] {
  return cards.filter((card) => JSON.stringify(card).includes(id));
}

/**
 * Runs a request that must be refused and checks SPEC 4's "bad input never changes state":
 * no audit row, no card, and (black-box) the Idempotency-Key it was sent under is still unused,
 * so a valid request under the same key creates a fresh proposal (201, not 200 or 409).
 */
async function expectRefusedCreate(
  send: (idempotencyKey: string) => Promise<Response>,
  status: number,
  fields: string[] = [],
  token: string = TOKENS.writer,
): Promise<Json> {
  const proposalsBefore = await auditedProposals();
  const cardsBefore = (await cardsPosted()).length;
  const key = `refused-${crypto.randomUUID()}`;
  const body = await expectError(await send(key), status, fields);
  expect(await auditedProposals()).toBe(proposalsBefore);
  expect((await cardsPosted()).length).toBe(cardsBefore);
  {
    const probe = await call("/v1/proposals", { body: proposalBody(), token, headers: { "idempotency-key": key } });
    const probeBody = track(await json(probe));
    expect(
      probe.status,
      `the refused request left something under its Idempotency-Key: ${JSON.stringify(probeBody)}`,
    ).toBe(201);
  }
  return body;
}

function postProposal(
  key: string,
  options: { body?: unknown; rawBody?: BodyInit; token?: string | null; headers?: Record<string, string> },
) {
  return call("/v1/proposals", {
    method: "POST",
    ...options,
    token: options.token === undefined ? TOKENS.writer : options.token,
    headers: { "idempotency-key": key, ...options.headers },
  });
}

/** A well-formed id that no proposal has (a real object id of the namespace, never used). */
function unknownId(): string {
  return `prp_${env.PROPOSALS.newUniqueId().toString()}`;
}

const MALFORMED_IDS = [
  "prp_",
  "prp_123",
  "abc",
  `prp_${"g".repeat(64)}`,
  `prp_${"0".repeat(64)}`, // right shape, but not an id this namespace ever issues
  `PRP_${"a".repeat(64)}`,
  `prp_${"A".repeat(64)}`,
  `prp_${"a".repeat(65)}`,
  "..%2F..%2Fhealthz",
];

/** RFC 8785 for the plain data of a proposal: sorted keys, no whitespace, JSON.stringify scalars. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical(record[key])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Everything that looks like a clickable element in a Slack message. */
function buttonsIn(value: unknown): unknown[] {
  if (Array.isArray(value)) return value.flatMap(buttonsIn);
  if (value === null || typeof value !== "object") return [];
  const record = value as Record<string, unknown>;
  const self = record.type === "button" || record.type === "actions" ? [record] : [];
  return [...self, ...Object.values(record).flatMap(buttonsIn)];
}

function streamOf(bytes: number, chunk = 4 * KiB, fill = "x"): ReadableStream<Uint8Array> {
  const piece = new TextEncoder().encode(fill.repeat(chunk));
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= bytes) return controller.close();
      const n = Math.min(chunk, bytes - sent);
      controller.enqueue(n === chunk ? piece : piece.slice(0, n));
      sent += n;
    },
  });
}

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The most characters of params the card's params section holds (issue 11 item 4): Slack's 3,000 characters of
 * section text less the `*Params*\n` label and the two code fences.
 */
const CARD_PLAN_MAX = 2985;

/** A proposer hiding the real change behind padding, as the card used to cut params at about 3,000 characters. */
const PADDED_PLAN = { pad: "x".repeat(3500), cluster: "pg-main", target: "pg-replica-2" };

const UNKNOWN_TOKEN = `so_${"Q".repeat(43)}`;

/** Every way of not being authenticated SPEC 4 knows: none, wrong, another scheme, unknown token. */
const BAD_CREDENTIALS: Array<[string, Record<string, string>]> = [
  ["no Authorization header", {}],
  ["a wrong token", { authorization: "Bearer not-a-token" }],
  [
    "the Basic scheme (with a valid token as password)",
    { authorization: `Basic ${btoa(`alertmanager:${TOKENS.writer}`)}` },
  ],
  ["the Basic scheme with the bare token", { authorization: `Basic ${TOKENS.writer}` }],
  ["a token of the right shape that no key has", { authorization: `Bearer ${UNKNOWN_TOKEN}` }],
  ["Bearer with nothing after it", { authorization: "Bearer " }],
  ["a valid token without the Bearer scheme", { authorization: TOKENS.writer }],
  ["a valid token with a character appended", { authorization: `Bearer ${TOKENS.writer}x` }],
];

// ---- POST /v1/proposals ---------------------------------------------------------------

describe("POST /v1/proposals", () => {
  describe("401 no or bad credentials", () => {
    it.each(BAD_CREDENTIALS)("401 for %s, and nothing is created", async (_name, headers) => {
      await expectRefusedCreate((key) => postProposal(key, { body: proposalBody(), token: null, headers }), 401);
    });

    it("a 401 carries the Bearer challenge (RFC 6750), with invalid_token only when a bearer token was sent", async () => {
      const challenge = async (headers: Record<string, string>) =>
        (await call("/v1/proposals", { body: proposalBody(), token: null, headers })).headers.get("www-authenticate");
      expect(await challenge({})).toBe('Bearer realm="signoff"');
      expect(await challenge({ authorization: `Basic ${TOKENS.writer}` })).toBe('Bearer realm="signoff"');
      expect(await challenge({ authorization: `Bearer ${UNKNOWN_TOKEN}` })).toBe(
        'Bearer realm="signoff", error="invalid_token"',
      );
      for (const path of ["/v1/proposals/prp_x", "/v1/audit"]) {
        expect((await call(path, { token: null })).headers.get("www-authenticate"), path).toBe(
          'Bearer realm="signoff"',
        );
      }
    });
  });

  describe("403 not allowed", () => {
    it("403 when the key lacks the proposals:write scope (reader)", async () => {
      const body = await expectRefusedCreate(
        (key) => postProposal(key, { body: proposalBody(), token: TOKENS.reader }),
        403,
      );
      expect(body.error.message).toContain("proposals:write");
    });

    it("a 403 for a missing scope names it in the Bearer challenge (RFC 6750 insufficient_scope)", async () => {
      const res = await call("/v1/proposals", { body: proposalBody(), token: TOKENS.reader });
      await expectError(res, 403);
      expect(res.headers.get("www-authenticate")).toBe(
        'Bearer realm="signoff", error="insufficient_scope", scope="proposals:write"',
      );
    });

    it("403 when the key lacks the proposals:write scope (auditor)", async () => {
      await expectRefusedCreate((key) => postProposal(key, { body: proposalBody(), token: TOKENS.auditor }), 403);
    });

    it("403 for an action type outside the key's actions (ci may only propose k8s.rollout_restart)", async () => {
      await expectRefusedCreate(
        (key) =>
          postProposal(key, {
            body: proposalBody({ action: { type: "db.failover", params: {} } }),
            token: TOKENS.other,
          }),
        403,
        ["action.type"],
        TOKENS.other,
      );
    });

    it("403 for a callback_url whose host is not in the key's callback_hosts", async () => {
      await expectRefusedCreate(
        (key) => postProposal(key, { body: proposalBody({ callback_url: "https://evil.example.net/signoff" }) }),
        403,
        ["callback_url"],
      );
    });

    it("403 for any callback_url from a key with no callback_hosts (ci)", async () => {
      await expectRefusedCreate(
        (key) =>
          postProposal(key, {
            body: proposalBody({ callback_url: "https://hooks.example.com/signoff" }),
            token: TOKENS.other,
          }),
        403,
        ["callback_url"],
        TOKENS.other,
      );
    });

    it("403 for a plain-http callback_url to a non-loopback host, even a listed one", async () => {
      await expectRefusedCreate(
        (key) => postProposal(key, { body: proposalBody({ callback_url: "http://hooks.example.com/signoff" }) }),
        403,
        ["callback_url"],
      );
    });

    it("403 for a callback_url carrying credentials", async () => {
      await expectRefusedCreate(
        (key) =>
          postProposal(key, { body: proposalBody({ callback_url: "https://user:pw@hooks.example.com/signoff" }) }),
        403,
        ["callback_url"],
      );
    });

    it("a plain-http callback_url to a listed loopback host is accepted (local listeners)", async () => {
      const p = await createProposal({ callback_url: "http://127.0.0.1:9/events" });
      expect(p.callback_url).toBe("http://127.0.0.1:9/events");
    });
  });

  describe("413 body over 64 KiB", () => {
    it("413 for a 70 KiB body with Content-Length, refused before parsing (invalid JSON gets 413, not 400)", async () => {
      const raw = "{".repeat(70 * KiB);
      await expectRefusedCreate(
        (key) =>
          postProposal(key, {
            rawBody: raw,
            headers: { "content-type": "application/json", "content-length": String(raw.length) },
          }),
        413,
      );
    });

    it("413 for a 70 KiB body sent as a stream without Content-Length, refused before parsing", async () => {
      await expectRefusedCreate(
        (key) =>
          postProposal(key, {
            rawBody: streamOf(70 * KiB, 4 * KiB, "{"),
            headers: { "content-type": "application/json" },
          }),
        413,
      );
    });

    it("413 for a streamed body of one byte over 64 KiB", async () => {
      await expectRefusedCreate(
        (key) =>
          postProposal(key, {
            rawBody: streamOf(64 * KiB + 1, 1000, " "),
            headers: { "content-type": "application/json" },
          }),
        413,
      );
    });

    it("413 for a chunked proposal of 4 MiB without Content-Length: refused as it streams, never read whole", async () => {
      // A valid proposal padded with whitespace: anything that read it whole and parsed it would create it.
      const text = JSON.stringify(proposalBody()).padEnd(4 * 1024 * KiB, " ");
      const sent: Array<ReturnType<typeof countedStream>> = [];
      await expectRefusedCreate((key) => {
        const body = countedStream(new TextEncoder().encode(text));
        sent.push(body);
        return postProposal(key, { rawBody: body.stream, headers: { "content-type": "application/json" } });
      }, 413);
      expect(sent[0]!.pulled()).toBeLessThan(1024 * KiB);
    });

    it("413 for a 70 KiB well-formed proposal (big metadata)", async () => {
      await expectRefusedCreate(
        (key) => postProposal(key, { body: proposalBody({ metadata: { pad: "x".repeat(70 * KiB) } }) }),
        413,
      );
    });

    it("a body of exactly 64 KiB is not over the limit", async () => {
      const base = JSON.stringify(proposalBody({ metadata: { pad: "" } }));
      const raw = JSON.stringify(proposalBody({ metadata: { pad: "x".repeat(64 * KiB - base.length) } }));
      expect(raw.length).toBe(64 * KiB);
      const res = await call("/v1/proposals", { rawBody: raw, headers: { "content-type": "application/json" } });
      const body = track(await json(res));
      expect(res.status, JSON.stringify(body).slice(0, 300)).toBe(201);
    });
  });

  describe("415 not JSON", () => {
    const valid = JSON.stringify(proposalBody());
    it.each<[string, () => { rawBody: BodyInit; headers: Record<string, string> }]>([
      ["text/plain", () => ({ rawBody: valid, headers: { "content-type": "text/plain" } })],
      ["no content-type at all", () => ({ rawBody: new TextEncoder().encode(valid), headers: {} })],
      ["form-encoded", () => ({ rawBody: new URLSearchParams({ payload: valid }), headers: {} })],
      [
        "multipart/form-data",
        () => ({ rawBody: valid, headers: { "content-type": "multipart/form-data; boundary=x" } }),
      ],
      ["application/jsonp (not JSON)", () => ({ rawBody: valid, headers: { "content-type": "application/jsonp" } })],
      ["application/xml", () => ({ rawBody: "<proposal/>", headers: { "content-type": "application/xml" } })],
    ])("415 for %s, and nothing is created", async (_name, make) => {
      const { rawBody, headers } = make();
      await expectRefusedCreate((key) => postProposal(key, { rawBody, headers }), 415);
    });

    it("application/json with a charset parameter is JSON", async () => {
      const res = await call("/v1/proposals", {
        rawBody: valid,
        headers: { "content-type": "application/json; charset=utf-8" },
      });
      track(await json(res));
      expect(res.status).toBe(201);
    });
  });

  describe("400 bad JSON or schema (details name the fields)", () => {
    const raw = (text: string) => (key: string) =>
      postProposal(key, { rawBody: text, headers: { "content-type": "application/json" } });

    it.each([
      ["invalid JSON", '{"action": '],
      ["an empty body", ""],
      ["JSON with a trailing comma", `${JSON.stringify(proposalBody()).slice(0, -1)},}`],
    ])("400 for %s", async (_name, text) => {
      await expectRefusedCreate(raw(text), 400);
    });

    it("400 for bytes that are not UTF-8", async () => {
      const bytes = new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]);
      await expectRefusedCreate(
        (key) => postProposal(key, { rawBody: bytes, headers: { "content-type": "application/json" } }),
        400,
      );
    });

    it.each([
      ["a JSON array", "[]"],
      ["JSON null", "null"],
      ["a JSON number", "42"],
      ["a JSON string", '"restart api"'],
      ["an empty object", "{}"],
    ])("400 for %s as the body", async (_name, text) => {
      await expectRefusedCreate(raw(text), 400);
    });

    it.each(["action", "summary", "reason", "blast_radius", "rollback"])(
      "400 naming %s when it is missing: a proposal a human can't judge is refused",
      async (field) => {
        const body: Json = proposalBody();
        delete body[field];
        await expectRefusedCreate((key) => postProposal(key, { body }), 400, [field]);
      },
    );

    it("400 naming every missing required field at once", async () => {
      const body = await expectRefusedCreate((key) => postProposal(key, { body: { requested_by: "U0BOB" } }), 400, [
        "action",
        "summary",
        "reason",
        "blast_radius",
        "rollback",
      ]);
      expect(body.error.details.length).toBeGreaterThanOrEqual(5);
    });

    it.each(["summary", "reason", "blast_radius", "rollback"])("400 naming %s when it is blank", async (field) => {
      await expectRefusedCreate((key) => postProposal(key, { body: proposalBody({ [field]: " \n\t " }) }), 400, [
        field,
      ]);
    });

    it.each(["summary", "reason", "blast_radius", "rollback"])(
      "400 naming %s when it is the empty string",
      async (field) => {
        await expectRefusedCreate((key) => postProposal(key, { body: proposalBody({ [field]: "" }) }), 400, [field]);
      },
    );

    it.each<[string, Json]>([
      ["summary", { summary: 42 }],
      ["reason", { reason: ["OOM"] }],
      ["blast_radius", { blast_radius: null }],
      ["rollback", { rollback: { cmd: "undo" } }],
      ["action", { action: "k8s.rollout_restart" }],
      ["action.type", { action: { type: 7, params: {} } }],
      ["action.params", { action: { type: "k8s.rollout_restart", params: ["api"] } }],
      ["action.params", { action: { type: "k8s.rollout_restart", params: "deployment=api" } }],
      ["requested_by", { requested_by: 12 }],
      ["ttl_seconds", { ttl_seconds: "300" }],
      ["callback_url", { callback_url: 1 }],
      ["metadata", { metadata: "INC-7" }],
      ["metadata", { metadata: ["INC-7"] }],
    ])("400 naming %s when it has the wrong type", async (field, overrides) => {
      await expectRefusedCreate((key) => postProposal(key, { body: proposalBody(overrides) }), 400, [field]);
    });

    it("400 naming an unknown top-level field: the proposer never supplies a command", async () => {
      await expectRefusedCreate((key) => postProposal(key, { body: proposalBody({ command: "rm -rf /" }) }), 400, [
        "command",
      ]);
    });

    it("400 naming an unknown field inside action", async () => {
      await expectRefusedCreate(
        (key) =>
          postProposal(key, {
            body: proposalBody({
              action: { type: "k8s.rollout_restart", params: { deployment: "api" }, command: "rm -rf /" },
            }),
          }),
        400,
        ["action.command"],
      );
    });

    it("details spell paths as configuration errors do: a key that is no identifier is bracketed", async () => {
      const body = await expectRefusedCreate(
        (key) => postProposal(key, { body: { ...proposalBody(), "blast-radius": "all of prod" } }),
        400,
      );
      expect(body.error.details).toContainEqual({ path: '["blast-radius"]', message: "unknown field" });
    });

    it.each(["bob", "@bob", "u0bob", "U", "C0INCIDENT", "S0ONCALL", "<@U0BOB>"])(
      "400 naming requested_by for %j (not a Slack user id)",
      async (value) => {
        await expectRefusedCreate((key) => postProposal(key, { body: proposalBody({ requested_by: value }) }), 400, [
          "requested_by",
        ]);
      },
    );

    it.each([1.5, 300.25, "1e2x"])("400 naming ttl_seconds for the non-integer %j", async (value) => {
      await expectRefusedCreate((key) => postProposal(key, { body: proposalBody({ ttl_seconds: value }) }), 400, [
        "ttl_seconds",
      ]);
    });

    it.each(["not a url", "/relative/path", ""])("400 naming callback_url for %j", async (value) => {
      await expectRefusedCreate((key) => postProposal(key, { body: proposalBody({ callback_url: value }) }), 400, [
        "callback_url",
      ]);
    });

    it.each([
      [
        "metadata",
        5_000,
        (deep: string) => JSON.stringify(proposalBody({ metadata: { x: "DEEP" } })).replace('"DEEP"', deep),
      ],
      [
        "metadata",
        20_000,
        (deep: string) => JSON.stringify(proposalBody({ metadata: { x: "DEEP" } })).replace('"DEEP"', deep),
      ],
    ])(
      "bad input never yields a 5xx: %s nested %d deep (under 64 KiB) is refused or stored, never a 500",
      async (_field, depth, build) => {
        const text = build("[".repeat(depth) + "]".repeat(depth));
        expect(text.length).toBeLessThan(64 * KiB);
        const proposalsBefore = await auditedProposals();
        const res = await call("/v1/proposals", { rawBody: text, headers: { "content-type": "application/json" } });
        if (res.status === 201) {
          track(await json(res));
          return;
        }
        await expectError(res, 400, ["metadata"]);
        expect(await auditedProposals()).toBe(proposalsBefore);
      },
    );

    it("400 naming summary when it is longer than a card can show (300 characters)", async () => {
      await expectRefusedCreate((key) => postProposal(key, { body: proposalBody({ summary: "s".repeat(301) }) }), 400, [
        "summary",
      ]);
    });

    it("400 naming Idempotency-Key when it is not 1–255 visible ASCII characters", async () => {
      const proposalsBefore = await auditedProposals();
      await expectError(
        await call("/v1/proposals", { body: proposalBody(), headers: { "idempotency-key": "k".repeat(256) } }),
        400,
        ["Idempotency-Key"],
      );
      expect(await auditedProposals()).toBe(proposalsBefore);
    });
  });

  describe("422 semantically invalid", () => {
    it("422 naming action.type for an action type not in the policy (even when the key's pattern allows it)", async () => {
      await expectRefusedCreate(
        (key) =>
          postProposal(key, {
            body: proposalBody({ action: { type: "k8s.delete_namespace", params: { deployment: "api" } } }),
          }),
        422,
        ["action.type"],
      );
    });

    it.each<[string, Json]>([
      ["a deployment that fails the pattern", { deployment: "API; rm -rf /" }],
      ["a missing required deployment", {}],
      ["a deployment of the wrong type", { deployment: 7 }],
      ["an extra param (additionalProperties: false)", { deployment: "api", namespace: "kube-system" }],
    ])("422 naming action.params for params failing the schema: %s", async (_name, params) => {
      await expectRefusedCreate(
        (key) => postProposal(key, { body: proposalBody({ action: { type: "k8s.rollout_restart", params } }) }),
        422,
        ["action.params"],
      );
    });

    it("422 names action.params.deployment when deployment fails its pattern", async () => {
      const body = await expectRefusedCreate(
        (key) =>
          postProposal(key, {
            body: proposalBody({ action: { type: "k8s.rollout_restart", params: { deployment: "Not_Valid" } } }),
          }),
        422,
      );
      expect(body.error.details.map((d: Json) => d.path).join(" ")).toContain("action.params.deployment");
    });

    it("422 naming action.params when an action without params_schema gets more than 4 KiB of params", async () => {
      await expectRefusedCreate(
        (key) =>
          postProposal(key, {
            body: proposalBody({ action: { type: "db.failover", params: { blob: "x".repeat(5 * KiB) } } }),
          }),
        422,
        ["action.params"],
      );
    });

    it.each<[string, Json]>([
      ["3,500 bytes of padding, then the real change (under the 4 KiB params limit)", PADDED_PLAN],
      ["700 ampersands: 700 bytes, but 3,500 characters once escaped for Slack", { note: "&".repeat(700) }],
      ["500 non-ASCII characters: 1,000 bytes, but 3,000 characters as \\u escapes", { note: "é".repeat(500) }],
      ["one character more than the card holds", { blob: "x".repeat(CARD_PLAN_MAX - 10) }],
    ])(
      "422 plan_too_large naming action.params when the card could not show the plan whole: %s",
      async (_name, params) => {
        const body = await expectRefusedCreate(
          (key) => postProposal(key, { body: proposalBody({ action: { type: "db.failover", params } }) }),
          422,
          ["action.params"],
        );
        expect(body.error.code).toBe("plan_too_large");
        expect(body.error.message).toMatch(/card/);
      },
    );

    it.each([0, -1, 3601, 86_400, 10 ** 12])(
      "422 naming ttl_seconds for ttl %d (outside 1…max_ttl_seconds 3600)",
      async (ttl) => {
        await expectRefusedCreate((key) => postProposal(key, { body: proposalBody({ ttl_seconds: ttl }) }), 422, [
          "ttl_seconds",
        ]);
      },
    );

    it.each([1, 3600])("ttl_seconds %d is inside the range and accepted", async (ttl) => {
      const before = Date.now();
      const p = await createProposal({ ttl_seconds: ttl });
      const expires = Date.parse(p.expires_at);
      expect(expires).toBeGreaterThanOrEqual(before + ttl * 1000);
      expect(expires).toBeLessThanOrEqual(Date.now() + ttl * 1000);
    });

    it("422 naming requested_by for a requester_only action (demo.echo) without requested_by", async () => {
      const body: Json = proposalBody({ action: { type: "demo.echo", params: { message: "hi" } } });
      delete body.requested_by;
      await expectRefusedCreate((key) => postProposal(key, { body }), 422, ["requested_by"]);
    });

    describe("requested_by must be one of the action's requesters (SPEC 12)", () => {
      const echo = (requested_by?: string) => {
        const body: Json = proposalBody({ action: { type: "demo.echo", params: { message: "hi" } }, requested_by });
        if (requested_by === undefined) delete body.requested_by;
        return body;
      };

      // First in this file to ask about S0REQUESTERS, which serves nothing else: the group cache (5 min) cannot answer.
      it("503 slack_unavailable with Retry-After when Slack cannot list a requesters group: a fault, nothing created", async () => {
        await peer.script("/slack/api/usergroups.users.list", [{ status: 500 }, { status: 500 }]);
        let retryAfter: string | null = null;
        const body = await expectRefusedCreate(
          async (key) => {
            const res = await postProposal(key, { body: echo("U0MALLORY") });
            retryAfter = res.headers.get("retry-after");
            return res;
          },
          503,
          ["requested_by"],
        );
        expect(body.error.code).toBe("slack_unavailable");
        expect(retryAfter).toMatch(/^[1-9][0-9]*$/);
        const asked = await peer.slackCalls("usergroups.users.list");
        expect(asked.map((call) => call.usergroup)).toContain("S0REQUESTERS");
      });

      it("422 requester_not_allowed naming requested_by for someone neither listed nor in a listed group; nothing created", async () => {
        const body = await expectRefusedCreate((key) => postProposal(key, { body: echo("U0MALLORY") }), 422, [
          "requested_by",
        ]);
        expect(body.error.code).toBe("requester_not_allowed");
        expect(body.error.message).toContain("U0MALLORY");
        // Who may request is the operator's to know, not the proposer's.
        for (const id of ["U0BOB", "U0ALICE", "S0ONCALL", "S0REQUESTERS", "U0RITA"])
          expect(JSON.stringify(body)).not.toContain(id);
      });

      it("a listed user, or a member of a listed user group, may be named", async () => {
        for (const user of ["U0ALICE", "U0OSCAR", "U0RITA"]) {
          const res = await call("/v1/proposals", { body: echo(user) });
          const p = track(await json(res));
          expect(res.status, `${user}: ${JSON.stringify(p)}`).toBe(201);
          expect(p.requested_by).toBe(user);
        }
      });

      it("requesters apply to an action that is not requester_only too; one that names nobody is not checked", async () => {
        const gated = (requested_by?: string) => ({
          ...proposalBody({ action: { type: "links.gated", params: {} } }),
          requested_by,
        });
        const refused = await linkApi("/v1/proposals", { body: gated("U0DAVE") });
        const error = await expectError(refused, 422, ["requested_by"]);
        expect(error.error.code).toBe("requester_not_allowed");
        for (const user of ["U0BOB", "U0OSCAR", undefined]) {
          const res = await linkApi("/v1/proposals", { body: gated(user) });
          const p = track(await json(res));
          expect(res.status, `${user}: ${JSON.stringify(p)}`).toBe(201);
        }
      });
    });
  });

  describe("201 created", () => {
    it("201 → id prp_…, status pending, expires_at ≈ now + the action's default ttl (600 s)", async () => {
      const before = Date.now();
      const res = await call("/v1/proposals", { body: proposalBody() });
      const p = track(await json(res));
      const after = Date.now();
      expect(res.status).toBe(201);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(p.id).toMatch(PUBLIC_ID);
      expect(p.status).toBe("pending");
      expect(new Date(p.expires_at).toISOString()).toBe(p.expires_at);
      expect(Date.parse(p.expires_at)).toBeGreaterThanOrEqual(before + 600_000);
      expect(Date.parse(p.expires_at)).toBeLessThanOrEqual(after + 600_000);
    });

    it("expires_at ≈ now + ttl_seconds when the proposal gives one", async () => {
      const before = Date.now();
      const p = await createProposal({ ttl_seconds: 300 });
      expect(Date.parse(p.expires_at)).toBeGreaterThanOrEqual(before + 300_000);
      expect(Date.parse(p.expires_at)).toBeLessThanOrEqual(Date.now() + 300_000);
    });

    it("plan_sha256 is the SHA-256 of the RFC 8785 canonical JSON of {action, summary, reason, blast_radius, rollback}", async () => {
      const body = proposalBody({
        summary: 'Restart "api" — ünïcødé ✓ <b>',
        metadata: { z: 1, a: 2 },
        ttl_seconds: 120,
      });
      const p = await createProposal(body);
      const { action, summary, reason, blast_radius, rollback } = body;
      const expected = await sha256Hex(canonical({ action, summary, reason, blast_radius, rollback }));
      expect(p.plan_sha256).toBe(expected);
      // Keys in another order, other metadata and ttl: the same plan, the same hash.
      const reordered = await createProposal({
        ...Object.fromEntries(Object.entries(body).reverse()),
        metadata: { other: true },
        ttl_seconds: 60,
      });
      expect(reordered.plan_sha256).toBe(expected);
      // Any change to the plan is a new hash.
      const changed = await createProposal({ ...body, rollback: `${body.rollback} ` });
      expect(changed.plan_sha256).not.toBe(expected);
    });

    it("ids are unguessable: two proposals get different, random-looking ids", async () => {
      const a = await createProposal();
      const b = await createProposal();
      expect(a.id).toMatch(PUBLIC_ID);
      expect(b.id).toMatch(PUBLIC_ID);
      expect(a.id).not.toBe(b.id);
      const hexA = a.id.slice(4);
      const hexB = b.id.slice(4);
      let common = 0;
      while (common < 64 && hexA[common] === hexB[common]) common++;
      expect(common, "ids should not share a long prefix (not sequential)").toBeLessThan(8);
      expect(new Set(hexA).size).toBeGreaterThanOrEqual(8);
    });

    it("the proposal's card is posted once, to the policy's channel", async () => {
      const p = await createProposal();
      await settle(p.id);
      const cards = cardsMentioning(await cardsPosted(), p.id);
      expect(cards.length).toBe(1);
      expect(cards[0]!.channel).toBe("C0INCIDENT");
    });

    it("the largest plan the card can hold is accepted and posted whole: what Slack shows parses to the params", async () => {
      const params = { blob: "x".repeat(CARD_PLAN_MAX - '{"blob":""}'.length) };
      const p = await createProposal({ action: { type: "db.failover", params } });
      await settle(p.id);
      const [card] = cardsMentioning(await cardsPosted(), p.id);
      const section = (card!.blocks as Json[]).find((b) => b.block_id === "signoff.params");
      const shown = /^\*Params\*\n```([^`]*)```$/.exec(section?.text?.text ?? "")?.[1];
      expect(shown, "the params section is one whole code block").toBeDefined();
      expect(JSON.parse(shown!.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&"))).toEqual(params);
      expect(section!.text.text.length).toBe(3000);
    });

    it("the creation is audited as proposal.created by key:<name>", async () => {
      const p = await createProposal();
      await settle(p.id);
      const res = await call(`/v1/audit?proposal_id=${p.id}`, { token: TOKENS.auditor });
      const events = (await json(res)).events as Json[];
      expect(events[0]).toMatchObject({ proposal_id: p.id, type: "proposal.created", actor: "key:alertmanager" });
    });
  });

  describe("Idempotency-Key", () => {
    it("the same key and the same body return the first proposal again (200), with no second card", async () => {
      const key = `idem-${crypto.randomUUID()}`;
      const first = await createProposal({}, { headers: { "idempotency-key": key } });
      const again = await call("/v1/proposals", { body: proposalBody(), headers: { "idempotency-key": key } });
      const againBody = await json(again);
      expect(again.status).toBe(200);
      expect(againBody.id).toBe(first.id);
      expect(againBody.expires_at).toBe(first.expires_at);
      await settle(first.id);
      expect(cardsMentioning(await cardsPosted(), first.id).length).toBe(1);
      expect((await cardsPosted()).length).toBe(1);
    });

    it("the same body with its keys in another order is the same body (200, same id)", async () => {
      const key = `idem-${crypto.randomUUID()}`;
      const body = proposalBody({ metadata: { incident: "INC-7", team: "sre" } });
      const first = await createProposal(body, { headers: { "idempotency-key": key } });
      const reordered = Object.fromEntries(
        Object.entries({ ...body, metadata: { team: "sre", incident: "INC-7" } }).reverse(),
      );
      const res = await call("/v1/proposals", {
        rawBody: JSON.stringify(reordered, null, 2),
        headers: { "content-type": "application/json", "idempotency-key": key },
      });
      expect(res.status).toBe(200);
      expect((await json(res)).id).toBe(first.id);
      await settle(first.id);
      expect((await cardsPosted()).length).toBe(1);
    });

    it("the same key with another body is 409, and the first proposal is unchanged", async () => {
      const key = `idem-${crypto.randomUUID()}`;
      const first = await createProposal({}, { headers: { "idempotency-key": key } });
      await settle(first.id);
      const proposalsBefore = await auditedProposals();
      const res = await call("/v1/proposals", {
        body: proposalBody({ reason: "a different reason" }),
        headers: { "idempotency-key": key },
      });
      await expectError(res, 409);
      const still = await json(await call(`/v1/proposals/${first.id}`, { token: TOKENS.reader }));
      expect(still.reason).toBe(first.reason);
      expect(still.status).toBe("pending");
      await settle(first.id);
      expect((await cardsPosted()).length).toBe(1);
      expect(await auditedProposals()).toBe(proposalsBefore);
    });

    it("the same key from two different API keys makes two different proposals", async () => {
      const key = `idem-${crypto.randomUUID()}`;
      const a = await createProposal({}, { headers: { "idempotency-key": key } });
      const b = await createProposal({}, { token: TOKENS.other, headers: { "idempotency-key": key } });
      expect(a.id).not.toBe(b.id);
      expect(a.created_by).toBe("alertmanager");
      expect(b.created_by).toBe("ci");
      await settle(a.id);
      await settle(b.id);
      expect((await cardsPosted()).length).toBe(2);
    });

    it("20 concurrent identical requests with one key make one proposal and one card", async () => {
      const key = `idem-${crypto.randomUUID()}`;
      const responses = await Promise.all(
        Array.from({ length: 20 }, () =>
          call("/v1/proposals", { body: proposalBody(), headers: { "idempotency-key": key } }),
        ),
      );
      const bodies = await Promise.all(responses.map((r) => json(r)));
      const statuses = responses.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 201).length, JSON.stringify(statuses)).toBe(1);
      expect(statuses.filter((s) => s === 200).length, JSON.stringify(statuses)).toBe(19);
      const ids = new Set(bodies.map((b) => b.id));
      expect(ids.size).toBe(1);
      const [id] = [...ids] as string[];
      track({ id });
      await settle(id!);
      expect((await cardsPosted()).length).toBe(1);
      const creations = (
        await json(await call(`/v1/audit?proposal_id=${id}&type=proposal.created`, { token: TOKENS.auditor }))
      ).events;
      expect(creations.length).toBe(1);
    });

    it("concurrent requests under one key with different bodies: one proposal wins, every other body gets 409", async () => {
      const key = `idem-${crypto.randomUUID()}`;
      const responses = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          call("/v1/proposals", { body: proposalBody({ reason: `reason ${i}` }), headers: { "idempotency-key": key } }),
        ),
      );
      const bodies = await Promise.all(responses.map((r) => json(r)));
      const statuses = responses.map((r) => r.status);
      expect(statuses.filter((s) => s === 201).length, JSON.stringify(statuses)).toBe(1);
      expect(statuses.filter((s) => s === 409).length, JSON.stringify(statuses)).toBe(9);
      const winner = track(bodies[statuses.indexOf(201)]!);
      await settle(winner.id);
      expect((await cardsPosted()).length).toBe(1);
    });

    it("without an Idempotency-Key the same body twice makes two proposals", async () => {
      const a = await createProposal();
      const b = await createProposal();
      expect(a.id).not.toBe(b.id);
    });
  });

  describe("routing", () => {
    it("GET /v1/proposals (no id) is not a route: 404 in the error shape", async () => {
      await expectError(await call("/v1/proposals", { token: TOKENS.reader }), 404);
    });
  });
});

// ---- GET /v1/proposals/:id ------------------------------------------------------------

describe("GET /v1/proposals/:id", () => {
  it("returns the whole state: status, action, texts, requested_by, created_by, approvals, decision, expires_at, dispatch, result", async () => {
    const body = proposalBody({
      callback_url: "https://hooks.example.com/signoff",
      metadata: { incident: "INC-7" },
      ttl_seconds: 300,
    });
    const p = await createProposal(body);
    const res = await call(`/v1/proposals/${p.id}`, { token: TOKENS.reader });
    expect(res.status).toBe(200);
    const view = await json(res);
    expect(view).toMatchObject({
      id: p.id,
      status: "pending",
      action: body.action,
      summary: body.summary,
      reason: body.reason,
      blast_radius: body.blast_radius,
      rollback: body.rollback,
      requested_by: "U0BOB",
      created_by: "alertmanager",
      approvals: [],
      decision: null,
      expires_at: p.expires_at,
      plan_sha256: p.plan_sha256,
      callback_url: "https://hooks.example.com/signoff",
      metadata: { incident: "INC-7" },
      result: null,
    });
    expect(view.dispatch).toMatchObject({ attempts: 0, last_error: null });
    expect(view).toEqual(p); // what creation answered is what reading answers
  });

  it("requested_by is null when none was given", async () => {
    const p = await createProposal({ requested_by: undefined }); // dropped by JSON.stringify
    const view = await json(await call(`/v1/proposals/${p.id}`, { token: TOKENS.reader }));
    expect(view.requested_by).toBeNull();
  });

  it.each(BAD_CREDENTIALS)("401 for %s (before looking up the id)", async (_name, headers) => {
    const p = await createProposal();
    await expectError(await call(`/v1/proposals/${p.id}`, { token: null, headers }), 401);
    await expectError(await call(`/v1/proposals/${unknownId()}`, { token: null, headers }), 401);
    await expectError(await call("/v1/proposals/garbage", { token: null, headers }), 401);
  });

  it("403 for a key without the proposals:read scope (auditor)", async () => {
    const p = await createProposal();
    await expectError(await call(`/v1/proposals/${p.id}`, { token: TOKENS.auditor }), 403);
  });

  it("404 for an unknown but well-formed id", async () => {
    await expectError(await call(`/v1/proposals/${unknownId()}`, { token: TOKENS.reader }), 404);
  });

  it.each(MALFORMED_IDS)("404 for the malformed id %j", async (id) => {
    await expectError(await call(`/v1/proposals/${id}`, { token: TOKENS.reader }), 404);
  });

  it("404 for an unknown id with ?wait, at once", async () => {
    const started = Date.now();
    await expectError(await call(`/v1/proposals/${unknownId()}?wait=5`, { token: TOKENS.reader }), 404);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  describe("?wait=N (N ≤ 60)", () => {
    it.each(["61", "-1", "abc", "1.5", "1000000", "NaN"])("400 naming wait for wait=%s", async (value) => {
      const p = await createProposal();
      await expectError(await call(`/v1/proposals/${p.id}?wait=${value}`, { token: TOKENS.reader }), 400, ["wait"]);
    });

    it("holds the request until the status changes: a cancel resolves a wait=10 well before 10 s", async () => {
      const p = await createProposal();
      const started = Date.now();
      const waiting = call(`/v1/proposals/${p.id}?wait=10`, { token: TOKENS.reader });
      await sleep(300);
      const cancelled = await call(`/v1/proposals/${p.id}/cancel`, { method: "POST" });
      expect(cancelled.status).toBe(200);
      const res = await waiting;
      const elapsed = Date.now() - started;
      expect(res.status).toBe(200);
      expect((await json(res)).status).toBe("cancelled");
      expect(elapsed).toBeLessThan(3_000);
    });

    it("returns the unchanged proposal after N seconds when nothing happens (wait=1)", async () => {
      const p = await createProposal();
      const started = Date.now();
      const res = await call(`/v1/proposals/${p.id}?wait=1`, { token: TOKENS.reader });
      const elapsed = Date.now() - started;
      expect(res.status).toBe(200);
      const view = await json(res);
      expect(view.status).toBe("pending");
      expect(view).toEqual(p);
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(4_000);
    });

    it("wait=60 (the maximum) is accepted; a proposal that can no longer change answers at once", async () => {
      const p = await createProposal();
      expect((await call(`/v1/proposals/${p.id}/cancel`, { method: "POST" })).status).toBe(200);
      const started = Date.now();
      const res = await call(`/v1/proposals/${p.id}?wait=60`, { token: TOKENS.reader });
      expect(res.status).toBe(200);
      expect((await json(res)).status).toBe("cancelled");
      expect(Date.now() - started).toBeLessThan(2_000);
    });

    it("wait=0 answers at once", async () => {
      const p = await createProposal();
      const started = Date.now();
      const res = await call(`/v1/proposals/${p.id}?wait=0`, { token: TOKENS.reader });
      expect(res.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(1_000);
    });
  });
});

// ---- POST /v1/proposals/:id/cancel ----------------------------------------------------

describe("POST /v1/proposals/:id/cancel", () => {
  it("pending → cancelled (200), then 409 for the second cancel: only a pending proposal can be cancelled", async () => {
    const p = await createProposal();
    const res = await call(`/v1/proposals/${p.id}/cancel`, { method: "POST" });
    expect(res.status).toBe(200);
    const view = await json(res);
    expect(view.id).toBe(p.id);
    expect(view.status).toBe("cancelled");
    expect(view.decision).toMatchObject({ outcome: "cancelled" });
    await settle(p.id);
    const auditBefore = (
      await json(await call(`/v1/audit?proposal_id=${p.id}&type=proposal.cancelled`, { token: TOKENS.auditor }))
    ).events.length;
    expect(auditBefore).toBe(1);
    await expectError(await call(`/v1/proposals/${p.id}/cancel`, { method: "POST" }), 409);
    const after = await json(await call(`/v1/proposals/${p.id}`, { token: TOKENS.reader }));
    expect(after.status).toBe("cancelled");
    expect(after.decision).toEqual(view.decision);
  });

  it("the cancelled proposal's card is updated (chat.update) and keeps no buttons", async () => {
    const p = await createProposal();
    await settle(p.id);
    const [card] = cardsMentioning(await cardsPosted(), p.id);
    expect(buttonsIn(card).length).toBeGreaterThan(0);
    expect((await call(`/v1/proposals/${p.id}/cancel`, { method: "POST" })).status).toBe(200);
    await settle(p.id);
    const updates = await peer.slackCalls("chat.update");
    expect(updates.length).toBe(1);
    expect(updates[0]!.channel).toBe("C0INCIDENT");
    expect(buttonsIn(updates[0]!.blocks)).toEqual([]);
    expect(JSON.stringify(updates[0]).toLowerCase()).toContain("cancel");
  });

  it("403 when a key that did not create the proposal cancels it; it stays pending", async () => {
    const p = await createProposal();
    await expectError(await call(`/v1/proposals/${p.id}/cancel`, { method: "POST", token: TOKENS.other }), 403);
    expect((await json(await call(`/v1/proposals/${p.id}`, { token: TOKENS.reader }))).status).toBe("pending");
  });

  it.each([
    ["reader", TOKENS.reader],
    ["auditor", TOKENS.auditor],
  ])("403 for a key without the proposals:write scope (%s); it stays pending", async (_name, token) => {
    const p = await createProposal();
    await expectError(await call(`/v1/proposals/${p.id}/cancel`, { method: "POST", token }), 403);
    expect((await json(await call(`/v1/proposals/${p.id}`, { token: TOKENS.reader }))).status).toBe("pending");
  });

  it.each(BAD_CREDENTIALS)("401 for %s; it stays pending", async (_name, headers) => {
    const p = await createProposal();
    await expectError(await call(`/v1/proposals/${p.id}/cancel`, { method: "POST", token: null, headers }), 401);
    expect((await json(await call(`/v1/proposals/${p.id}`, { token: TOKENS.reader }))).status).toBe("pending");
  });

  it("404 for an unknown but well-formed id", async () => {
    await expectError(await call(`/v1/proposals/${unknownId()}/cancel`, { method: "POST" }), 404);
  });

  it.each(MALFORMED_IDS)("404 for the malformed id %j", async (id) => {
    await expectError(await call(`/v1/proposals/${id}/cancel`, { method: "POST" }), 404);
  });

  it("cancelling with a JSON body or none both work (the body is ignored)", async () => {
    const p = await createProposal();
    const res = await call(`/v1/proposals/${p.id}/cancel`, { method: "POST", body: { reason: "not needed" } });
    expect(res.status).toBe(200);
  });
});

// ---- POST /v1/proposals/:id/result -----------------------------------------------------

describe("POST /v1/proposals/:id/result", () => {
  async function signedResult(id: string, body: string, contentType = "application/json") {
    return exports.default.fetch(
      new Request(`${BASE}/v1/proposals/${id}/result`, {
        method: "POST",
        headers: { "content-type": contentType, ...runnerSignedHeaders(body, { msgId: `msg_${crypto.randomUUID()}` }) },
        body,
      }),
    );
  }

  it("401 without a Standard Webhooks signature (no bearer token is needed or accepted instead); nothing changes", async () => {
    const p = await createProposal();
    await expectError(await call(`/v1/proposals/${p.id}/result`, { body: { status: "succeeded", output: "ok" } }), 401);
    expect((await json(await call(`/v1/proposals/${p.id}`, { token: TOKENS.reader }))).status).toBe("pending");
  });

  it("401 for a signature made with another secret", async () => {
    const p = await createProposal();
    const body = JSON.stringify({ status: "succeeded", output: "ok" });
    const forged = new Webhook(SECRETS.EVENTS_SECRET);
    const msgId = "msg_forged";
    const now = new Date();
    const res = await exports.default.fetch(
      new Request(`${BASE}/v1/proposals/${p.id}/result`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "webhook-id": msgId,
          "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
          "webhook-signature": forged.sign(msgId, now, body),
        },
        body,
      }),
    );
    await expectError(res, 401);
    expect((await json(await call(`/v1/proposals/${p.id}`, { token: TOKENS.reader }))).status).toBe("pending");
  });

  it("409 for a correctly signed result on a pending proposal (no dispatch awaits a result)", async () => {
    const p = await createProposal();
    await expectError(await signedResult(p.id, JSON.stringify({ status: "succeeded", output: "ok" })), 409);
    expect((await json(await call(`/v1/proposals/${p.id}`, { token: TOKENS.reader }))).status).toBe("pending");
  });

  it("400 naming status for a signed body with an unknown status", async () => {
    const p = await createProposal();
    await expectError(await signedResult(p.id, JSON.stringify({ status: "maybe", output: "" })), 400, ["status"]);
  });

  it("400 for a signed body that is not JSON", async () => {
    const p = await createProposal();
    await expectError(await signedResult(p.id, "{not json"), 400);
  });

  it("404 for a signed result to an unknown id", async () => {
    await expectError(await signedResult(unknownId(), JSON.stringify({ status: "succeeded", output: "ok" })), 404);
  });

  it("415 for a result that is not JSON", async () => {
    const p = await createProposal();
    await expectError(await signedResult(p.id, "status=succeeded", "application/x-www-form-urlencoded"), 415);
  });

  it("413 for a result body over 64 KiB", async () => {
    const p = await createProposal();
    await expectError(
      await signedResult(p.id, JSON.stringify({ status: "succeeded", output: "x".repeat(70 * KiB) })),
      413,
    );
  });

  it("413 for a signed result of 4 MiB sent chunked without Content-Length: never read whole, nothing recorded", async () => {
    const p = await createProposal();
    const text = JSON.stringify({ status: "succeeded", output: "ok" }).padEnd(4 * 1024 * KiB, " ");
    const body = countedStream(new TextEncoder().encode(text));
    const res = await exports.default.fetch(
      new Request(`${BASE}/v1/proposals/${p.id}/result`, {
        method: "POST",
        headers: { "content-type": "application/json", ...runnerSignedHeaders(text) },
        body: body.stream,
      }),
    );
    await expectError(res, 413);
    expect(body.pulled()).toBeLessThan(1024 * KiB);
    expect((await json(await call(`/v1/proposals/${p.id}`, { token: TOKENS.reader }))).status).toBe("pending");
    await settle(p.id);
    expect((await auditOf(p.id)).map((e) => e.type)).not.toContain("result.refused");
  });
});

// ---- GET /v1/audit -------------------------------------------------------------------

describe("GET /v1/audit", () => {
  /** Three proposals with a few events each (one cancelled, one by another key), flushed to D1. */
  async function history() {
    const since = Date.now() - 1;
    const a = await createProposal({ summary: 'Restart api, "carefully", then check' });
    const b = await createProposal({}, { token: TOKENS.other });
    const c = await createProposal();
    expect((await call(`/v1/proposals/${a.id}/cancel`, { method: "POST" })).status).toBe(200);
    for (const p of [a, b, c]) await settle(p.id);
    return { a, b, c, since };
  }

  async function page(query: string) {
    const res = await call(`/v1/audit?${query}`, { token: TOKENS.auditor });
    const body = await json(res);
    expect(res.status, JSON.stringify(body)).toBe(200);
    return body as { events: Json[]; next_cursor: string | null };
  }

  it("answers {events, next_cursor}, each event {seq, at, proposal_id, type, actor, details, prev_hash, hash}", async () => {
    const { a } = await history();
    const body = await page(`proposal_id=${a.id}`);
    expect(Object.keys(body).sort()).toEqual(["events", "next_cursor"]);
    expect(body.next_cursor).toBeNull();
    expect(body.events.length).toBeGreaterThanOrEqual(2);
    for (const event of body.events) {
      expect(event).toMatchObject({
        seq: expect.any(Number),
        at: expect.any(String),
        proposal_id: a.id,
        type: expect.any(String),
        actor: expect.any(String),
        details: expect.any(Object),
        prev_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
        hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      });
      expect(new Date(event.at).toISOString()).toBe(event.at);
    }
    // Each event carries the hash of the one before it (SPEC 8).
    for (let i = 1; i < body.events.length; i++) expect(body.events[i]!.prev_hash).toBe(body.events[i - 1]!.hash);
    expect(body.events.map((e) => e.type)).toEqual(expect.arrayContaining(["proposal.created", "proposal.cancelled"]));
  });

  it("filters by proposal_id: only that proposal's events, oldest first", async () => {
    const { a, b } = await history();
    const events = (await page(`proposal_id=${b.id}`)).events;
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.proposal_id === b.id)).toBe(true);
    expect(events.some((e) => e.proposal_id === a.id)).toBe(false);
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
  });

  it("filters by type", async () => {
    const { a } = await history();
    const events = (await page(`type=proposal.cancelled&limit=1000`)).events;
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.type === "proposal.cancelled")).toBe(true);
    expect(events.some((e) => e.proposal_id === a.id)).toBe(true);
  });

  it("filters by actor (key:<name>)", async () => {
    const { b, since } = await history();
    const events = (await page(`actor=key:ci&since=${since}&limit=1000`)).events;
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.actor === "key:ci")).toBe(true);
    expect(events.every((e) => e.proposal_id === b.id)).toBe(true);
  });

  it("combines filters (proposal_id and type)", async () => {
    const { a } = await history();
    const events = (await page(`proposal_id=${a.id}&type=proposal.created`)).events;
    expect(events.length).toBe(1);
    expect(events[0]).toMatchObject({ proposal_id: a.id, type: "proposal.created", actor: "key:alertmanager" });
  });

  it("filters by since and until (ISO 8601 or Unix ms): since inclusive, until exclusive", async () => {
    const { a, c } = await history();
    const all = [...(await page(`proposal_id=${a.id}`)).events, ...(await page(`proposal_id=${c.id}`)).events];
    const times = [...new Set(all.map((e) => Date.parse(e.at)))].sort((x, y) => x - y);
    expect(times.length).toBeGreaterThanOrEqual(2);
    const pivot = times[1]!;
    for (const since of [String(pivot), new Date(pivot).toISOString()]) {
      const events = (await page(`proposal_id=${a.id}&since=${encodeURIComponent(since)}`)).events;
      expect(events.every((e) => Date.parse(e.at) >= pivot)).toBe(true);
      expect(events.length).toBe(all.filter((e) => e.proposal_id === a.id && Date.parse(e.at) >= pivot).length);
    }
    for (const until of [String(pivot), new Date(pivot).toISOString()]) {
      const events = (await page(`proposal_id=${a.id}&until=${encodeURIComponent(until)}`)).events;
      expect(events.every((e) => Date.parse(e.at) < pivot)).toBe(true);
      expect(events.length).toBe(all.filter((e) => e.proposal_id === a.id && Date.parse(e.at) < pivot).length);
    }
    const future = (await page(`since=${Date.now() + 3_600_000}`)).events;
    expect(future).toEqual([]);
  });

  it("pages with limit and cursor: walking every page gives each event once, oldest first, and next_cursor null at the end", async () => {
    const { since } = await history();
    const whole = (await page(`since=${since}&limit=1000`)).events;
    expect(whole.length).toBeGreaterThanOrEqual(6);
    const walked: Json[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `since=${since}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const body = await page(query);
      expect(body.events.length).toBeLessThanOrEqual(2);
      walked.push(...body.events);
      cursor = body.next_cursor;
      if (cursor !== null) expect(typeof cursor).toBe("string");
      pages++;
      expect(pages).toBeLessThan(100);
    } while (cursor !== null);
    expect(pages).toBe(Math.ceil(whole.length / 2));
    const seqs = walked.map((e) => e.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(walked).toEqual(whole);
  });

  it("format=ndjson gives one event per line, the same events as JSON", async () => {
    const { a } = await history();
    const asJson = (await page(`proposal_id=${a.id}`)).events;
    const res = await call(`/v1/audit?proposal_id=${a.id}&format=ndjson`, { token: TOKENS.auditor });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/(x-)?ndjson/);
    const text = await bodyText(res); // .text() would make workerd warn that NDJSON "does not appear to be text"
    const lines = text.split("\n").filter((line) => line !== "");
    expect(lines.length).toBe(asJson.length);
    expect(lines.map((line) => JSON.parse(line))).toEqual(asJson);
  });

  it("format=csv gives a header line and one row per event; a field with a comma or quote is quoted (RFC 4180)", async () => {
    const { a } = await history();
    const asJson = (await page(`proposal_id=${a.id}`)).events;
    const res = await call(`/v1/audit?proposal_id=${a.id}&format=csv`, { token: TOKENS.auditor });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
    const text = await res.text();
    const rows = parseCsv(text);
    const [header, ...body] = rows;
    expect(header).toEqual(
      expect.arrayContaining(["seq", "at", "proposal_id", "type", "actor", "details", "prev_hash", "hash"]),
    );
    expect(body.length).toBe(asJson.length);
    body.forEach((row, i) => {
      const record = Object.fromEntries(header!.map((name, j) => [name, row[j]]));
      const event = asJson[i]!;
      expect(record).toMatchObject({
        seq: String(event.seq),
        at: event.at,
        proposal_id: event.proposal_id,
        type: event.type,
        actor: event.actor,
        hash: event.hash,
      });
      expect(JSON.parse(record.details!)).toEqual(event.details);
    });
    // details holds commas and quotes: it must be a quoted field with doubled quotes.
    const created = asJson.find((e) => e.type === "proposal.created")!;
    expect(text).toContain(`"${JSON.stringify(created.details).replace(/"/g, '""')}"`);
  });

  it.each([
    ["limit=0", "limit"],
    ["limit=1001", "limit"],
    ["limit=abc", "limit"],
    ["limit=-5", "limit"],
    ["limit=2.5", "limit"],
    ["cursor=abc", "cursor"],
    ["cursor=-1", "cursor"],
    ["since=yesterday", "since"],
    ["since=2026-13-45T99:00:00Z", "since"],
    ["until=not-a-date", "until"],
    ["format=xml", "format"],
    ["format=", "format"],
    ["bogus=1", "bogus"],
    ["proposal_id=x&colour=red", "colour"],
  ])("400 naming the parameter for %s", async (query, field) => {
    await expectError(await call(`/v1/audit?${query}`, { token: TOKENS.auditor }), 400, [field]);
  });

  it.each(BAD_CREDENTIALS)("401 for %s", async (_name, headers) => {
    await expectError(await call("/v1/audit", { token: null, headers }), 401);
  });

  it.each([
    ["reader", TOKENS.reader],
    ["ci (writer without audit:read)", TOKENS.other],
  ])("403 for a key without the audit:read scope (%s)", async (_name, token) => {
    await expectError(await call("/v1/audit", { token }), 403);
  });

  it("the writer key (it holds audit:read) may read the audit log", async () => {
    expect((await call("/v1/audit?limit=1", { token: TOKENS.writer })).status).toBe(200);
  });
});

/** A small RFC 4180 parser (quoted fields, doubled quotes, CRLF or LF line ends). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      row.push(field);
      field = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += ch;
  }
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

// ---- POST /slack/interactions ----------------------------------------------------------

describe("POST /slack/interactions", () => {
  /** A raw form body, correctly signed with SLACK_SIGNING_SECRET. */
  const signedSlack = (body: string) => signedSlackBody(body);

  async function view(id: string): Promise<Json> {
    return json(await call(`/v1/proposals/${id}`, { token: TOKENS.reader }));
  }

  it("401 for an unsigned request: nothing parsed, nothing changed", async () => {
    const p = await createProposal();
    const body = `payload=${encodeURIComponent(JSON.stringify(clickPayload("approve", p.id, "U0ALICE")))}`;
    const res = await exports.default.fetch(
      new Request(`${BASE}/slack/interactions`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body,
      }),
    );
    await expectError(res, 401);
    expect((await view(p.id)).status).toBe("pending");
  });

  it("401 for a request signed with another secret: nothing changed", async () => {
    const p = await createProposal();
    await expectError(
      await slackRequest(clickPayload("approve", p.id, "U0ALICE"), { secret: "not-the-signing-secret" }),
      401,
    );
    expect((await view(p.id)).status).toBe("pending");
  });

  it("413 for a signed click of 16 MiB sent chunked without Content-Length: never read whole, nothing changed", async () => {
    const p = await createProposal();
    await settle(p.id);
    const before = (await auditOf(p.id)).length;
    // A correctly signed approval by an approver, padded: read whole, it would count.
    const form = paddedForm(
      `payload=${encodeURIComponent(JSON.stringify(clickPayload("approve", p.id, "U0ALICE")))}`,
      16 * 1024 * KiB,
    );
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = await signSlackRequest(SECRETS.SLACK_SIGNING_SECRET, timestamp, new TextDecoder().decode(form));
    const body = countedStream(form, 64 * KiB);
    const res = await exports.default.fetch(
      new Request(`${BASE}/slack/interactions`, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "x-slack-request-timestamp": String(timestamp),
          "x-slack-signature": signature,
        },
        body: body.stream,
      }),
    );
    await expectError(res, 413);
    expect(body.pulled()).toBeLessThan(4 * 1024 * KiB);
    expect((await view(p.id)).status).toBe("pending");
    await settle(p.id);
    expect(await auditOf(p.id)).toHaveLength(before);
  });

  it.each(["toString", "constructor", "hasOwnProperty", "valueOf", "__proto__", "signoff.unknown"])(
    "a signed click whose action_id %j is not one of signoff's buttons is answered (no 5xx) and changes nothing",
    async (actionId) => {
      const p = await createProposal();
      await settle(p.id);
      const res = await slackRequest({
        type: "block_actions",
        user: { id: "U0ALICE" },
        channel: { id: "C0INCIDENT" },
        actions: [{ action_id: actionId, value: p.id, type: "button" }],
      });
      expect(res.status, await res.clone().text()).toBeLessThan(500);
      const after = await view(p.id);
      expect(after.status).toBe("pending");
      expect(after.approvals).toEqual([]);
    },
  );

  const DEEP_ARRAY = "[".repeat(5000) + "]".repeat(5000);
  const DEEP_OBJECT = `${'{"a":'.repeat(2500)}null${"}".repeat(2500)}`;
  const click = (id: string, user: string, overrides: Json) => ({
    type: "block_actions",
    user: { id: user },
    channel: { id: "C0INCIDENT" },
    actions: [{ action_id: "signoff.approve", value: id, type: "button" }],
    ...overrides,
  });

  it.each<[string, (id: string) => Json, string]>([
    [
      "actions[0].action_id",
      (id) => click(id, "U0ALICE", { actions: [{ action_id: "DEEP", value: id, type: "button" }] }),
      DEEP_ARRAY,
    ],
    [
      "actions[0].value",
      (id) => click(id, "U0ALICE", { actions: [{ action_id: "signoff.approve", value: "DEEP", type: "button" }] }),
      DEEP_ARRAY,
    ],
    // A click by someone who may not decide, so that ignoring the bad channel changes nothing either.
    ["channel.id", (id) => click(id, "U0MALLORY", { channel: { id: "DEEP" } }), DEEP_OBJECT],
    [
      "container.channel_id",
      (id) => click(id, "U0MALLORY", { channel: undefined, container: { type: "message", channel_id: "DEEP" } }),
      DEEP_OBJECT,
    ],
    [
      "view.private_metadata",
      () => ({
        type: "view_submission",
        user: { id: "U0ALICE" },
        view: { callback_id: "signoff.deny_reason", private_metadata: "DEEP" },
      }),
      DEEP_ARRAY,
    ],
  ])(
    "a signed payload whose %s is deeply nested JSON (not a string) never yields a 5xx and changes nothing",
    async (_field, build, deep) => {
      const p = await createProposal();
      await settle(p.id);
      const res = await signedSlack(
        `payload=${encodeURIComponent(JSON.stringify(build(p.id)).replace('"DEEP"', deep))}`,
      );
      expect(res.status, await res.clone().text()).toBeLessThan(500);
      const after = await view(p.id);
      expect(after.status).toBe("pending");
      expect(after.approvals).toEqual([]);
    },
  );

  it("a signed click whose action_id is an array holding a button's name is not that button: nothing changes", async () => {
    const p = await createProposal();
    await settle(p.id);
    const res = await slackRequest(
      click(p.id, "U0ALICE", { actions: [{ action_id: ["signoff.approve"], value: p.id, type: "button" }] }),
    );
    expect(res.status).toBeLessThan(500);
    const after = await view(p.id);
    expect(after.status).toBe("pending");
    expect(after.approvals).toEqual([]);
  });

  it("four-eyes: the requester cannot approve their own proposal, whatever action_id the click carries", async () => {
    const p = await createProposal({ requested_by: "U0BOB" }); // U0BOB is in S0ONCALL, one of the approvers
    await settle(p.id);
    for (const actionId of ["signoff.approve", "toString", "constructor"]) {
      const res = await slackRequest({
        type: "block_actions",
        user: { id: "U0BOB" },
        channel: { id: "C0INCIDENT" },
        actions: [{ action_id: actionId, value: p.id, type: "button" }],
      });
      expect(res.status).toBeLessThan(500);
      const after = await view(p.id);
      expect(after.status, `after a click with action_id ${actionId}`).toBe("pending");
      expect(after.approvals).toEqual([]);
    }
    expect(await peer.requests("/runner")).toEqual([]);
  });

  it.each<[string, unknown]>([
    ["a number", 5],
    ["a boolean", true],
    ["an object", { text: "why" }],
    ["an array", ["why"]],
  ])(
    "a deny form whose reason is %s (not text) never yields a 5xx, and any stored reason is text",
    async (_name, value) => {
      const p = await createProposal();
      await settle(p.id);
      const res = await slackRequest({
        type: "view_submission",
        user: { id: "U0ALICE" },
        view: {
          callback_id: "signoff.deny_reason",
          private_metadata: p.id,
          state: { values: { reason: { reason: { type: "plain_text_input", value } } } },
        },
      });
      expect(res.status, await res.clone().text()).toBeLessThan(500);
      const after = await view(p.id);
      expect(["pending", "denied"]).toContain(after.status);
      if (after.decision?.reason !== undefined) expect(typeof after.decision.reason).toBe("string");
    },
  );

  it.each<[string, unknown]>([
    ["an array nested 5 000 deep", "DEEP"],
    ["an array holding an approver's id", ["U0ALICE"]],
    ["an object", { id: "U0ALICE" }],
    ["a number", 42],
  ])(
    "a signed click whose user id is %s (not a Slack user id) is refused as bad input (400), and nothing is audited",
    async (_name, id) => {
      const p = await createProposal();
      await settle(p.id);
      const eventsBefore = (await auditOf(p.id)).length;
      const text = JSON.stringify({
        type: "block_actions",
        user: { id },
        channel: { id: "C0INCIDENT" },
        actions: [{ action_id: "signoff.approve", value: p.id, type: "button" }],
      }).replace('"DEEP"', "[".repeat(5000) + "]".repeat(5000));
      const res = await signedSlack(`payload=${encodeURIComponent(text)}`);
      await expectError(res, 400);
      await settle(p.id);
      expect((await auditOf(p.id)).length).toBe(eventsBefore);
      expect((await view(p.id)).status).toBe("pending");
    },
  );
});

// ---- GET /healthz, GET /openapi.json, unknown routes ------------------------------------

describe("GET /healthz", () => {
  it("answers {ok: true, version} without credentials", async () => {
    const res = await call("/healthz", { token: null });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toEqual({ ok: true, version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
  });
});

describe("GET /openapi.json", () => {
  it("is an OpenAPI 3.1 document listing every route of SPEC 4", async () => {
    const res = await call("/openapi.json", { token: null });
    expect(res.status).toBe(200);
    const doc = await json(res);
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    const routes: Array<[string, string]> = [
      ["/v1/proposals", "post"],
      ["/v1/proposals/{id}", "get"],
      ["/v1/proposals/{id}/cancel", "post"],
      ["/v1/proposals/{id}/result", "post"],
      ["/v1/audit", "get"],
      ["/v1/stats", "get"],
      ["/metrics", "get"],
      ["/slack/interactions", "post"],
      ["/slack/events", "post"],
      ["/healthz", "get"],
      ["/openapi.json", "get"],
    ];
    for (const [path, method] of routes)
      expect(doc.paths?.[path]?.[method], `${method.toUpperCase()} ${path}`).toBeDefined();
  });

  it("describes the create body with its required fields, the ?wait parameter and the audit filters", async () => {
    const doc = await json(await call("/openapi.json", { token: null }));
    const create = doc.paths["/v1/proposals"].post;
    const schema = create.requestBody.content["application/json"].schema;
    expect(schema.required).toEqual(
      expect.arrayContaining(["action", "summary", "reason", "blast_radius", "rollback"]),
    );
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining([
        "action",
        "summary",
        "reason",
        "blast_radius",
        "rollback",
        "requested_by",
        "ttl_seconds",
        "callback_url",
        "metadata",
      ]),
    );
    expect(schema.properties.action.properties.params.description).toContain(
      `at most ${CARD_PLAN_MAX} characters so written, else 422 plan_too_large`,
    );
    expect(create.responses).toHaveProperty("201");
    for (const status of ["400", "401", "403", "409", "413", "415", "422"])
      expect(create.responses, status).toHaveProperty(status);
    const wait = doc.paths["/v1/proposals/{id}"].get.parameters.find((p: Json) => p.name === "wait");
    expect(wait).toMatchObject({ in: "query" });
    const auditParams = doc.paths["/v1/audit"].get.parameters.map((p: Json) => p.name);
    expect(auditParams).toEqual(
      expect.arrayContaining(["proposal_id", "type", "actor", "since", "until", "limit", "cursor", "format"]),
    );
  });
});

describe("unknown routes", () => {
  it.each([
    ["GET", "/v1/nope"],
    ["GET", "/v2/proposals"],
    ["POST", "/v1/proposals/prp_abc/approve"],
    ["DELETE", "/v1/audit"],
    ["GET", "/"],
  ])("%s %s → 404 in the error shape", async (method, path) => {
    await expectError(await call(path, { method, token: TOKENS.writer }), 404);
  });
});
