// The docs stand alone: no Markdown file of the project links outside the repository, and every relative link
// points at a file that exists (a moved section otherwise leaves readers at a dead end).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { ROOT } from "../local/stack.ts";

const markdown = execFileSync("git", ["ls-files", "*.md"], { cwd: ROOT, encoding: "utf8" })
  .split("\n")
  .filter((path) => path !== "");

/** Every `[text](target)` and `<https://…>` of a file, outside code spans and blocks. */
function linksOf(text: string): string[] {
  const prose = text.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  return [
    ...[...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!),
    ...[...prose.matchAll(/<(https?:\/\/[^>]+)>/g)].map((m) => m[1]!),
  ];
}

test("no Markdown file links outside the repository", () => {
  const outside = markdown.flatMap((file) =>
    linksOf(readFileSync(join(ROOT, file), "utf8"))
      .filter((link) => /^[a-z]+:/i.test(link) || resolve(ROOT, dirname(file), link).startsWith(`${ROOT}/..`))
      .filter((link) => !/^https?:\/\/(localhost|127\.0\.0\.1)[:/]/.test(link))
      .map((link) => `${file}: ${link}`),
  );
  assert.deepEqual(outside, []);
});

test("every relative link of the docs points at a file that exists", () => {
  const dead = markdown.flatMap((file) =>
    linksOf(readFileSync(join(ROOT, file), "utf8"))
      .filter((link) => !/^[a-z]+:/i.test(link) && !link.startsWith("#"))
      .filter((link) => !existsSync(resolve(ROOT, dirname(file), link.split("#")[0]!)))
      .map((link) => `${file}: ${link} (${relative(ROOT, resolve(ROOT, dirname(file), link))})`),
  );
  assert.deepEqual(dead, []);
});
