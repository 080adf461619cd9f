// `npm run audit:checkpoint`: a signed checkpoint of the audit log (SPEC 12) — each chain's last seq, hash and
// count and the log's max seq — to keep outside D1 (a bucket with object lock, a repository, a ticket), so that
// `npm run audit:verify -- --checkpoint FILE` later detects events rewritten, cut off or deleted since.
//   npm run audit:checkpoint -- --url https://signoff.example.com --out cp.json   the deployed Worker signs it
//        (token SIGNOFF_AUDIT_TOKEN, scope audit:read), after comparing D1 with every proposal's Durable Object
//   npm run audit:checkpoint -- --out cp.json     local mode: local D1 read through wrangler, verified, then signed
//        here with .dev.vars' AUDIT_SIGNING_KEY (the production key never leaves Cloudflare, hence --url there)
//   … --previous last.json                        and refuse if it lost anything the earlier checkpoint lists
// Exit 0: written; 1: tampering found (nothing written); 2: could not make one.
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ParseArgsOptionsConfig } from "node:util";
import {
  type Checkpoint,
  type CheckpointProblem,
  checkpointSignatureProblem,
  compareCheckpoints,
  parseCheckpoint,
  signCheckpoint,
} from "../src/audit/checkpoint.ts";
import { auditSigner, auditVerifier } from "../src/audit/signing.ts";
import type { StoredAuditEvent } from "../src/audit/store.ts";
import { verifyAuditLog } from "../src/audit/verify.ts";
import { fetchCheckpoint, ROOT, readDevVars, readJsonFile, readLogFromD1, UsageError } from "./audit/log.ts";
import { parseCommandLine } from "./lib/cli.ts";

const USAGE = `Usage: npm run audit:checkpoint [-- --url URL] [--out FILE] [--previous FILE] [--public-key auditpk_…]...

  --url URL          the deployed Worker signs it: GET /v1/audit/checkpoint (SIGNOFF_AUDIT_TOKEN, scope audit:read)
  (no --url)         local mode: local D1 through wrangler, signed with AUDIT_SIGNING_KEY from --dev-vars
  --out FILE         where to write it (default: standard output)
  --previous FILE    the last checkpoint: refuse if a chain it lists is gone, shorter or different
  --public-key KEY   trusted public key(s) for the checkpoints (default: the one the new checkpoint names)
  --database NAME, --config PATH, --persist-to DIR, --dev-vars PATH   as for audit:verify (local mode)`;

function fail(problems: CheckpointProblem[], why: string): number {
  console.error(`no checkpoint written: ${why}`);
  for (const p of problems.slice(0, 50)) console.error(`  ${p.proposal_id ?? "log"}: ${p.problem}`);
  if (problems.length > 50) console.error(`  … and ${problems.length - 50} more`);
  return 1;
}

/** Each chain's head and the log's totals, from a log that has just verified. */
function headsOf(events: readonly StoredAuditEvent[]): Pick<Checkpoint, "max_seq" | "events" | "chains"> {
  const chains: Checkpoint["chains"] = {};
  let maxSeq = 0;
  for (const e of events) {
    maxSeq = Math.max(maxSeq, e.seq);
    const known = chains[e.proposal_id];
    if (!known || e.idx > known.idx) chains[e.proposal_id] = { idx: e.idx, hash: e.hash, seq: e.seq, count: 0 };
  }
  for (const e of events) chains[e.proposal_id]!.count++;
  const sorted = Object.fromEntries(Object.entries(chains).sort(([a], [b]) => (a < b ? -1 : 1)));
  return { max_seq: maxSeq, events: events.length, chains: sorted };
}

const OPTIONS = {
  url: { type: "string" },
  out: { type: "string" },
  previous: { type: "string" },
  "public-key": { type: "string", multiple: true, default: [] as string[] },
  database: { type: "string", default: "signoff-audit" },
  "persist-to": { type: "string" },
  config: { type: "string", default: "wrangler.toml" },
  "dev-vars": { type: "string" },
  remote: { type: "boolean", default: false },
} satisfies ParseArgsOptionsConfig;

async function main(): Promise<number> {
  const values = parseCommandLine("audit:checkpoint", USAGE, OPTIONS);
  if (values.remote) {
    throw new UsageError(
      "--remote cannot sign: the production key lives only in the Worker. Use --url https://<your worker>",
    );
  }
  const previous = values.previous === undefined ? null : readJsonFile(resolve(values.previous));

  let json: unknown;
  if (values.url) {
    const answer = await fetchCheckpoint(values.url);
    if (!answer.ok) {
      if (answer.status !== 409)
        throw new UsageError(`GET /v1/audit/checkpoint answered HTTP ${answer.status}: ${answer.message}`);
      return fail(
        answer.details.map((d) => ({ proposal_id: d.path, problem: d.message })),
        `the Worker found the log tampered with: ${answer.message}`,
      );
    }
    json = answer.checkpoint;
  } else {
    const devVars = values["dev-vars"] ?? join(ROOT, ".dev.vars");
    const secret = readDevVars(devVars).AUDIT_SIGNING_KEY;
    if (!secret) throw new UsageError(`no AUDIT_SIGNING_KEY in ${devVars} (npm start writes one; or use --url)`);
    const signer = await auditSigner(secret);
    const events = readLogFromD1({
      remote: false,
      database: values.database,
      config: values.config,
      persistTo: values["persist-to"],
    });
    // Local mode has no Durable Objects to ask: the log must at least verify (and keep the previous checkpoint).
    const report = await verifyAuditLog(events, {
      publicKeys: [signer.publicKey],
      checkpoints: previous === null ? [] : [previous],
    });
    if (!report.ok) {
      return fail(
        report.problems.map((p) => ({ proposal_id: p.proposal_id, problem: p.problem })),
        "the local log does not verify",
      );
    }
    json = await signCheckpoint(
      { type: "signoff.audit.checkpoint", version: 1, created_at: new Date().toISOString(), ...headsOf(events) },
      signer,
    );
  }

  const checkpoint = parseCheckpoint(json);
  const trusted = values["public-key"].length > 0 ? values["public-key"] : [checkpoint.public_key];
  const verifier = await auditVerifier(trusted);
  const bad = await checkpointSignatureProblem(checkpoint, verifier);
  if (bad) return fail([], `the new checkpoint is ${bad}`);
  if (previous !== null) {
    const earlier = parseCheckpoint(previous);
    const earlierBad = await checkpointSignatureProblem(earlier, verifier);
    if (earlierBad) {
      return fail([], `--previous is ${earlierBad} (pass every key in use with --public-key)`);
    }
    const lost = compareCheckpoints(earlier, checkpoint);
    if (lost.length > 0) return fail(lost, `the log lost what ${values.previous} lists`);
  }

  const text = `${JSON.stringify(checkpoint, null, 2)}\n`;
  if (values.out) writeFileSync(resolve(values.out), text);
  else process.stdout.write(text);
  const chains = Object.keys(checkpoint.chains).length;
  console.error(
    `checkpoint: ${checkpoint.events} events in ${chains} chains, max seq ${checkpoint.max_seq}, signed by key ` +
      `${checkpoint.key_id} (${checkpoint.public_key})${values.out ? `, written to ${values.out}` : ""}`,
  );
  return 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  if (!(error instanceof UsageError) && !(error instanceof Error && /checkpoint|public key/.test(error.message)))
    throw error;
  console.error(`audit:checkpoint: ${error.message}`);
  process.exitCode = 2;
}
