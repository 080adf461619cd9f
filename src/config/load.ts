// The Worker's configuration: checked once per isolate for each distinct set of inputs, else a 503 `misconfigured`
// naming every bad field (SPEC 3). Kept apart from check.ts because ApiError is the HTTP layer's vocabulary.

import type { ErrorDetail } from "../errors.ts";
import { ApiError } from "../errors.ts";
import type { Config, ConfigEnv } from "./check.ts";
import { CONFIG_INPUTS, checkConfig } from "./check.ts";

export type { Config, ConfigEnv } from "./check.ts";

/**
 * The error every request gets while the configuration is bad; fields are named, values never shown. It names the
 * command that checks this configuration: local mode's (`npm start`, LOCAL_MODE) is [env.local] with .dev.vars.
 */
export function misconfigured(problems: ErrorDetail[], localMode = false): ApiError {
  const fields = [...new Set(problems.map((p) => /^[A-Z_]+/.exec(p.path)?.[0] ?? p.path))];
  const check = localMode ? "`npm run check-config -- --env local`" : "`npm run check-config` before deploying";
  return new ApiError(
    503,
    "misconfigured",
    `signoff is misconfigured: ${problems.length} problem(s) in ${fields.join(", ")}; run ${check}`,
    problems,
  );
}

interface Cached {
  inputs: unknown[];
  key: string;
  outcome: { config: Config } | { problems: ErrorDetail[] };
}
let cached: Cached | undefined;

function inputsOf(env: ConfigEnv): unknown[] {
  return CONFIG_INPUTS.map((name) => env[name]);
}

/** A cheap identity of the raw inputs: strings as they are, parsed `[vars]` tables serialized. */
function keyOf(inputs: unknown[]): string {
  return inputs
    .map((value) => {
      if (value === undefined) return "\u0000";
      if (typeof value === "string") return `s${value}`;
      try {
        return `j${JSON.stringify(value)}`;
      } catch {
        return `?${String(value)}`;
      }
    })
    .join("\u0001");
}

/**
 * The checked configuration for `env`, or throws `ApiError(503, "misconfigured")` with one detail per problem.
 * The env object of an isolate rarely changes, so the fast path compares the raw inputs by identity.
 */
export function loadConfig(env: ConfigEnv & { LOCAL_MODE?: unknown }): Config {
  const localMode = env.LOCAL_MODE === "1";
  const inputs = inputsOf(env);
  if (!cached || !inputs.every((value, i) => Object.is(value, cached!.inputs[i]))) {
    const key = keyOf(inputs);
    if (cached?.key === key) {
      cached.inputs = inputs;
    } else {
      const result = checkConfig(env);
      if (!result.ok) {
        // Logged once per distinct configuration (for `wrangler tail`), not per request; details carry no values.
        console.error(misconfigured(result.problems, localMode).message, JSON.stringify(result.problems));
      }
      cached = { inputs, key, outcome: result.ok ? { config: result.config } : { problems: result.problems } };
    }
  }
  const { outcome } = cached;
  // A fresh error per request: callers may decorate or log it.
  if ("problems" in outcome)
    throw misconfigured(
      outcome.problems.map((p) => ({ ...p })),
      localMode,
    );
  return outcome.config;
}
