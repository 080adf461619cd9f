// `npm start [-- --port 8787] [--runner-port 8788] [--persist-to DIR]`: the whole of signoff on one machine
// (SPEC 9) — dev secrets, local D1, the reference runner and the Worker with its Slack stand-in — until Ctrl-C.
import { join, relative } from "node:path";
import { type ActionPolicy, parsePolicy } from "../src/config/policy.ts";
import { DEMO_PROPOSALS } from "../src/local/demo.ts";
import { fail, parseCommandLine } from "./lib/cli.ts";
import { loadWrangler } from "./lib/wrangler.ts";
import { checkNode, DEMO_KEY_NAME, ROOT, startLocal } from "./local/stack.ts";

const COMMAND = "start";

const USAGE = `Usage: npm start [-- --port PORT] [--runner-port PORT] [--persist-to DIR]

  --port         the Worker and the Slack stand-in (default $PORT or 8787)
  --runner-port  the reference runner (default $RUNNER_PORT or 8788)
  --persist-to   local D1 and Durable Object state (default .wrangler/state)

Reset everything local: rm -rf .wrangler/state .dev.vars .local`;

function port(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    fail(COMMAND, `${name} must be a port number, got ${JSON.stringify(value)}`);
  return n;
}

const args = parseCommandLine(COMMAND, USAGE, {
  port: { type: "string" },
  "runner-port": { type: "string" },
  "persist-to": { type: "string" },
});
try {
  checkNode();
} catch (error) {
  fail(COMMAND, (error as Error).message);
}

const workerPort = port(args.port ?? process.env.PORT, "--port", 8787);
const runnerPort = port(args["runner-port"] ?? process.env.RUNNER_PORT, "--runner-port", 8788);

/** The demo policy as the Worker will load it, from wrangler.toml [env.local]. */
function demoPolicy(): ActionPolicy[] {
  try {
    const raw = loadWrangler().experimental_readRawConfig({ config: join(ROOT, "wrangler.toml") }).rawConfig as {
      env?: Record<string, { vars?: Record<string, unknown> }>;
    };
    return Object.values(parsePolicy(raw.env?.local?.vars?.POLICY).actions);
  } catch (error) {
    process.stderr.write(`start: warning: cannot read the demo policy: ${(error as Error).message}\n`);
    return [];
  }
}

function describe(a: ActionPolicy): string {
  if (a.requester_only) return "only the requester, in their DM";
  const needed = a.required_approvals > 1 ? `${a.required_approvals} of ` : "";
  const escalation = a.escalation ? ` · Escalate → ${a.escalation.approvers.join(", ")}` : "";
  const mailed = a.links && !a.verify ? a.links.recipients : [];
  const slack = a.approvers.length > 0 ? `${a.approvers.join(", ")} in ${a.channel ?? "?"}` : "";
  const links = mailed.length > 0 ? `${mailed.join(", ")} by mailed link, signed in` : "";
  return `${needed}${[slack, links].filter(Boolean).join(" + ")}${escalation}`;
}

function curl(url: string, token: string, type: string): string {
  const sample = DEMO_PROPOSALS[type];
  const body = JSON.stringify(sample).replaceAll("'", "'\\''");
  return `curl -sS ${url}/v1/proposals -H 'Authorization: Bearer ${token}' -H 'Content-Type: application/json' \\\n    -d '${body}'`;
}

let stopping = false;
const stack = await startLocal({
  // The page polls /__local/state every second; those request lines would drown everything else.
  log: (line) => {
    if (!line.includes("/__local/state")) process.stdout.write(`${line}\n`);
  },
  port: workerPort,
  runnerPort,
  ...(args["persist-to"] ? { persistTo: args["persist-to"] } : {}),
}).catch((error: unknown) => fail(COMMAND, `could not start local mode: ${(error as Error).message}`));

const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`\n[start] ${signal}: stopping the Worker and the runner…\n`);
  void stack.stop().then(() => process.exit(0));
};
process.on("SIGINT", () => stop("SIGINT"));
process.on("SIGTERM", () => stop("SIGTERM"));

const policy = demoPolicy();
const width = Math.max(0, ...policy.map((a) => a.type.length));
const show = (path: string) => relative(process.cwd(), path) || path;
const token = stack.token || "(none: see the warning above)";
process.stdout.write(
  [
    "",
    "signoff is running locally — no Slack, no Cloudflare account.",
    "",
    `  Slack stand-in  ${stack.url}/            open this in a browser`,
    `  signoff API     ${stack.url}/v1/proposals  (also /healthz, /openapi.json, /v1/audit)`,
    `  runner          ${stack.runnerUrl}  (reference runner; allowlist scripts/local/runner-actions.json)`,
    `  mail            ${stack.mailUrl}  (caught; read it on the page's Mail tab)`,
    `  local Access    ${stack.jwksUrl}  (its keys; opening a link signs you in as the page's person)`,
    "",
    "Demo policy (wrangler.toml [env.local]):",
    ...policy.map((a) => `  ${a.type.padEnd(width)}  ${describe(a)}`),
    "  People: U0ALICE approves; U0OSCAR and U0BOB are S0ONCALL; U0BOB requests; U0MALLORY may do nothing.",
    "  Each has mail at <name>@example.com (the page's Mail tab); alice@ and dave@ are the same people as U0ALICE and U0DAVE.",
    "",
    `Demo API key "${DEMO_KEY_NAME}" (token kept in ${show(stack.tokenPath)}):`,
    `  ${token}`,
    "",
    "Propose from the page's form, or:",
    `  ${curl(stack.url, token, "demo.echo")}`,
    `  ${curl(stack.url, token, "k8s.rollout_restart")}`,
    "",
    `Files: ${show(stack.devVarsPath)} (dev secrets), ${show(stack.tokenPath)}, state in ${show(stack.persistTo)}.`,
    "Reset: rm -rf .wrangler/state .dev.vars .local      Stop: Ctrl-C",
    "",
  ].join("\n"),
);
