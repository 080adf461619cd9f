// `{path, message}` error details: one spelling of a field's path (`POLICY.actions["k8s.x"].ttl_seconds`,
// `action.params.deployment`) and one conversion of zod issues, for configuration problems and API refusals alike.
// Free of Worker-only imports: the operator scripts use it too.
import type { z } from "zod";
import type { ErrorDetail } from "../errors.ts";

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
  // A misspelt required field is one mistake, not two: `scope` is unknown *because* `scopes` is missing. The
  // "is required" of the field it resembles is folded into the unknown field's detail, which leads (issue 13).
  const missing = new Set(
    issues
      .filter((i) => i.code === "invalid_type" && /^is required$|received undefined$/.test(i.message))
      .map((i) => formatPath(root, i.path)),
  );
  const folded = new Set<string>();
  const leading: ErrorDetail[] = [];
  const details: ErrorDetail[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const guess = closest(key, vocabulary);
        const guessed = guess === undefined ? null : formatPath(root, [...issue.path, guess]);
        const path = formatPath(root, [...issue.path, key]);
        if (guessed !== null && missing.has(guessed)) {
          folded.add(guessed);
          leading.push({ path, message: `unknown field (did you mean "${guess}"? "${guess}" is required)` });
        } else details.push({ path, message: guess ? `unknown field (did you mean "${guess}"?)` : "unknown field" });
      }
    } else {
      details.push({ path: formatPath(root, issue.path), message: issue.message });
    }
  }
  return [...leading, ...details.filter((detail) => !folded.has(detail.path))];
}
