// The pure parts of SPEC 12: the audit signing key, D1's heads against a Durable Object's (including a flush that
// lands while a checkpoint is being taken), and what a later checkpoint may not lose of an earlier one.
import { describe, expect, it } from "vitest";
import { type AuditEvent, GENESIS_HASH, sealEvent } from "../src/audit/chain.ts";
import type { Checkpoint } from "../src/audit/checkpoint.ts";
import { compareCheckpoints } from "../src/audit/checkpoint.ts";
import { compareWithObject, NO_CHAIN, type ObjectChainHead, settleRace } from "../src/audit/heads.ts";
import {
  auditSigner,
  auditVerifier,
  checkHeadSignature,
  newSigningKey,
  signHead,
  signingKeyProblem,
} from "../src/audit/signing.ts";
import type { D1ChainHead, StoredAuditEvent } from "../src/audit/store.ts";
import { AUDIT_PUBLIC_KEY, OTHER_AUDIT_PUBLIC_KEY, SECRETS } from "./fixtures.ts";

const ID = `prp_${"a".repeat(64)}`;

/** A chain of `n` sealed events, stored with seqs 1…n. */
function chain(n: number): StoredAuditEvent[] {
  const out: StoredAuditEvent[] = [];
  let prev = GENESIS_HASH;
  for (let idx = 1; idx <= n; idx++) {
    const event: AuditEvent = sealEvent({
      proposal_id: ID,
      idx,
      at: new Date(1_700_000_000_000 + idx).toISOString(),
      type: "test.event",
      actor: "system",
      details: { idx },
      prev_hash: prev,
    });
    out.push({ ...event, seq: idx, head_sig: null });
    prev = event.hash;
  }
  return out;
}

function d1Head(events: readonly StoredAuditEvent[], count = events.length): D1ChainHead {
  const last = events.at(-1)!;
  return { proposal_id: ID, idx: last.idx, hash: last.hash, seq: last.seq, count };
}

/** The object's view: `flushedUpTo` confirmed by D1, the rest of `events` still in its outbox. */
function objectOf(events: readonly StoredAuditEvent[], flushedUpTo: number): ObjectChainHead {
  const ref = (e: StoredAuditEvent) => ({ idx: e.idx, hash: e.hash });
  return {
    head: ref(events.at(-1)!),
    flushed: flushedUpTo === 0 ? NO_CHAIN.flushed : ref(events[flushedUpTo - 1]!),
    pending: events.slice(flushedUpTo).map(ref),
  };
}

describe("the signing key", () => {
  it("the fixture's private key has the fixture's public key; signatures are Ed25519's, deterministic", async () => {
    const signer = await auditSigner(SECRETS.AUDIT_SIGNING_KEY);
    expect(signer.publicKey).toBe(AUDIT_PUBLIC_KEY);
    expect(signer.keyId).toMatch(/^[0-9a-f]{16}$/);
    const head = { proposal_id: ID, idx: 3, hash: "b".repeat(64) };
    const sig = await signHead(signer, head);
    expect(await signHead(signer, head)).toBe(sig);
    const verifier = await auditVerifier([AUDIT_PUBLIC_KEY]);
    expect(await checkHeadSignature(verifier, head, sig)).toBe("valid");
    expect(await checkHeadSignature(verifier, { ...head, idx: 2 }, sig)).toBe("invalid");
    expect(await checkHeadSignature(verifier, { ...head, hash: "c".repeat(64) }, sig)).toBe("invalid");
    expect(await checkHeadSignature(verifier, head, "junk")).toBe("malformed");
    expect(await checkHeadSignature(await auditVerifier([OTHER_AUDIT_PUBLIC_KEY]), head, sig)).toBe("unknown_key");
  });

  it("a new key pair signs what its public key verifies", async () => {
    const fresh = await newSigningKey();
    expect(signingKeyProblem(fresh.secret)).toBeNull();
    const head = { proposal_id: ID, idx: 1, hash: GENESIS_HASH };
    const sig = await signHead(await auditSigner(fresh.secret), head);
    expect(await checkHeadSignature(await auditVerifier([fresh.publicKey]), head, sig)).toBe("valid");
  });

  it("names what is wrong with a key, never repeating it", () => {
    expect(signingKeyProblem(AUDIT_PUBLIC_KEY)).toMatch(/^is a public key/);
    expect(signingKeyProblem("auditsk_c2hvcnQ=")).toMatch(/32-byte/);
    expect(signingKeyProblem("whsec_c2hvcnQ=")).not.toContain("c2hvcnQ");
  });

  it("a verifier refuses anything but auditpk_ keys", async () => {
    await expect(auditVerifier([SECRETS.AUDIT_SIGNING_KEY.replace("auditsk_", "auditpk_x")])).rejects.toThrow(
      /not an audit public key/,
    );
  });
});

describe("D1's head against the Durable Object's", () => {
  const events = chain(5);

  it("agrees when D1 holds what the object had written, or part of what it is still writing", () => {
    expect(compareWithObject(d1Head(events), objectOf(events, 5))).toBeNull();
    expect(compareWithObject(d1Head(events.slice(0, 3)), objectOf(events, 3))).toBeNull();
    // A flush D1 took but whose answer the object has not had yet.
    expect(compareWithObject(d1Head(events.slice(0, 4)), objectOf(events, 3))).toBeNull();
  });

  it("names a rewritten, cut, forged or gappy chain", () => {
    const other = chain(6).map((e) => ({ ...e, hash: e.hash.replace(/^./, "f") }));
    expect(compareWithObject(d1Head(other.slice(0, 5)), objectOf(events, 5))?.problem).toMatch(/^rewritten: /);
    expect(compareWithObject(d1Head(events.slice(0, 2)), objectOf(events, 5))).toEqual({
      problem: expect.stringMatching(/^truncated: /),
      behind: true,
    });
    expect(compareWithObject(d1Head(events), NO_CHAIN)?.problem).toMatch(/^forged: .*sealed none/);
    expect(compareWithObject(d1Head(chain(6)), objectOf(events, 5))?.problem).toMatch(/^forged: .*past/);
    expect(compareWithObject(d1Head(events, 4), objectOf(events, 5))?.problem).toMatch(/^missing: /);
  });

  it("a flush that landed after D1 was read is told apart from a cut by reading the chain on from the old head", () => {
    const snapshot = d1Head(events.slice(0, 2));
    const object = objectOf(events, 5);
    expect(compareWithObject(snapshot, object)?.behind).toBe(true);
    expect(settleRace(snapshot, events.slice(1), object)).toBe(true);
    // Still cut when read again: nothing runs on to the confirmed head.
    expect(settleRace(snapshot, events.slice(1, 2), object)).toBe(false);
    // Rows that run on but were rewritten in between do not link.
    const rewritten = events.map((e) => (e.idx === 4 ? { ...e, actor: "slack:U0MALLORY" } : e));
    expect(settleRace(snapshot, rewritten.slice(1), object)).toBe(false);
    // A snapshot head that is not the row now at its position.
    expect(settleRace({ ...snapshot, hash: "e".repeat(64) }, events.slice(1), object)).toBe(false);
  });
});

describe("a later checkpoint against an earlier one", () => {
  const base: Checkpoint = {
    type: "signoff.audit.checkpoint",
    version: 1,
    created_at: "2026-11-01T00:00:00.000Z",
    max_seq: 10,
    events: 10,
    chains: {
      a: { idx: 5, hash: "a".repeat(64), seq: 9, count: 5 },
      b: { idx: 5, hash: "b".repeat(64), seq: 10, count: 5 },
    },
    key_id: "0".repeat(16),
    public_key: AUDIT_PUBLIC_KEY,
    signature: "",
  };

  it("may only grow", () => {
    const grown = {
      ...base,
      max_seq: 12,
      chains: { ...base.chains, a: { idx: 7, hash: "c".repeat(64), seq: 12, count: 7 } },
    };
    expect(compareCheckpoints(base, grown)).toEqual([]);
    const { b: _gone, ...onlyA } = base.chains;
    expect(compareCheckpoints(base, { ...base, chains: onlyA })).toEqual([
      { proposal_id: "b", problem: expect.stringMatching(/^deleted: /) },
    ]);
    const shorter = { ...base.chains, a: { ...base.chains.a!, idx: 4, count: 4 } };
    expect(compareCheckpoints(base, { ...base, chains: shorter })[0]?.problem).toMatch(/^truncated: /);
    const other = { ...base.chains, a: { ...base.chains.a!, hash: "d".repeat(64) } };
    expect(compareCheckpoints(base, { ...base, chains: other })[0]?.problem).toMatch(/^rewritten: /);
    expect(compareCheckpoints(base, { ...base, max_seq: 3 })).toEqual([
      { proposal_id: null, problem: expect.stringMatching(/^deleted: .*max seq/) },
    ]);
  });
});
