// Issue 10: no line of the Worker's source over 140 characters. Biome wraps code at 120 but leaves long strings
// and comments alone, so this keeps them readable in a side-by-side diff.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";
import { ROOT } from "../local/stack.ts";

const MAX = 140;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return /\.ts$/.test(entry.name) ? [path] : [];
  });
}

test(`no line in src/*.ts is longer than ${MAX} characters`, () => {
  const long = sources(join(ROOT, "src")).flatMap((file) =>
    readFileSync(file, "utf8")
      .split("\n")
      .flatMap((line, i) => ([...line].length > MAX ? [`${relative(ROOT, file)}:${i + 1} (${[...line].length})`] : [])),
  );
  assert.deepEqual(long, []);
});
