// The `signoff` command: propose, wait, read, cancel, list actions, read the audit log and verify outcome events,
// over the typed client. Config from SIGNOFF_URL and SIGNOFF_TOKEN (flags override). Exit codes (docs/cli.md):
// 0 approved (and, when dispatched, succeeded), 10 denied, 11 expired, 12 cancelled, 13 failed or dispatch_failed,
// 2 usage, 3 authentication or HTTP error, 4 still undecided when --wait=SECONDS ran out, 1 a signature that does
// not hold. Every mistake is one line on stderr, never a stack trace.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import {
  type AuditEvent,
  type Proposal,
  type ProposeBody,
  type SignoffClient,
  SignoffError,
  signoffClient,
} from "./client.ts";
import { verifyEvent } from "./events.ts";
import { EXIT, exitCodeOf, outcomeLines, progressLine } from "./outcome.ts";

export const VERSION = "0.1.0";

export interface Io {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  env: Record<string, string | undefined>;
  /** Standard input, read whole (verify-event's body by default). */
  stdin?: () => string;
}

/** A mistake in how the command was called: one line, exit 2. */
class UsageError extends Error {}

const USAGE = `Usage: signoff <command> [options]

Commands:
  propose       propose an action (flags or --file proposal.json|yaml); --wait[=SECONDS] waits for the outcome
  get ID        show a proposal; --wait[=SECONDS] waits for the outcome
  cancel ID     cancel a pending proposal this key created
  actions       what this key may propose, with each action's rule
  audit         the audit log: --proposal ID, --since TIME, --format ndjson|csv
  verify-event  check an outcome event's signature: --headers FILE --body FILE|-

Config: SIGNOFF_URL and SIGNOFF_TOKEN, or --url and --token.
Exit codes: 0 approved (and succeeded), 10 denied, 11 expired, 12 cancelled, 13 failed or dispatch_failed,
2 usage, 3 authentication or HTTP error, 4 still undecided when --wait=SECONDS ran out.
Run signoff <command> --help for a command's options.`;

const COMMON = {
  url: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

const WAIT = { wait: { type: "string" } } as const;

const COMMANDS = {
  propose: {
    usage: `Usage: signoff propose --action TYPE [--param KEY=VALUE]... --summary TEXT --reason TEXT
                       --blast-radius TEXT --rollback TEXT [--ttl SECONDS] [--requested-by USER]
                       [--idempotency-key KEY] [--file proposal.json|yaml] [--wait[=SECONDS]] [--json]

  --file       a proposal as the API takes it (JSON or YAML); flags given as well override its fields
  --param      one action parameter as a string (repeat it); typed values go in --file
  --wait       wait for the outcome (at most SECONDS), showing status, approvals and time left`,
    options: {
      ...COMMON,
      ...WAIT,
      action: { type: "string" },
      param: { type: "string", multiple: true },
      summary: { type: "string" },
      reason: { type: "string" },
      "blast-radius": { type: "string" },
      rollback: { type: "string" },
      ttl: { type: "string" },
      "requested-by": { type: "string" },
      "idempotency-key": { type: "string" },
      file: { type: "string" },
    },
    positionals: 0,
  },
  get: {
    usage: "Usage: signoff get ID [--wait[=SECONDS]] [--json]",
    options: { ...COMMON, ...WAIT },
    positionals: 1,
  },
  cancel: { usage: "Usage: signoff cancel ID [--json]", options: { ...COMMON }, positionals: 1 },
  actions: { usage: "Usage: signoff actions [--json]", options: { ...COMMON }, positionals: 0 },
  audit: {
    usage: `Usage: signoff audit [--proposal ID] [--since TIME] [--until TIME] [--type TYPE] [--format ndjson|csv] [--json]

  TIME is ISO 8601 or Unix milliseconds. Without --format: one line per event (--json: the events as JSON).`,
    options: {
      ...COMMON,
      proposal: { type: "string" },
      since: { type: "string" },
      until: { type: "string" },
      type: { type: "string" },
      format: { type: "string" },
    },
    positionals: 0,
  },
  "verify-event": {
    usage: `Usage: signoff verify-event --headers FILE [--body FILE|-] [--secret whsec_…] [--public-key whpk_…]...

  --headers     the delivery's headers: a JSON object, or "Name: value" lines
  --body        the raw body (default: standard input)
  --secret      EVENTS_SECRET, for v1 signatures (default: $EVENTS_SECRET)
  --public-key  a v1a public key (repeat it); without one, the keys of GET /v1/keys at SIGNOFF_URL
Exit 0 when the signature holds, 1 when it does not.`,
    options: {
      ...COMMON,
      headers: { type: "string" },
      body: { type: "string" },
      secret: { type: "string" },
      "public-key": { type: "string", multiple: true },
    },
    positionals: 0,
  },
} as const;

type CommandName = keyof typeof COMMANDS;

function isCommand(name: string | undefined): name is CommandName {
  return name !== undefined && Object.hasOwn(COMMANDS, name);
}

/** `--wait` alone means "until decided": parseArgs wants a value, so it gets an empty one. */
function normaliseWait(args: string[]): string[] {
  return args.map((arg) => (arg === "--wait" ? "--wait=" : arg));
}

/** parseArgs's errors in one line, naming the option. */
function usageMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string }).code;
  const option = /'([^']+)'/.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option) return `unknown option ${option}`;
  if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL" && option) return `unexpected argument ${option}`;
  return message.split(/\.\s/)[0] ?? message;
}

function parseCommand(name: CommandName, args: string[]) {
  const spec = COMMANDS[name];
  const parsed = parseArgs({
    args: normaliseWait(args),
    options: spec.options,
    strict: true,
    allowPositionals: true,
  });
  return { values: parsed.values as Record<string, unknown>, positionals: parsed.positionals };
}

/** --wait's value: undefined (do not wait), Infinity (until decided) or whole seconds. */
function waitSeconds(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (value === "") return Number.POSITIVE_INFINITY;
  if (typeof value !== "string" || !/^\d+$/.test(value)) {
    throw new UsageError(`--wait takes a whole number of seconds (--wait=600), not ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function str(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

function clientFrom(values: Record<string, unknown>, io: Io, needsToken = true): SignoffClient {
  const url = str(values, "url") ?? io.env.SIGNOFF_URL;
  const token = str(values, "token") ?? io.env.SIGNOFF_TOKEN ?? "";
  if (!url) throw new UsageError("no signoff URL: set SIGNOFF_URL or pass --url");
  if (!/^https?:\/\//.test(url)) throw new UsageError(`--url / SIGNOFF_URL must be an http(s) URL, not ${url}`);
  if (needsToken && !token) throw new UsageError("no API token: set SIGNOFF_TOKEN or pass --token");
  return signoffClient({ url, token, userAgent: `signoff-cli/${VERSION}` });
}

/** The proposal to send: --file's fields, then each flag given over them. */
export function proposalFrom(values: Record<string, unknown>, readFile = (p: string) => readFileSync(p, "utf8")) {
  let body: Record<string, unknown> = {};
  const file = str(values, "file");
  if (file) {
    let parsed: unknown;
    try {
      parsed = parseYaml(readFile(file));
    } catch (error) {
      throw new UsageError(`--file ${file}: ${(error as Error).message.split("\n")[0]}`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new UsageError(`--file ${file}: must hold one proposal object (action, summary, reason, …)`);
    }
    body = { ...(parsed as Record<string, unknown>) };
  }
  const action = (typeof body.action === "object" && body.action !== null ? body.action : {}) as {
    type?: unknown;
    params?: unknown;
  };
  const params: Record<string, unknown> =
    typeof action.params === "object" && action.params !== null ? { ...(action.params as object) } : {};
  for (const pair of (values.param as string[] | undefined) ?? []) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new UsageError(`--param takes KEY=VALUE, not ${JSON.stringify(pair)}`);
    params[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const type = str(values, "action") ?? action.type;
  if (type === undefined) throw new UsageError("no action: pass --action TYPE (signoff actions lists them) or --file");
  body.action = { type, params };
  const fields: [string, string][] = [
    ["summary", "summary"],
    ["reason", "reason"],
    ["blast-radius", "blast_radius"],
    ["rollback", "rollback"],
    ["requested-by", "requested_by"],
  ];
  for (const [flag, field] of fields) {
    const v = str(values, flag);
    if (v !== undefined) body[field] = v;
  }
  const ttl = str(values, "ttl");
  if (ttl !== undefined) {
    if (!/^\d+$/.test(ttl)) throw new UsageError(`--ttl takes a whole number of seconds, not ${JSON.stringify(ttl)}`);
    body.ttl_seconds = Number(ttl);
  }
  return body as unknown as ProposeBody;
}

/** Shows the live line while waiting: redrawn in place on a terminal, one line per change otherwise. */
function progress(io: Io) {
  const tty = io.stderr.isTTY === true;
  let last = "";
  let latest: Proposal | undefined;
  const draw = () => {
    if (!latest) return;
    const line = progressLine(latest);
    if (tty) io.stderr.write(`\r\x1b[2K${line}`);
    else if (line.replace(/ · [^·]* left$/, "") !== last.replace(/ · [^·]* left$/, "")) io.stderr.write(`${line}\n`);
    last = line;
  };
  const ticker = tty ? setInterval(draw, 1000) : undefined;
  return {
    update(p: Proposal) {
      latest = p;
      draw();
    },
    done() {
      if (ticker) clearInterval(ticker);
      if (tty && last) io.stderr.write("\n");
    },
  };
}

async function showOutcome(
  client: SignoffClient,
  first: Proposal,
  wait: number | undefined,
  values: Record<string, unknown>,
  io: Io,
): Promise<number> {
  let p = first;
  if (wait !== undefined) {
    const shown = progress(io);
    try {
      p = await client.waitFor(first.id, {
        first,
        onUpdate: (q) => shown.update(q),
        ...(Number.isFinite(wait) ? { timeoutSeconds: wait } : {}),
      });
    } finally {
      shown.done();
    }
  }
  if (values.json) io.stdout.write(`${JSON.stringify(p, null, 2)}\n`);
  else if (p.decision || p.result || p.status !== "pending") io.stdout.write(`${outcomeLines(p).join("\n")}\n`);
  else io.stdout.write(`${progressLine(p)}\n`);
  if (wait !== undefined && p.status === "pending") return EXIT.stillWaiting;
  return exitCodeOf(p.status);
}

async function propose(values: Record<string, unknown>, io: Io): Promise<number> {
  const wait = waitSeconds(values.wait);
  const body = proposalFrom(values);
  const client = clientFrom(values, io);
  const created = await client.propose(body, str(values, "idempotency-key"));
  if (!values.json) io.stderr.write(`Proposed ${created.id} (${created.action.type})\n`);
  if (values.json && wait === undefined) {
    io.stdout.write(`${JSON.stringify(created, null, 2)}\n`);
    return EXIT.ok;
  }
  const { links: _links, ...proposal } = created;
  return showOutcome(client, proposal, wait, values, io);
}

function idOf(positionals: string[], command: string): string {
  const id = positionals[0];
  if (!id) throw new UsageError(`${command} needs a proposal id: signoff ${command} prp_…`);
  return id;
}

function auditLine(e: AuditEvent): string {
  return `${e.seq}\t${e.at}\t${e.proposal_id}\t${e.type}\t${e.actor}`;
}

async function audit(values: Record<string, unknown>, io: Io): Promise<number> {
  const client = clientFrom(values, io);
  const format = str(values, "format");
  if (format !== undefined && format !== "ndjson" && format !== "csv") {
    throw new UsageError(`--format is ndjson or csv, not ${JSON.stringify(format)}`);
  }
  const query: Record<string, string> = {};
  for (const [flag, field] of [
    ["proposal", "proposal_id"],
    ["since", "since"],
    ["until", "until"],
    ["type", "type"],
  ] as const) {
    const v = str(values, flag);
    if (v !== undefined) query[field] = v;
  }
  if (format) {
    io.stdout.write(await client.auditExport(format, query));
    return EXIT.ok;
  }
  const events: AuditEvent[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.audit({ ...query, limit: 1000, ...(cursor ? { cursor } : {}) });
    events.push(...page.events);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  if (values.json) io.stdout.write(`${JSON.stringify(events, null, 2)}\n`);
  else io.stdout.write(events.map((e) => `${auditLine(e)}\n`).join(""));
  return EXIT.ok;
}

async function actions(values: Record<string, unknown>, io: Io): Promise<number> {
  const list = await clientFrom(values, io).actions();
  if (values.json) {
    io.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    return EXIT.ok;
  }
  for (const a of list.actions) {
    const who = a.rule.approvers;
    const from = [
      who.users ? `${who.users} user${who.users === 1 ? "" : "s"}` : "",
      who.groups ? `${who.groups} group${who.groups === 1 ? "" : "s"}` : "",
      who.links ? `${who.links} by link` : "",
    ].filter(Boolean);
    const params = Object.keys((a.params_schema as { properties?: object } | null)?.properties ?? {});
    io.stdout.write(
      `${a.type}\t${a.kind}\t${a.rule.required_approvals} of ${from.join(", ") || "nobody"}\tttl ${a.ttl_seconds}s` +
        `${params.length ? `\tparams: ${params.join(", ")}` : ""}\n`,
    );
  }
  return EXIT.ok;
}

/** "Name: value" lines (an HTTP dump's headers) or a JSON object. */
export function parseHeaders(text: string): Record<string, string> {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    const parsed = JSON.parse(trimmed) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
  }
  const headers: Record<string, string> = {};
  for (const line of trimmed.split(/\r?\n/)) {
    const at = line.indexOf(":");
    if (at > 0) headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
  }
  return headers;
}

async function verify(values: Record<string, unknown>, io: Io): Promise<number> {
  const headersFile = str(values, "headers");
  if (!headersFile) throw new UsageError("verify-event needs --headers FILE (a JSON object or Name: value lines)");
  const read = (file: string, what: string) => {
    try {
      return file === "-" ? (io.stdin?.() ?? readFileSync(0, "utf8")) : readFileSync(file, "utf8");
    } catch (error) {
      throw new UsageError(`${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  };
  let headers: Record<string, string>;
  try {
    headers = parseHeaders(read(headersFile, "--headers"));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`--headers ${headersFile}: not a JSON object or Name: value lines`);
  }
  const body = read(str(values, "body") ?? "-", "--body");
  const secret = str(values, "secret") ?? io.env.EVENTS_SECRET;
  let publicKeys: string[] | Awaited<ReturnType<SignoffClient["keys"]>> =
    (values["public-key"] as string[] | undefined) ?? [];
  if (publicKeys.length === 0 && (str(values, "url") ?? io.env.SIGNOFF_URL)) {
    publicKeys = await clientFrom(values, io, false).keys();
  }
  const verdict = await verifyEvent({ headers, body }, { ...(secret ? { secret } : {}), publicKeys });
  if (verdict.ok) {
    io.stdout.write(`signature holds: ${verdict.version}${verdict.kid ? ` (${verdict.kid})` : ""}, ${verdict.id}\n`);
    return EXIT.ok;
  }
  io.stdout.write(`signature does not hold: ${verdict.reason}\n`);
  return EXIT.notVerified;
}

/** Runs `signoff args…`; returns the exit code. */
export async function main(args: string[], io: Io): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(`${USAGE}\n`);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === "--version") {
    io.stdout.write(`${VERSION}\n`);
    return EXIT.ok;
  }
  if (!isCommand(name)) {
    io.stderr.write(
      `signoff: unknown command ${JSON.stringify(name)} (propose, get, cancel, actions, audit, verify-event)\n`,
    );
    return EXIT.usage;
  }
  const spec = COMMANDS[name];
  try {
    let parsed: ReturnType<typeof parseCommand>;
    try {
      parsed = parseCommand(name, rest);
    } catch (error) {
      throw new UsageError(usageMessage(error));
    }
    const { values, positionals } = parsed;
    if (values.help) {
      io.stdout.write(`${spec.usage}\n`);
      return EXIT.ok;
    }
    if (positionals.length > spec.positionals)
      throw new UsageError(`unexpected argument ${positionals[spec.positionals]}`);
    switch (name) {
      case "propose":
        return await propose(values, io);
      case "get": {
        const wait = waitSeconds(values.wait);
        const client = clientFrom(values, io);
        return await showOutcome(client, await client.get(idOf(positionals, name)), wait, values, io);
      }
      case "cancel": {
        const p = await clientFrom(values, io).cancel(idOf(positionals, name));
        io.stdout.write(values.json ? `${JSON.stringify(p, null, 2)}\n` : `${outcomeLines(p).join("\n")}\n`);
        return EXIT.ok;
      }
      case "actions":
        return await actions(values, io);
      case "audit":
        return await audit(values, io);
      case "verify-event":
        return await verify(values, io);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`signoff ${name}: ${error.message} (signoff ${name} --help)\n`);
      return EXIT.usage;
    }
    if (error instanceof SignoffError) {
      io.stderr.write(`signoff ${name}: ${error.message}\n`);
      return EXIT.http;
    }
    throw error;
  }
}
