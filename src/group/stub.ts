// The way to a group's Durable Object: by the proposer's key, the action and the group_key (one object each, so one
// key's proposals never land on another key's card), or by the id a group button carries.
import type { ProposalGroup } from "./object.ts";

export type GroupStub = DurableObjectStub<ProposalGroup>;

/** The group object of `keyName`'s proposals of `action` under `groupKey`. */
export function groupStubFor(
  ns: DurableObjectNamespace<ProposalGroup>,
  keyName: string,
  action: string,
  groupKey: string,
): GroupStub {
  return ns.get(ns.idFromName(`group\n${keyName}\n${action}\n${groupKey}`));
}

/** The group object a button's reference names, or null when the id is not one of this namespace's. */
export function groupStubAt(ns: DurableObjectNamespace<ProposalGroup>, objectId: string): GroupStub | null {
  try {
    return ns.get(ns.idFromString(objectId));
  } catch {
    return null;
  }
}
