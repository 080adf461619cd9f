// The proposal Durable Object's SQLite schema (docs/storage.md): one versioned path, migrate() in
// src/proposal/store.ts. Schema 4 makes the tables every proposal uses (WITHOUT ROWID where keyed by text) and
// leaves the others to be made on first use; an object made by an older version keeps its tables and rows when a
// newer one starts on it, and carries on.
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { click, createProposal, getProposal, jobsOf, settle, stubOf } from "./helpers/api.ts";

interface Schema {
  version: string;
  tables: string[];
  /** The tables whose rows are their primary key's b-tree (no rowid, no separate key index). */
  withoutRowid: string[];
}

async function schemaOf(id: string): Promise<Schema> {
  return runInDurableObject(stubOf(id), (_instance, state) => {
    const sql = state.storage.sql;
    const version = sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'schema_version'`).one().value;
    const rows = sql
      .exec<{ name: string; sql: string }>(`SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name`)
      .toArray()
      // The platform's own tables (_cf_…) and SQLite's are not ours.
      .filter((row) => !row.name.startsWith("_cf") && !row.name.startsWith("sqlite_"));
    return {
      version,
      tables: rows.map((row) => row.name),
      withoutRowid: rows.filter((row) => /WITHOUT ROWID\s*$/i.test(row.sql)).map((row) => row.name),
    };
  });
}

/** The schema 3 layout, exactly as that version's migrate() made it (rowid tables, every table up front). */
const SCHEMA_3 = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  `CREATE TABLE proposal (id TEXT PRIMARY KEY, request_sha256 TEXT NOT NULL, record TEXT NOT NULL)`,
  `CREATE TABLE outbox (idx INTEGER PRIMARY KEY, event TEXT NOT NULL)`,
  `CREATE TABLE notifications (seq INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, body TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0)`,
  `CREATE TABLE seen_webhooks (id TEXT PRIMARY KEY, at INTEGER NOT NULL)`,
  `CREATE TABLE links (nonce TEXT PRIMARY KEY, recipient TEXT NOT NULL, choice TEXT NOT NULL, used_at INTEGER,
     UNIQUE (recipient, choice))`,
  `CREATE TABLE jobs (kind TEXT NOT NULL, key TEXT NOT NULL, due_at INTEGER NOT NULL, attempt INTEGER NOT NULL DEFAULT 0,
     version INTEGER NOT NULL DEFAULT 1, lease_until INTEGER NOT NULL DEFAULT 0, payload TEXT, PRIMARY KEY (kind, key))`,
];

describe("the proposal object's schema", () => {
  it("a new object is at schema 4: four tables, those keyed by text WITHOUT ROWID; the others wait until needed", async () => {
    const p = await createProposal();
    expect(await schemaOf(p.id)).toEqual({
      version: "4",
      tables: ["jobs", "meta", "outbox", "proposal"],
      withoutRowid: ["jobs", "meta", "proposal"],
    });
  });

  it("a runner result makes seen_webhooks when it first needs it, and the same webhook id is then seen", async () => {
    const p = await createProposal();
    await settle(p.id);
    expect((await schemaOf(p.id)).tables).not.toContain("seen_webhooks");
    // Marked in the step that decides on the result, whatever the decision (here: not awaiting one).
    await stubOf(p.id).recordResult("msg_schema4", { status: "succeeded", output: "ok" });
    expect((await schemaOf(p.id)).tables).toContain("seen_webhooks");
    const seen = await runInDurableObject(stubOf(p.id), (_instance, state) =>
      state.storage.sql.exec(`SELECT id FROM seen_webhooks`).toArray(),
    );
    expect(seen).toEqual([{ id: "msg_schema4" }]);
  });

  it("an object from schema 3 (rowid tables, all made up front) keeps its tables and jobs, and carries on", async () => {
    const p = await createProposal();
    await settle(p.id);
    const jobs = await jobsOf(p.id);
    expect(jobs.map((job) => `${job.kind}/${job.key}`)).toEqual(["remind/0.5", "expire/ttl"]);
    // Rebuild this object's storage as schema 3 made it, with the same rows.
    await runInDurableObject(stubOf(p.id), (_instance, state) => {
      const sql = state.storage.sql;
      const keep = (table: string) => sql.exec(`SELECT * FROM ${table}`).toArray();
      const rows = { meta: keep("meta"), proposal: keep("proposal"), outbox: keep("outbox"), jobs: keep("jobs") };
      for (const table of ["meta", "proposal", "outbox", "jobs"]) sql.exec(`DROP TABLE ${table}`);
      for (const statement of SCHEMA_3) sql.exec(statement);
      for (const [table, list] of Object.entries(rows))
        for (const row of list) {
          const columns = Object.keys(row);
          sql.exec(
            `INSERT INTO ${table} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`,
            ...Object.values(row),
          );
        }
      sql.exec(`UPDATE meta SET value = '3' WHERE key = 'schema_version'`);
    });
    // The next instance starts from storage alone, and migrates it.
    await evictDurableObject(stubOf(p.id));
    const migrated = await schemaOf(p.id);
    expect(migrated).toEqual({
      version: "4",
      tables: ["jobs", "links", "meta", "notifications", "outbox", "proposal", "seen_webhooks"],
      withoutRowid: [],
    });
    expect(await jobsOf(p.id)).toEqual(jobs);
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);
    expect(await getProposal(p.id)).toMatchObject({ status: "succeeded", dispatch: { attempts: 1 } });
  });
});
