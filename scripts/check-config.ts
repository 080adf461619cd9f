// `npm run check-config [-- --env local | --production]`: runs the Worker's own configuration check (src/config) on
// the vars of wrangler.toml and the secrets of .dev.vars or the environment, before a deploy rather than at the first
// request; with --production (`npm run deploy`) it also refuses what only works on one machine (scripts/lib/production.ts).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseEnv } from "node:util";
import { auditSigner, SIGNING_KEY_PREFIX } from "../src/audit/signing.ts";
import { patternCovers } from "../src/config/action-patterns.ts";
import { keyAllowsAction } from "../src/config/api-keys.ts";
import type { Config, ConfigEnv } from "../src/config/check.ts";
import { checkConfig, SECRET_NAMES, VAR_NAMES } from "../src/config/check.ts";
import { isLoopbackHost } from "../src/lib/hosts.ts";
import { fail, parseCommandLine } from "./lib/cli.ts";
import { productionFindings } from "./lib/production.ts";
import { loadWrangler } from "./lib/wrangler.ts";

const COMMAND = "check-config";

const USAGE = `Usage: npm run check-config [-- --env NAME] [--wrangler PATH] [--dev-vars PATH] [--secrets-from-env | --vars-only] [--production]

  --env NAME            check [env.NAME] of the wrangler config (vars are not inherited by environments);
                        --env local checks local mode's ([env.local] and .dev.vars, as \`npm start\` runs it)
  --wrangler PATH       the wrangler config, default wrangler.toml (or wrangler.jsonc / wrangler.json)
  --dev-vars PATH       dotenv file with secrets, default .dev.vars.NAME or .dev.vars next to the wrangler config
  --secrets-from-env    take secrets only from the process environment (CI before deploy); no dev vars file
  --vars-only           check the vars alone; secrets live in Cloudflare (wrangler secret put) and are not checked
  --production          also refuse what cannot work once deployed: a loopback or private RUNNER_URL, the all-zero
                        D1 database_id, local mode's demo Slack ids in POLICY (without it: warnings).
                        \`npm run deploy\` runs --vars-only --production`;

interface Problem {
  path: string;
  message: string;
}

const args = parseCommandLine(COMMAND, USAGE, {
  env: { type: "string" },
  wrangler: { type: "string" },
  "dev-vars": { type: "string" },
  "secrets-from-env": { type: "boolean", default: false },
  "vars-only": { type: "boolean", default: false },
  production: { type: "boolean", default: false },
});
if (args["secrets-from-env"] && args["dev-vars"] !== undefined)
  fail(COMMAND, "--secrets-from-env and --dev-vars exclude each other");
if (args["vars-only"] && (args["secrets-from-env"] || args["dev-vars"] !== undefined))
  fail(COMMAND, "--vars-only checks no secrets: drop --secrets-from-env / --dev-vars");

const cwd = process.cwd();
const show = (path: string) => relative(cwd, path) || path;

const wranglerPath = resolve(
  args.wrangler ??
    ["wrangler.toml", "wrangler.jsonc", "wrangler.json"].find((name) => existsSync(name)) ??
    "wrangler.toml",
);
if (!existsSync(wranglerPath)) fail(COMMAND, `no wrangler config at ${show(wranglerPath)} (use --wrangler PATH)`);

const problems: Problem[] = [];
const warnings: string[] = [];

// Vars as the Worker would see them: wrangler does not inherit [vars] into [env.NAME].
type Section = { vars?: Record<string, unknown>; d1_databases?: Array<Record<string, unknown>> };
let raw: Section & { env?: Record<string, Section> };
const wrangler = loadWrangler();
try {
  raw = wrangler.experimental_readRawConfig({ config: wranglerPath }).rawConfig as typeof raw;
} catch (error) {
  fail(COMMAND, `cannot read ${show(wranglerPath)}: ${error instanceof Error ? error.message : String(error)}`);
}
let section: Section = raw;
if (args.env !== undefined) {
  const named = raw.env?.[args.env];
  if (named === undefined) fail(COMMAND, `${show(wranglerPath)} has no [env.${args.env}]`);
  section = named;
}
const vars: Record<string, unknown> = { ...(section.vars ?? {}) };
const varsTable = args.env === undefined ? "[vars]" : `[env.${args.env}.vars]`;
// Local mode's environment (`npm start`): its secrets are .dev.vars, its runner and Slack ids are local on purpose.
const localMode = args.env !== undefined && String(vars.LOCAL_MODE ?? "") === "1";
if (localMode && args.production) {
  problems.push({
    path: "LOCAL_MODE",
    message: `[env.${args.env}] is local mode's configuration (LOCAL_MODE = "1"): it is never deployed`,
  });
}

for (const name of SECRET_NAMES) {
  if (vars[name] !== undefined) {
    problems.push({
      path: name,
      message: `is in ${show(wranglerPath)} ${varsTable}, in clear: remove it and use \`wrangler secret put ${name}\``,
    });
    delete vars[name];
  }
}

// Secrets: the dev vars file (which, as in `wrangler dev`, may also override vars), else the process environment.
const secrets: Record<string, unknown> = {};
const sources: Record<string, string> = {};
let devVarsPath: string | undefined;
if (args["vars-only"]) {
  // Deploying after `wrangler secret put`: the secrets are in Cloudflare, not here. Valid
  // stand-ins let the vars (POLICY, RUNNER_URL, …) be checked on their own.
  for (const name of SECRET_NAMES) {
    // MAIL_API_TOKEN is one of a group that is all or nothing (src/config/check.ts): a stand-in for it would say a
    // mail API is configured and make MAIL_API_URL and MAIL_FROM required, so it stands in only beside them.
    if (name === "MAIL_API_TOKEN" && vars.MAIL_API_URL === undefined && vars.MAIL_FROM === undefined) continue;
    secrets[name] = placeholderSecret(name);
    sources[name] = "not checked (--vars-only)";
  }
} else if (!args["secrets-from-env"]) {
  const dir = dirname(wranglerPath);
  const candidates =
    args["dev-vars"] !== undefined
      ? [resolve(args["dev-vars"])]
      : [...(args.env === undefined ? [] : [join(dir, `.dev.vars.${args.env}`)]), join(dir, ".dev.vars")];
  devVarsPath = candidates.find((path) => existsSync(path));
  if (args["dev-vars"] !== undefined && devVarsPath === undefined)
    fail(COMMAND, `no dev vars file at ${show(candidates[0]!)}`);
  if (devVarsPath !== undefined) {
    const parsed = parseEnv(readFileSync(devVarsPath, "utf8"));
    for (const [name, value] of Object.entries(parsed)) {
      if ((VAR_NAMES as readonly string[]).includes(name)) vars[name] = value;
      else secrets[name] = value;
      sources[name] = show(devVarsPath);
    }
  }
}
for (const name of SECRET_NAMES) {
  if (secrets[name] === undefined && process.env[name] !== undefined) {
    secrets[name] = process.env[name];
    sources[name] = "environment";
  }
}

// Where the secrets of the checked configuration live: in Cloudflare (`wrangler secret put`) or in .dev.vars.
const cloudflareSecrets =
  !localMode && (args.env !== undefined || args["secrets-from-env"] || args["vars-only"] || args.production);

function placeholderSecret(name: string): string {
  if (name === "API_KEYS") return "[]";
  if (name === "SLACK_BOT_TOKEN") return "xoxb-placeholder";
  // Optional lists of Ed25519 keys: left empty, since a stand-in key could only collide or mislead.
  if (name === "EVENTS_SIGNING_KEYS" || name === "RUNNER_SIGNING_KEYS") return "";
  // The mail settings are all or nothing: a stand-in token alone would ask for MAIL_API_URL and MAIL_FROM.
  if (name === "MAIL_API_TOKEN")
    return vars.MAIL_API_URL === undefined && vars.MAIL_FROM === undefined ? "" : "re_placeholder";
  if (name === "AUDIT_SIGNING_KEY")
    return SIGNING_KEY_PREFIX + Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
  return `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;
}
const envFlag = args.env === undefined ? "" : ` --env ${args.env}`;

const input: ConfigEnv = { ...vars, ...secrets };
const result = checkConfig(input);
if (!result.ok) {
  for (const problem of result.problems) {
    // "is required" may say when ("is required when links are enabled (…)"): that part is kept.
    const required = problem.message.startsWith("is required");
    const when = required ? problem.message.slice("is required".length) : "";
    const missing = (SECRET_NAMES as readonly string[]).includes(problem.path) && required;
    if (missing) {
      const make = problem.path === "AUDIT_SIGNING_KEY" ? " (`npm run audit:key` makes one)" : "";
      problem.message = cloudflareSecrets
        ? `is missing${when}: set it with \`wrangler secret put ${problem.path}${envFlag}\`${make} (and export it here with --secrets-from-env to check it)`
        : localMode
          ? `is missing${when}: \`npm start\` writes it to .dev.vars on its first run (or add ${problem.path}=… to ${devVarsPath ? show(devVarsPath) : ".dev.vars"})`
          : `is missing${when}: add ${problem.path}=… to ${devVarsPath ? show(devVarsPath) : ".dev.vars"}${make} (or export it)`;
    } else if ((VAR_NAMES as readonly string[]).includes(problem.path) && required) {
      const inherited = args.env !== undefined && raw.vars?.[problem.path] !== undefined;
      problem.message = `is missing from ${varsTable}${when}${inherited ? " (top-level [vars] are not inherited by environments)" : ""}`;
    }
    problems.push(problem);
  }
}

if (result.ok) warnings.push(...warningsFor(result.config));

// Values that work on one machine only: refused for a deploy, a warning for any other check of a deployable config.
if (!localMode) {
  const findings = productionFindings(vars, section.d1_databases);
  if (args.production) problems.push(...findings);
  else if (findings.length > 0) {
    warnings.push(...findings.map((finding) => `${finding.path}: ${finding.message}`));
    warnings.push("`npm run deploy` refuses the above (it runs check-config --vars-only --production)");
  }
}

function warningsFor(config: Config): string[] {
  const out: string[] = [];
  const types = Object.keys(config.policy.actions);
  if (config.apiKeys.length === 0 && !args["vars-only"]) out.push("API_KEYS is empty: no proposer can authenticate");
  for (const key of config.apiKeys) {
    if (key.actions.includes("*")) out.push(`key "${key.name}" may propose every action type ("*")`);
    for (const pattern of key.actions) {
      if (!types.some((type) => patternCovers(pattern, type)))
        out.push(`key "${key.name}": actions pattern ${pattern} matches no action in POLICY`);
    }
  }
  // A route whose action no proposing key may propose refuses every alert it matches.
  const proposers = config.apiKeys.filter((key) => key.scopes.includes("proposals:write"));
  for (const [i, route] of config.policy.adapters.alertmanager.routes.entries()) {
    if (args["vars-only"] || proposers.some((key) => keyAllowsAction(key, route.action))) continue;
    out.push(`POLICY.adapters.alertmanager.routes[${i}]: no key with proposals:write may propose ${route.action}`);
  }
  const runner = new URL(config.runnerUrl);
  if (cloudflareSecrets && runner.protocol === "http:" && !isLoopbackHost(runner.hostname)) {
    out.push(`RUNNER_URL uses plain http to ${runner.hostname}: dispatches are signed but not private`);
  }
  return out;
}

const where = [
  show(wranglerPath) + (args.env === undefined ? "" : ` [env.${args.env}]`) + (localMode ? " (local mode)" : ""),
  args["vars-only"]
    ? "secrets not checked"
    : args["secrets-from-env"]
      ? "secrets from the environment"
      : `secrets from ${devVarsPath ? show(devVarsPath) : "the environment (no .dev.vars)"}`,
].join("; ");

for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);

if (problems.length > 0 || !result.ok) {
  process.stderr.write(`signoff configuration has ${problems.length} problem(s) (${where}):\n`);
  for (const problem of problems) process.stderr.write(`  ${problem.path}: ${problem.message}\n`);
  process.exit(1);
}

const config = result.config;
const lines: string[] = [`OK: signoff configuration (${where})`];
const actions = Object.values(config.policy.actions);
lines.push(`  actions (${actions.length}):`);
for (const a of actions) {
  const deciders = [
    ...a.approvers,
    ...(a.links?.recipients ?? []),
    ...(a.links?.teams_recipient ? [a.links.teams_recipient] : []),
  ];
  const who = a.verify
    ? `verification prompt ("${a.verify.labels.yes}" / "${a.verify.labels.no}" / "${a.verify.labels.unsure}")`
    : a.requester_only
      ? "requester only (DM)"
      : `${deciders.join(", ")} (${a.required_approvals} needed${a.allow_self_approval ? ", self-approval allowed" : ""})`;
  const parts = [
    a.type,
    a.requester_only || a.channel === null ? "" : `in ${a.channel}`,
    who,
    a.links ? `signed links${a.links.teams_webhook ? " + Teams card" : ""}` : "",
    `ttl ${a.ttl_seconds}s, max ${a.max_ttl_seconds}s`,
    a.params_schema ? "params_schema" : "params: any object ≤ 4 KiB",
    a.confirm ? "" : "no confirm dialog",
    a.rules ? `${a.rules.length} risk rule(s): ${a.rules.map((r) => r.label).join("; ")}` : "",
    a.escalation
      ? `escalates to ${a.escalation.approvers.join(", ")} in ${a.escalation.channel}${a.escalation.extend_ttl_seconds ? ` (+${a.escalation.extend_ttl_seconds}s)` : ""}`
      : "",
    a.escalation?.after_seconds ? `by itself after ${a.escalation.after_seconds}s` : "",
    a.remind_at.length > 0
      ? `reminders at ${a.remind_at.map((f) => `${Math.round(f * 1000) / 10} %`).join(", ")} of the TTL`
      : "no reminders",
  ];
  lines.push(`    ${parts.filter((p) => p !== "").join(" · ")}`);
}
const channels = [
  ...new Set(actions.flatMap((a) => [a.channel, a.escalation?.channel ?? null]).filter((c) => c !== null)),
];
if (config.policy.freezes.length > 0) {
  lines.push(`  freezes (${config.policy.freezes.length}):`);
  for (const f of config.policy.freezes) {
    const when = f.kind === "fixed" ? `${f.start} to ${f.end}` : `${f.cron} (${f.timezone}) for ${f.duration_seconds}s`;
    lines.push(`    ${f.name} · ${f.actions.join(", ")} · ${when}`);
  }
}
lines.push(`  channels: ${channels.join(", ") || "none (every action is requester_only)"}`);
const routes = config.policy.adapters.alertmanager.routes;
if (routes.length > 0) {
  lines.push(`  alertmanager routes (${routes.length}):`);
  for (const route of routes) {
    const matchers = [
      ...Object.entries(route.match).map(([label, value]) => `${label}="${value}"`),
      ...Object.entries(route.match_re).map(([label, value]) => `${label}=~"${value}"`),
    ];
    lines.push(`    ${matchers.join(", ")} → ${route.action}`);
  }
}
lines.push(`  keys (${config.apiKeys.length}):`);
for (const key of config.apiKeys) {
  const hosts = key.callback_hosts.length > 0 ? ` · callbacks ${key.callback_hosts.join(", ")}` : "";
  lines.push(`    ${key.name} · ${key.scopes.join(", ")} · actions ${key.actions.join(", ") || "none"}${hosts}`);
}
lines.push(
  `  runner: ${config.runnerUrl} (${config.dispatchMaxAttempts} attempts, ${config.dispatchTimeoutMs} ms timeout)`,
);
lines.push(`  slack api: ${config.slackApiBase}`);
// LINK_SECRET matters only when some action enables links (or it was given anyway).
const shownSecrets = SECRET_NAMES.filter(
  (name) => name !== "LINK_SECRET" || config.linkSecret !== null || sources[name] !== undefined,
);
lines.push(`  secrets: ${shownSecrets.map((name) => `${name} (${sources[name] ?? "?"})`).join(", ")}`);
if (config.publicUrl !== null) lines.push(`  public url: ${config.publicUrl} (signed links point here)`);
if (!args["vars-only"]) {
  // Public: verifiers of the audit log need it (`npm run audit:verify -- --public-key …`).
  const signer = await auditSigner(config.auditSigningKey);
  lines.push(`  audit heads and checkpoints signed by ${signer.publicKey} (key id ${signer.keyId})`);
}
process.stdout.write(`${lines.join("\n")}\n`);
