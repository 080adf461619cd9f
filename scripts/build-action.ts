// `npm run build:action`: bundles the GitHub Action (action/src/index.ts and the client it uses) with @vercel/ncc
// into action/dist/index.js, the one file action.yml runs, so nothing installs at run time; `--cli` bundles the
// signoff CLI into client/dist/signoff.js for `npm pack ./client`. ncc's TypeScript loader cannot use this
// project's TypeScript 7, so the sources are first stripped of their types by Node itself (erasable syntax only)
// into a fixed staging folder under node_modules/.cache, whose packages then resolve from the project's own.
// The action-bundle test builds the same way and fails when the checked-in bundle differs.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire, stripTypeScriptTypes } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const STAGE = join(ROOT, "node_modules", ".cache", "signoff-bundle");
const SOURCES = ["client/src", "action/src"];
export const ACTION_BUNDLE = join(ROOT, "action", "dist", "index.js");
export const CLI_BUNDLE = join(ROOT, "client", "dist", "signoff.js");

type Ncc = (
  entry: string,
  options: Record<string, unknown>,
) => Promise<{ code: string; assets: Record<string, unknown> }>;
const ncc = createRequire(import.meta.url)("@vercel/ncc") as Ncc;

/** Node warns that stripTypeScriptTypes is experimental each time it runs; this build knows and says nothing. */
function quietly<T>(strip: () => T): T {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: never[]) => {
    if (!String(warning).includes("stripTypeScriptTypes")) emit.call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return strip();
  } finally {
    process.emitWarning = emit;
  }
}

/** The sources as JavaScript in the staging folder: types stripped, `./x.ts` imports made `./x.js`. */
function stage(): void {
  rmSync(STAGE, { recursive: true, force: true });
  for (const dir of SOURCES) {
    for (const name of readdirSync(join(ROOT, dir))) {
      if (!name.endsWith(".ts")) continue;
      const source = readFileSync(join(ROOT, dir, name), "utf8");
      const js = quietly(() => stripTypeScriptTypes(source, { mode: "strip" })).replace(
        /(from\s+["'](?:\.{1,2}\/)[^"']*?)\.ts(["'])/g,
        "$1.js$2",
      );
      const out = join(STAGE, dir, name.replace(/\.ts$/, ".js"));
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, js);
    }
  }
  writeFileSync(join(STAGE, "package.json"), `${JSON.stringify({ type: "module", private: true })}\n`);
}

async function bundle(entry: string): Promise<string> {
  const { code, assets } = await ncc(join(STAGE, entry), {
    quiet: true,
    minify: false,
    sourceMap: false,
    cache: false,
  });
  const extra = Object.keys(assets).filter((name) => name !== "package.json");
  if (extra.length > 0) throw new Error(`the bundle needs files beside it (${extra.join(", ")}): keep it to one file`);
  return code;
}

/** The Action's bundle as a fresh build makes it. */
export async function buildAction(): Promise<string> {
  stage();
  return bundle("action/src/index.js");
}

/** The CLI's bundle (for the packed package), with its shebang. */
export async function buildCli(): Promise<string> {
  stage();
  const code = await bundle("client/src/bin.js");
  return code.startsWith("#!") ? code : `#!/usr/bin/env node\n${code}`;
}

if (import.meta.main) {
  const cli = process.argv.includes("--cli");
  const [path, code] = cli ? [CLI_BUNDLE, await buildCli()] : [ACTION_BUNDLE, await buildAction()];
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, code, { mode: 0o755 });
  process.stdout.write(`wrote ${path} (${Math.round(code.length / 1024)} KiB)\n`);
}
