// Every operator command parses its arguments the same way (scripts/lib/cli.ts): --help and -h print the
// usage and exit 0; an option it does not know is refused with the usage and exit code 2, before any work.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const SCRIPTS = fileURLToPath(new URL("../", import.meta.url));

const COMMANDS: Array<[script: string, name: string]> = [
  ["key-new.ts", "key:new"],
  ["check-config.ts", "check-config"],
  ["audit-verify.ts", "audit:verify"],
  ["bench.ts", "bench"],
  ["start.ts", "start"],
  ["setup.ts", "setup"],
];

function run(script: string, ...args: string[]) {
  const result = spawnSync(process.execPath, [`${SCRIPTS}${script}`, ...args], { encoding: "utf8", timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test("-h is --help", () => {
  const out = run("key-new.ts", "-h");
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, run("key-new.ts", "--help").stdout);
});

for (const [script, name] of COMMANDS) {
  test(`${name}: --help prints the usage and exits 0`, () => {
    const out = run(script, "--help");
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^Usage: /);
    assert.equal(out.stderr, "");
  });

  test(`${name}: an unknown option is refused with the usage, exit 2`, () => {
    const out = run(script, "--no-such-option");
    assert.equal(out.code, 2);
    assert.match(out.stderr, new RegExp(`^${name}: Unknown option '--no-such-option'`));
    assert.match(out.stderr, /Usage: /);
    assert.equal(out.stdout, "");
  });
}
