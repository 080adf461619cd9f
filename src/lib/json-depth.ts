// Hostile nesting is refused before any recursive code (validation, canonicalization) can
// overflow the stack on it: an iterative walk that names where the nesting went too deep.

/** The path (e.g. `metadata.a[0]`) at which `value` nests deeper than `max`, or null. */
export function tooDeepAt(value: unknown, max: number): string | null {
  const stack: Array<{ value: unknown; depth: number; path: string }> = [{ value, depth: 0, path: "" }];
  while (stack.length > 0) {
    const { value: node, depth, path } = stack.pop()!;
    if (typeof node !== "object" || node === null) continue;
    if (depth >= max) return path || "(root)";
    if (Array.isArray(node)) {
      for (const [i, item] of node.entries()) stack.push({ value: item, depth: depth + 1, path: `${path}[${i}]` });
    } else {
      for (const [key, item] of Object.entries(node)) {
        stack.push({ value: item, depth: depth + 1, path: path ? `${path}.${key}` : key });
      }
    }
  }
  return null;
}
