// `npm run audit:verify`, `audit:checkpoint` and `audit:key` from Node (SPEC 12): through the API against a
// stand-in Worker, and once against a local D1 through wrangler. Each attack of the issue — a rewrite with
// recomputed hashes, a cut tail, a deleted chain, an emptied log — must end in exit code 1, naming what happened.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { GENESIS_HASH, hashEvent, sealEvent } from "../../src/audit/chain.ts";
import { CHECKPOINT_TYPE, type Checkpoint, signCheckpoint } from "../../src/audit/checkpoint.ts";
import { auditSigner, auditVerifier, checkHeadSignature, signHead } from "../../src/audit/signing.ts";
import type { StoredAuditEvent } from "../../src/audit/store.ts";
import { AUDIT_PUBLIC_KEY, OTHER_AUDIT_SIGNING_KEY, SECRETS } from "../../test/fixtures.ts";
import { ensureDevVars } from "../local/stack.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const script = (name: string) => join(ROOT, "scripts", `${name}.ts`);
const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
const TOKEN = "so_audit_script_test_token_000000000000000";
const dirs: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(join(tmpdir(), "signoff-audit-"));
  dirs.push(dir);
  return dir;
};
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a script without blocking this process (the stand-in Worker answers from it). */
function run(name: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const { SIGNOFF_AUDIT_PUBLIC_KEY: _pinned, ...inherited } = process.env;
    execFile(
      process.execPath,
      [script(name), ...args],
      {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 180_000,
        env: { ...inherited, SIGNOFF_AUDIT_TOKEN: TOKEN, WRANGLER_SEND_METRICS: "false", ...env },
      },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

// ---- a log as the Worker writes it ---------------------------------------------------------------------------

const ALICE = `prp_${"a".repeat(64)}`;
const BOB = `prp_${"b".repeat(64)}`;

/** Two chains, as flushes leave them: the last event of each flush signed as the head. */
async function makeLog(secret: string = SECRETS.AUDIT_SIGNING_KEY): Promise<StoredAuditEvent[]> {
  const signer = await auditSigner(secret);
  const flushes: Array<[string, Array<[string, string, Record<string, unknown>]>]> = [
    [ALICE, [["proposal.created", "key:ci", {}]]],
    [BOB, [["proposal.created", "key:ci", {}]]],
    [ALICE, [["approval.recorded", "slack:U0ALICE", { count: 1 }]]],
    [
      ALICE,
      [
        ["approval.recorded", "slack:U0DAVE", { count: 2 }],
        ["proposal.approved", "slack:U0DAVE", { approvers: ["U0ALICE", "U0DAVE"] }],
      ],
    ],
    [BOB, [["proposal.expired", "system", {}]]],
  ];
  const log: StoredAuditEvent[] = [];
  for (const [id, drafts] of flushes) {
    const chain = log.filter((e) => e.proposal_id === id);
    let prev = chain.at(-1)?.hash ?? GENESIS_HASH;
    for (const [i, [type, actor, details]] of drafts.entries()) {
      const event = sealEvent({
        proposal_id: id,
        idx: chain.length + i + 1,
        at: new Date(Date.UTC(2026, 10, 1, 12, log.length)).toISOString(),
        type,
        actor,
        details,
        prev_hash: prev,
      });
      const last = i === drafts.length - 1;
      log.push({ ...event, seq: log.length + 1, head_sig: last ? await signHead(signer, event) : null });
      prev = event.hash;
    }
  }
  return log;
}

/** U0DAVE's approval made U0ERIN's and every hash after it recomputed; the old head signature left in place. */
function swapDaveForErin(log: readonly StoredAuditEvent[]): StoredAuditEvent[] {
  let prev: string | null = null;
  return log.map((event) => {
    if (event.proposal_id !== ALICE) return event;
    const actor = event.actor === "slack:U0DAVE" ? "slack:U0ERIN" : event.actor;
    const details = Array.isArray(event.details.approvers) ? { approvers: ["U0ALICE", "U0ERIN"] } : event.details;
    const unsealed = { ...event, actor, details, prev_hash: prev ?? event.prev_hash };
    const hash = hashEvent(unsealed);
    prev = hash;
    return { ...unsealed, hash };
  });
}

/** What the Worker would sign for `log` (without its Durable Objects: the stand-in trusts its log). */
async function checkpointOf(
  log: readonly StoredAuditEvent[],
  secret: string = SECRETS.AUDIT_SIGNING_KEY,
): Promise<Checkpoint> {
  const chains: Checkpoint["chains"] = {};
  for (const e of log) {
    const count = log.filter((x) => x.proposal_id === e.proposal_id).length;
    if ((chains[e.proposal_id]?.idx ?? 0) < e.idx)
      chains[e.proposal_id] = { idx: e.idx, hash: e.hash, seq: e.seq, count };
  }
  return signCheckpoint(
    {
      type: CHECKPOINT_TYPE,
      version: 1,
      created_at: new Date().toISOString(),
      max_seq: Math.max(0, ...log.map((e) => e.seq)),
      events: log.length,
      chains,
    },
    await auditSigner(secret),
  );
}

// ---- a stand-in Worker: GET /v1/audit and GET /v1/audit/checkpoint -------------------------------------------

const worker: {
  log: StoredAuditEvent[];
  checkpoint: () => Promise<{ status: number; body: unknown }>;
  server?: Server;
  url?: string;
} = {
  log: [],
  checkpoint: async () => ({ status: 200, body: await checkpointOf(worker.log) }),
};

before(async () => {
  worker.server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://x");
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return send(401, { error: { code: "unauthorized" } });
      if (url.pathname === "/v1/audit") return send(200, { events: worker.log, next_cursor: null });
      if (url.pathname === "/v1/audit/checkpoint") {
        const answer = await worker.checkpoint();
        return send(answer.status, answer.body);
      }
      send(404, { error: { code: "not_found", message: "no route", details: [] } });
    })();
  });
  await new Promise<void>((resolve) => worker.server!.listen(0, "127.0.0.1", resolve));
  const address = worker.server.address();
  worker.url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
});
after(() => worker.server?.close());

function serve(log: StoredAuditEvent[], checkpoint?: () => Promise<{ status: number; body: unknown }>) {
  worker.log = log;
  worker.checkpoint = checkpoint ?? (async () => ({ status: 200, body: await checkpointOf(worker.log) }));
}
const noCheckpointRoute = async () => ({ status: 404, body: { error: { code: "not_found", message: "no route" } } });

describe("through the API", () => {
  test("a log as the Worker writes it verifies, with the Worker's key and its fresh checkpoint", async () => {
    serve(await makeLog());
    const out = await run("audit-verify", ["--url", worker.url!]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(
      out.stdout,
      /audit log OK .*: 6 events in 2 proposal chains; every hash, link and head signature verified, against 1 signed checkpoint/,
    );
    assert.match(out.stderr, new RegExp(`using the Worker's public key ${AUDIT_PUBLIC_KEY.replace(/[+/]/g, "\\$&")}`));
  });

  test("U0DAVE swapped for U0ERIN with every hash recomputed: exit 1, the head signature no longer matches", async () => {
    serve(swapDaveForErin(await makeLog()), noCheckpointRoute);
    const out = await run("audit-verify", ["--url", worker.url!, "--public-key", AUDIT_PUBLIC_KEY]);
    assert.equal(out.code, 1, out.stdout + out.stderr);
    assert.match(out.stderr, new RegExp(`${ALICE} #4: rewritten: #4's head signature does not match it`));
    assert.match(out.stderr, /no GET \/v1\/audit\/checkpoint/);
  });

  test("the Worker refusing a checkpoint (409 audit_mismatch) fails verification with its findings", async () => {
    serve(await makeLog(), async () => ({
      status: 409,
      body: {
        error: {
          code: "audit_mismatch",
          message: "the audit log disagrees with the proposals' own records in 1 chain(s)",
          details: [{ path: BOB, message: "truncated: D1's chain ends at #1; its Durable Object had #1–#2 written" }],
        },
      },
    }));
    const out = await run("audit-verify", ["--url", worker.url!, "--public-key", AUDIT_PUBLIC_KEY]);
    assert.equal(out.code, 1, out.stdout + out.stderr);
    assert.match(out.stderr, new RegExp(`${BOB}: truncated: D1's chain ends at #1`));
  });

  test("against a saved checkpoint: a cut tail, a deleted chain and an emptied log each fail, naming what is gone", async () => {
    const dir = tmp();
    const saved = join(dir, "checkpoint.json");
    const log = await makeLog();
    serve(log);
    const made = await run("audit-checkpoint", ["--url", worker.url!, "--out", saved]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stderr, /checkpoint: 6 events in 2 chains, max seq 6, signed by key [0-9a-f]{16}/);
    const checkpoint = JSON.parse(readFileSync(saved, "utf8")) as Checkpoint;
    assert.deepEqual(checkpoint.chains[ALICE], { idx: 4, hash: log[4]!.hash, seq: 5, count: 4 });

    // Cut where a flush ended: the remaining head is validly signed, only the checkpoint knows better.
    serve(log.filter((e) => !(e.proposal_id === ALICE && e.idx > 2)));
    const cut = await run("audit-verify", ["--url", worker.url!, "--checkpoint", saved]);
    assert.equal(cut.code, 1, cut.stdout + cut.stderr);
    assert.match(cut.stderr, new RegExp(`${ALICE} #2: truncated: the chain ends at #2; the checkpoint lists #1–#4`));

    serve(log.filter((e) => e.proposal_id !== BOB));
    const deleted = await run("audit-verify", ["--url", worker.url!, "--checkpoint", saved]);
    assert.equal(deleted.code, 1, deleted.stdout + deleted.stderr);
    assert.match(deleted.stderr, new RegExp(`${BOB}: deleted: the checkpoint lists 2 event\\(s\\) up to #2`));
    // And a new checkpoint is refused against the saved one: nothing is written.
    const next = join(dir, "next.json");
    const refused = await run("audit-checkpoint", ["--url", worker.url!, "--previous", saved, "--out", next]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, new RegExp(`${BOB}: deleted: #1–#2 were in the earlier checkpoint`));
    assert.throws(() => readFileSync(next));

    serve([]);
    const emptied = await run("audit-verify", ["--url", worker.url!, "--checkpoint", saved]);
    assert.equal(emptied.code, 1, emptied.stdout + emptied.stderr);
    assert.match(emptied.stderr, /log: deleted: the log's max seq is 0, the checkpoint's 6/);
    assert.match(emptied.stderr, new RegExp(`${ALICE}: deleted: `));
  });

  test("--public-key pins the key: a checkpoint and heads signed by another key are refused", async () => {
    const forged = await makeLog(OTHER_AUDIT_SIGNING_KEY);
    serve(forged, async () => ({ status: 200, body: await checkpointOf(forged, OTHER_AUDIT_SIGNING_KEY) }));
    const out = await run("audit-verify", ["--url", worker.url!, "--public-key", AUDIT_PUBLIC_KEY]);
    assert.equal(out.code, 1, out.stdout + out.stderr);
    assert.match(
      out.stderr,
      /log: checkpoint: signed with key [0-9a-f]{16}, which is not one of the trusted public keys/,
    );
    assert.match(out.stderr, /unknown key: #4's head signature is by key/);
  });
});

describe("usage", () => {
  test("--remote without a public key, a bad flag, or a checkpoint made with --remote: exit 2, saying what to do", async () => {
    const remote = await run("audit-verify", ["--remote"]);
    assert.equal(remote.code, 2, remote.stderr);
    assert.match(remote.stderr, /no public key to check head signatures with: pass --public-key/);
    const flag = await run("audit-verify", ["--checkpiont", "x.json"]);
    assert.equal(flag.code, 2, flag.stderr);
    assert.match(flag.stderr, /Unknown option '--checkpiont'/);
    const cp = await run("audit-checkpoint", ["--remote"]);
    assert.equal(cp.code, 2, cp.stderr);
    assert.match(cp.stderr, /the production key lives only in the Worker\. Use --url/);
  });

  test("audit:key prints a private key for the Worker and the public key that verifies its signatures", async () => {
    const out = await run("audit-key", ["--json"]);
    assert.equal(out.code, 0, out.stderr);
    const key = JSON.parse(out.stdout) as { secret: string; public_key: string; key_id: string };
    assert.match(key.secret, /^auditsk_[A-Za-z0-9+/]{43}=$/);
    const head = { proposal_id: ALICE, idx: 1, hash: GENESIS_HASH };
    const sig = await signHead(await auditSigner(key.secret), head);
    assert.equal(await checkHeadSignature(await auditVerifier([key.public_key]), head, sig), "valid");
    assert.equal(sig.split(":")[0], key.key_id);
  });
});

describe("local mode's key", () => {
  test("npm start writes an AUDIT_SIGNING_KEY to a new .dev.vars, and adds one to an older file without changing the rest", async () => {
    const dir = tmp();
    const fresh = join(dir, "fresh.vars");
    const made = await ensureDevVars(fresh, join(dir, "token"));
    assert.ok(made.created.includes("AUDIT_SIGNING_KEY"), made.created.join(", "));
    const key = /^AUDIT_SIGNING_KEY='(auditsk_[^']+)'$/m.exec(readFileSync(fresh, "utf8"))?.[1];
    assert.ok(key, readFileSync(fresh, "utf8"));
    await auditSigner(key);

    const older = join(dir, "older.vars");
    const before = readFileSync(fresh, "utf8").replace(/^AUDIT_SIGNING_KEY=.*\n/m, "");
    writeFileSync(older, before);
    const again = await ensureDevVars(older, join(dir, "token"));
    assert.deepEqual(again.created, ["AUDIT_SIGNING_KEY"]);
    const after = readFileSync(older, "utf8");
    assert.ok(after.startsWith(before), "an existing value changed");
    assert.match(after, /^AUDIT_SIGNING_KEY='auditsk_[A-Za-z0-9+/]{43}='$/m);
  });
});

describe("local D1 through wrangler", () => {
  test("checkpoint signed with .dev.vars' key; a chain deleted afterwards fails verification", async () => {
    const dir = tmp();
    const persist = join(dir, "state");
    const wrangler = (...args: string[]) =>
      new Promise<Run>((resolve) =>
        execFile(
          process.execPath,
          [WRANGLER, "d1", ...args, "--local", "--persist-to", persist],
          { cwd: ROOT, encoding: "utf8", timeout: 120_000, env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
          (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr }),
        ),
      );
    const migrated = await wrangler("migrations", "apply", "signoff-audit");
    assert.equal(migrated.code, 0, migrated.stdout + migrated.stderr);
    const quote = (v: unknown) =>
      v === null ? "NULL" : typeof v === "number" ? String(v) : `'${String(v).replace(/'/g, "''")}'`;
    const inserts = (await makeLog()).map(
      (e) =>
        `INSERT INTO audit_events (seq, proposal_id, idx, at_ms, type, actor, details, prev_hash, hash, head_sig) VALUES (${[
          e.seq,
          e.proposal_id,
          e.idx,
          Date.parse(e.at),
          e.type,
          e.actor,
          JSON.stringify(e.details),
          e.prev_hash,
          e.hash,
          e.head_sig,
        ]
          .map(quote)
          .join(", ")});`,
    );
    writeFileSync(join(dir, "log.sql"), `${inserts.join("\n")}\n`);
    const inserted = await wrangler("execute", "signoff-audit", "--file", join(dir, "log.sql"));
    assert.equal(inserted.code, 0, inserted.stdout + inserted.stderr);

    const devVars = join(dir, ".dev.vars");
    writeFileSync(devVars, `AUDIT_SIGNING_KEY='${SECRETS.AUDIT_SIGNING_KEY}'\n`);
    const local = ["--persist-to", persist, "--dev-vars", devVars];
    const saved = join(dir, "checkpoint.json");
    const made = await run("audit-checkpoint", [...local, "--out", saved]);
    assert.equal(made.code, 0, made.stderr);
    assert.equal((JSON.parse(readFileSync(saved, "utf8")) as Checkpoint).public_key, AUDIT_PUBLIC_KEY);
    const ok = await run("audit-verify", [...local, "--checkpoint", saved]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /audit log OK \(D1 signoff-audit \(local\)\): 6 events in 2 proposal chains/);

    // Someone with D1 access drops the trigger and deletes BOB's chain.
    const attack = await wrangler(
      "execute",
      "signoff-audit",
      "--command",
      `DROP TRIGGER audit_events_no_delete; DELETE FROM audit_events WHERE proposal_id = '${BOB}'`,
    );
    assert.equal(attack.code, 0, attack.stdout + attack.stderr);
    const failed = await run("audit-verify", [...local, "--checkpoint", saved]);
    assert.equal(failed.code, 1, failed.stdout + failed.stderr);
    assert.match(failed.stderr, new RegExp(`${BOB}: deleted: the checkpoint lists 2 event\\(s\\)`));
  });
});
