// `npm run audit:verify`: reads the whole audit log and checks every proposal's hash chain.
//   npm run audit:verify                       local D1 (what `npm start` uses)
//   npm run audit:verify -- --remote           the deployed D1, through wrangler
//   npm run audit:verify -- --url https://signoff.example.com   through GET /v1/audit
//                                              (token from SIGNOFF_AUDIT_TOKEN, scope audit:read)
import { execFileSync } from "node:child_process";
import { type AuditEvent, verifyChains } from "../src/audit/chain.ts";
import { parseCommandLine } from "./lib/cli.ts";

const USAGE = `Usage: npm run audit:verify [-- --remote | --url URL] [--database NAME] [--config PATH] [--persist-to DIR]

  (no option)      the local D1 of \`npm start\`
  --remote         the deployed D1, through wrangler
  --url URL        a running signoff, through GET /v1/audit (token from SIGNOFF_AUDIT_TOKEN, scope audit:read)
  --database NAME  the D1 database, default signoff-audit
  --config PATH    the wrangler config, default wrangler.toml
  --persist-to DIR the local state directory, when not wrangler's default`;

const PAGE = 1000;

const values = parseCommandLine("audit:verify", USAGE, {
  url: { type: "string" },
  remote: { type: "boolean", default: false },
  database: { type: "string", default: "signoff-audit" },
  "persist-to": { type: "string" },
  config: { type: "string", default: "wrangler.toml" },
});

async function* fromApi(base: string): AsyncGenerator<AuditEvent[]> {
  const token = process.env.SIGNOFF_AUDIT_TOKEN;
  if (!token) throw new Error("set SIGNOFF_AUDIT_TOKEN to an API token with the audit:read scope");
  let cursor: string | null = null;
  do {
    const url = new URL("/v1/audit", base);
    url.searchParams.set("limit", String(PAGE));
    if (cursor) url.searchParams.set("cursor", cursor);
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`GET /v1/audit answered HTTP ${res.status}`);
    const page = (await res.json()) as { events: AuditEvent[]; next_cursor: string | null };
    yield page.events;
    cursor = page.next_cursor;
  } while (cursor);
}

function* fromD1(): Generator<AuditEvent[]> {
  let after = 0;
  for (;;) {
    const sql = `SELECT seq, proposal_id, idx, at_ms, type, actor, details, prev_hash, hash FROM audit_events WHERE seq > ${after} ORDER BY seq LIMIT ${PAGE}`;
    const args = [
      "d1",
      "execute",
      values.database,
      values.remote ? "--remote" : "--local",
      "--json",
      "--config",
      values.config,
      "--command",
      sql,
    ];
    if (values["persist-to"]) args.push("--persist-to", values["persist-to"]);
    const out = execFileSync("wrangler", args, {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      maxBuffer: 256 * 1024 * 1024,
    });
    const rows = (JSON.parse(out) as Array<{ results: Array<Record<string, unknown>> }>)[0]?.results ?? [];
    if (rows.length === 0) return;
    yield rows.map((row) => ({
      proposal_id: String(row.proposal_id),
      idx: Number(row.idx),
      at: new Date(Number(row.at_ms)).toISOString(),
      type: String(row.type),
      actor: String(row.actor),
      details: JSON.parse(String(row.details)) as Record<string, unknown>,
      prev_hash: String(row.prev_hash),
      hash: String(row.hash),
    }));
    after = Number(rows.at(-1)!.seq);
  }
}

const events: AuditEvent[] = [];
const source = values.url ? fromApi(values.url) : fromD1();
for await (const page of source) events.push(...page);

const report = verifyChains(events);
if (report.ok) {
  console.log(
    `audit log OK: ${report.events} events in ${report.proposals} proposal chains, every hash and link verified`,
  );
} else {
  console.error(`audit log FAILED verification: ${report.problems.length} problem(s) in ${report.events} events`);
  for (const problem of report.problems.slice(0, 50))
    console.error(`  ${problem.proposal_id} #${problem.idx}: ${problem.problem}`);
  if (report.problems.length > 50) console.error(`  … and ${report.problems.length - 50} more`);
  process.exit(1);
}
