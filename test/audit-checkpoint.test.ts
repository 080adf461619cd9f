// SPEC 12: "The audit log's chain heads are signed with a key D1 never sees; `audit:verify` detects rewrite,
// truncation and deletion against a signed checkpoint." Each attack is made for real on D1, as someone holding
// D1 write access (but not the Worker's secrets or its Durable Objects) could make it.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { GENESIS_HASH, sealEvent, verifyChains } from "../src/audit/chain.ts";
import { type Checkpoint, compareCheckpoints } from "../src/audit/checkpoint.ts";
import { auditSigner } from "../src/audit/signing.ts";
import { appendAuditEvents, queryAuditEvents } from "../src/audit/store.ts";
import { verifyAuditLog } from "../src/audit/verify.ts";
import { canonicalJson } from "../src/lib/jcs.ts";
import { flushAudit } from "../src/proposal/jobs/audit-flush.ts";
import type { JobContext } from "../src/proposal/jobs/context.ts";
import type { Job } from "../src/proposal/scheduler.ts";
import { AUDIT_PUBLIC_KEY, OTHER_AUDIT_PUBLIC_KEY, OTHER_AUDIT_SIGNING_KEY, TOKENS } from "./fixtures.ts";
import { auditOf, call, click, createProposal, json, settle, stubOf } from "./helpers/api.ts";
import { asAttacker, cutChain, deleteChain, emptyLog, rewriteChain } from "./helpers/d1-attacker.ts";
import { collectFlushWarnings, d1, flushWarnings } from "./helpers/d1-outage.ts";

const db = env.AUDIT_DB;

async function allEvents() {
  return queryAuditEvents(db, { limit: 100_000 });
}

/** What `npm run audit:verify` concludes about D1 as it is now, holding only the public key. */
async function verify(checkpoint?: unknown, publicKeys: string[] = [AUDIT_PUBLIC_KEY]) {
  return verifyAuditLog(await allEvents(), { publicKeys, checkpoints: checkpoint ? [checkpoint] : [] });
}

/** A signed checkpoint, as `npm run audit:checkpoint` fetches it. */
async function checkpoint(): Promise<Checkpoint> {
  const res = await call("/v1/audit/checkpoint", { token: TOKENS.auditor });
  const body = await json<Checkpoint>(res);
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body;
}

/** A two-person failover approved by U0ALICE and U0DAVE, every event written to D1. */
async function approvedFailover() {
  const p = await createProposal({
    action: { type: "db.failover", params: { cluster: "main" } },
    summary: "Fail over the main database",
  });
  await settle(p.id);
  expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
  await settle(p.id);
  expect((await click("approve", p.id, "U0DAVE")).status).toBe(200);
  await settle(p.id);
  return p;
}

/** The rewrite of the issue: U0DAVE's approval made U0ERIN's, every hash after it recomputed. */
async function swapDaveForErin(proposalId: string): Promise<number> {
  const changed = await rewriteChain(proposalId, (event) => {
    if (event.actor !== "slack:U0DAVE") return event;
    const details = { ...event.details };
    if (Array.isArray(details.approvers))
      details.approvers = details.approvers.map((u) => (u === "U0DAVE" ? "U0ERIN" : u));
    return { ...event, actor: "slack:U0ERIN", details };
  });
  const forged = await auditOf(proposalId);
  expect(forged.filter((e) => e.actor === "slack:U0ERIN").map((e) => e.type)).toEqual([
    "approval.recorded",
    "proposal.approved",
  ]);
  return changed;
}

function problemsOf(report: { problems: Array<{ proposal_id: string | null; problem: string }> }, id: string | null) {
  return report.problems.filter((p) => p.proposal_id === id).map((p) => p.problem);
}

describe("signed chain heads", () => {
  it("every flush signs its chain head; the public key alone verifies the whole log", async () => {
    const p = await approvedFailover();
    const events = await auditOf(p.id);
    expect(events.at(-1)!.head_sig).toMatch(/^[0-9a-f]{16}:[A-Za-z0-9+/]{86}==$/);
    const report = await verify();
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it("a log checked with another public key does not verify", async () => {
    const p = await approvedFailover();
    const report = await verify(undefined, [OTHER_AUDIT_PUBLIC_KEY]);
    expect(report.ok).toBe(false);
    expect(problemsOf(report, p.id)).toContainEqual(expect.stringMatching(/unknown key/));
  });
});

describe("GET /v1/audit/checkpoint", () => {
  it("needs the audit:read scope and takes no parameters", async () => {
    expect((await call("/v1/audit/checkpoint", { token: null })).status).toBe(401);
    expect((await call("/v1/audit/checkpoint", { token: TOKENS.reader })).status).toBe(403);
    const res = await call("/v1/audit/checkpoint?since=0", { token: TOKENS.auditor });
    expect(res.status).toBe(400);
    expect((await json(res)).error.details).toEqual([{ path: "since", message: "unknown field" }]);
  });

  it("is described in /openapi.json, with the checkpoint's shape and the 409 that refuses a tampered log", async () => {
    const doc = await json(await call("/openapi.json", { token: null }));
    const route = doc.paths["/v1/audit/checkpoint"].get;
    expect(Object.keys(route.responses)).toEqual(expect.arrayContaining(["200", "401", "403", "409"]));
    const schema = route.responses["200"].content["application/json"].schema;
    expect(schema.required).toEqual(
      expect.arrayContaining(["max_seq", "events", "chains", "key_id", "public_key", "signature"]),
    );
    expect(doc.paths["/v1/audit"].get.responses["200"].content["application/json"].schema).toBeDefined();
  });

  it("lists each chain's last seq, hash and count and the log's max seq, signed by the Worker's key", async () => {
    const p = await approvedFailover();
    const events = await auditOf(p.id);
    const last = events.at(-1)!;
    const saved = await checkpoint();
    expect(saved).toMatchObject({ type: "signoff.audit.checkpoint", version: 1, public_key: AUDIT_PUBLIC_KEY });
    expect(saved.chains[p.id]).toEqual({ idx: last.idx, hash: last.hash, seq: last.seq, count: events.length });
    const all = await allEvents();
    expect(saved.max_seq).toBe(Math.max(...all.map((e) => e.seq)));
    expect(saved.events).toBe(all.length);
    expect(await verify(saved)).toMatchObject({ ok: true, problems: [], warnings: [] });
  });

  it("a checkpoint changed after signing, or signed by another key, is refused before anything is compared", async () => {
    const p = await approvedFailover();
    const saved = await checkpoint();
    const edited = { ...saved, chains: { ...saved.chains, [p.id]: { ...saved.chains[p.id], count: 1, idx: 1 } } };
    expect(problemsOf(await verify(edited), null)).toEqual([expect.stringMatching(/^checkpoint: .*signature/)]);
    // Signed correctly, but by a key the verifier does not trust (an attacker's own).
    const other = await auditSigner(OTHER_AUDIT_SIGNING_KEY);
    const { signature: _s, ...body } = { ...saved, key_id: other.keyId, public_key: other.publicKey };
    const forged = { ...body, signature: await other.sign(canonicalJson(body)) };
    expect(problemsOf(await verify(forged), null)).toEqual([expect.stringMatching(/^checkpoint: signed with key/)]);
    expect(problemsOf(await verify({ ...saved, version: 2 }), null)).toEqual([
      expect.stringMatching(/^checkpoint: not a signoff audit checkpoint/),
    ]);
  });

  it("chains written before heads were signed verify once a checkpoint (checked against their objects) covers them", async () => {
    const p = await approvedFailover();
    await asAttacker(async () => {
      // What an upgraded deployment's older chains look like: no head signature anywhere.
      await db.prepare("UPDATE audit_events SET head_sig = NULL WHERE proposal_id = ?").bind(p.id).run();
      expect(problemsOf(await verify(), p.id)).toEqual([expect.stringMatching(/^unsigned: /)]);
      const covering = await checkpoint();
      expect((await verify(covering)).ok).toBe(true);
    });
  });
});

describe("an attacker with D1 write access", () => {
  it("rewrites U0DAVE's approval as U0ERIN's and recomputes every hash after it: the head's signature no longer matches, no checkpoint needed", async () => {
    const p = await approvedFailover();
    await asAttacker(async () => {
      expect(await swapDaveForErin(p.id)).toBeGreaterThanOrEqual(3);
      // The unkeyed hash chain is fooled: this is what `audit:verify` used to report as all well.
      expect(verifyChains(await allEvents()).ok).toBe(true);
      const report = await verify();
      expect(report.ok).toBe(false);
      expect(problemsOf(report, p.id)).toContainEqual(expect.stringMatching(/^rewritten: .*signature/));
      // Stripping the signatures as well only trades one finding for another.
      await db.prepare("UPDATE audit_events SET head_sig = NULL WHERE proposal_id = ?").bind(p.id).run();
      expect(problemsOf(await verify(), p.id)).toContainEqual(expect.stringMatching(/^unsigned: /));
    });
    expect((await verify()).ok).toBe(true);
  });

  it("the same rewrite is found against a checkpoint taken before, and a new checkpoint is refused: the proposal's Durable Object sealed another chain", async () => {
    const p = await approvedFailover();
    const saved = await checkpoint();
    await asAttacker(async () => {
      await swapDaveForErin(p.id);
      expect(problemsOf(await verify(saved), p.id)).toContainEqual(expect.stringMatching(/^rewritten: /));
      const res = await call("/v1/audit/checkpoint", { token: TOKENS.auditor });
      expect(res.status).toBe(409);
      const body = await json(res);
      expect(body.error.code).toBe("audit_mismatch");
      expect(body.error.details).toContainEqual({ path: p.id, message: expect.stringMatching(/^rewritten: /) });
    });
    expect((await verify(saved)).ok).toBe(true);
  });

  it("cuts the chain just before proposal.approved: detected against the checkpoint and by the Durable Object", async () => {
    const p = await approvedFailover();
    const saved = await checkpoint();
    const approved = (await auditOf(p.id)).find((e) => e.type === "proposal.approved")!;
    await asAttacker(async () => {
      await cutChain(p.id, approved.idx);
      const against = await verify(saved);
      expect(problemsOf(against, p.id)).toContainEqual(expect.stringMatching(/^truncated: /));
      // The approval and the approved status were sealed in one step and flushed together: the cut
      // leaves a head that was never signed, so even the key alone notices.
      expect(problemsOf(await verify(), p.id)).toContainEqual(expect.stringMatching(/^unsigned: /));
      const res = await call("/v1/audit/checkpoint", { token: TOKENS.auditor });
      expect(res.status).toBe(409);
      expect((await json(res)).error.details).toContainEqual({
        path: p.id,
        message: expect.stringMatching(/^truncated: /),
      });
    });
  });

  it("cuts the chain where an earlier flush ended, leaving a validly signed head: the checkpoint and the Durable Object still tell", async () => {
    const p = await approvedFailover();
    const saved = await checkpoint();
    const events = await auditOf(p.id);
    const earlierHead = events.slice(0, -1).findLast((e) => e.head_sig !== null)!;
    expect(earlierHead).toBeDefined();
    await asAttacker(async () => {
      await cutChain(p.id, earlierHead.idx + 1);
      // What a signature over the head cannot show: the chain used to be longer (SECURITY.md says so).
      expect((await verify()).ok).toBe(true);
      expect(problemsOf(await verify(saved), p.id)).toContainEqual(expect.stringMatching(/^truncated: /));
      const res = await call("/v1/audit/checkpoint", { token: TOKENS.auditor });
      expect(res.status).toBe(409);
    });
  });

  it("deletes an event and inserts it again unchanged: its new seq is newer than the checkpoint that lists it", async () => {
    const p = await approvedFailover();
    const saved = await checkpoint();
    await asAttacker(async () => {
      const row = await db
        .prepare("SELECT * FROM audit_events WHERE proposal_id = ? AND idx = 2")
        .bind(p.id)
        .first<Record<string, unknown>>();
      await db.prepare("DELETE FROM audit_events WHERE seq = ?").bind(row!.seq).run();
      const columns = Object.keys(row!).filter((c) => c !== "seq");
      await db
        .prepare(`INSERT INTO audit_events (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`)
        .bind(...columns.map((c) => row![c]))
        .run();
      expect((await verify()).ok).toBe(true);
      expect(problemsOf(await verify(saved), p.id)).toEqual([
        expect.stringMatching(/^rewritten: #2 has seq \d+, newer/),
      ]);
    });
  });

  it("deletes a proposal's whole chain: the checkpoint lists it", async () => {
    const p = await approvedFailover();
    const saved = await checkpoint();
    expect(saved.chains[p.id]).toMatchObject({ count: (await auditOf(p.id)).length });
    await asAttacker(async () => {
      await deleteChain(p.id);
      const against = await verify(saved);
      expect(against.ok).toBe(false);
      expect(problemsOf(against, p.id)).toContainEqual(expect.stringMatching(/^deleted: /));
      // Nothing left in D1 names the chain, so the Worker signs a new checkpoint without it; compared with the
      // earlier one (`npm run audit:checkpoint -- --previous`) the loss shows.
      const later = await checkpoint();
      expect(later.chains[p.id]).toBeUndefined();
      expect(compareCheckpoints(saved, later)).toContainEqual({
        proposal_id: p.id,
        problem: expect.stringMatching(/^deleted: /),
      });
    });
  });

  it("empties the log: the checkpoint's chains and max seq say what is gone", async () => {
    const p = await approvedFailover();
    const saved = await checkpoint();
    await asAttacker(async () => {
      await emptyLog();
      expect(await allEvents()).toEqual([]);
      expect(verifyChains([]).ok).toBe(true);
      const against = await verify(saved);
      expect(against.ok).toBe(false);
      expect(problemsOf(against, p.id)).toContainEqual(expect.stringMatching(/^deleted: /));
      expect(problemsOf(against, null)).toContainEqual(expect.stringMatching(/^deleted: .*max seq/));
    });
  });
});

describe("forged and withheld heads", () => {
  it("a chain inserted for a proposal that never existed: unsigned, and its Durable Object sealed nothing", async () => {
    const id = `prp_${env.PROPOSALS.newUniqueId().toString()}`;
    const forged = sealEvent({
      proposal_id: id,
      idx: 1,
      at: new Date().toISOString(),
      type: "proposal.approved",
      actor: "slack:U0ALICE",
      details: {},
      prev_hash: GENESIS_HASH,
    });
    await asAttacker(async () => {
      await appendAuditEvents(db, [forged]);
      expect(problemsOf(await verify(), id)).toEqual([expect.stringMatching(/^unsigned: /)]);
      const res = await call("/v1/audit/checkpoint", { token: TOKENS.auditor });
      expect(res.status).toBe(409);
      expect((await json(res)).error.details).toContainEqual({ path: id, message: expect.stringMatching(/^forged: /) });
    });
  });

  it("without a usable AUDIT_SIGNING_KEY a flush writes nothing: the events wait in the outbox rather than reach D1 unsigned", async () => {
    const p = await createProposal();
    await settle(p.id);
    await d1.breakAuditTable();
    try {
      await click("approve", p.id, "U0ALICE");
      await settle(p.id);
    } finally {
      await d1.restoreAuditTable();
    }
    const before = (await auditOf(p.id)).length;
    const job: Job = { kind: "audit", key: "flush", due_at: 0, attempt: 0, version: 1, lease_until: 0, payload: null };
    collectFlushWarnings();
    await runInDurableObject(stubOf(p.id), async (_instance, state) => {
      const context = (key: unknown) =>
        ({
          env: { ...env, AUDIT_SIGNING_KEY: key },
          sql: state.storage.sql,
          now: () => Date.now(),
        }) as unknown as JobContext;
      const waiting = () => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox").one().n;
      const queued = waiting();
      expect(queued).toBeGreaterThan(0);
      for (const key of [undefined, "", AUDIT_PUBLIC_KEY]) {
        expect(await flushAudit(context(key), job)).toEqual({ retryAt: expect.any(Number) });
        expect(waiting()).toBe(queued);
      }
    });
    // Each wait is logged for the operator, saying what is wrong with the key (never the key).
    expect(flushWarnings()).toEqual([
      expect.stringMatching(/waits for a usable key: AUDIT_SIGNING_KEY must be auditsk_/),
      expect.stringMatching(/waits for a usable key: AUDIT_SIGNING_KEY must be auditsk_/),
      expect.stringMatching(/waits for a usable key: AUDIT_SIGNING_KEY is a public key/),
    ]);
    expect((await auditOf(p.id)).length).toBe(before);
    await runInDurableObject(stubOf(p.id), (_instance, state) =>
      state.storage.sql.exec("UPDATE jobs SET due_at = 0 WHERE kind = 'audit'"),
    );
    await settle(p.id);
    const events = await auditOf(p.id);
    expect(events.length).toBeGreaterThan(before);
    expect(events.at(-1)!.head_sig).not.toBeNull();
  });
});
