// The proposal object's job table (src/proposal/scheduler.ts) through its own API, in a real
// Durable Object's SQLite: what SPEC 2's "expiry, dispatch retries and pending deliveries are driven
// by the alarm" rests on: one row per job, the alarm woken for the earliest, a run's lease, and
// backoff. The times are plain numbers: JobTable is told `now`, it never reads the clock.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  backoffMs,
  type Job,
  type JobKind,
  JobTable,
  messageRetryDelayMs,
  WEBHOOK_BACKOFF,
} from "../src/proposal/scheduler.ts";

const T = 1_000_000;
const LEASE = 30_000;
const lease = () => LEASE;

/** Runs `fn` on the job table of a fresh, empty proposal object. */
function withJobs<R>(fn: (jobs: JobTable) => R): Promise<R> {
  const stub = env.PROPOSALS.get(env.PROPOSALS.newUniqueId());
  return runInDurableObject(stub, (_instance, state) => fn(new JobTable(state.storage.sql)));
}

function job(jobs: JobTable, kind: JobKind, key: string): Job | undefined {
  return jobs.list().find((j) => j.kind === kind && j.key === key);
}

describe("schedule", () => {
  it("adds a job due at the given time, with no failed attempt and no lease", async () => {
    const jobs = await withJobs((jobs) => {
      jobs.schedule("dispatch", "runner", T + 5);
      return jobs.list();
    });
    expect(jobs).toEqual([
      { kind: "dispatch", key: "runner", due_at: T + 5, attempt: 0, version: 1, lease_until: 0, payload: null },
    ]);
  });

  it("asking again keeps one row: the earlier time, the attempts so far, the payload unless a new one is given", async () => {
    const rows = await withJobs((jobs) => {
      jobs.schedule("slack", "card", T + 100, "first");
      const [claimed] = jobs.claimDue(T + 100, lease);
      jobs.retry(claimed!, T + 200);
      jobs.schedule("slack", "card", T + 500); // later: the earlier time stays
      const later = job(jobs, "slack", "card");
      jobs.schedule("slack", "card", T + 150, "second"); // earlier: it moves
      return { later, earlier: job(jobs, "slack", "card"), count: jobs.list().length };
    });
    expect(rows.later).toMatchObject({ due_at: T + 200, attempt: 1, payload: "first" });
    expect(rows.earlier).toMatchObject({ due_at: T + 150, attempt: 1, payload: "second" });
    expect(rows.earlier!.version).toBeGreaterThan(rows.later!.version);
    expect(rows.count).toBe(1);
  });

  it("keeps jobs of different kinds or keys apart", async () => {
    const keys = await withJobs((jobs) => {
      jobs.schedule("slack", "card", T);
      jobs.schedule("slack", "escalation", T);
      jobs.schedule("teams", "card", T);
      return jobs.list().map((j) => `${j.kind}/${j.key}`);
    });
    expect(keys.sort()).toEqual(["slack/card", "slack/escalation", "teams/card"]);
  });
});

describe("nextWake: when the alarm should fire", () => {
  it("is null when no job is left, so the alarm is deleted", async () => {
    expect(await withJobs((jobs) => jobs.nextWake())).toBeNull();
    expect(
      await withJobs((jobs) => {
        jobs.schedule("audit", "flush", T);
        jobs.cancel("audit", "flush");
        return jobs.nextWake();
      }),
    ).toBeNull();
  });

  it("is the earliest due time among all jobs", async () => {
    const wake = await withJobs((jobs) => {
      jobs.schedule("expire", "ttl", T + 600_000);
      jobs.schedule("dispatch", "runner", T + 2_000);
      jobs.schedule("notify", "queue", T + 4_000);
      return jobs.nextWake();
    });
    expect(wake).toBe(T + 2_000);
  });

  it("while a run holds a job, is the end of its lease (the time another run may take it over)", async () => {
    const wake = await withJobs((jobs) => {
      jobs.schedule("dispatch", "runner", T);
      jobs.schedule("expire", "ttl", T + 600_000);
      jobs.claimDue(T, lease);
      return jobs.nextWake();
    });
    expect(wake).toBe(T + LEASE);
  });
});

describe("claimDue and leases", () => {
  it("returns the jobs due now, earliest first, and none that is not yet due", async () => {
    const due = await withJobs((jobs) => {
      jobs.schedule("notify", "queue", T - 10);
      jobs.schedule("expire", "ttl", T + 1);
      jobs.schedule("audit", "flush", T);
      jobs.schedule("dispatch", "runner", T - 10);
      return jobs.claimDue(T, lease).map((j) => `${j.kind}/${j.key}`);
    });
    expect(due).toEqual(["dispatch/runner", "notify/queue", "audit/flush"]);
  });

  it("leases what it returns: a second run at the same moment gets nothing, and the lease ends per kind", async () => {
    const seen = await withJobs((jobs) => {
      jobs.schedule("dispatch", "runner", T);
      jobs.schedule("slack", "card", T);
      const first = jobs.claimDue(T, (kind) => (kind === "dispatch" ? 15_000 : LEASE));
      return {
        first: first.map((j) => j.kind),
        second: jobs.claimDue(T + 1, lease),
        leases: Object.fromEntries(jobs.list().map((j) => [j.kind, j.lease_until])),
      };
    });
    expect(seen.first).toEqual(["dispatch", "slack"]);
    expect(seen.second).toEqual([]);
    expect(seen.leases).toEqual({ dispatch: T + 15_000, slack: T + LEASE });
  });

  it("a run that never finished (its lease ran out) leaves the job to the next alarm", async () => {
    const again = await withJobs((jobs) => {
      jobs.schedule("dispatch", "runner", T);
      jobs.claimDue(T, lease);
      return {
        justBefore: jobs.claimDue(T + LEASE - 1, lease).length,
        atEnd: jobs.claimDue(T + LEASE, lease).map((j) => j.key),
      };
    });
    expect(again).toEqual({ justBefore: 0, atEnd: ["runner"] });
  });

  it("takes only one kind, or all but one, and leases only what it takes", async () => {
    const result = await withJobs((jobs) => {
      jobs.schedule("audit", "flush", T);
      jobs.schedule("slack", "card", T);
      jobs.schedule("dispatch", "runner", T);
      const except = jobs.claimDue(T, lease, { except: "audit" }).map((j) => j.kind);
      const only = jobs.claimDue(T, lease, { only: "audit" }).map((j) => j.kind);
      return { except, only };
    });
    expect(result).toEqual({ except: ["dispatch", "slack"], only: ["audit"] });
  });
});

describe("claims that an alarm run makes in stages (issue 12)", () => {
  it("takes several kinds at once, at most `limit` of them, earliest first, and leases only those", async () => {
    const result = await withJobs((jobs) => {
      jobs.schedule("slack", "ephemeral:U1", T - 3);
      jobs.schedule("slack", "ephemeral:U2", T - 2);
      jobs.schedule("notify", "queue", T - 1);
      jobs.schedule("dispatch", "runner", T);
      const taken = jobs.claimDue(T, lease, { only: ["slack", "notify"], limit: 2 }).map((j) => j.key);
      return { taken, left: jobs.claimDue(T, lease).map((j) => `${j.kind}/${j.key}`) };
    });
    expect(result).toEqual({ taken: ["ephemeral:U1", "ephemeral:U2"], left: ["notify/queue", "dispatch/runner"] });
  });

  it("hasDue says whether a job of these kinds is due and free, without taking it", async () => {
    const seen = await withJobs((jobs) => {
      jobs.schedule("slack", "card", T);
      jobs.schedule("expire", "ttl", T + 600_000);
      const before = { slack: jobs.hasDue(T, ["slack"]), expire: jobs.hasDue(T, ["expire"]) };
      jobs.claimDue(T, lease);
      return { before, whileLeased: jobs.hasDue(T + 1, ["slack"]) };
    });
    expect(seen).toEqual({ before: { slack: true, expire: false }, whileLeased: false });
  });

  it("takeScheduled gives the earliest time asked for since it last looked, then nothing", async () => {
    const seen = await withJobs((jobs) => {
      jobs.schedule("expire", "ttl", T + 600_000);
      jobs.schedule("slack", "card", T + 5);
      const first = jobs.takeScheduled();
      const again = jobs.takeScheduled();
      jobs.reschedule("expire", "ttl", T + 9);
      return { first, again, rescheduled: jobs.takeScheduled() };
    });
    expect(seen).toEqual({ first: T + 5, again: null, rescheduled: T + 9 });
  });
});

describe("complete and retry", () => {
  it("complete removes the job its run took", async () => {
    const left = await withJobs((jobs) => {
      jobs.schedule("notify", "queue", T);
      for (const j of jobs.claimDue(T, lease)) jobs.complete(j);
      return jobs.list();
    });
    expect(left).toEqual([]);
  });

  it("complete keeps a job asked for again while it ran (that request is not lost) and frees it", async () => {
    const left = await withJobs((jobs) => {
      jobs.schedule("slack", "card", T);
      const [running] = jobs.claimDue(T, lease);
      jobs.schedule("slack", "card", T + 10); // the card changed again mid-run
      jobs.complete(running!);
      return { rows: jobs.list(), due: jobs.claimDue(T + 10, lease).map((j) => j.key) };
    });
    expect(left.rows).toMatchObject([{ kind: "slack", key: "card", due_at: T, lease_until: 0 }]);
    expect(left.due).toEqual(["card"]);
  });

  it("retry counts the failed attempt, frees the lease and waits until the time given", async () => {
    const row = await withJobs((jobs) => {
      jobs.schedule("dispatch", "runner", T);
      const [running] = jobs.claimDue(T, lease);
      jobs.retry(running!, T + 2_000);
      return { row: job(jobs, "dispatch", "runner"), early: jobs.claimDue(T + 1_999, lease), wake: jobs.nextWake() };
    });
    expect(row.row).toMatchObject({ attempt: 1, lease_until: 0, due_at: T + 2_000 });
    expect(row.early).toEqual([]);
    expect(row.wake).toBe(T + 2_000);
  });

  it("retry of a job asked for again while it ran leaves it due at once, not after the backoff", async () => {
    const row = await withJobs((jobs) => {
      jobs.schedule("slack", "card", T);
      const [running] = jobs.claimDue(T, lease);
      jobs.schedule("slack", "card", T + 5);
      jobs.retry(running!, T + 60_000);
      return { row: job(jobs, "slack", "card"), due: jobs.claimDue(T + 5, lease).length };
    });
    expect(row.row).toMatchObject({ attempt: 1, lease_until: 0, due_at: T });
    expect(row.due).toBe(1);
  });
});

describe("hold (a dispatch sent by the call that approved)", () => {
  it("schedules the job already leased to the caller: no run may take it until the lease ends, then the alarm does", async () => {
    const seen = await withJobs((jobs) => {
      const held = jobs.hold("dispatch", "runner", T, T + 15_000);
      return {
        held,
        rows: jobs.list().length,
        during: jobs.claimDue(T + 14_999, lease),
        wake: jobs.nextWake(),
        asked: jobs.takeScheduled(),
        after: jobs.claimDue(T + 15_000, lease).map((j) => j.key),
      };
    });
    expect(seen.held).toEqual({
      kind: "dispatch",
      key: "runner",
      due_at: T,
      attempt: 0,
      version: 1,
      lease_until: T + 15_000,
      payload: null,
    });
    expect(seen.rows).toBe(1);
    expect(seen.during).toEqual([]);
    expect(seen.wake).toBe(T + 15_000); // the fallback: the alarm wakes when the lease runs out
    expect(seen.asked).toBe(T);
    expect(seen.after).toEqual(["runner"]);
  });

  it("the caller's run completes the job like any run; a retry frees it for the alarm at the time given", async () => {
    const seen = await withJobs((jobs) => {
      const done = jobs.hold("dispatch", "runner", T, T + 15_000)!;
      jobs.complete(done);
      const gone = jobs.list();
      const failed = jobs.hold("dispatch", "runner", T, T + 15_000)!;
      jobs.retry(failed, T + 2_000);
      return { gone, retried: job(jobs, "dispatch", "runner") };
    });
    expect(seen.gone).toEqual([]);
    expect(seen.retried).toMatchObject({ attempt: 1, lease_until: 0, due_at: T + 2_000 });
  });

  it("never takes a job another run holds: it is only asked for again, and the caller gets nothing to send", async () => {
    const seen = await withJobs((jobs) => {
      jobs.schedule("dispatch", "runner", T);
      const [running] = jobs.claimDue(T, lease);
      const held = jobs.hold("dispatch", "runner", T + 1, T + 15_000);
      return { running, held, row: job(jobs, "dispatch", "runner") };
    });
    expect(seen.held).toBeNull();
    expect(seen.row).toMatchObject({ lease_until: T + LEASE });
    expect(seen.row!.version).toBeGreaterThan(seen.running!.version);
  });
});

describe("rearm (a reminder moving on to its next fraction)", () => {
  it("turns the job that ran into the next one, with no failed attempt and no lease, in one row", async () => {
    const seen = await withJobs((jobs) => {
      jobs.schedule("remind", "0.5", T);
      const [running] = jobs.claimDue(T, lease);
      jobs.retry(running!, T + 5); // one failed attempt, then sent
      const [again] = jobs.claimDue(T + 5, lease);
      jobs.takeScheduled();
      jobs.rearm(again!, "0.9", T + 40);
      return { rows: jobs.list(), asked: jobs.takeScheduled() };
    });
    expect(seen.rows).toMatchObject([{ kind: "remind", key: "0.9", due_at: T + 40, attempt: 0, lease_until: 0 }]);
    expect(seen.asked).toBe(T + 40);
  });

  it("replaces a row already there under the new key, and brings back nothing that was cancelled while it ran", async () => {
    const seen = await withJobs((jobs) => {
      jobs.schedule("remind", "0.5", T);
      jobs.schedule("remind", "0.9", T + 90); // an object from before: one row per fraction
      const [running] = jobs.claimDue(T, lease, { only: "remind" });
      jobs.rearm(running!, "0.9", T + 80);
      const replaced = jobs.list();
      const [next] = jobs.claimDue(T + 80, lease);
      jobs.cancelKind("remind"); // decided while the reminder was being sent
      jobs.rearm(next!, "0.95", T + 95);
      return { replaced, cancelled: jobs.list() };
    });
    expect(seen.replaced).toMatchObject([{ key: "0.9", due_at: T + 80 }]);
    expect(seen.replaced).toHaveLength(1);
    expect(seen.cancelled).toEqual([]);
  });
});

describe("reschedule, cancel, has", () => {
  it("reschedule moves a job to exactly the time given, later as well as earlier (an escalation extends the TTL)", async () => {
    const times = await withJobs((jobs) => {
      jobs.schedule("expire", "ttl", T + 600_000);
      jobs.reschedule("expire", "ttl", T + 1_200_000);
      const later = job(jobs, "expire", "ttl")!.due_at;
      jobs.reschedule("expire", "ttl", T + 1);
      return { later, earlier: job(jobs, "expire", "ttl")!.due_at };
    });
    expect(times).toEqual({ later: T + 1_200_000, earlier: T + 1 });
  });

  it("cancel removes that one job; has says whether a job is there", async () => {
    const state = await withJobs((jobs) => {
      jobs.schedule("expire", "ttl", T);
      jobs.schedule("dispatch", "runner", T);
      jobs.cancel("expire", "ttl");
      return { expire: jobs.has("expire", "ttl"), dispatch: jobs.has("dispatch", "runner") };
    });
    expect(state).toEqual({ expire: false, dispatch: true });
  });
});

describe("makeDue (for tests that must not wait out a backoff)", () => {
  it("makes every job of one kind due at once and leaves its attempts, version and the other kinds alone", async () => {
    const result = await withJobs((jobs) => {
      jobs.schedule("slack", "card", T);
      const [card] = jobs.claimDue(T, lease);
      jobs.retry(card!, T + 300_000);
      jobs.schedule("slack", "escalation", T + 200_000);
      jobs.schedule("expire", "ttl", T + 600_000);
      const before = job(jobs, "slack", "card")!;
      jobs.makeDue("slack");
      return {
        due: jobs
          .claimDue(T, lease)
          .map((j) => `${j.kind}/${j.key}`)
          .sort(),
        before,
        after: job(jobs, "slack", "card")!,
        expire: job(jobs, "expire", "ttl")!.due_at,
      };
    });
    expect(result.due).toEqual(["slack/card", "slack/escalation"]);
    expect(result.before.attempt).toBe(1);
    expect(result.after).toMatchObject({ attempt: 1, version: result.before.version });
    expect(result.expire).toBe(T + 600_000);
  });
});

describe("backoff", () => {
  const exact = () => 0.5; // the middle of the ±10 % jitter

  it("doubles from the base on each attempt and stops growing at the cap (SPEC 6: from 2 s, at most 5 min)", () => {
    const waits = Array.from({ length: 10 }, (_, i) =>
      backoffMs(i + 1, WEBHOOK_BACKOFF.baseMs, WEBHOOK_BACKOFF.capMs, exact),
    );
    expect(waits).toEqual([2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000]);
  });

  it("spreads retries by at most 10 % either way, and never past the cap", () => {
    expect(backoffMs(1, 2_000, 300_000, () => 0)).toBe(1_800);
    expect(backoffMs(1, 2_000, 300_000, () => 0.999_999)).toBe(2_200);
    expect(backoffMs(20, 2_000, 300_000, () => 0.999_999)).toBe(300_000);
  });

  it("a chat message waits as long as the peer's Retry-After says, else backs off from 1 s", () => {
    expect(messageRetryDelayMs(7_000, 3)).toBe(7_000);
    const fallback = messageRetryDelayMs(null, 1);
    expect(fallback).toBeGreaterThanOrEqual(900);
    expect(fallback).toBeLessThanOrEqual(1_100);
  });
});
