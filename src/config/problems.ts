// Configuration problems: the error that lists them, plain-English zod messages, JSON-or-object inputs (paths and zod
// issues become details in src/lib/details.ts). Free of Worker-only and HTTP imports so the operator scripts load it.
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
