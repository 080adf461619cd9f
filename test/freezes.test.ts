// Change freezes (issue 17): fixed ranges and recurring windows in a time zone (croner, inside workerd), checked when
// the policy loads, and a proposal created in one refused with 422 `frozen` naming the window and its end.
import { describe, expect, it } from "vitest";
import { activeFreeze, type Freeze } from "../src/config/freezes.ts";
import { parsePolicy } from "../src/config/policy.ts";
import { ConfigError } from "../src/config/problems.ts";
import type { ErrorDetail } from "../src/errors.ts";
import { POLICY } from "./fixtures.ts";
import { json } from "./helpers/api.ts";
import { createIn, createUnder, policyEnv } from "./helpers/policy-env.ts";
import { peer } from "./peer/client.ts";

function problems(freezes: unknown): ErrorDetail[] {
  try {
    parsePolicy({ ...POLICY, freezes });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).details;
  }
  throw new Error("parsePolicy accepted the freezes");
}

const HOUR = 3600_000;

describe("freezes are checked when the policy loads", () => {
  it("names a bad cron, an unknown time zone, a pattern covering no action, and a range that ends first", () => {
    expect(
      problems([
        { name: "nightly", actions: ["k8s.*"], cron: "61 22 * * *", duration_seconds: 3600 },
        { name: "berlin", actions: ["k8s.*"], cron: "0 22 * * *", duration_seconds: 3600, timezone: "Europe/Berln" },
        { name: "typo", actions: ["db.failovr"], start: "2026-12-24T00:00:00Z", end: "2026-12-27T00:00:00Z" },
        { name: "backwards", actions: ["*"], start: "2026-12-27T00:00:00Z", end: "2026-12-24T00:00:00Z" },
      ]),
    ).toEqual([
      { path: "POLICY.freezes[0].cron", message: expect.stringMatching(/^is not a cron pattern .*minute: 61/) },
      { path: "POLICY.freezes[1].timezone", message: "is not an IANA time zone such as Europe/Berlin" },
      { path: "POLICY.freezes[2].actions[0]", message: 'covers no action in the policy (did you mean "db.failover"?)' },
      { path: "POLICY.freezes[3].end", message: "must be after start" },
    ]);
  });

  it("refuses a freeze that is neither or both kinds, an instant without its offset, and a misspelt field", () => {
    expect(
      problems([
        { name: "neither", actions: ["*"] },
        { name: "local", actions: ["*"], start: "2026-12-24T00:00:00", end: "2026-12-27T00:00:00Z" },
        { name: "typo", actions: ["*"], cron: "0 22 * * *", duration_second: 60 },
      ]).map((d) => [d.path, d.message]),
    ).toEqual([
      ["POLICY.freezes[0]", expect.stringMatching(/either start and end .* or cron and duration_seconds/)],
      ["POLICY.freezes[1].start", expect.stringMatching(/with its offset/)],
      ["POLICY.freezes[2].duration_second", 'unknown field (did you mean "duration_seconds"?)'],
    ]);
  });
});

describe("which freeze holds when", () => {
  const fixed: Freeze = {
    name: "year-end",
    actions: ["k8s.*"],
    kind: "fixed",
    start: "2026-12-24T00:00:00.000Z",
    end: "2026-12-27T00:00:00.000Z",
  };
  // Every night from 22:00 to 06:00 Berlin time: 21:00–05:00 UTC in winter, 20:00–04:00 UTC in summer.
  const nightly: Freeze = {
    name: "nightly",
    actions: ["db.failover"],
    kind: "recurring",
    cron: "0 22 * * *",
    timezone: "Europe/Berlin",
    duration_seconds: 8 * 3600,
  };

  it("a fixed range covers its actions from start (inclusive) to end (exclusive)", () => {
    expect(activeFreeze([fixed], "k8s.rollout_restart", Date.parse("2026-12-25T12:00:00Z"))).toEqual({
      name: "year-end",
      ends_at: "2026-12-27T00:00:00.000Z",
    });
    expect(activeFreeze([fixed], "k8s.rollout_restart", Date.parse(fixed.start))).not.toBeNull();
    expect(activeFreeze([fixed], "k8s.rollout_restart", Date.parse(fixed.end))).toBeNull();
    expect(activeFreeze([fixed], "db.failover", Date.parse("2026-12-25T12:00:00Z"))).toBeNull();
  });

  it("a recurring window follows its time zone, summer time included", () => {
    const at = (iso: string) => activeFreeze([nightly], "db.failover", Date.parse(iso));
    expect(at("2026-12-01T21:30:00Z")).toEqual({ name: "nightly", ends_at: "2026-12-02T05:00:00.000Z" });
    expect(at("2026-12-01T20:30:00Z")).toBeNull();
    expect(at("2026-07-01T20:30:00Z")).toEqual({ name: "nightly", ends_at: "2026-07-02T04:00:00.000Z" });
    expect(at("2026-07-02T04:30:00Z")).toBeNull();
  });

  it("windows that run into each other end where the last one does", () => {
    const hourly: Freeze = { ...nightly, cron: "0 * * * *", duration_seconds: 2 * 3600 };
    const now = Date.parse("2026-12-01T10:30:00Z");
    const found = activeFreeze([hourly], "db.failover", now);
    expect(Date.parse(found!.ends_at) - now).toBeGreaterThan(90 * HOUR);
  });
});

describe("a proposal created in a freeze", () => {
  const now = Date.now();
  const bindings = policyEnv(
    {},
    {
      freezes: [
        {
          name: "incident review",
          actions: ["k8s.*"],
          start: new Date(now - HOUR).toISOString(),
          end: new Date(now + HOUR).toISOString(),
        },
        // Always on: every minute, for an hour, in New York.
        {
          name: "always",
          actions: ["db.failover"],
          cron: "* * * * *",
          duration_seconds: 3600,
          timezone: "America/New_York",
        },
        { name: "later", actions: ["demo.echo"], start: "2099-01-01T00:00:00Z", end: "2099-01-02T00:00:00Z" },
      ],
    },
  );

  it("is refused with 422 frozen naming the window and when it ends; nothing is created or posted", async () => {
    const res = await createUnder(bindings, {});
    expect(res.status).toBe(422);
    const body = await json(res);
    expect(body).toEqual({
      error: {
        code: "frozen",
        message: expect.stringMatching(/^k8s\.rollout_restart is in the change freeze "incident review" until /),
        details: [
          {
            path: "action.type",
            message: `covered by the change freeze "incident review", which ends at ${new Date(now + HOUR).toISOString()}`,
          },
        ],
      },
    });
    expect(await peer.slackCalls("chat.postMessage")).toEqual([]);
  });

  it("a recurring window refuses too, naming its end", async () => {
    const res = await createUnder(bindings, {
      action: { type: "db.failover", params: { cluster: "main" } },
      requested_by: "U0BOB",
    });
    expect(res.status).toBe(422);
    expect((await json(res)).error.message).toMatch(/"always" until \d{4}-/);
  });

  it("an action no freeze covers now is created as usual", async () => {
    const p = await createIn(bindings, { action: { type: "demo.echo", params: {} }, requested_by: "U0BOB" });
    expect(p.status).toBe("pending");
  });
});
