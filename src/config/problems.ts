// Configuration problems as `{path, message}` details: readable paths, plain-English zod issues, JSON-or-object inputs.
// Free of Worker-only and HTTP imports so the operator scripts (plain Node) load it too.
import type { z } from "zod";
import type { ErrorDetail } from "../errors.ts";

/** A configuration that cannot be used; every problem is one detail naming its field. */
export class ConfigError extends Error {
  readonly details: ErrorDetail[];

  constructor(message: string, details: ErrorDetail[]) {
    super(message);
    this.name = "ConfigError";
    this.details = details;
  }
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * `POLICY.actions["k8s.rollout_restart"].ttl_seconds`, `API_KEYS[0].sha256`, `action.params.deployment`:
 * identifiers dotted, indexes and other keys bracketed (jq accepts the same spelling), so a key with a dot
 * stays one segment.
 */
export function formatPath(root: string, segments: readonly PropertyKey[]): string {
  let out = root;
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (typeof segment === "symbol") out += `[${String(segment)}]`;
    else if (IDENTIFIER.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "string":
      return "a string";
    case "number":
      return Number.isInteger(value) ? "an integer" : "a number";
    case "boolean":
      return value ? "true" : "false";
    case "object":
      return "an object";
    case "undefined":
      return "nothing";
    default:
      return typeof value;
  }
}

const EXPECTED: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  array: "an array",
  object: "an object",
  record: "an object",
};

/**
 * Per-parse zod error map: messages that say what was expected and what kind of value came, never the
 * value itself (an input may be a secret). Schema-level messages (`.regex(re, "…")`) take precedence.
 */
export const explainIssue: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case "invalid_type": {
      if (issue.input === undefined) return "is required";
      // z.int() reports a wrong type as "expected number"; its definition (zod's `_zod` internals) says integer.
      const def = (issue.inst as { _zod?: { def?: { format?: unknown } } } | undefined)?._zod?.def;
      const expected = def?.format === "safeint" ? "int" : issue.expected;
      return `must be ${EXPECTED[expected] ?? expected}, not ${describe(issue.input)}`;
    }
    case "too_small":
      if (issue.origin === "array") return `must list at least ${String(issue.minimum)} item(s)`;
      if (issue.origin === "string") return `must be at least ${String(issue.minimum)} character(s)`;
      return `must be at least ${String(issue.minimum)}`;
    case "too_big":
      if (issue.origin === "array") return `must list at most ${String(issue.maximum)} item(s)`;
      if (issue.origin === "string") return `must be at most ${String(issue.maximum)} character(s)`;
      return `must be at most ${String(issue.maximum)}`;
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    default:
      return undefined;
  }
};

/** Levenshtein distance, for "did you mean" on unknown fields (the vocabularies are a dozen words). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

export function closest(word: string, vocabulary: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  // A shortened name (`ttl` for `ttl_seconds`) is far in edit distance but an obvious guess.
  const stem = vocabulary.find((candidate) => lower.length >= 3 && candidate.startsWith(lower));
  if (stem) return stem;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of vocabulary) {
    const d = distance(lower, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/**
 * Zod issues as details under `root`. An unknown key becomes one detail per key, at the key's own path, with a
 * suggestion from `vocabulary`: strict schemas exist so that a typo is an error, not a silently ignored field.
 */
export function zodDetails(
  root: string,
  issues: readonly z.core.$ZodIssue[],
  vocabulary: readonly string[] = [],
): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const guess = closest(key, vocabulary);
        details.push({
          path: formatPath(root, [...issue.path, key]),
          message: guess ? `unknown field (did you mean "${guess}"?)` : "unknown field",
        });
      }
    } else {
      details.push({ path: formatPath(root, issue.path), message: issue.message });
    }
  }
  return details;
}

export type Decoded = { ok: true; value: unknown } | { ok: false; message: string };

/**
 * A structured var arrives either already parsed (a TOML table or JSON in `[vars]`) or as a string of JSON
 * (`--var`, `.dev.vars`, a secret). The parser's own message is not repeated: V8 quotes the input in it, and
 * the input may be a secret; the position is enough to find the mistake.
 */
export function decodeJson(value: unknown): Decoded {
  if (typeof value !== "string") return { ok: true, value };
  try {
    return { ok: true, value: JSON.parse(value) as unknown };
  } catch (error) {
    const position = error instanceof Error ? /position (\d+)/.exec(error.message)?.[1] : undefined;
    return {
      ok: false,
      message: position === undefined ? "is not valid JSON" : `is not valid JSON (error at character ${position})`,
    };
  }
}

/** A plain JSON-ish object: not an array, not a class instance. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  // Any realm's Object.prototype (or none): bindings and test fixtures may come from another realm.
  const proto = Object.getPrototypeOf(value) as object | null;
  return proto === null || Object.getPrototypeOf(proto) === null;
}

/** Freezes a parsed configuration all the way down: it is cached per isolate and shared by every request. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
