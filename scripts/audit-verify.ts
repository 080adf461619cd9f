// `npm run audit:verify`: reads the whole audit log and checks it with public keys only (SPEC 8, 12): every
// proposal's hash chain, every chain's head signature, and, against signed checkpoints, that nothing they list
// was rewritten, cut off or deleted.
//   npm run audit:verify                       local D1 (what `npm start` uses); the key from .dev.vars
//   npm run audit:verify -- --remote           the deployed D1, through wrangler (needs --public-key)
//   npm run audit:verify -- --url https://signoff.example.com   through the API (token SIGNOFF_AUDIT_TOKEN,
//                                              scope audit:read); the Worker also compares D1 with every
//                                              proposal's Durable Object (GET /v1/audit/checkpoint)
//   … --checkpoint FILE                        a checkpoint kept outside D1 (`npm run audit:checkpoint`)
// Exit 0: verified; 1: problems found (listed); 2: could not verify (usage, connection, no key).
import { join, resolve } from "node:path";
import type { ParseArgsOptionsConfig } from "node:util";
import { auditSigner } from "../src/audit/signing.ts";
import type { StoredAuditEvent } from "../src/audit/store.ts";
import { type AuditProblem, verifyAuditLog } from "../src/audit/verify.ts";
import {
  fetchCheckpoint,
  ROOT,
  readDevVars,
  readJsonFile,
  readLogFromApi,
  readLogFromD1,
  UsageError,
} from "./audit/log.ts";
import { parseCommandLine } from "./lib/cli.ts";

const USAGE = `Usage: npm run audit:verify [-- --remote | --url URL] [--checkpoint FILE]... [--public-key auditpk_…]...

  (neither)          local D1 (npm start's), public key derived from AUDIT_SIGNING_KEY in --dev-vars
  --remote           the deployed D1 through wrangler; give --public-key (or SIGNOFF_AUDIT_PUBLIC_KEY)
  --url URL          the deployed Worker's API (SIGNOFF_AUDIT_TOKEN, scope audit:read); it also checks D1 against
                     every proposal's Durable Object, and vouches for its own public key unless you pin one
  --checkpoint FILE  a signed checkpoint kept outside D1: rewrite, truncation and deletion since are detected
  --public-key KEY   a trusted public key (repeatable; SIGNOFF_AUDIT_PUBLIC_KEY may list several, comma-separated)
  --database NAME    default signoff-audit;  --config PATH  default wrangler.toml;  --persist-to DIR (local D1)
  --dev-vars PATH    default .dev.vars (local mode's AUDIT_SIGNING_KEY)`;

const OPTIONS = {
  url: { type: "string" },
  remote: { type: "boolean", default: false },
  checkpoint: { type: "string", multiple: true, default: [] as string[] },
  "public-key": { type: "string", multiple: true, default: [] as string[] },
  database: { type: "string", default: "signoff-audit" },
  "persist-to": { type: "string" },
  config: { type: "string", default: "wrangler.toml" },
  "dev-vars": { type: "string" },
} satisfies ParseArgsOptionsConfig;

function needKey(publicKeys: readonly string[]): void {
  if (publicKeys.length > 0) return;
  throw new UsageError(
    "no public key to check head signatures with: pass --public-key auditpk_… (printed by `npm run audit:key` " +
      "and `npm run check-config`, and in every checkpoint) or set SIGNOFF_AUDIT_PUBLIC_KEY",
  );
}

async function main(): Promise<number> {
  const values = parseCommandLine("audit:verify", USAGE, OPTIONS);
  if (values.url && values.remote) throw new UsageError("--url and --remote exclude each other");

  const publicKeys = [
    ...values["public-key"],
    ...(process.env.SIGNOFF_AUDIT_PUBLIC_KEY ?? "").split(",").filter((k) => k.trim() !== ""),
  ].map((k) => k.trim());
  const checkpoints = values.checkpoint.map((path) => readJsonFile(resolve(path)));
  const problems: AuditProblem[] = [];
  let events: StoredAuditEvent[];
  let source: string;

  if (values.url) {
    source = values.url;
    // First the Worker's own comparison of D1 with the Durable Objects, then the log: events only grow, so the
    // log read after it must contain everything the fresh checkpoint lists.
    const live = await fetchCheckpoint(values.url);
    if (live.ok) {
      checkpoints.push(live.checkpoint);
      const vouched = (live.checkpoint as { public_key?: unknown }).public_key;
      if (publicKeys.length === 0 && typeof vouched === "string") {
        publicKeys.push(vouched);
        console.error(`using the Worker's public key ${vouched} (pin it with --public-key)`);
      }
    } else if (live.status === 409) {
      for (const d of live.details) problems.push({ proposal_id: d.path, idx: null, problem: d.message });
      problems.push({ proposal_id: null, idx: null, problem: `the Worker refused a checkpoint: ${live.message}` });
    } else if (live.status === 404) {
      console.error("warning: this Worker has no GET /v1/audit/checkpoint: D1 is not compared with the objects");
    } else {
      throw new UsageError(`GET /v1/audit/checkpoint answered HTTP ${live.status}: ${live.message}`);
    }
    needKey(publicKeys);
    events = await readLogFromApi(values.url);
  } else {
    source = values.remote ? `D1 ${values.database} (remote)` : `D1 ${values.database} (local)`;
    if (!values.remote && publicKeys.length === 0) {
      const devVars = values["dev-vars"] ?? join(ROOT, ".dev.vars");
      const secret = readDevVars(devVars).AUDIT_SIGNING_KEY;
      if (secret) publicKeys.push((await auditSigner(secret)).publicKey);
    }
    needKey(publicKeys);
    events = readLogFromD1({
      remote: values.remote,
      database: values.database,
      config: values.config,
      persistTo: values["persist-to"],
    });
  }
  const report = await verifyAuditLog(events, { publicKeys, checkpoints });
  problems.push(...report.problems);
  for (const warning of report.warnings) console.error(`warning: ${warning}`);
  if (problems.length === 0) {
    const against = checkpoints.length > 0 ? `, against ${checkpoints.length} signed checkpoint(s)` : "";
    console.log(
      `audit log OK (${source}): ${report.events} events in ${report.proposals} proposal chains; every hash, link and head signature verified${against}`,
    );
    return 0;
  }
  console.error(`audit log FAILED verification (${source}): ${problems.length} problem(s) in ${report.events} events`);
  for (const p of problems.slice(0, 50)) {
    const where = p.proposal_id === null ? "log" : `${p.proposal_id}${p.idx === null ? "" : ` #${p.idx}`}`;
    console.error(`  ${where}: ${p.problem}`);
  }
  if (problems.length > 50) console.error(`  … and ${problems.length - 50} more`);
  return 1;
}

try {
  process.exitCode = await main();
} catch (error) {
  if (!(error instanceof UsageError) && !(error instanceof Error && /public key/.test(error.message))) throw error;
  console.error(`audit:verify: ${error.message}`);
  process.exitCode = 2;
}
