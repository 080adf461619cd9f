// Public proposal ids ("prp_" + the Durable Object id) and the way back to the object.
const PUBLIC_ID = /^prp_([0-9a-f]{64})$/;

export function publicId(id: DurableObjectId): string {
  return `prp_${id.toString()}`;
}

/**
 * The object id behind a public id, or null when it is not one of ours. Ids come from
 * `newUniqueId()` (random) or, under an Idempotency-Key, `idFromName()` (a keyed hash the
 * caller cannot compute), so neither can be guessed.
 */
export function objectIdOf(ns: DurableObjectNamespace, publicIdText: string): DurableObjectId | null {
  const match = PUBLIC_ID.exec(publicIdText);
  if (!match) return null;
  try {
    return ns.idFromString(match[1]!);
  } catch {
    return null;
  }
}

/** The object that an Idempotency-Key of a given API key always names. */
export function idempotentObjectId(
  ns: DurableObjectNamespace,
  keyName: string,
  idempotencyKey: string,
): DurableObjectId {
  return ns.idFromName(`idempotency\n${keyName}\n${idempotencyKey}`);
}
