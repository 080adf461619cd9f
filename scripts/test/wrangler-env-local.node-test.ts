// wrangler.toml's [env.local] (`npm start`, SPEC 9) repeats every binding of the top level: wrangler does
// not inherit bindings or vars into an environment, so the copy is forced, and nothing else notices when
// the two drift apart (a binding added for production and missing locally breaks only local mode). The
// local environment may add its own (the Slack stand-in's LOCAL_SLACK, LOCAL_MODE), give vars other values and keep
// the placeholder D1 database_id where the top level has the real one.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { experimental_readRawConfig } from "wrangler";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

type Table = Record<string, unknown>;

function readToml(): Table {
  return experimental_readRawConfig({ config: `${ROOT}wrangler.toml` }).rawConfig as Table;
}

/**
 * The keys wrangler does not inherit into environments, as its own config schema describes them (so a
 * binding kind the project starts to use is compared without this test changing), plus durable_objects
 * (its schema entry is a reference) and migrations (inherited, but [env.local] declares its own list).
 */
function notInherited(): string[] {
  const schema = JSON.parse(readFileSync(`${ROOT}node_modules/wrangler/config-schema.json`, "utf8")) as {
    definitions: { RawEnvironment: { properties: Record<string, { description?: string }> } };
  };
  const fromSchema = Object.entries(schema.definitions.RawEnvironment.properties)
    .filter(([, property]) => /not automatically inherited/.test(property.description ?? ""))
    .map(([key]) => key);
  return [...new Set([...fromSchema, "durable_objects", "migrations"])];
}

/** Where `local` lacks something of `top`: a table's keys, an array's entries (in any order), a value. */
function missing(top: unknown, local: unknown, path: string): string[] {
  if (Array.isArray(top)) {
    if (!Array.isArray(local)) return [`${path}: missing`];
    return top.flatMap((entry, i) =>
      local.some((candidate) => missing(entry, candidate, path).length === 0)
        ? []
        : [`${path}[${i}] ${JSON.stringify(entry)}: no matching entry`],
    );
  }
  if (top !== null && typeof top === "object") {
    if (local === null || typeof local !== "object" || Array.isArray(local)) return [`${path}: missing`];
    return Object.entries(top).flatMap(([key, value]) => missing(value, (local as Table)[key], `${path}.${key}`));
  }
  return Object.is(top, local) ? [] : [`${path}: ${JSON.stringify(top)} here, ${JSON.stringify(local)} in local`];
}

/** What [env.local] lacks of the top level's bindings, vars (by name) and migrations. */
function drift(config: Table): string[] {
  const local = ((config.env as Table | undefined)?.local ?? {}) as Table;
  const problems: string[] = [];
  for (const key of notInherited()) {
    if (config[key] === undefined) continue;
    if (key === "vars") {
      // Values may differ (the stand-in's Slack API, the demo policy); every name must be there.
      const names = Object.keys(local.vars ?? {});
      for (const name of Object.keys(config.vars as Table)) {
        if (!names.includes(name)) problems.push(`vars.${name}: missing`);
      }
    } else if (key === "d1_databases") {
      // The database_id may differ: `npm run setup` writes the production database's id at the top level, while
      // [env.local] keeps the all-zero placeholder (local D1 needs none, and local mode must not reach production's).
      const withoutId = (list: unknown) =>
        Array.isArray(list) ? list.map(({ database_id: _id, ...rest }: Table) => rest) : list;
      problems.push(...missing(withoutId(config[key]), withoutId(local[key]), key));
    } else {
      problems.push(...missing(config[key], local[key], key));
    }
  }
  // Migrations are applied in order: the same tags, in the same order.
  const tags = (list: unknown) => ((list ?? []) as Array<{ tag?: string }>).map((m) => m.tag).join(", ");
  if (config.migrations !== undefined && tags(local.migrations) !== tags(config.migrations)) {
    problems.push(`migrations: tags ${tags(config.migrations)} here, ${tags(local.migrations)} in local`);
  }
  return problems;
}

test("[env.local] has every binding, var and migration of wrangler.toml's top level", () => {
  const config = readToml();
  assert.ok((config.env as Table | undefined)?.local, "wrangler.toml has an [env.local]");
  // Sanity: the comparison covers what signoff binds, and the schema was read.
  const compared = notInherited();
  for (const key of ["durable_objects", "d1_databases", "vars", "migrations", "kv_namespaces", "r2_buckets"]) {
    assert.ok(compared.includes(key), `compares ${key}`);
  }
  assert.deepEqual(drift(config), []);
});

test("a binding, a var or a migration class missing from [env.local] is reported, so the test above can fail", () => {
  const config = readToml();
  const local = (config.env as Table).local as Table;

  const noD1 = structuredClone(config);
  delete ((noD1.env as Table).local as Table).d1_databases;
  assert.deepEqual(drift(noD1), ["d1_databases: missing"]);

  const newVar = structuredClone(config);
  (newVar.vars as Table).NEW_SETTING = "1";
  assert.deepEqual(drift(newVar), ["vars.NEW_SETTING: missing"]);

  const newObject = structuredClone(config);
  (newObject.durable_objects as { bindings: Table[] }).bindings.push({ name: "LIMITS", class_name: "Limiter" });
  assert.match(drift(newObject).join("\n"), /durable_objects\.bindings\[\d+\] .*LIMITS.*: no matching entry/);

  const otherDatabase = structuredClone(config);
  ((otherDatabase.d1_databases as Table[])[0] as Table).database_name = "signoff-audit-2";
  assert.match(drift(otherDatabase).join("\n"), /d1_databases\[0\] .*: no matching entry/);

  // The one difference allowed in a binding: the production database's id, which `npm run setup` writes.
  const realId = structuredClone(config);
  ((realId.d1_databases as Table[])[0] as Table).database_id = "6f1c2a4e-93b1-4d0e-8c55-0a9e3b7d2f10";
  assert.deepEqual(drift(realId), []);

  const newTag = structuredClone(config);
  (newTag.migrations as Table[]).push({ tag: "v3", new_sqlite_classes: ["Limiter"] });
  assert.match(drift(newTag).join("\n"), /migrations: tags v1, v2, v3 here, v1, v2 in local/);

  const newClass = structuredClone(config);
  ((newClass.migrations as Table[])[0]!.new_sqlite_classes as string[]).push("Limiter");
  assert.match(drift(newClass).join("\n"), /migrations\[0\] .*Limiter.*: no matching entry/);

  const newKv = structuredClone(config);
  newKv.kv_namespaces = [{ binding: "CACHE", id: "abc" }];
  assert.deepEqual(drift(newKv), ["kv_namespaces: missing"]);

  // What [env.local] may do: add bindings and vars of its own, give vars other values.
  assert.ok((local.vars as Table).LOCAL_MODE !== undefined && (config.vars as Table).LOCAL_MODE === undefined);
  assert.notEqual((local.vars as Table).SLACK_API_BASE, (config.vars as Table).SLACK_API_BASE);
});
