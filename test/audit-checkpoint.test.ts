// SPEC 12: "The audit log's chain heads are signed with a key D1 never sees; `audit:verify` detects rewrite,
// truncation and deletion against a signed checkpoint." Each attack is made for real on D1, as someone holding
// D1 write access (but not the Worker's secrets or its Durable Objects) could make it.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { verifyChains } from "../src/audit/chain.ts";
import { queryAuditEvents } from "../src/audit/store.ts";
import { verifyAuditLog } from "../src/audit/verify.ts";
import { AUDIT_PUBLIC_KEY, OTHER_AUDIT_PUBLIC_KEY, TOKENS } from "./fixtures.ts";
import { auditOf, call, click, createProposal, json, settle } from "./helpers/api.ts";
import { asAttacker, cutChain, deleteChain, emptyLog, rewriteChain } from "./helpers/d1-attacker.ts";

const db = env.AUDIT_DB;

async function allEvents() {
  return queryAuditEvents(db, { limit: 100_000 });
}

/** What `npm run audit:verify` concludes about D1 as it is now, holding only the public key. */
async function verify(checkpoint?: unknown, publicKeys: string[] = [AUDIT_PUBLIC_KEY]) {
  return verifyAuditLog(await allEvents(), { publicKeys, checkpoint: checkpoint as never });
}

/** A signed checkpoint, as `npm run audit:checkpoint` fetches it. */
async function checkpoint(): Promise<Record<string, any>> {
  const res = await call("/v1/audit/checkpoint", { token: TOKENS.auditor });
  const body = await json(res);
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

  it("deletes a proposal's whole chain: the checkpoint lists it", async () => {
    const p = await approvedFailover();
    const saved = await checkpoint();
    expect(saved.chains[p.id]).toMatchObject({ count: (await auditOf(p.id)).length });
    await asAttacker(async () => {
      await deleteChain(p.id);
      const against = await verify(saved);
      expect(against.ok).toBe(false);
      expect(problemsOf(against, p.id)).toContainEqual(expect.stringMatching(/^deleted: /));
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
