// The one way to reach a proposal's Durable Object from outside it: a public id (or an object id) to a stub whose
// RPC answers carry the types ProposalObject declares.
import { objectIdOf } from "./ids.ts";
import type { ProposalObject } from "./object.ts";

/** What a stub can call: the object's public methods, minus the platform's own handlers (fetch, alarm, …). */
type RpcMethod = Exclude<keyof ProposalObject, keyof DurableObject>;

/**
 * A proposal's stub, its RPC methods typed as ProposalObject declares them. The declared signatures come first in
 * the intersection, so calls resolve to them; it stays a DurableObjectStub<ProposalObject> for the test pool's
 * runInDurableObject and friends.
 */
export type ProposalStub = Pick<ProposalObject, RpcMethod> & DurableObjectStub<ProposalObject>;

/**
 * The stub of the object behind `id`. This is the one cast RPC typing needs: workers-types types each answer with
 * `Rpc.Result`, which keeps only what it can prove structured-cloneable, and it cannot prove that of `unknown`
 * (a Proposal's `action.params`, `metadata`). Every union branch carrying a Proposal then becomes `never`: the
 * `{ ok: true, proposal }` of an Outcome disappears, and `read()` seems to answer only null. The answers are plain
 * JSON data, which RPC clones faithfully, so the declared types are the true ones.
 */
export function proposalStubAt(ns: DurableObjectNamespace<ProposalObject>, id: DurableObjectId): ProposalStub {
  return ns.get(id) as ProposalStub;
}

/** The stub behind a public id (`prp_…`), or null when the id is not one of ours (callers answer "not found"). */
export function proposalStub(ns: DurableObjectNamespace<ProposalObject>, publicId: string): ProposalStub | null {
  const id = objectIdOf(ns, publicId);
  return id ? proposalStubAt(ns, id) : null;
}
