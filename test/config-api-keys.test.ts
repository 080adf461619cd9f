// API_KEYS (SPEC 3) and Bearer auth (SPEC 4): parsing, constant-time matching, scopes, action patterns, callbacks.
import { describe, expect, it } from "vitest";
import type { ApiKey } from "../src/config/api-keys.ts";
import {
  authenticate,
  callbackAllowed,
  hasScope,
  keyAllowsAction,
  newApiKey,
  parseApiKeys,
  TOKEN_PATTERN,
} from "../src/config/api-keys.ts";
import { ConfigError } from "../src/config/problems.ts";
import type { ErrorDetail } from "../src/errors.ts";
import { sha256Hex } from "../src/lib/crypto.ts";
import { KEY_ENTRIES, TOKENS } from "./fixtures.ts";

const HASH_A = "a".repeat(64);
const HASH_B = "b".repeat(64);

async function fixtureKeys(): Promise<ApiKey[]> {
  return parseApiKeys(
    await Promise.all(KEY_ENTRIES.map(async ({ token, ...entry }) => ({ ...entry, sha256: await sha256Hex(token) }))),
  );
}

function problems(input: unknown): ErrorDetail[] {
  try {
    parseApiKeys(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).details;
  }
  throw new Error("parseApiKeys accepted the input");
}

function key(overrides: Partial<ApiKey> = {}): ApiKey {
  return parseApiKeys([{ name: "k", sha256: HASH_A, scopes: ["proposals:write"], ...overrides }])[0]!;
}

describe("parseApiKeys", () => {
  it("applies defaults: no actions, no callback hosts", () => {
    expect(parseApiKeys([{ name: "ops", sha256: HASH_A, scopes: ["audit:read"] }])).toEqual([
      { name: "ops", sha256: HASH_A, scopes: ["audit:read"], actions: [], callback_hosts: [] },
    ]);
  });

  it("accepts an array or a string of JSON, with the same result", async () => {
    const keys = await fixtureKeys();
    expect(parseApiKeys(JSON.stringify(keys))).toEqual(keys);
    expect(keys.map((k) => k.name)).toEqual(["alertmanager", "dashboard", "auditor", "ci"]);
  });

  it("lowercases callback hosts and drops IPv6 brackets", () => {
    expect(key({ callback_hosts: ["Hooks.Example.COM", "[::1]"] }).callback_hosts).toEqual([
      "hooks.example.com",
      "::1",
    ]);
  });

  it("refuses duplicate names and duplicate hashes, at the later entry", () => {
    expect(
      problems([
        { name: "a", sha256: HASH_A, scopes: ["audit:read"] },
        { name: "a", sha256: HASH_B, scopes: ["audit:read"] },
        { name: "c", sha256: HASH_A, scopes: ["audit:read"] },
      ]),
    ).toEqual([
      { path: "API_KEYS[1].name", message: expect.stringContaining("unique") },
      { path: "API_KEYS[2].sha256", message: expect.stringContaining("own token") },
    ]);
  });

  it("refuses a hash that is not 64 lowercase hex digits, and a token pasted in its place", () => {
    const details = problems([
      { name: "a", sha256: HASH_A.toUpperCase(), scopes: ["audit:read"] },
      { name: "b", sha256: TOKENS.writer, scopes: ["audit:read"] },
    ]);
    expect(details).toEqual([
      { path: "API_KEYS[0].sha256", message: expect.stringContaining("64 lowercase hex") },
      { path: "API_KEYS[1].sha256", message: expect.stringContaining("not its SHA-256") },
    ]);
    // API_KEYS is a secret: nothing from it is repeated.
    expect(JSON.stringify(details)).not.toContain(TOKENS.writer);
  });

  it("refuses unknown scopes, empty scopes, bad action patterns and hosts with scheme or port", () => {
    expect(
      problems([
        { name: "a", sha256: HASH_A, scopes: ["proposals:delete"] },
        { name: "b", sha256: HASH_B, scopes: [], actions: ["k8s.*.x", "K8S", "k8s*"] },
        {
          name: "c",
          sha256: "c".repeat(64),
          scopes: ["audit:read"],
          callback_hosts: ["https://x.com", "x.com:443", "*.x.com"],
        },
      ]).map((d) => d.path),
    ).toEqual([
      "API_KEYS[0].scopes[0]",
      "API_KEYS[1].scopes",
      "API_KEYS[1].actions[0]",
      "API_KEYS[1].actions[1]",
      "API_KEYS[1].actions[2]",
      "API_KEYS[2].callback_hosts[0]",
      "API_KEYS[2].callback_hosts[1]",
      "API_KEYS[2].callback_hosts[2]",
    ]);
  });

  it("refuses unknown fields, a non-array and bad JSON", () => {
    expect(problems([{ name: "a", sha256: HASH_A, scopes: ["audit:read"], scope: [] }])).toEqual([
      { path: "API_KEYS[0].scope", message: 'unknown field (did you mean "scopes"?)' },
    ]);
    // A misspelt required field is one problem, not "unknown field" plus "is required": it leads (issue 13).
    expect(problems([{ name: "a", sha256: HASH_A, scope: ["audit:read"], actions: ["x.*"] }])).toEqual([
      { path: "API_KEYS[0].scope", message: 'unknown field (did you mean "scopes"? "scopes" is required)' },
    ]);
    expect(problems({ name: "a" })).toEqual([{ path: "API_KEYS", message: expect.stringContaining("array") }]);
    expect(problems("[{")).toEqual([{ path: "API_KEYS", message: expect.stringMatching(/^is not valid JSON/) }]);
    expect(problems(undefined)).toEqual([{ path: "API_KEYS", message: "is required" }]);
  });

  it("never repeats a value from the input in a message", () => {
    const secretish = "so_do_not_print_me_0000000000000000000000000";
    const details = problems([
      { name: secretish, sha256: secretish, scopes: [secretish], actions: [secretish], callback_hosts: [secretish] },
    ]);
    expect(details.length).toBeGreaterThan(0);
    expect(details.map((d) => d.message).join("\n")).not.toContain("do_not_print");
  });
});

describe("authenticate (SPEC 4: Authorization: Bearer <token>)", () => {
  it("finds the key whose hash matches the token", async () => {
    const keys = await fixtureKeys();
    expect((await authenticate(keys, `Bearer ${TOKENS.writer}`))?.name).toBe("alertmanager");
    expect((await authenticate(keys, `Bearer ${TOKENS.other}`))?.name).toBe("ci");
    expect((await authenticate(keys, `bearer ${TOKENS.reader}`))?.name).toBe("dashboard");
  });

  it("refuses a wrong token, no header, a malformed header and other schemes", async () => {
    const keys = await fixtureKeys();
    for (const header of [
      `Bearer ${TOKENS.writer}x`,
      `Bearer ${TOKENS.writer.slice(0, -1)}`,
      null,
      undefined,
      "",
      "Bearer",
      "Bearer ",
      TOKENS.writer,
      `Bearer ${TOKENS.writer} ${TOKENS.reader}`,
      `Basic ${btoa(`alertmanager:${TOKENS.writer}`)}`,
      `Token ${TOKENS.writer}`,
      `Bearer ${"a".repeat(600)}`,
    ]) {
      expect(await authenticate(keys, header), String(header)).toBeNull();
    }
  });

  it("knows nobody when there are no keys", async () => {
    expect(await authenticate([], `Bearer ${TOKENS.writer}`)).toBeNull();
  });

  it("compares against every key rather than stopping at the match", async () => {
    const keys = await fixtureKeys();
    let reads = 0;
    // Count reads of `sha256`: an early exit would read only up to the matching (first) key.
    const watched = keys.map((k) => ({
      ...k,
      get sha256() {
        reads++;
        return k.sha256;
      },
    }));
    expect((await authenticate(watched, `Bearer ${TOKENS.writer}`))?.name).toBe("alertmanager");
    expect(reads).toBe(keys.length);
  });
});

describe("scopes and action patterns", () => {
  it("hasScope", async () => {
    const [writer, reader] = await fixtureKeys();
    expect(hasScope(writer!, "proposals:write")).toBe(true);
    expect(hasScope(reader!, "proposals:write")).toBe(false);
    expect(hasScope(reader!, "proposals:read")).toBe(true);
  });

  it("exact names match only themselves", () => {
    const k = key({ actions: ["k8s.rollout_restart"] });
    expect(keyAllowsAction(k, "k8s.rollout_restart")).toBe(true);
    expect(keyAllowsAction(k, "k8s.rollout_restart2")).toBe(false);
    expect(keyAllowsAction(k, "k8s")).toBe(false);
  });

  it("prefix.* matches every type under the prefix, not the prefix itself or look-alikes", () => {
    const k = key({ actions: ["k8s.*"] });
    expect(keyAllowsAction(k, "k8s.rollout_restart")).toBe(true);
    expect(keyAllowsAction(k, "k8s.a.b")).toBe(true);
    expect(keyAllowsAction(k, "k8s.")).toBe(false);
    expect(keyAllowsAction(k, "k8s")).toBe(false);
    expect(keyAllowsAction(k, "k8sx.rollout")).toBe(false);
    expect(keyAllowsAction(k, "db.failover")).toBe(false);
  });

  it("* matches everything; no actions match nothing", () => {
    expect(keyAllowsAction(key({ actions: ["*"] }), "anything.at_all")).toBe(true);
    expect(keyAllowsAction(key({ actions: [] }), "k8s.rollout_restart")).toBe(false);
  });
});

describe("callbackAllowed (SPEC 3: callback host must be listed)", () => {
  const k = key({ callback_hosts: ["hooks.example.com", "127.0.0.1", "localhost", "::1", "plain.example.com"] });

  it("allows https to a listed host, any port and path, host case-insensitive", () => {
    expect(callbackAllowed(k, "https://hooks.example.com/signoff")).toEqual({ ok: true });
    expect(callbackAllowed(k, "https://HOOKS.example.com:8443/x?y=1")).toEqual({ ok: true });
  });

  it("allows plain http only to loopback hosts", () => {
    expect(callbackAllowed(k, "http://127.0.0.1:8788/cb")).toEqual({ ok: true });
    expect(callbackAllowed(k, "http://localhost/cb")).toEqual({ ok: true });
    expect(callbackAllowed(k, "http://[::1]:9000/cb")).toEqual({ ok: true });
    expect(callbackAllowed(k, "http://plain.example.com/cb")).toEqual({
      ok: false,
      message: expect.stringContaining("https"),
    });
  });

  it("refuses a host not listed, even a subdomain of one", () => {
    const refused = callbackAllowed(k, "https://evil.example.net/cb");
    expect(refused).toEqual({ ok: false, message: expect.stringContaining("callback_hosts") });
    expect(callbackAllowed(k, "https://x.hooks.example.com/cb").ok).toBe(false);
    expect(callbackAllowed(key(), "https://hooks.example.com/cb").ok).toBe(false);
  });

  it("refuses credentials in the URL, other schemes and non-URLs", () => {
    expect(callbackAllowed(k, "https://user:pw@hooks.example.com/cb")).toEqual({
      ok: false,
      message: expect.stringContaining("credentials"),
    });
    expect(callbackAllowed(k, "https://user@hooks.example.com/cb").ok).toBe(false);
    expect(callbackAllowed(k, "ftp://hooks.example.com/cb").ok).toBe(false);
    expect(callbackAllowed(k, "javascript:alert(1)").ok).toBe(false);
    expect(callbackAllowed(k, "/relative").ok).toBe(false);
  });
});

describe("newApiKey", () => {
  it("mints a so_ token whose hash is the entry's and which then authenticates", async () => {
    const { token, entry } = await newApiKey("alertmanager", ["proposals:write"], ["k8s.*"], ["Hooks.Example.com"]);
    expect(token).toMatch(TOKEN_PATTERN);
    expect(entry).toEqual({
      name: "alertmanager",
      sha256: await sha256Hex(token),
      scopes: ["proposals:write"],
      actions: ["k8s.*"],
      callback_hosts: ["hooks.example.com"],
    });
    const keys = parseApiKeys([entry]);
    expect(await authenticate(keys, `Bearer ${token}`)).toEqual(entry);
  });

  it("mints a different token every time", async () => {
    const a = await newApiKey("a", ["audit:read"], [], []);
    const b = await newApiKey("a", ["audit:read"], [], []);
    expect(a.token).not.toBe(b.token);
  });

  it("refuses what parseApiKeys would refuse", async () => {
    await expect(newApiKey("bad name", ["proposals:nope"], [], [])).rejects.toMatchObject({
      details: [
        { path: "key.name", message: expect.any(String) },
        { path: "key.scopes[0]", message: expect.any(String) },
      ],
    });
  });
});
