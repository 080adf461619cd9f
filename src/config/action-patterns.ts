// Action type names and the patterns that cover them (`k8s.rollout_restart`, `k8s.*`, `*`): one spelling for API
// keys' `actions` and the policy's change freezes. Free of other imports, so both config modules can use it.

/** Action type names: lowercase, digits, `_ . -`; dots group them (`k8s.rollout_restart`) for `prefix.*` patterns. */
export const ACTION_TYPE_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,127}$/;

/** An action pattern: an exact type, `prefix.*` (any type starting `prefix.`), or `*` (all). */
export function isActionPattern(pattern: string): boolean {
  if (pattern === "*") return true;
  const exact = pattern.endsWith(".*") ? pattern.slice(0, -2) : pattern;
  return ACTION_TYPE_PATTERN.test(exact);
}

/** Whether `pattern` covers `actionType`: `*` all, `prefix.*` every type under the prefix (not itself), else exact. */
export function patternCovers(pattern: string, actionType: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith(".*"))
    return actionType.startsWith(pattern.slice(0, -1)) && actionType.length > pattern.length - 1;
  return pattern === actionType;
}
