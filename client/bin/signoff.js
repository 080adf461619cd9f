#!/usr/bin/env node
// The `signoff` command from a checkout (`npx signoff …`, `npm exec signoff`): runs client/src/cli.ts on Node ≥ 22.12,
// which strips its types. npm puts the project's own Node 22 (the `node` devDependency) first on PATH.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `signoff: Node ${process.versions.node} is too old (needs 22.12 or later): run it through npm (npx signoff …)\n`,
  );
  process.exit(2);
}
const { run } = await import("../src/main.ts");
await run();
