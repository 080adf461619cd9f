// The proposal Durable Object's SQLite schema (docs/storage.md): one versioned path, migrate() in
// src/proposal/store.ts, creates every table, and an object made by an older version keeps its
// rows when a newer one starts on it.
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { click, createProposal, getProposal, jobsOf, settle, stubOf } from "./helpers/api.ts";

async function schemaOf(id: string): Promise<{ version: string; tables: string[] }> {
  return runInDurableObject(stubOf(id), (_instance, state) => {
    const sql = state.storage.sql;
    const version = sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'schema_version'`).one().value;
    const tables = sql
      .exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
      .toArray()
      .map((row) => row.name)
      // The platform's own tables (_cf_…) and SQLite's are not ours.
      .filter((name) => !name.startsWith("_cf") && !name.startsWith("sqlite_"));
    return { version, tables };
  });
}

describe("the proposal object's schema", () => {
  it("a new object is at schema 3, with the job table made by the same migration as the rest", async () => {
    const p = await createProposal();
    expect(await schemaOf(p.id)).toEqual({
      version: "3",
      tables: ["jobs", "links", "meta", "notifications", "outbox", "proposal", "seen_webhooks"],
    });
  });

  it("an object from schema 2 (its jobs table made by the old JobTable constructor) keeps its jobs and carries on", async () => {
    const p = await createProposal();
    await settle(p.id);
    const jobs = await jobsOf(p.id);
    expect(jobs.map((job) => `${job.kind}/${job.key}`)).toEqual(["remind/0.5", "remind/0.9", "expire/ttl"]);
    await runInDurableObject(stubOf(p.id), (_instance, state) => {
      state.storage.sql.exec(`UPDATE meta SET value = '2' WHERE key = 'schema_version'`);
    });
    // The next instance starts from storage alone, and migrates it.
    await evictDurableObject(stubOf(p.id));
    expect((await schemaOf(p.id)).version).toBe("3");
    expect(await jobsOf(p.id)).toEqual(jobs);
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);
    expect(await getProposal(p.id)).toMatchObject({ status: "succeeded", dispatch: { attempts: 1 } });
  });
});
