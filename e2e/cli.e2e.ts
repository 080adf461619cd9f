// The `signoff` CLI and the GitHub Action's bundled entry point against a real local signoff (the stack `npm start`
// runs, on free ports, as local.e2e.ts starts it), deciding as people through the Slack stand-in: a test presses a
// card's button by posting to the stand-in's click endpoint, which signs the request as Slack would. One server for
// every case. Issue 14.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type LocalStack, ROOT, startLocal } from "../scripts/local/stack.ts";

const NODE = process.execPath;
const CLI = join(ROOT, "client", "bin", "signoff.js");
const ACTION = join(ROOT, "action", "dist", "index.js");
/** From a click to the runner's result on the proposal. */
const FLOW_MS = 30_000;

let dir: string;
let stack: LocalStack | undefined;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "signoff-cli-e2e-"));
  const lines: string[] = [];
  try {
    stack = await startLocal({
      port: 0,
      runnerPort: 0,
      persistTo: join(dir, "state"),
      devVarsPath: join(dir, ".dev.vars"),
      tokenPath: join(dir, "demo-token"),
      log: (line) => lines.push(line),
    });
  } catch (error) {
    throw new Error(`local stack did not start: ${(error as Error).message}\n${lines.slice(-40).join("\n")}`);
  }
});

after(async () => {
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `command args` to its end; `onStderr` sees what it prints to stderr as it prints it. */
function runProcess(
  command: string,
  args: string[],
  env: Record<string, string>,
  onOutput?: (text: string) => void,
): Promise<Ran> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? "", HOME: dir, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
      onOutput?.(stdout);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
      onOutput?.(stderr);
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

function signoffEnv(token = stack!.token): Record<string, string> {
  return { SIGNOFF_URL: stack!.url, SIGNOFF_TOKEN: token };
}

function cli(args: string[], env = signoffEnv(), onStderr?: (text: string) => void): Promise<Ran> {
  return runProcess(NODE, [CLI, ...args], env, onStderr);
}

/** Runs `signoff propose … --wait`; `decide(id)` is called once the proposal exists. */
async function proposeAndDecide(args: string[], decide: (id: string) => Promise<void>): Promise<Ran> {
  let deciding: Promise<void> | undefined;
  const ran = await cli(["propose", ...args], signoffEnv(), (output) => {
    const id = /Proposed (prp_[0-9a-f]+)/.exec(output)?.[1];
    if (id && !deciding) deciding = decide(id);
  });
  assert.ok(deciding, `the CLI never said what it proposed:\n${ran.stderr}`);
  await deciding;
  return ran;
}

async function local(path: string, body?: unknown): Promise<Record<string, any>> {
  const res = await fetch(`${stack!.url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  assert.equal(res.status, 200, `${path}: HTTP ${res.status} ${await res.clone().text()}`);
  return (await res.json()) as Record<string, any>;
}

/** Presses `button` (approve, deny) on proposal `id`'s card as `user`, once the card shows it. */
async function press(id: string, user: string, button: "approve" | "deny"): Promise<void> {
  const actionId = `signoff.${button}`;
  for (const deadline = Date.now() + FLOW_MS; Date.now() < deadline; ) {
    const state = await local(`/__local/state?as=${user}`);
    const card = (state.messages as Array<{ channel: string; ts: string; blocks: unknown[] }>).find(
      (m) => JSON.stringify(m.blocks).includes(id) && JSON.stringify(m.blocks).includes(actionId),
    );
    if (card) {
      const clicked = await local("/__local/click", {
        as: user,
        channel: card.channel,
        ts: card.ts,
        action_id: actionId,
      });
      assert.equal(clicked.status, 200, JSON.stringify(clicked));
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`no ${button} button on ${id}'s card for ${user}`);
}

/** Denies `id` as `user` with `reason`, through the Deny button's modal. */
async function deny(id: string, user: string, reason: string): Promise<void> {
  await press(id, user, "deny");
  for (const deadline = Date.now() + FLOW_MS; Date.now() < deadline; ) {
    const state = await local(`/__local/state?as=${user}`);
    if (state.view) {
      const submitted = await local("/__local/view/submit", { as: user, view_id: state.view.id, values: { reason } });
      assert.equal(submitted.status, 200, JSON.stringify(submitted));
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the deny modal never opened for ${user}`);
}

const ECHO = (message: string) => [
  "--action",
  "demo.echo",
  "--param",
  `message=${message}`,
  "--summary",
  "Say hello through the runner",
  "--reason",
  "the CLI end-to-end test",
  "--blast-radius",
  "none: it echoes",
  "--rollback",
  "nothing to undo",
];

test("signoff propose --wait: approved and run → exit 0 with who approved and the runner's output", {
  timeout: 120_000,
}, async () => {
  const ran = await proposeAndDecide([...ECHO("approved from the CLI"), "--wait"], (id) =>
    press(id, "U0ALICE", "approve"),
  );
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(ran.stdout, /Approved by slack:U0ALICE/);
  assert.match(ran.stdout, /Runner: succeeded/);
  assert.match(ran.stdout, /approved from the CLI/);
  assert.match(ran.stdout, /Status: succeeded/);
  // The live line: status and approvals of M while it waited.
  assert.match(ran.stderr, /prp_[0-9a-f]+ pending · 0 of 1 approvals · \d+m \d+s left/);

  // --wait on a decided proposal answers at once, with the same outcome; --json prints the API's proposal.
  const id = /Proposed (prp_[0-9a-f]+)/.exec(ran.stderr)![1]!;
  const again = await cli(["get", id, "--wait", "--json"]);
  assert.equal(again.code, 0, again.stderr);
  assert.ok(again.ms < 5_000, `took ${again.ms} ms`);
  const proposal = JSON.parse(again.stdout);
  assert.equal(proposal.id, id);
  assert.equal(proposal.status, "succeeded");
});

test("signoff propose --wait: denied with a reason → exit 10 and the reason shown", { timeout: 120_000 }, async () => {
  const ran = await proposeAndDecide([...ECHO("to be denied"), "--wait=120"], (id) =>
    deny(id, "U0OSCAR", "Not during the release freeze"),
  );
  assert.equal(ran.code, 10, ran.stderr);
  assert.match(ran.stdout, /Denied by slack:U0OSCAR at .*: Not during the release freeze/);
});

test("signoff propose --ttl 2 --wait: nobody answers → exit 11", { timeout: 60_000 }, async () => {
  const ran = await cli(["propose", ...ECHO("nobody will answer"), "--ttl", "2", "--wait"]);
  assert.equal(ran.code, 11, ran.stderr);
  assert.match(ran.stdout, /Expired at .*\nStatus: expired/);
});

test("a bad token → exit 3 with the server's message; mistakes are one line naming them, never a stack trace", {
  timeout: 60_000,
}, async () => {
  const bad = await cli(["actions"], signoffEnv("sk_live_not_a_real_token"));
  assert.equal(bad.code, 3);
  assert.match(bad.stderr, /^signoff actions: HTTP 401 \w+: .+\n$/);

  const flag = await cli(["propose", ...ECHO("x"), "--colour", "red"]);
  assert.equal(flag.code, 2);
  assert.equal(flag.stderr, "signoff propose: unknown option --colour (signoff propose --help)\n");

  const param = await cli(["propose", ...ECHO("-n hidden")]);
  assert.equal(param.code, 3);
  assert.equal(param.stderr.split("\n").length, 2, param.stderr);
  assert.match(param.stderr, /^signoff propose: HTTP 422 invalid_params: .*action\.params\.message: must match/);

  const unknown = await cli(["propose", ...ECHO("x").slice(2), "--action", "demo.nope"]);
  assert.equal(unknown.code, 3);
  assert.equal(unknown.stderr.split("\n").length, 2, unknown.stderr);
  assert.match(unknown.stderr, /demo\.nope/);
  for (const ran of [bad, flag, param, unknown]) assert.doesNotMatch(ran.stderr, /\n\s+at /);
});

test("npm exec signoff runs the bin from the checkout: actions lists what the key may propose", {
  timeout: 60_000,
}, async () => {
  const ran = await runProcess("npm", ["exec", "--offline", "--", "signoff", "actions"], signoffEnv());
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(ran.stdout, /^demo\.echo\tapproval\t1 of 1 user, 1 group\tttl 900s\tparams: message$/m);
});

function actionEnv(inputs: Record<string, string>, attempt: string): { env: Record<string, string>; outputs: string } {
  const outputs = join(dir, `outputs-${attempt}-${Math.random().toString(36).slice(2)}`);
  writeFileSync(outputs, "");
  writeFileSync(`${outputs}.summary`, "");
  const env: Record<string, string> = {
    GITHUB_OUTPUT: outputs,
    GITHUB_STEP_SUMMARY: `${outputs}.summary`,
    GITHUB_SERVER_URL: "https://github.example",
    GITHUB_REPOSITORY: "acme/shop",
    GITHUB_RUN_ID: inputs.run ?? "1001",
    GITHUB_RUN_ATTEMPT: attempt,
    GITHUB_JOB: "deploy",
    GITHUB_ACTION: "approval",
    GITHUB_WORKFLOW: "release",
    INPUT_URL: stack!.url,
    INPUT_TOKEN: stack!.token,
    INPUT_ACTION: "demo.echo",
    INPUT_PARAMS: "message: deploy approved",
    INPUT_SUMMARY: "Deploy shop to production",
    INPUT_REASON: "release 1.2.3",
    "INPUT_BLAST-RADIUS": "the shop",
    INPUT_ROLLBACK: "redeploy 1.2.2",
    INPUT_WAIT: "true",
  };
  for (const [name, value] of Object.entries(inputs)) if (name !== "run") env[`INPUT_${name.toUpperCase()}`] = value;
  return { env, outputs };
}

/** GITHUB_OUTPUT's `name<<delimiter … delimiter` entries. */
function outputsIn(path: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const m of readFileSync(path, "utf8").matchAll(/^(.+?)<<(\S+)\n([\s\S]*?)\n\2$/gm)) found[m[1]!] = m[3]!;
  return found;
}

/** Runs the Action's bundle as a runner would (inputs as INPUT_*); `decide(id)` once it has proposed, if given. */
async function action(env: Record<string, string>, decide?: (id: string) => Promise<void>): Promise<Ran> {
  let deciding: Promise<void> | undefined;
  const ran = await runProcess(NODE, [ACTION], env, (output) => {
    const id = /Proposed (prp_[0-9a-f]+)/.exec(output)?.[1];
    if (id && decide && !deciding) deciding = decide(id);
  });
  await deciding;
  return ran;
}

test("the Action: approved → outputs and a job summary; a re-run of the job (attempt 2) gets the same proposal", {
  timeout: 120_000,
}, async () => {
  const first = actionEnv({}, "1");
  const ran = await action(first.env, (id) => press(id, "U0ALICE", "approve"));
  assert.equal(ran.code, 0, ran.stdout + ran.stderr);
  const outputs = outputsIn(first.outputs);
  assert.match(outputs["proposal-id"] ?? "", /^prp_[0-9a-f]{64}$/);
  assert.equal(outputs.status, "succeeded");
  assert.equal(outputs.approvers, "U0ALICE");
  assert.match(outputs.result ?? "", /deploy approved/);
  const summary = readFileSync(`${first.outputs}.summary`, "utf8");
  assert.match(summary, /signoff: demo\.echo — succeeded/);
  assert.match(summary, /Approved by slack:U0ALICE/);
  assert.match(summary, /Audit trail/);
  assert.match(summary, /proposal\.approved/);

  // The card's reason links back to the workflow run.
  const res = await fetch(`${stack!.url}/v1/proposals/${outputs["proposal-id"]}`, {
    headers: { authorization: `Bearer ${stack!.token}` },
  });
  const proposal = (await res.json()) as { reason: string };
  assert.equal(
    proposal.reason,
    "release 1.2.3 (GitHub Actions run https://github.example/acme/shop/actions/runs/1001)",
  );

  // "Re-run failed jobs": same run and job, a new attempt. The same proposal, already decided: no second card.
  const rerun = actionEnv({}, "2");
  const again = await action(rerun.env);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.equal(outputsIn(rerun.outputs)["proposal-id"], outputs["proposal-id"]);
  assert.ok(again.ms < 10_000, `took ${again.ms} ms`);
});

test("the Action: denied → the step fails with an error annotation saying who decided and why", {
  timeout: 120_000,
}, async () => {
  const step = actionEnv({ run: "1002", params: '{"message": "deploy denied"}' }, "1");
  const ran = await action(step.env, (id) => deny(id, "U0OSCAR", "Change freeze until Monday"));
  assert.equal(ran.code, 1, ran.stdout + ran.stderr);
  assert.match(
    ran.stdout,
    /::error title=signoff%3A denied::demo\.echo was denied by slack:U0OSCAR: Change freeze until Monday/,
  );
  assert.equal(outputsIn(step.outputs).status, "denied");
});
