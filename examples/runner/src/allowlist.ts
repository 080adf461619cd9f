// The runner's allowlist: action types mapped to fixed argv templates, and the checks that fill them.

export interface ParamRule {
  /** Source of a JavaScript regular expression; it must match the whole value. */
  pattern: string;
}

export interface ActionSpec {
  description?: string;
  /** Program and arguments. `{name}` inside an element is replaced by the validated param `name`. */
  argv: string[];
  params: Record<string, ParamRule>;
  /** Environment variables passed through to the command, besides PATH. */
  env: string[];
  timeout_ms?: number;
  /** Answer 202 at once and POST the result to signoff when the command ends. */
  async: boolean;
}

export interface Allowlist {
  /** Environment variables passed through to every command, besides PATH. */
  env: string[];
  actions: Record<string, ActionSpec>;
}

export interface Problem {
  path: string;
  message: string;
}

export interface CompiledAction {
  type: string;
  spec: ActionSpec;
  patterns: Map<string, RegExp>;
}

export type Rendered = { ok: true; argv: string[] } | { ok: false; problems: Problem[] };

/** A broken allowlist; the runner refuses to start rather than guess. */
export class AllowlistError extends Error {
  readonly problems: Problem[];
  constructor(problems: Problem[]) {
    super(`invalid runner allowlist:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")}`);
    this.name = "AllowlistError";
    this.problems = problems;
  }
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ACTION_KEYS = new Set(["description", "argv", "params", "env", "timeout_ms", "async"]);
const MAX_PARAM_CHARS = 4096;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function placeholders(element: string): string[] {
  return [...element.matchAll(PLACEHOLDER)].map((m) => m[1] ?? "");
}

/** The whole-value regex for a rule: anchored here so a pattern written without ^…$ cannot match a substring. */
function compilePattern(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`, "u");
}

function checkEnvList(value: unknown, path: string, problems: Problem[]): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    problems.push({ path, message: "must be an array of environment variable names" });
    return [];
  }
  value.forEach((name, i) => {
    if (typeof name !== "string" || !ENV_NAME.test(name)) {
      problems.push({ path: `${path}[${i}]`, message: "must be an environment variable name" });
    }
  });
  return value.filter((name): name is string => typeof name === "string");
}

/** Validates a parsed allowlist file; throws AllowlistError naming every bad field. */
export function parseAllowlist(input: unknown): Allowlist {
  const problems: Problem[] = [];
  if (!isRecord(input)) throw new AllowlistError([{ path: "", message: "must be a JSON object" }]);
  for (const key of Object.keys(input)) {
    if (key !== "env" && key !== "actions" && !key.startsWith("$"))
      problems.push({ path: key, message: "unknown field" });
  }
  const env = checkEnvList(input.env, "env", problems);
  const actions: Record<string, ActionSpec> = {};
  if (!isRecord(input.actions)) {
    problems.push({ path: "actions", message: "must be an object of action type → action" });
  } else {
    for (const [type, raw] of Object.entries(input.actions)) {
      const spec = parseAction(raw, `actions.${type}`, problems);
      if (spec) actions[type] = spec;
    }
  }
  if (problems.length > 0) throw new AllowlistError(problems);
  return { env, actions };
}

function parseAction(raw: unknown, path: string, problems: Problem[]): ActionSpec | null {
  if (!isRecord(raw)) {
    problems.push({ path, message: "must be an object" });
    return null;
  }
  const before = problems.length;
  for (const key of Object.keys(raw)) {
    // A misspelt "async" or "timeout_ms" must not silently fall back to the default.
    if (!ACTION_KEYS.has(key)) problems.push({ path: `${path}.${key}`, message: "unknown field" });
  }

  const params: Record<string, ParamRule> = {};
  if (raw.params !== undefined && !isRecord(raw.params)) {
    problems.push({ path: `${path}.params`, message: "must be an object of param name → { pattern }" });
  } else {
    for (const [name, rule] of Object.entries(raw.params ?? {})) {
      const rulePath = `${path}.params.${name}`;
      if (!isRecord(rule) || typeof rule.pattern !== "string" || Object.keys(rule).some((k) => k !== "pattern")) {
        problems.push({ path: rulePath, message: 'must be { "pattern": "<regular expression>" }' });
        continue;
      }
      try {
        compilePattern(rule.pattern);
        params[name] = { pattern: rule.pattern };
      } catch (error) {
        problems.push({
          path: `${rulePath}.pattern`,
          message: `not a valid regular expression: ${(error as Error).message}`,
        });
      }
    }
  }

  const argv: string[] = [];
  if (!Array.isArray(raw.argv) || raw.argv.length === 0 || raw.argv.some((a) => typeof a !== "string")) {
    problems.push({ path: `${path}.argv`, message: "must be a non-empty array of strings" });
  } else {
    argv.push(...(raw.argv as string[]));
    const used = new Set<string>();
    argv.forEach((element, i) => {
      for (const name of placeholders(element)) {
        used.add(name);
        if (i === 0)
          problems.push({ path: `${path}.argv[0]`, message: "the program must be fixed, not a placeholder" });
        else if (!(isRecord(raw.params) && name in raw.params)) {
          problems.push({ path: `${path}.argv[${i}]`, message: `placeholder {${name}} has no entry in params` });
        }
      }
      if (element.includes("\u0000"))
        problems.push({ path: `${path}.argv[${i}]`, message: "contains a NUL character" });
    });
    for (const name of Object.keys(params)) {
      // Every declared param must end up in argv: one the template ignores means the approved
      // plan and what runs have drifted apart.
      if (!used.has(name)) problems.push({ path: `${path}.params.${name}`, message: "is not used in argv" });
    }
  }

  const env = checkEnvList(raw.env, `${path}.env`, problems);
  if (raw.timeout_ms !== undefined && (!Number.isSafeInteger(raw.timeout_ms) || (raw.timeout_ms as number) <= 0)) {
    problems.push({ path: `${path}.timeout_ms`, message: "must be a positive integer" });
  }
  if (raw.async !== undefined && typeof raw.async !== "boolean") {
    problems.push({ path: `${path}.async`, message: "must be true or false" });
  }
  if (raw.description !== undefined && typeof raw.description !== "string") {
    problems.push({ path: `${path}.description`, message: "must be a string" });
  }
  if (problems.length > before) return null;
  return {
    ...(typeof raw.description === "string" ? { description: raw.description } : {}),
    argv,
    params,
    env,
    ...(typeof raw.timeout_ms === "number" ? { timeout_ms: raw.timeout_ms } : {}),
    async: raw.async === true,
  };
}

/** Precompiles every param pattern of an allowlist. */
export function compileAllowlist(allowlist: Allowlist): Map<string, CompiledAction> {
  const compiled = new Map<string, CompiledAction>();
  for (const [type, spec] of Object.entries(allowlist.actions)) {
    const patterns = new Map<string, RegExp>();
    for (const [name, rule] of Object.entries(spec.params)) patterns.set(name, compilePattern(rule.pattern));
    compiled.set(type, { type, spec, patterns });
  }
  return compiled;
}

/**
 * Fills an action's argv template with request params. Every declared param is required,
 * undeclared params are refused, and each value must match its pattern in full. Values are
 * only ever placed inside single argv elements; no shell sees them.
 */
export function renderArgv(action: CompiledAction, params: unknown): Rendered {
  const problems: Problem[] = [];
  if (!isRecord(params)) return { ok: false, problems: [{ path: "action.params", message: "must be an object" }] };
  const values = new Map<string, string>();
  for (const [name, value] of Object.entries(params)) {
    const path = `action.params.${name}`;
    const pattern = action.patterns.get(name);
    if (!pattern) {
      problems.push({ path, message: "is not a parameter of this action" });
      continue;
    }
    if (
      !(
        typeof value === "string" ||
        typeof value === "boolean" ||
        (typeof value === "number" && Number.isFinite(value))
      )
    ) {
      problems.push({ path, message: "must be a string, number or boolean" });
      continue;
    }
    const text = String(value);
    if (text.length > MAX_PARAM_CHARS || text.includes("\u0000") || !pattern.test(text)) {
      problems.push({ path, message: `does not match ${action.spec.params[name]?.pattern ?? "its pattern"}` });
      continue;
    }
    values.set(name, text);
  }
  for (const name of action.patterns.keys()) {
    if (!(name in params)) problems.push({ path: `action.params.${name}`, message: "is required" });
  }
  if (problems.length > 0) return { ok: false, problems };

  const argv: string[] = [];
  action.spec.argv.forEach((template, i) => {
    // One pass with a callback: a value that itself looks like "{other}" is never expanded again.
    const element = template.replace(PLACEHOLDER, (_match, name: string) => values.get(name) ?? "");
    // A value that turns a plain argument into an option ("--kubeconfig=…", "-n", "--help")
    // changes what the program does, whatever the pattern allowed.
    if (element.startsWith("-") && !template.startsWith("-")) {
      const names = placeholders(template)
        .map((name) => `{${name}}`)
        .join(", ");
      problems.push({ path: "action.params", message: `argument ${i} (${names}) may not start with '-'` });
    }
    argv.push(element);
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, argv };
}
