// The reference runner end to end: real HTTP, real processes, signatures made with the `standardwebhooks` library.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Webhook } from "standardwebhooks";
import type { Allowlist } from "../src/allowlist.ts";
import { AllowlistError, compileAllowlist, parseAllowlist, renderArgv } from "../src/allowlist.ts";
import { truncateUtf8 } from "../src/exec.ts";
import { type Runner, startRunner } from "../src/server.ts";

const SECRET = `whsec_${Buffer.from("reference-runner-test-secret-32b").toString("base64")}`;
const OTHER_SECRET = `whsec_${Buffer.from("some-other-secret-entirely-32byt").toString("base64")}`;
const SHIPPED = fileURLToPath(new URL("../actions.json", import.meta.url));
const NODE = process.execPath;
const dir = mkdtempSync(join(tmpdir(), "signoff-runner-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Test actions beside the shipped ones. Programs are this Node binary, so nothing else needs installing. */
function testAllowlist(): Allowlist {
  const shipped = parseAllowlist(JSON.parse(readFileSync(SHIPPED, "utf8")));
  const extra = parseAllowlist({
    env: [],
    actions: {
      // Appends one "x" to a file, then lingers: counts how many times an action really ran.
      "test.mark": {
        argv: [
          NODE,
          "-e",
          "require('node:fs').appendFileSync(process.argv[1], 'x'); setTimeout(() => {}, Number(process.argv[2]))",
          "{file}",
          "{linger_ms}",
        ],
        params: { file: { pattern: "^/[\\w./-]+$" }, linger_ms: { pattern: "^[0-9]{1,4}$" } },
      },
      // Prints its arguments as JSON: shows exactly what the program received.
      "test.args": {
        argv: [NODE, "-e", "process.stdout.write(JSON.stringify(process.argv.slice(1)))", "{value}", "fixed-{value}"],
        params: { value: { pattern: ".{1,300}" } },
      },
      "test.shell_echo": { argv: ["echo", "{text}"], params: { text: { pattern: ".{1,300}" } } },
      "test.hang": { argv: [NODE, "-e", "setTimeout(() => {}, 60000)"], timeout_ms: 300 },
      // sh waits on a child sleep and writes its pid to the file given as $0 (a value, not code):
      // killing only sh would leave sleep running and holding our pipes.
      "test.hang_group": {
        argv: ["sh", "-c", 'sleep 30 & echo $! > "$0"; wait', "{pidfile}"],
        params: { pidfile: { pattern: "^/[\\w./-]+$" } },
        timeout_ms: 300,
      },
      "test.env": { argv: [NODE, "-e", "process.stdout.write(JSON.stringify(process.env))"], env: ["ALLOWED_VAR"] },
      "test.flood": { argv: [NODE, "-e", "process.stdout.write('é'.repeat(10000))"] },
      "test.fail": { argv: [NODE, "-e", "console.error('boom'); process.exit(3)"] },
      "test.missing_program": { argv: ["signoff-no-such-program-xyz"] },
      "test.async": { argv: [NODE, "-e", "setTimeout(() => console.log('async done'), 100)"], async: true },
    },
  });
  return { env: [], actions: { ...shipped.actions, ...extra.actions } };
}

interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** Stands in for signoff's /v1/proposals/:id/result; answers from a queue of statuses, then 200. */
async function startListener(): Promise<{
  url: string;
  server: Server;
  received: Received[];
  answers: number[];
  next(): Promise<Received>;
}> {
  const received: Received[] = [];
  const answers: number[] = [];
  let waiters: Array<() => void> = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      received.push({ path: req.url ?? "", headers, body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(answers.shift() ?? 200, { "content-type": "application/json" }).end("{}");
      const ready = waiters;
      waiters = [];
      for (const wake of ready) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  let consumed = 0;
  const next = async (): Promise<Received> => {
    const deadline = Date.now() + 10_000;
    while (received.length <= consumed) {
      if (Date.now() > deadline) throw new Error("no result was posted");
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
    return received[consumed++]!;
  };
  return { url: `http://127.0.0.1:${port}`, server, received, answers, next };
}

let seq = 0;
const unique = (prefix: string) => `${prefix}_${process.pid}_${++seq}`;

interface SendOptions {
  id?: string;
  secret?: string;
  /** Seconds added to now for the signed timestamp. */
  skew?: number;
  /** Replace the body after signing. */
  tamper?: (body: string) => string;
  unsigned?: boolean;
}

function dispatchBody(proposalId: string, type: string, params: Record<string, unknown>): Record<string, unknown> {
  return {
    type: "proposal.approved",
    proposal_id: proposalId,
    action: { type, params },
    approvers: ["U0ALICE"],
    requested_by: "U0BOB",
    approved_at: new Date().toISOString(),
    attempt: 1,
    plan_sha256: "0".repeat(64),
  };
}

async function send(
  runner: Runner,
  payload: unknown,
  options: SendOptions = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const body = typeof payload === "string" ? payload : JSON.stringify(payload);
  const id = options.id ?? unique("msg");
  const seconds = Math.floor(Date.now() / 1000) + (options.skew ?? 0);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (!options.unsigned) {
    headers["webhook-id"] = id;
    headers["webhook-timestamp"] = String(seconds);
    headers["webhook-signature"] = new Webhook(options.secret ?? SECRET).sign(id, new Date(seconds * 1000), body);
  }
  const response = await fetch(`${runner.url}/run`, {
    method: "POST",
    headers,
    body: options.tamper ? options.tamper(body) : body,
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

/** Whether a process still runs; a zombie (dead, waiting for a reaper that containers may lack) does not count. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return true;
  }
}

const markFile = () => join(dir, `${unique("mark")}.txt`);
const runsIn = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").length : 0);

describe("reference runner", () => {
  let runner: Runner;
  let listener: Awaited<ReturnType<typeof startListener>>;

  before(async () => {
    listener = await startListener();
    runner = await startRunner({
      secret: SECRET,
      actions: testAllowlist(),
      port: 0,
      signoffUrl: listener.url,
      env: {
        PATH: process.env.PATH,
        ALLOWED_VAR: "allowed",
        RUNNER_SECRET: SECRET,
        HOME: "/home/someone",
        AWS_SECRET_ACCESS_KEY: "leak",
      },
      log: () => {},
      killGraceMs: 200,
      report: { baseDelayMs: 20, maxDelayMs: 100, attempts: 4 },
    });
  });

  after(async () => {
    await runner.close();
    await new Promise<void>((resolve) => listener.server.close(() => resolve()));
  });

  describe("signature (SPEC 6: the runner verifies signoff's signature on every dispatch)", () => {
    const marked = () => {
      const file = markFile();
      return { file, body: dispatchBody(unique("prp"), "test.mark", { file, linger_ms: "0" }) };
    };

    it("refuses an unsigned dispatch with 401 and runs nothing", async () => {
      const { file, body } = marked();
      const { status, json } = await send(runner, body, { unsigned: true });
      assert.equal(status, 401);
      assert.equal((json.error as { code: string }).code, "unauthorized");
      assert.equal(runsIn(file), 0);
    });

    it("refuses a dispatch signed with another secret", async () => {
      const { file, body } = marked();
      assert.equal((await send(runner, body, { secret: OTHER_SECRET })).status, 401);
      assert.equal(runsIn(file), 0);
    });

    it("refuses a body changed after signing", async () => {
      const { file, body } = marked();
      const { status } = await send(runner, body, {
        tamper: (text) => text.replace('"linger_ms":"0"', '"linger_ms":"1"'),
      });
      assert.equal(status, 401);
      assert.equal(runsIn(file), 0);
    });

    it("refuses a stale or future timestamp", async () => {
      const { file, body } = marked();
      assert.equal((await send(runner, body, { skew: -600 })).status, 401);
      assert.equal((await send(runner, body, { skew: 600 })).status, 401);
      assert.equal(runsIn(file), 0);
    });

    it("accepts the same dispatch correctly signed", async () => {
      const { file, body } = marked();
      assert.deepEqual(await send(runner, body), { status: 200, json: { status: "succeeded", output: "" } });
      assert.equal(runsIn(file), 1);
    });
  });

  describe("allowlist", () => {
    it("refuses an unknown action type with 403 and a JSON error", async () => {
      const { status, json } = await send(
        runner,
        dispatchBody(unique("prp"), "k8s.delete_namespace", { namespace: "prod" }),
      );
      assert.equal(status, 403);
      assert.equal((json.error as { code: string }).code, "action_not_allowed");
    });

    it("refuses a param failing its pattern (422) and runs nothing", async () => {
      const file = markFile();
      const { status, json } = await send(
        runner,
        dispatchBody(unique("prp"), "test.mark", { file, linger_ms: "1; touch /tmp/x" }),
      );
      assert.equal(status, 422);
      const error = json.error as { code: string; details: Array<{ path: string }> };
      assert.equal(error.code, "params_rejected");
      assert.deepEqual(
        error.details.map((d) => d.path),
        ["action.params.linger_ms"],
      );
      assert.equal(runsIn(file), 0);
    });

    it("refuses a missing param, an undeclared param and a non-scalar param", async () => {
      const file = markFile();
      for (const params of [{ file }, { file, linger_ms: "0", extra: "1" }, { file, linger_ms: ["0"] }]) {
        const { status } = await send(runner, dispatchBody(unique("prp"), "test.mark", params));
        assert.equal(status, 422, JSON.stringify(params));
      }
      assert.equal(runsIn(file), 0);
    });

    it("refuses a value that would turn an argument into an option, even when the pattern allows it", async () => {
      // The shipped demo.echo's pattern refuses a leading '-' itself (so signoff's policy can say so before anyone
      // approves); test.shell_echo's allows anything.
      const { status } = await send(runner, dispatchBody(unique("prp"), "test.shell_echo", { text: "-n hidden" }));
      assert.equal(status, 422);
    });

    it("refuses a body that is not a proposal.approved dispatch (400)", async () => {
      assert.equal(
        (
          await send(runner, {
            type: "proposal.denied",
            proposal_id: unique("prp"),
            action: { type: "demo.echo", params: {} },
          })
        ).status,
        400,
      );
      assert.equal((await send(runner, "not json")).status, 400);
      assert.equal(
        (await send(runner, { type: "proposal.approved", proposal_id: "../../etc", action: { type: "demo.echo" } }))
          .status,
        400,
      );
    });

    it("refuses a body over 64 KiB with 413", async () => {
      const body = dispatchBody(unique("prp"), "demo.echo", { message: "x".repeat(70_000) });
      assert.equal((await send(runner, body)).status, 413);
    });
  });

  describe("running", () => {
    it("runs demo.echo and returns its output", async () => {
      const { status, json } = await send(
        runner,
        dispatchBody(unique("prp"), "demo.echo", { message: "Hello, signoff: all good!" }),
      );
      assert.equal(status, 200);
      assert.deepEqual(json, { status: "succeeded", output: "Hello, signoff: all good!\n" });
    });

    it("never lets a shell interpret a param with shell metacharacters", async () => {
      const marker = join(dir, unique("pwned"));
      const value = `hi; touch ${marker} && echo $(touch ${marker}) \`touch ${marker}\` | cat > ${marker} ' " * ~ $HOME {value}`;
      const echoed = await send(runner, dispatchBody(unique("prp"), "test.shell_echo", { text: value }));
      assert.deepEqual(echoed.json, { status: "succeeded", output: `${value}\n` });
      const args = await send(runner, dispatchBody(unique("prp"), "test.args", { value }));
      assert.equal(args.json.status, "succeeded");
      // One argv element each, verbatim; "{value}" inside the value is not expanded again.
      assert.deepEqual(JSON.parse(args.json.output as string), [value, `fixed-${value}`]);
      assert.equal(existsSync(marker), false);
    });

    it("reports a non-zero exit as failed with the output and the exit code", async () => {
      const { status, json } = await send(runner, dispatchBody(unique("prp"), "test.fail", {}));
      assert.equal(status, 200);
      assert.equal(json.status, "failed");
      assert.match(json.output as string, /boom/);
      assert.match(json.output as string, /exit code 3/);
    });

    it("reports a program that cannot start as failed", async () => {
      const { json } = await send(runner, dispatchBody(unique("prp"), "test.missing_program", {}));
      assert.equal(json.status, "failed");
      assert.match(json.output as string, /could not start signoff-no-such-program-xyz: ENOENT/);
    });

    it("kills a command at its timeout and reports failed", async () => {
      const started = Date.now();
      const { status, json } = await send(runner, dispatchBody(unique("prp"), "test.hang", {}));
      assert.equal(status, 200);
      assert.equal(json.status, "failed");
      assert.match(json.output as string, /timed out after 300 ms/);
      assert.ok(Date.now() - started < 5000);
    });

    it("kills the whole process group at the timeout, not only the direct child", async () => {
      const pidfile = join(dir, `${unique("pid")}.txt`);
      const { json } = await send(runner, dispatchBody(unique("prp"), "test.hang_group", { pidfile }));
      assert.equal(json.status, "failed");
      assert.match(json.output as string, /timed out/);
      const pid = Number(readFileSync(pidfile, "utf8").trim());
      assert.ok(pid > 0);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const survived = alive(pid);
      if (survived) process.kill(pid, "SIGKILL");
      assert.equal(survived, false, "the grandchild outlived the timeout");
    });

    it("passes only PATH and the listed variables to the command", async () => {
      const { json } = await send(runner, dispatchBody(unique("prp"), "test.env", {}));
      const env = JSON.parse(json.output as string) as Record<string, string>;
      assert.deepEqual(Object.keys(env).sort(), ["ALLOWED_VAR", "PATH"]);
      assert.equal(env.ALLOWED_VAR, "allowed");
    });

    it("truncates output to 4 KiB on a character boundary", async () => {
      const { json } = await send(runner, dispatchBody(unique("prp"), "test.flood", {}));
      const output = json.output as string;
      assert.equal(json.status, "succeeded");
      assert.ok(Buffer.byteLength(output) <= 4096, `${Buffer.byteLength(output)} bytes`);
      assert.ok(output.startsWith("éé"));
      assert.ok(!output.includes("\uFFFD"));
      assert.match(output, /output truncated \(20000 bytes\)/);
    });
  });

  describe("at most once (webhook-id is stable across signoff's retries)", () => {
    it("answers a repeated webhook-id with the first result and runs once", async () => {
      const file = markFile();
      const id = unique("msg");
      const body = dispatchBody(unique("prp"), "test.mark", { file, linger_ms: "0" });
      const first = await send(runner, body, { id });
      const second = await send(runner, body, { id });
      assert.equal(first.status, 200);
      assert.deepEqual(second, first);
      assert.equal(runsIn(file), 1);
    });

    it("answers 202 while the first delivery still runs, then the result; posts it to signoff", async () => {
      const file = markFile();
      const id = unique("msg");
      const proposalId = unique("prp");
      const body = dispatchBody(proposalId, "test.mark", { file, linger_ms: "600" });
      const firstPromise = send(runner, body, { id });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const second = await send(runner, body, { id });
      assert.deepEqual(second, { status: 202, json: { accepted: true, duplicate: true } });
      const first = await firstPromise;
      assert.deepEqual(first, { status: 200, json: { status: "succeeded", output: "" } });
      assert.deepEqual(await send(runner, body, { id }), first);
      assert.equal(runsIn(file), 1);
      // The 202 told signoff "dispatched", so the result must also arrive on /result.
      const posted = await listener.next();
      assert.equal(posted.path, `/v1/proposals/${proposalId}/result`);
      assert.deepEqual(new Webhook(SECRET).verify(posted.body, posted.headers), {
        status: "succeeded",
        output: "",
        proposal_id: proposalId,
      });
    });

    it("never runs one proposal twice, even under a second webhook-id", async () => {
      const file = markFile();
      const body = dispatchBody(unique("prp"), "test.mark", { file, linger_ms: "0" });
      const first = await send(runner, body);
      const second = await send(runner, body);
      assert.deepEqual(second, first);
      assert.equal(runsIn(file), 1);
    });

    it("runs again after a refusal was fixed: only accepted deliveries are remembered", async () => {
      const file = markFile();
      const id = unique("msg");
      const proposalId = unique("prp");
      assert.equal(
        (await send(runner, dispatchBody(proposalId, "test.mark", { file, linger_ms: "x" }), { id })).status,
        422,
      );
      assert.equal(
        (await send(runner, dispatchBody(proposalId, "test.mark", { file, linger_ms: "0" }), { id })).status,
        200,
      );
      assert.equal(runsIn(file), 1);
    });
  });

  describe("async actions", () => {
    it("answers 202 at once and posts a correctly signed result to signoff", async () => {
      const proposalId = unique("prp");
      const { status, json } = await send(runner, dispatchBody(proposalId, "test.async", {}));
      assert.equal(status, 202);
      assert.equal(json.status, undefined, "a status in a 2xx would be taken as the final result");
      const posted = await listener.next();
      assert.equal(posted.path, `/v1/proposals/${proposalId}/result`);
      assert.equal(posted.headers["content-type"], "application/json");
      assert.match(posted.headers["webhook-id"] ?? "", /^msg_/);
      assert.deepEqual(new Webhook(SECRET).verify(posted.body, posted.headers), {
        status: "succeeded",
        output: "async done\n",
        proposal_id: proposalId, // inside the signed body: the result cannot be replayed on another proposal
      });
      assert.throws(() => new Webhook(OTHER_SECRET).verify(posted.body, posted.headers));
    });

    it("retries the report while signoff answers 5xx, under one webhook-id with fresh signatures", async () => {
      listener.answers.push(503, 502);
      const proposalId = unique("prp");
      assert.equal((await send(runner, dispatchBody(proposalId, "test.async", {}))).status, 202);
      const tries = [await listener.next(), await listener.next(), await listener.next()];
      for (const posted of tries) {
        assert.equal(posted.path, `/v1/proposals/${proposalId}/result`);
        new Webhook(SECRET).verify(posted.body, posted.headers);
      }
      assert.equal(new Set(tries.map((t) => t.headers["webhook-id"])).size, 1);
      await runner.idle();
      assert.equal(listener.received.filter((r) => r.path.includes(proposalId)).length, 3);
    });

    it("stops reporting when signoff refuses with a 4xx", async () => {
      listener.answers.push(409);
      const proposalId = unique("prp");
      assert.equal((await send(runner, dispatchBody(proposalId, "test.async", {}))).status, 202);
      await listener.next();
      await runner.idle();
      assert.equal(listener.received.filter((r) => r.path.includes(proposalId)).length, 1);
    });
  });

  it("answers GET /healthz", async () => {
    const response = await fetch(`${runner.url}/healthz`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { ok: true });
  });
});

describe("allowlist file", () => {
  const compile = (actions: Record<string, unknown>) => compileAllowlist(parseAllowlist({ actions }));

  it("the shipped actions.json is valid and renders its documented examples", () => {
    const actions = compileAllowlist(parseAllowlist(JSON.parse(readFileSync(SHIPPED, "utf8"))));
    assert.deepEqual(renderArgv(actions.get("k8s.rollout_restart")!, { deployment: "api" }), {
      ok: true,
      argv: ["kubectl", "rollout", "restart", "deployment/api", "-n", "prod"],
    });
    for (const deployment of ["api --all", "api/../x", "-api", "API", "", "a".repeat(64)]) {
      assert.equal(renderArgv(actions.get("k8s.rollout_restart")!, { deployment }).ok, false, deployment);
    }
    assert.deepEqual(renderArgv(actions.get("demo.echo")!, { message: "hi there" }), {
      ok: true,
      argv: ["echo", "hi there"],
    });
  });

  it("anchors patterns written without ^ and $", () => {
    const action = compile({ a: { argv: ["echo", "{x}"], params: { x: { pattern: "[a-z]+" } } } }).get("a")!;
    assert.equal(renderArgv(action, { x: "abc" }).ok, true);
    assert.equal(renderArgv(action, { x: "abc; rm -rf /" }).ok, false);
    assert.equal(renderArgv(action, { x: "abc|def" }).ok, false);
  });

  it("refuses templates and configurations that would be unsafe or ambiguous", () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ["placeholder without a param", { a: { argv: ["echo", "{x}"] } }],
      ["placeholder as the program", { a: { argv: ["{x}"], params: { x: { pattern: "ls" } } } }],
      ["param not used", { a: { argv: ["echo"], params: { x: { pattern: ".*" } } } }],
      ["bad regex", { a: { argv: ["echo", "{x}"], params: { x: { pattern: "(" } } } }],
      ["misspelt field", { a: { argv: ["echo"], asnyc: true } }],
      ["shell string instead of argv", { a: { argv: "echo hi" } }],
      ["empty argv", { a: { argv: [] } }],
      ["bad timeout", { a: { argv: ["echo"], timeout_ms: -1 } }],
      ["bad env name", { a: { argv: ["echo"], env: ["A=B"] } }],
    ];
    for (const [label, actions] of cases) {
      assert.throws(() => parseAllowlist({ actions }), AllowlistError, label);
    }
  });

  it("leaves braces that are not placeholders alone (e.g. kubectl jsonpath)", () => {
    const action = compile({
      a: {
        argv: ["kubectl", "get", "deploy/{d}", "-o", "jsonpath={.status.replicas}"],
        params: { d: { pattern: "[a-z]+" } },
      },
    }).get("a")!;
    assert.deepEqual(renderArgv(action, { d: "api" }), {
      ok: true,
      argv: ["kubectl", "get", "deploy/api", "-o", "jsonpath={.status.replicas}"],
    });
  });

  it("cuts UTF-8 on a character boundary", () => {
    assert.equal(truncateUtf8("aé✓𝄞", 1), "a");
    assert.equal(truncateUtf8("aé✓𝄞", 2), "a");
    assert.equal(truncateUtf8("aé✓𝄞", 3), "aé");
    assert.equal(truncateUtf8("aé✓𝄞", 9), "aé✓");
    assert.equal(truncateUtf8("aé✓𝄞", 10), "aé✓𝄞");
  });
});

describe("startRunner configuration", () => {
  const base = { port: 0, log: () => {}, actions: { env: [], actions: {} } };

  it("refuses a secret that is not whsec_<base64>", async () => {
    await assert.rejects(startRunner({ ...base, secret: "hunter2" }), /whsec_/);
    await assert.rejects(startRunner({ ...base, secret: "whsec_" }), /RUNNER_SECRET/);
  });

  it("refuses async actions without SIGNOFF_URL", async () => {
    const actions = { env: [], actions: { a: { argv: ["true"], params: {}, env: [], async: true } } };
    await assert.rejects(startRunner({ ...base, secret: SECRET, actions }), /SIGNOFF_URL/);
  });

  it("refuses an unreadable allowlist file", async () => {
    await assert.rejects(startRunner({ ...base, secret: SECRET, actions: join(dir, "missing.json") }), /cannot read/);
  });
});
