// Property-based fuzzing of the public surface (SPEC 4, 5) inside workerd: whatever arrives —
// random JSON, random bytes, mutated proposals, odd headers, junk queries, correctly signed junk
// from "Slack" — the Worker never answers 5xx, every 4xx is SPEC 4's error shape, and a refused
// request changes nothing (no new proposal in the D1 audit log, no card on the stand-in Slack).
import { env, exports } from "cloudflare:workers";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { bodyText } from "../src/lib/encoding.ts";
import { signSlackRequest } from "../src/slack/signature.ts";
import { SECRETS, TOKENS } from "./fixtures.ts";
import { BASE, call, clickPayload, json, proposalBody, settle, slackRequest } from "./helpers/api.ts";
import { expectErrorShape } from "./helpers/contract.ts";
import { peer } from "./peer/client.ts";

type Json = Record<string, any>;

const PUBLIC_ID = /^prp_[0-9a-f]{64}$/;

/** Enough runs to find the odd input, few enough that the file stays well under a minute. */
const RUNS = { heavy: 150, light: 200 };
/** A safety valve: a property that gets slow stops early (and passes with the runs it made) instead of timing out. */
const TIME_LIMIT_MS = 8_000;
const SUITE = { timeout: 30_000 };

// ---- invariants ------------------------------------------------------------------------

/** SPEC 4: never a 5xx; every 4xx is `{"error":{"code","message","details":[…]}}`. Returns the parsed body. */
async function checkAnswer(res: Response, what: string, allowed?: readonly number[]): Promise<Json | null> {
  const text = await res.text();
  const show = `${what} → ${res.status} ${text.slice(0, 300)}`;
  expect(res.status, show).toBeLessThan(500);
  if (allowed) expect(allowed, show).toContain(res.status);
  if (res.status >= 400) {
    let body: Json;
    try {
      body = JSON.parse(text) as Json;
    } catch {
      throw new Error(`${show}: a ${res.status} that is not JSON`);
    }
    expectErrorShape(body, show);
    return body;
  }
  if (text === "") return null;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return null;
  }
}

interface World {
  /** Proposals the audit log knows (rows of earlier proposals may still arrive, so not the row count). */
  proposals: number;
  cards: number;
}

async function world(): Promise<World> {
  const proposals =
    (await env.AUDIT_DB.prepare("SELECT COUNT(DISTINCT proposal_id) AS n FROM audit_events").first<number>("n")) ?? 0;
  const cards = (await peer.requests("/slack/api/chat.postMessage")).length;
  return { proposals, cards };
}

/**
 * After a create attempt: a refusal left the world as it was; a 201 made exactly one proposal,
 * which is then cancelled and settled so its alarm never writes into a later run's snapshot.
 */
async function checkCreateEffects(res: Response, body: Json | null, before: World, what: string): Promise<void> {
  if (res.status === 201 || res.status === 200) {
    expect(body?.id, what).toMatch(PUBLIC_ID);
    const id = body!.id as string;
    if (res.status === 201) expect(body!.status, what).toBe("pending");
    const cancel = await call(`/v1/proposals/${id}/cancel`, { method: "POST", token: tokenOfCreator(body!) });
    expect([200, 409], what).toContain(cancel.status);
    await cancel.text();
    await settle(id);
    const cards = await peer.slackCalls("chat.postMessage");
    expect(cards.filter((c) => JSON.stringify(c).includes(id)).length, `${what}: one card per proposal`).toBe(1);
    return;
  }
  const after = await world();
  expect(after, `${what}: a refused request changed something`).toEqual(before);
}

function tokenOfCreator(view: Json): string {
  return view.created_by === "ci" ? TOKENS.other : TOKENS.writer;
}

function describeBody(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}… (${text.length} chars)` : text;
}

// ---- generators ------------------------------------------------------------------------

/** Names that trip up code which indexes plain objects with caller-supplied strings. */
const HOSTILE_NAMES = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "__defineGetter__",
  "then",
  "length",
  "",
  " ",
  "\u0000",
  "command",
  "argv",
  "shell",
];

const hostileName = fc.constantFrom(...HOSTILE_NAMES);
const keyName = fc.oneof(hostileName, fc.string({ maxLength: 12 }), fc.string({ unit: "binary", maxLength: 8 }));

const hostileString = fc.constantFrom(
  "<!channel>",
  "<https://evil.example|click>",
  "@here",
  "\u202e\u0000\u0007",
  "\ud800",
  "a\udfffb",
  "😀".repeat(100),
  "e\u0301".repeat(100),
  "'; DROP TABLE audit_events; --",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, meant literally
  "${{7*7}}",
  "%00",
  "\r\n\r\n",
  "x".repeat(3001),
  ...HOSTILE_NAMES,
);

/** A string of about n UTF-16 units, some multi-byte. */
const hugeString = fc
  .tuple(fc.integer({ min: 250, max: 80_000 }), fc.constantFrom("x", "é", "😀", "<!here>", "\u0000", " "))
  .map(([n, unit]) => unit.repeat(Math.max(1, Math.ceil(n / unit.length))));

/** signoff's own buttons (SPEC 5): Approve, Deny, Escalate. */
const BUTTONS: readonly unknown[] = ["signoff.approve", "signoff.deny", "signoff.escalate"];

/** Marks a pool proposal's id in a generated Slack payload, replaced at send time. */
const POOL = "\u0002pool:";

/** Marks where the serialized body gets an n-deep nesting, written as text (no recursion on our side). */
const DEEP = "\u0001deep:";
const deepNesting = fc
  .tuple(fc.integer({ min: 1, max: 30_000 }), fc.constantFrom("[]", "{}"))
  .map(([n, kind]) => `${DEEP}${kind}:${n}`);

function expandDeep(text: string): string {
  return text.replace(/"\\u0001deep:(\[\]|\{\}):(\d+)"/g, (_m, kind: string, n: string) => {
    const depth = Number(n);
    return kind === "[]" ? "[".repeat(depth) + "]".repeat(depth) : `${'{"a":'.repeat(depth)}null${"}".repeat(depth)}`;
  });
}

const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(), // NaN and ±Infinity serialize as null
  fc.constantFrom(0, -0, 1e308, -1e308, 2 ** 53, 2 ** 53 + 2, 1e-320, 0.1),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  hostileString,
);

const junkValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(keyName, scalar, { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 4 }) },
  { weight: 1, arbitrary: hugeString },
  { weight: 1, arbitrary: deepNesting },
);

const ACTION_TYPES = [
  "k8s.rollout_restart",
  "db.failover",
  "demo.echo",
  "k8s.constructor",
  "k8s.__proto__",
  "k8s.",
  "k8s.*",
  "*",
  "K8S.ROLLOUT_RESTART",
  "k8s.rollout_restart ",
  ...HOSTILE_NAMES,
];

type Path = string[];
type Mutation =
  | { op: "drop"; path: Path }
  | { op: "set"; path: Path; value: unknown }
  | { op: "add"; path: Path; key: string; value: unknown };

const FIELD_PATHS: Path[] = [
  ["action"],
  ["action", "type"],
  ["action", "params"],
  ["action", "params", "deployment"],
  ["summary"],
  ["reason"],
  ["blast_radius"],
  ["rollback"],
  ["requested_by"],
  ["ttl_seconds"],
  ["callback_url"],
  ["metadata"],
  ["metadata", "incident"],
];
const OBJECT_PATHS: Path[] = [[], ["action"], ["action", "params"], ["metadata"]];

const fieldPath = fc.constantFrom(...FIELD_PATHS);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("drop" as const), path: fieldPath }),
  fc.record({ op: fc.constant("set" as const), path: fieldPath, value: junkValue }),
  fc.record({
    op: fc.constant("set" as const),
    path: fc.constant<Path>(["action", "type"]),
    value: fc.constantFrom<unknown>(...ACTION_TYPES),
  }),
  fc.record({
    op: fc.constant("set" as const),
    path: fc.constant<Path>(["ttl_seconds"]),
    value: fc.oneof(
      fc.integer({ min: -10, max: 4000 }),
      fc.double(),
      fc.constantFrom<unknown>(1, 3600, 3601, 2 ** 31, 1e21, "60"),
    ),
  }),
  fc.record({
    op: fc.constant("set" as const),
    path: fc.constant<Path>(["requested_by"]),
    value: fc.oneof(
      fc.stringMatching(/^[UWSC][A-Z0-9]{0,12}$/),
      fc.constantFrom<unknown>("U0BOB", "u0bob", "@bob", null),
    ),
  }),
  fc.record({
    op: fc.constant("set" as const),
    path: fc.constant<Path>(["callback_url"]),
    // No allowed host here: a callback that is really delivered would go on retrying in later runs.
    value: fc.oneof(
      fc.webUrl(),
      fc.constantFrom<unknown>(
        "https://evil.example/x",
        "http://10.0.0.1/",
        "javascript:alert(1)",
        "https://u:p@hooks.example.com/",
        "//hooks.example.com",
      ),
    ),
  }),
  fc.record({
    op: fc.constant("add" as const),
    path: fc.constantFrom(...OBJECT_PATHS),
    key: keyName,
    value: junkValue,
  }),
);

function applyMutation(body: Json, m: Mutation): void {
  const parentPath = m.op === "add" ? m.path : m.path.slice(0, -1);
  let parent: any = body;
  for (const segment of parentPath) {
    if (parent === null || typeof parent !== "object" || Array.isArray(parent)) return;
    parent = parent[segment];
  }
  if (parent === null || typeof parent !== "object" || Array.isArray(parent)) return;
  if (m.op === "drop") delete parent[m.path.at(-1)!];
  else if (m.op === "set")
    Object.defineProperty(parent, m.path.at(-1)!, {
      value: m.value,
      enumerable: true,
      configurable: true,
      writable: true,
    });
  else Object.defineProperty(parent, m.key, { value: m.value, enumerable: true, configurable: true, writable: true });
}

const baseBody = fc.constantFrom<Json>(
  proposalBody(),
  proposalBody({ action: { type: "db.failover", params: { cluster: "pg-main" } } }),
  proposalBody({ action: { type: "demo.echo", params: { message: "hi" } } }),
  proposalBody({ metadata: { incident: "INC-7" }, ttl_seconds: 300 }),
);

const mutatedBody = fc.tuple(baseBody, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([base, mutations]) => {
  const body = structuredClone(base);
  for (const m of mutations) applyMutation(body, m);
  return { body, mutations };
});

function serialize(value: unknown): string | undefined {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? undefined : expandDeep(text);
  } catch {
    return undefined;
  }
}

function post(
  path: string,
  rawBody: BodyInit | undefined,
  headers: Record<string, string>,
  token: string | null = TOKENS.writer,
) {
  return call(path, { method: "POST", token, ...(rawBody === undefined ? {} : { rawBody }), headers });
}

const CREATE_STATUSES = [200, 201, 400, 401, 403, 409, 413, 415, 422] as const;

// ---- POST /v1/proposals -----------------------------------------------------------------

describe("fuzz POST /v1/proposals: bad input never yields a 5xx and never changes state", SUITE, () => {
  it("random JSON values as the body", async () => {
    const bodies = fc.oneof(
      fc.json({ maxDepth: 4 }),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc.anything({ maxDepth: 3, withBigInt: false }).map((v) => serialize(v) ?? "undefined"),
      fc
        .dictionary(
          fc.constantFrom(
            "action",
            "summary",
            "reason",
            "blast_radius",
            "rollback",
            "requested_by",
            "ttl_seconds",
            "metadata",
          ),
          junkValue,
        )
        .map((v) => serialize(v) ?? "{}"),
    );
    await fc.assert(
      fc.asyncProperty(bodies, async (text) => {
        const before = await world();
        const res = await post("/v1/proposals", text, { "content-type": "application/json" });
        const what = `POST /v1/proposals ${describeBody(text)}`;
        const body = await checkAnswer(res, what, CREATE_STATUSES);
        await checkCreateEffects(res, body, before, what);
      }),
      { numRuns: RUNS.light, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });

  it("random bytes as the body", async () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 2048 }),
      fc.string({ unit: "binary", maxLength: 512 }).map((s) => new TextEncoder().encode(s)),
      // Around the 64 KiB limit: a random pattern repeated (generating 70 000 bytes one by one is slow).
      fc
        .tuple(fc.integer({ min: 60_000, max: 70_000 }), fc.uint8Array({ minLength: 1, maxLength: 64 }))
        .map(([n, pattern]) => {
          const bytes = new Uint8Array(n);
          for (let i = 0; i < n; i++) bytes[i] = pattern[i % pattern.length]!;
          return bytes;
        }),
    );
    await fc.assert(
      fc.asyncProperty(bytes, async (data) => {
        const before = await world();
        const res = await post("/v1/proposals", data, { "content-type": "application/json" });
        const what = `POST /v1/proposals <${data.length} random bytes: ${[...data.slice(0, 16)].join(",")}…>`;
        const body = await checkAnswer(res, what, CREATE_STATUSES);
        await checkCreateEffects(res, body, before, what);
      }),
      { numRuns: RUNS.light, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });

  it("mutations of a valid proposal: dropped and altered fields, wrong types, huge and unicode strings, nested junk", async () => {
    await fc.assert(
      fc.asyncProperty(mutatedBody, async ({ body, mutations }) => {
        const text = serialize(body);
        fc.pre(text !== undefined);
        const before = await world();
        const res = await post("/v1/proposals", text, { "content-type": "application/json" });
        const what = `POST /v1/proposals after ${describeBody(JSON.stringify(mutations, (_k, v) => (typeof v === "string" && v.length > 80 ? `${v.slice(0, 80)}…(${v.length})` : v)))}`;
        const answer = await checkAnswer(res, what, CREATE_STATUSES);
        if (res.status === 201) {
          // Whatever got through is stored as sent.
          const view = await json(await call(`/v1/proposals/${answer!.id}`, { token: TOKENS.reader }));
          for (const field of ["summary", "reason", "blast_radius", "rollback"])
            expect(view[field], what).toBe(body[field]);
        }
        await checkCreateEffects(res, answer, before, what);
      }),
      {
        numRuns: RUNS.heavy,
        interruptAfterTimeLimit: TIME_LIMIT_MS,
        // Found by this property: metadata nested 5 000+ deep (well under 64 KiB) overflows the stack (500).
        examples: [
          [{ body: proposalBody({ metadata: { x: `${DEEP}[]:5000` } }), mutations: [] }],
          [{ body: proposalBody({ metadata: { x: `${DEEP}{}:3000` } }), mutations: [] }],
        ],
      },
    );
  });

  it("random header combinations: content-type, content-length lies, credentials, Idempotency-Key", async () => {
    const contentType = fc.option(
      fc.oneof(
        fc.constantFrom(
          "application/json",
          "application/json; charset=utf-8",
          "APPLICATION/JSON",
          "application/vnd.api+json",
          "application/json;",
          "application/jsonx",
          "text/json",
          "text/plain",
          "application/x-www-form-urlencoded",
          "multipart/form-data; boundary=x",
          "json",
          "*/*",
        ),
        fc.string({ maxLength: 30 }),
      ),
      { nil: undefined },
    );
    const contentLength = fc.option(
      fc.oneof(
        fc.constantFrom("0", "1", "-1", "abc", "65536", "65537", "1e5", "99999999999999999999999", "NaN", "0x10"),
        fc.nat().map(String),
      ),
      { nil: undefined },
    );
    const authorization = fc.option(
      fc.oneof(
        fc.constantFrom(
          `Bearer ${TOKENS.writer}`,
          `bearer ${TOKENS.writer}`,
          `Bearer   ${TOKENS.writer}  `,
          `Bearer ${TOKENS.other}`,
          `Bearer ${TOKENS.reader}`,
          `Bearer ${TOKENS.auditor}`,
          `Basic ${TOKENS.writer}`,
          `Bearer ${TOKENS.writer},Bearer ${TOKENS.reader}`,
          `Bearer ${"a".repeat(600)}`,
          "Bearer",
          TOKENS.writer,
        ),
        fc.string({ maxLength: 60 }),
        fc.string({ maxLength: 60 }).map((s) => `Bearer ${s}`),
      ),
      { nil: undefined },
    );
    const idempotencyKey = fc.option(
      fc.oneof(fc.string({ minLength: 0, maxLength: 20 }), fc.constantFrom("k".repeat(256), "same-key", "sp ace")),
      { nil: undefined },
    );
    const body = fc.oneof(
      fc.constant(JSON.stringify(proposalBody())),
      fc.constant(JSON.stringify(proposalBody({ action: { type: "db.failover", params: {} } }))),
      fc.constant(""),
      fc.constant("x".repeat(70_000)),
      fc.json({ maxDepth: 2 }),
      fc.string({ maxLength: 100 }),
    );
    const asStream = fc.boolean();
    await fc.assert(
      fc.asyncProperty(
        contentType,
        contentLength,
        authorization,
        idempotencyKey,
        body,
        asStream,
        async (type, length, auth, idem, text, stream) => {
          const headers: Record<string, string> = {};
          if (type !== undefined) headers["content-type"] = type;
          if (length !== undefined) headers["content-length"] = length;
          if (auth !== undefined) headers.authorization = auth;
          if (idem !== undefined) headers["idempotency-key"] = idem;
          const bytes = new TextEncoder().encode(text);
          let request: Request;
          try {
            request = new Request(`${BASE}/v1/proposals`, {
              method: "POST",
              headers,
              body: stream ? new Blob([bytes]).stream() : bytes,
            });
          } catch {
            fc.pre(false); // not a request a client could send (e.g. a header value fetch refuses)
            return;
          }
          const before = await world();
          const res = await exports.default.fetch(request);
          const what = `POST /v1/proposals headers=${JSON.stringify(headers)} stream=${stream} body=${describeBody(text)}`;
          const answer = await checkAnswer(res, what, CREATE_STATUSES);
          await checkCreateEffects(res, answer, before, what);
        },
      ),
      { numRuns: RUNS.heavy, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });
});

// ---- reads --------------------------------------------------------------------------

describe("fuzz reads: never a 5xx, 4xx in the error shape", SUITE, () => {
  let cancelledId = "";

  async function cancelledProposal(): Promise<string> {
    if (cancelledId) return cancelledId;
    const res = await call("/v1/proposals", { body: proposalBody() });
    const p = await json(res);
    expect(res.status).toBe(201);
    expect((await call(`/v1/proposals/${p.id}/cancel`, { method: "POST" })).status).toBe(200);
    await settle(p.id);
    cancelledId = p.id;
    return cancelledId;
  }

  const AUDIT_PARAMS = ["proposal_id", "type", "actor", "since", "until", "limit", "cursor", "format"];
  const auditValue = fc.oneof(
    fc.constantFrom(
      "",
      "0",
      "1",
      "1000",
      "1001",
      "-1",
      "1e3",
      "0x10",
      "NaN",
      "Infinity",
      "9".repeat(20),
      "9".repeat(400),
      "json",
      "ndjson",
      "csv",
      "CSV",
    ),
    fc.constantFrom(
      "2026-01-01",
      "2026-01-01T00:00:00Z",
      "2026-13-45",
      "yesterday",
      "1970-01-01T00:00:00.000Z",
      "+275760-09-13T00:00:00.000Z",
    ),
    fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
    fc.integer().map(String),
    fc.double().map(String),
    fc.string({ maxLength: 30 }),
    fc.string({ unit: "binary", maxLength: 30 }),
    hostileString,
  );

  it("GET /v1/audit with random query strings", async () => {
    const query = fc.oneof(
      fc
        .array(
          fc.tuple(
            fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...AUDIT_PARAMS) }, { weight: 1, arbitrary: keyName }),
            auditValue,
          ),
          { maxLength: 5 },
        )
        .map((pairs) => new URLSearchParams(pairs).toString()),
      fc.string({ maxLength: 80 }),
      fc.string({ unit: "binary", maxLength: 40 }),
    );
    await fc.assert(
      fc.asyncProperty(query, async (q) => {
        const res = await call(`/v1/audit?${q}`, { token: TOKENS.auditor });
        const type = res.headers.get("content-type") ?? "";
        const what = `GET /v1/audit?${q}`;
        if (res.status === 200 && !type.startsWith("application/json")) {
          const text = await bodyText(res); // NDJSON by .text() makes workerd warn it "does not appear to be text"
          if (type.includes("ndjson")) for (const line of text.split("\n").filter(Boolean)) JSON.parse(line);
          else expect(text.split(/\r?\n/)[0], what).toContain("proposal_id");
          return;
        }
        const body = await checkAnswer(res, what, [200, 400]);
        if (res.status === 200) {
          expect(Array.isArray(body!.events), what).toBe(true);
          expect(body!.next_cursor === null || typeof body!.next_cursor === "string", what).toBe(true);
        }
      }),
      { numRuns: RUNS.light, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });

  it("GET /v1/proposals/:id?wait=… with random values (on a settled proposal, so a valid wait answers at once)", async () => {
    const id = await cancelledProposal();
    const waitValue = fc.oneof(
      fc.integer({ min: -100, max: 100 }).map(String),
      fc.double().map(String),
      fc.constantFrom(
        "",
        "abc",
        "1e1",
        "0x3c",
        " 5",
        "5 ",
        "60",
        "61",
        "1e400",
        "-0",
        "+5",
        "Infinity",
        "NaN",
        "[]",
        "{}",
      ),
      fc.string({ maxLength: 20 }),
    );
    const query = fc.oneof(
      waitValue.map((w) => new URLSearchParams({ wait: w }).toString()),
      fc.tuple(waitValue, waitValue).map(([a, b]) =>
        new URLSearchParams([
          ["wait", a],
          ["wait", b],
        ]).toString(),
      ),
      fc.tuple(keyName, waitValue).map(([k, v]) => new URLSearchParams([[k, v]]).toString()),
      fc.string({ maxLength: 40 }),
    );
    await fc.assert(
      fc.asyncProperty(query, async (q) => {
        const started = Date.now();
        const res = await call(`/v1/proposals/${id}?${q}`, { token: TOKENS.reader });
        const what = `GET /v1/proposals/${id}?${q}`;
        const body = await checkAnswer(res, what, [200, 400]);
        if (res.status === 200) expect(body!.status, what).toBe("cancelled");
        expect(Date.now() - started, `${what}: a settled proposal has nothing to wait for`).toBeLessThan(2_000);
      }),
      { numRuns: RUNS.light, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });

  it("random ids, methods and paths", async () => {
    const id = await cancelledProposal();
    const segment = fc.oneof(
      fc.constantFrom(
        id,
        id.toUpperCase(),
        `${id}x`,
        id.slice(0, -1),
        `prp_${"0".repeat(64)}`,
        "prp_",
        "%",
        "%ZZ",
        "%E0%A4%A",
        "..",
        ".",
        "%2e%2e",
        "%00",
        "%F0%9F%98%80",
      ),
      fc.stringMatching(/^prp_[0-9a-f]{0,70}$/),
      fc.string({ maxLength: 30 }).map(encodeURIComponent),
      fc.string({ unit: "binary", maxLength: 20 }).map(encodeURIComponent),
    );
    const route = fc.oneof(
      segment.map((s) => `/v1/proposals/${s}`),
      segment.map((s) => `/v1/proposals/${s}/cancel`),
      segment.map((s) => `/v1/proposals/${s}/result`),
      segment.map((s) => `/v1/${s}`),
      segment.map((s) => `/${s}`),
      fc.constantFrom(
        "/v1/proposals",
        "/v1/audit",
        "/healthz",
        "/openapi.json",
        "/slack/interactions",
        "/v1",
        "/v1/",
        "//v1/audit",
        "/v1/proposals/",
      ),
    );
    const method = fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS");
    const token = fc.constantFrom<string | null>(TOKENS.writer, TOKENS.reader, TOKENS.auditor, TOKENS.other, null);
    const body = fc.option(
      fc.oneof(fc.constant(JSON.stringify({ status: "succeeded", output: "ok" })), fc.json({ maxDepth: 2 })),
      { nil: undefined },
    );
    await fc.assert(
      fc.asyncProperty(route, method, token, body, async (path, m, t, b) => {
        const before = await world();
        const withBody = b !== undefined && m !== "GET";
        const res = await call(path, {
          method: m,
          token: t,
          ...(withBody ? { rawBody: b, headers: { "content-type": "application/json" } } : {}),
        });
        const what = `${m} ${path} (token ${t ? t.slice(8, 14) : "none"})`;
        await checkAnswer(res, what);
        // Nothing on this route list may create a proposal (POST /v1/proposals with a JSON body aside).
        if (!(m === "POST" && /^\/+v1\/proposals\/?$/.test(path)))
          expect((await world()).cards, what).toBe(before.cards);
      }),
      { numRuns: RUNS.light, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });
});

// ---- POST /slack/interactions -------------------------------------------------------------

describe("fuzz POST /slack/interactions with correctly signed junk: never a 5xx", SUITE, () => {
  /** Pending proposals for the structured payloads to click on; settled when the file ends. */
  const pool: string[] = [];
  afterAll(async () => {
    for (const id of pool) await settle(id);
  });

  async function freshPool(n = 3): Promise<string[]> {
    for (let i = 0; i < n; i++) {
      const res = await call("/v1/proposals", {
        body: proposalBody(i === 1 ? { action: { type: "db.failover", params: {} } } : {}),
      });
      const p = await json(res);
      expect(res.status).toBe(201);
      pool.push(p.id);
    }
    return pool.slice(-n);
  }

  /** Only a well-formed click on one of signoff's buttons, or its deny form, by a user id, may change a proposal. */
  function mayChangeState(payload: Json): boolean {
    if (typeof payload.user?.id !== "string") return false;
    if (payload.type === "block_actions") {
      const action = Array.isArray(payload.actions) ? payload.actions[0] : undefined;
      return (
        typeof action?.action_id === "string" &&
        BUTTONS.includes(action.action_id) &&
        action.action_id !== "signoff.deny"
      );
    }
    return payload.type === "view_submission" && payload.view?.callback_id === "signoff.deny_reason";
  }

  async function signedRaw(body: string, contentType = "application/x-www-form-urlencoded"): Promise<Response> {
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = await signSlackRequest(SECRETS.SLACK_SIGNING_SECRET, timestamp, body);
    return exports.default.fetch(
      new Request(`${BASE}/slack/interactions`, {
        method: "POST",
        headers: {
          "content-type": contentType,
          "x-slack-request-timestamp": String(timestamp),
          "x-slack-signature": signature,
        },
        body,
      }),
    );
  }

  it("signed payloads that are random JSON values", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue({ maxDepth: 4 }),
          fc.dictionary(
            fc.constantFrom("type", "user", "actions", "view", "channel", "container", "trigger_id"),
            junkValue,
          ),
        ),
        async (payload) => {
          const res = await slackRequest(payload);
          await checkAnswer(res, `signed payload=${describeBody(JSON.stringify(payload) ?? "")}`);
        },
      ),
      { numRuns: RUNS.light, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });

  it("signed block_actions and view_submission payloads with hostile fields, on real proposals: only signoff's own buttons and deny form change anything", async () => {
    // Three pending proposals; payloads name them by a marker (\u0002pool:i) replaced at send time,
    // and one that got decided is replaced by a fresh one, so most runs click on a pending proposal.
    const live = await freshPool();
    const unknown = `prp_${env.PROPOSALS.newUniqueId().toString()}`;
    const poolRef = fc.integer({ min: 0, max: 2 }).map((i) => `${POOL}${i}`);
    const idLike = fc.oneof(
      { weight: 3, arbitrary: poolRef },
      { weight: 1, arbitrary: fc.constantFrom<unknown>(unknown, `prp_${"0".repeat(64)}`, "", null) },
      { weight: 1, arbitrary: junkValue },
    );
    const user = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.constantFrom<unknown>(
          "U0ALICE",
          "U0BOB",
          "U0DAVE",
          "U0ERIN",
          "U0LEAD",
          "U0OSCAR",
          "U0MALLORY",
          "W0ALICE",
        ),
      },
      { weight: 1, arbitrary: junkValue },
      { weight: 1, arbitrary: fc.constantFrom<unknown>(["U0ALICE"], ["U0BOB"], { id: "U0ALICE" }) },
    );
    const actionId = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom<unknown>(...BUTTONS) },
      { weight: 2, arbitrary: fc.constantFrom<unknown>(...HOSTILE_NAMES) },
      { weight: 1, arbitrary: junkValue },
    );
    const blockActions = fc.record(
      {
        type: fc.constant("block_actions"),
        user: fc.oneof({ weight: 4, arbitrary: user.map((id) => ({ id })) }, { weight: 1, arbitrary: junkValue }),
        trigger_id: fc.oneof(fc.constant("123.456.abc"), junkValue),
        channel: fc.oneof(
          fc.constantFrom<unknown>({ id: "C0INCIDENT" }),
          junkValue.map((id) => ({ id })),
          junkValue,
        ),
        container: fc.oneof(fc.constant({ type: "message", channel_id: "C0INCIDENT" }), junkValue),
        actions: fc.oneof(
          {
            weight: 4,
            arbitrary: fc.array(
              fc.oneof(fc.record({ action_id: actionId, value: idLike, type: fc.constant("button") }), junkValue),
              { minLength: 1, maxLength: 3 },
            ),
          },
          { weight: 1, arbitrary: junkValue },
        ),
      },
      { requiredKeys: ["type", "user", "actions"] },
    );
    const viewSubmission = fc.record(
      {
        type: fc.constant("view_submission"),
        user: fc.oneof({ weight: 4, arbitrary: user.map((id) => ({ id })) }, { weight: 1, arbitrary: junkValue }),
        view: fc.oneof(
          fc.record({
            callback_id: fc.oneof(fc.constant("signoff.deny_reason"), junkValue),
            private_metadata: idLike,
            state: fc.oneof(
              junkValue.map((value) => ({ values: { reason: { reason: { type: "plain_text_input", value } } } })),
              junkValue.map((reason) => ({ values: { reason } })),
              junkValue.map((values) => ({ values })),
              junkValue,
            ),
          }),
          junkValue,
        ),
      },
      { requiredKeys: ["type", "user", "view"] },
    );
    const examples: Array<[Json]> = [
      // Found by this property: a user id that is a deeply nested array overflows the stack (500).
      [
        {
          type: "view_submission",
          user: { id: `${DEEP}[]:5000` },
          view: { callback_id: "signoff.deny_reason", private_metadata: `${POOL}0` },
        },
      ],
      // An action_id that is not a string, deeply nested: the same stack overflow (500).
      [
        {
          type: "block_actions",
          user: { id: "U0ALICE" },
          actions: [{ action_id: `${DEEP}[]:5000`, value: `${POOL}0`, type: "button" }],
        },
      ],
      // A button value that is not a string, deeply nested: the same stack overflow (500).
      [
        {
          type: "block_actions",
          user: { id: "U0ALICE" },
          actions: [{ action_id: "signoff.approve", value: `${DEEP}[]:5000`, type: "button" }],
        },
      ],
      // A channel id that is not a string, deeply nested: a stack overflow crossing the RPC boundary (500).
      [
        {
          type: "block_actions",
          user: { id: "U0ALICE" },
          channel: { id: `${DEEP}{}:2500` },
          actions: [{ action_id: "signoff.approve", value: `${POOL}0`, type: "button" }],
        },
      ],
      // Inherited Object.prototype names are not signoff's buttons (they approved, skipping four-eyes, or 500ed).
      ...["toString", "constructor", "__proto__", "hasOwnProperty", "valueOf"].map((action_id): [Json] => [
        {
          type: "block_actions",
          user: { id: "U0BOB" },
          channel: { id: "C0INCIDENT" },
          actions: [{ action_id, value: `${POOL}0`, type: "button" }],
        },
      ]),
      // A deny reason that is not text (500 from the Durable Object).
      ...[5, true, { a: 1 }, ["x"]].map((value): [Json] => [
        {
          type: "view_submission",
          user: { id: "U0ALICE" },
          view: {
            callback_id: "signoff.deny_reason",
            private_metadata: `${POOL}2`,
            state: { values: { reason: { reason: { type: "plain_text_input", value } } } },
          },
        },
      ]),
    ];
    await fc.assert(
      fc.asyncProperty(fc.oneof(blockActions, viewSubmission), async (payload) => {
        const text = serialize(payload);
        fc.pre(text !== undefined);
        const target = /\\u0002pool:(\d)/.exec(text!)?.[1];
        const index = target === undefined ? null : Number(target);
        const sent = text!.replace(/"\\u0002pool:(\d)"/g, (_m, i: string) => JSON.stringify(live[Number(i)]));
        const before =
          index === null ? null : await json(await call(`/v1/proposals/${live[index]}`, { token: TOKENS.reader }));
        const res = await signedRaw(`payload=${encodeURIComponent(sent)}`);
        const what = `signed payload=${describeBody(sent)}`;
        await checkAnswer(res, what);
        if (index === null) return;
        const after = await checkAnswer(
          await call(`/v1/proposals/${live[index]}`, { token: TOKENS.reader }),
          `GET after ${what}`,
          [200],
        );
        if (!mayChangeState(payload)) {
          expect(
            { status: after!.status, approvals: after!.approvals },
            `${what}: not a signoff button or deny form, yet the proposal changed`,
          ).toEqual({
            status: before!.status,
            approvals: before!.approvals,
          });
        }
        if (after!.decision?.reason !== undefined) expect(typeof after!.decision.reason, what).toBe("string");
        if (after!.status !== "pending") {
          await settle(live[index]!);
          live[index] = (await freshPool(1))[0]!;
        }
      }),
      { numRuns: RUNS.heavy, interruptAfterTimeLimit: TIME_LIMIT_MS, examples },
    );
  });

  it("correctly signed raw junk bodies, form-encoded or not", async () => {
    const raw = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ unit: "binary", maxLength: 200 }),
      fc.string({ maxLength: 200 }).map((s) => `payload=${s}`),
      fc.string({ maxLength: 200 }).map((s) => `payload=${encodeURIComponent(s)}`),
      fc.jsonValue({ maxDepth: 3 }).map((v) => `payload=${encodeURIComponent(JSON.stringify(v))}&payload=x`),
      fc.constant(`payload=${encodeURIComponent(JSON.stringify(clickPayload("approve", "prp_x", "U0ALICE")))}`),
      fc.constantFrom("", "payload=", "payload", "=&=&", "%", "payload=%E0%A4%A", `payload=${"[".repeat(20_000)}`),
    );
    const contentType = fc.constantFrom("application/x-www-form-urlencoded", "application/json", "text/plain", "");
    await fc.assert(
      fc.asyncProperty(raw, contentType, async (body, type) => {
        const res = await signedRaw(body, type);
        await checkAnswer(res, `signed raw body ${describeBody(JSON.stringify(body))} (${type})`);
      }),
      { numRuns: RUNS.light, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });
});
