// Local mode's account of a bad configuration (issue 13): each problem once, in words, with the file that holds
// the field and whether fixing it needs a restart. Shown by the stand-in page and by `npm start`; pure.
import { SECRET_NAMES } from "../config/check.ts";
import type { ErrorDetail } from "../errors.ts";

export interface LocalProblem {
  /** `API_KEYS[0].scope`, `POLICY.actions["demo.echo"].ttl_seconds`. */
  path: string;
  message: string;
  /** Where local mode keeps the field, and what makes an edit take effect. */
  fix: string;
}

const IN_DEV_VARS = "in .dev.vars: restart npm start after editing it (it is read once, at start)";
const IN_WRANGLER_TOML = "in wrangler.toml [env.local.vars]: wrangler reloads it by itself when saved";

/** The problems of a `misconfigured` answer as local mode explains them: duplicates dropped, order kept. */
export function localProblems(details: readonly ErrorDetail[]): LocalProblem[] {
  const seen = new Set<string>();
  const problems: LocalProblem[] = [];
  for (const { path, message } of details) {
    const key = `${path}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const field = /^[A-Z_]+/.exec(path)?.[0] ?? path;
    const secret = (SECRET_NAMES as readonly string[]).includes(field);
    problems.push({ path, message, fix: secret ? IN_DEV_VARS : IN_WRANGLER_TOML });
  }
  return problems;
}

/** The problems as lines for a terminal: the count, then one line per problem and where to fix it. */
export function describeProblems(problems: readonly LocalProblem[]): string {
  const head = `signoff is misconfigured: ${problems.length} problem${problems.length === 1 ? "" : "s"}`;
  return [head, ...problems.map((p) => `  ${p.path}: ${p.message}\n    (${p.fix})`)].join("\n");
}
