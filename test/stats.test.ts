// Issue 16: GET /v1/stats and GET /metrics, computed from the D1 audit log. The fixture below writes audit chains
// whose answers are worked out by hand in the comments (docs/stats.md has the formulas), in 2020 so that nothing
// another test creates falls in the window, under action types no other test uses.
import { env } from "cloudflare:workers";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { beforeAll, describe, expect, it } from "vitest";
import { percentile } from "../src/stats/compute.ts";
import { TOKENS } from "./fixtures.ts";
import { call, json } from "./helpers/api.ts";
import { expectErrorShape } from "./helpers/contract.ts";
import { parseStrict } from "./helpers/prometheus.ts";

const T0 = Date.parse("2020-01-01T00:00:00.000Z");
const WINDOW = "since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z";
const TTL = 600;

type Step = [seconds: number, type: string, actor: string, details?: Record<string, unknown>];

/** Writes one proposal's chain: created at `start` (ms) with a TTL of 600 s, then `steps` at seconds after it. */
async function chain(id: string, action: string, start: number, steps: Step[]): Promise<void> {
  const created: Step = [
    0,
    "proposal.created",
    "key:alertmanager",
    { action_type: action, expires_at: new Date(start + TTL * 1000).toISOString() },
  ];
  const rows = [created, ...steps];
  const insert = env.AUDIT_DB.prepare(
    `INSERT INTO audit_events (proposal_id, idx, at_ms, type, actor, details, prev_hash, hash)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)`,
  );
  await env.AUDIT_DB.batch(
    rows.map(([s, type, actor, details], i) =>
      insert.bind(
        id,
        i + 1,
        start + s * 1000,
        type,
        actor,
        JSON.stringify(details ?? {}),
        "0".repeat(64),
        `${id}-${i}`,
      ),
    ),
  );
}

const approval = (person: string): Record<string, unknown> => ({ person, count: 1, required: 1 });
const at = (minutes: number) => T0 + minutes * 60_000;

beforeAll(async () => {
  // fx.deploy, 7 proposals in the window (and P0 before it):
  // P1 approved by alice at 60 s, then ran: succeeded. Decided at 60 s, 540 s before its deadline.
  await chain("fx_p1", "fx.deploy", at(0), [
    [60, "approval.recorded", "slack:U0ALICE", approval("alice")],
    [60, "proposal.approved", "slack:U0ALICE"],
    [61, "dispatch.attempt", "system"],
    [62, "proposal.dispatched", "runner"],
    [90, "proposal.succeeded", "runner"],
  ]);
  // P2 2 of 2: bob at 100 s, alice at 580 s: 20 s left of 600 (≤ 60 s, the last tenth). Approved (no runner answer).
  await chain("fx_p2", "fx.deploy", at(20), [
    [100, "approval.recorded", "slack:U0BOB", approval("bob")],
    [580, "approval.recorded", "link:alice@example.com", approval("alice")],
    [580, "proposal.approved", "link:alice@example.com"],
  ]);
  // P3 someone clicked (refused), then it expired: expired, touched.
  await chain("fx_p3", "fx.deploy", at(40), [
    [10, "click.refused", "slack:U0MALLORY", { code: "not_an_approver" }],
    [600, "proposal.expired", "system"],
  ]);
  // P4 reminded, nobody clicked, expired: expired untouched (a reminder is signoff's, not a click).
  await chain("fx_p4", "fx.deploy", at(60), [
    [300, "reminder.sent", "system", { fraction: 0.5 }],
    [600, "proposal.expired", "system"],
  ]);
  // P5 denied at 300 s (300 s left: not the last tenth).
  await chain("fx_p5", "fx.deploy", at(80), [[300, "proposal.denied", "slack:U0BOB", { reason: null }]]);
  // P6 escalated by a click at 100 s, the deadline moved to 1200 s; the lead approves at 1150 s: 50 s left of 1200
  // (≤ 120 s, the last tenth of the TTL in force then).
  await chain("fx_p6", "fx.deploy", at(100), [
    [100, "proposal.escalated", "slack:U0ALICE", { expires_at: new Date(at(100) + 1_200_000).toISOString() }],
    [1150, "approval.recorded", "slack:U0LEAD", approval("lead")],
    [1150, "proposal.approved", "slack:U0LEAD"],
  ]);
  // P8 escalated by the clock at 120 s, then cancelled by its key: cancelled, not decided.
  await chain("fx_p8", "fx.deploy", at(120), [
    [120, "proposal.escalated", "signoff", { automatic: true, expires_at: new Date(at(120) + 900_000).toISOString() }],
    [200, "proposal.cancelled", "key:alertmanager"],
  ]);
  // P0 the day before the window: counted by /metrics (all time), never by the window's stats.
  await chain("fx_p0", "fx.deploy", T0 - 86_400_000, [[600, "proposal.expired", "system"]]);
  // fx.verify: P7 answered "unsure" at 30 s: ends escalated, a decision.
  await chain("fx_p7", "fx.verify", at(10), [
    [30, "verify.answered", "slack:U0BOB", { answer: "unsure" }],
    [30, "proposal.escalated", "slack:U0BOB", { answer: "unsure" }],
  ]);
});

describe("GET /v1/stats (issue 16)", () => {
  it("per action, on the fixture: statuses, p50/p90/max, the last tenth, approvals per approver, untouched expiries", async () => {
    const res = await call(`/v1/stats?${WINDOW}`, { token: TOKENS.auditor });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({ since: "2020-01-01T00:00:00.000Z", until: "2020-01-02T00:00:00.000Z" });
    expect(body.truncated).toBe(false);
    expect(body.actions).toEqual([
      {
        action: "fx.deploy",
        proposals: 7,
        by_status: { succeeded: 1, approved: 2, expired: 2, denied: 1, cancelled: 1 },
        // P1 60 s, P5 300 s, P2 580 s, P6 1150 s: nearest rank, p50 = 2nd of 4, p90 = 4th of 4.
        decided: 4,
        time_to_decision_seconds: { p50: 300, p90: 1150, max: 1150 },
        // P2 and P6.
        decided_in_last_tenth: { count: 2, share: 0.5 },
        approvals_by_approver: { alice: 2, bob: 1, lead: 1 },
        expired_untouched: 1,
      },
      {
        action: "fx.verify",
        proposals: 1,
        by_status: { escalated: 1 },
        decided: 1,
        time_to_decision_seconds: { p50: 30, p90: 30, max: 30 },
        decided_in_last_tenth: { count: 0, share: 0 },
        approvals_by_approver: {},
        expired_untouched: 0,
      },
    ]);
  });

  it("one action, a narrower window, and an empty one", async () => {
    const verify = await json(await call(`/v1/stats?${WINDOW}&action=fx.verify`, { token: TOKENS.auditor }));
    expect(verify.actions.map((a: { action: string }) => a.action)).toEqual(["fx.verify"]);
    // From 00:30 (Unix ms as well as ISO): P4 (00:60 min), P5, P6, P8 only.
    const late = await json(
      await call(`/v1/stats?since=${at(50)}&until=2020-01-02T00:00:00Z&action=fx.deploy`, { token: TOKENS.auditor }),
    );
    expect(late.actions[0]).toMatchObject({ proposals: 4, decided: 2, expired_untouched: 1 });
    const none = await json(
      await call("/v1/stats?since=2010-01-01T00:00:00Z&until=2010-02-01T00:00:00Z", { token: TOKENS.auditor }),
    );
    expect(none.actions).toEqual([]);
  });

  it("bad queries are 400 naming the field; audit:read is needed", async () => {
    const cases: Array<[string, string]> = [
      ["since=yesterday", "since"],
      ["action=K8S!", "action"],
      ["limit=5", "limit"],
      [`since=${at(10)}&until=${at(10)}`, "since"],
    ];
    for (const [query, path] of cases) {
      const res = await call(`/v1/stats?${query}`, { token: TOKENS.auditor });
      expect(res.status, query).toBe(400);
      const body = await json(res);
      expectErrorShape(body, "invalid_request");
      expect(body.error.details.map((d: { path: string }) => d.path).join(" "), query).toContain(path);
    }
    expect((await call("/v1/stats", { token: TOKENS.reader })).status).toBe(403);
    expect((await call("/v1/stats", { token: null })).status).toBe(401);
  });

  it("nearest-rank percentiles", () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([7], 90)).toBe(7);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50)).toBe(5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90)).toBe(9);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 91)).toBe(10);
  });
});

describe("GET /metrics (issue 16)", () => {
  it("parses as Prometheus text; counters and the decision-time histogram hold the fixture's numbers", async () => {
    const res = await call("/metrics", { token: TOKENS.auditor });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    const families = parsePrometheusTextFormat(text);
    const family = (name: string) => families.find((f) => f.name === name);
    const value = (name: string, labels: Record<string, string>) =>
      family(name)?.metrics.find((m) => JSON.stringify(m.labels) === JSON.stringify(labels))?.value;
    expect(family("signoff_proposals_created_total")?.type).toBe("COUNTER");
    // All time: P0 too.
    expect(value("signoff_proposals_created_total", { action: "fx.deploy" })).toBe("8");
    expect(value("signoff_proposals_status_total", { action: "fx.deploy", status: "expired" })).toBe("3");
    expect(value("signoff_proposals_status_total", { action: "fx.deploy", status: "approved" })).toBe("3");
    expect(value("signoff_proposals_status_total", { action: "fx.deploy", status: "succeeded" })).toBe("1");
    expect(value("signoff_decisions_total", { action: "fx.deploy", outcome: "approved" })).toBe("3");
    expect(value("signoff_decisions_total", { action: "fx.verify", outcome: "escalated" })).toBe("1");
    expect(value("signoff_approvals_total", { action: "fx.deploy" })).toBe("4");
    expect(value("signoff_escalations_total", { action: "fx.deploy", trigger: "click" })).toBe("1");
    expect(value("signoff_escalations_total", { action: "fx.deploy", trigger: "automatic" })).toBe("1");
    expect(value("signoff_reminders_sent_total", { action: "fx.deploy" })).toBe("1");

    // The histogram, read strictly (the npm parser folds labelled histograms into one: test/helpers/prometheus.ts).
    expect(family("signoff_decision_seconds")?.type).toBe("HISTOGRAM");
    const strict = parseStrict(text);
    expect(strict.map((f) => f.name)).toEqual(families.map((f) => f.name));
    const histogram = strict.find((f) => f.name === "signoff_decision_seconds")!;
    const deploy = (suffix: string, le?: string) =>
      histogram.samples.find(
        (m) => m.name === `signoff_decision_seconds${suffix}` && m.labels.action === "fx.deploy" && m.labels.le === le,
      )?.value;
    // 60, 300, 580, 1150 s.
    expect(deploy("_count")).toBe(4);
    expect(deploy("_sum")).toBe(2090);
    const buckets = { "30": 0, "60": 1, "300": 2, "600": 3, "1800": 4, "+Inf": 4 };
    for (const [le, n] of Object.entries(buckets)) expect(deploy("_bucket", le), le).toBe(n);
  });

  it("the strict reader refuses what the format does not allow (so the test above can fail)", () => {
    const ok = '# TYPE a_total counter\na_total{x="1"} 2\n';
    expect(parseStrict(ok)[0]!.samples[0]).toEqual({ name: "a_total", labels: { x: "1" }, value: 2 });
    for (const bad of [
      "a_total 1\n",
      "# TYPE a_total counter\na_total{x=1} 2\n",
      "# TYPE a_total counter\na_total two\n",
      "# TYPE a_total counter\na_total 2",
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n',
      "# TYPE a counter\na 1\n# TYPE b counter\nb 1\na 2\n",
    ]) {
      expect(() => parseStrict(bad), bad).toThrow();
    }
  });

  it("is in /openapi.json with its query parameters", async () => {
    const doc = await json(await call("/openapi.json", { token: null }));
    const stats = doc.paths["/v1/stats"].get;
    expect(stats.parameters.map((p: { name: string }) => p.name)).toEqual(["since", "until", "action"]);
    expect(stats.responses["200"].content["application/json"].schema.properties.actions).toBeDefined();
    expect(doc.paths["/metrics"].get.responses["200"].content["text/plain"]).toBeDefined();
  });

  it("needs audit:read, and takes no parameters", async () => {
    expect((await call("/metrics", { token: TOKENS.reader })).status).toBe(403);
    expect((await call("/metrics", { token: null })).status).toBe(401);
    expect((await call("/metrics?x=1", { token: TOKENS.auditor })).status).toBe(400);
  });
});
