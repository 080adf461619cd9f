// loadConfig (SPEC 3): every input checked together, 503 `misconfigured` naming each field and no secret, cached.
import { env } from "cloudflare:workers";
import type { MockInstance } from "vitest";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ConfigEnv } from "../src/config/load.ts";
import { loadConfig } from "../src/config/load.ts";
import { ApiError } from "../src/errors.ts";
import { sha256Hex } from "../src/lib/crypto.ts";
import { AUDIT_PUBLIC_KEY, KEY_ENTRIES, POLICY, SECRETS, TOKENS } from "./fixtures.ts";

/** The bindings as loadConfig takes them (every input optional and unchecked). */
const testEnv: ConfigEnv = env;

async function goodEnv(): Promise<ConfigEnv> {
  const keys = await Promise.all(
    KEY_ENTRIES.map(async ({ token, ...entry }) => ({ ...entry, sha256: await sha256Hex(token) })),
  );
  return {
    ...SECRETS,
    POLICY,
    API_KEYS: JSON.stringify(keys),
    RUNNER_URL: "https://runner.internal/run",
  };
}

/** The ApiError loadConfig throws for `input`; fails the test when it loads. */
function refusal(input: ConfigEnv & { LOCAL_MODE?: string }): ApiError {
  try {
    loadConfig(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    return error as ApiError;
  }
  throw new Error("loadConfig accepted the configuration");
}

function fields(input: ConfigEnv): string[] {
  return refusal(input).details.map((d) => d.path);
}

describe("the test environment's own configuration", () => {
  it("loads, with every var and secret of SPEC 3", () => {
    const config = loadConfig(testEnv);
    expect(Object.keys(config.policy.actions).sort()).toEqual(Object.keys(POLICY.actions).sort());
    expect(config.apiKeys.map((k) => k.name)).toEqual(KEY_ENTRIES.map((k) => k.name));
    expect(config.slackSigningSecret).toBe(SECRETS.SLACK_SIGNING_SECRET);
    expect(config.slackBotToken).toBe(SECRETS.SLACK_BOT_TOKEN);
    expect(config.runnerSecret).toBe(SECRETS.RUNNER_SECRET);
    expect(config.eventsSecret).toBe(SECRETS.EVENTS_SECRET);
    expect(config.auditSigningKey).toBe(SECRETS.AUDIT_SIGNING_KEY);
    expect(config.runnerUrl).toBe(testEnv.RUNNER_URL);
    expect(config.slackApiBase).toBe(testEnv.SLACK_API_BASE);
    // The test config may tune dispatch (short timeouts keep tests fast); otherwise the defaults apply.
    expect(config.dispatchMaxAttempts).toBe(Number(testEnv.DISPATCH_MAX_ATTEMPTS ?? 8));
    expect(config.dispatchTimeoutMs).toBe(Number(testEnv.DISPATCH_TIMEOUT_MS ?? 10_000));
  });

  it("is parsed once per isolate, not per request", () => {
    const first = loadConfig(testEnv);
    expect(loadConfig(testEnv)).toBe(first);
    // A copy of the same inputs (a new env object) is still the same configuration.
    expect(loadConfig({ ...testEnv })).toBe(first);
    expect(loadConfig({ ...testEnv, DISPATCH_MAX_ATTEMPTS: "3" })).not.toBe(first);
    expect(loadConfig(testEnv)).toEqual(first);
  });

  it("recognises a [vars] table re-parsed into a new object as the same input", async () => {
    const base = await goodEnv();
    const first = loadConfig({ ...base, POLICY: structuredClone(POLICY) });
    expect(loadConfig({ ...base, POLICY: structuredClone(POLICY) })).toBe(first);
  });
});

describe("inputs as objects or as strings of JSON", () => {
  it("accepts POLICY and API_KEYS either way, with the same result", async () => {
    const base = await goodEnv();
    const asStrings = loadConfig({ ...base, POLICY: JSON.stringify(POLICY) });
    const asObjects = loadConfig({ ...base, API_KEYS: JSON.parse(base.API_KEYS as string) as unknown });
    expect(asObjects.policy).toEqual(asStrings.policy);
    expect(asObjects.apiKeys).toEqual(asStrings.apiKeys);
  });

  it("accepts string vars plain or JSON-quoted, numbers as numbers or strings", async () => {
    const base = await goodEnv();
    const config = loadConfig({
      ...base,
      RUNNER_URL: '"https://runner.internal/v2"',
      SLACK_API_BASE: "http://127.0.0.1:9999/slack/api/",
      DISPATCH_MAX_ATTEMPTS: 3,
      DISPATCH_TIMEOUT_MS: "2500",
    });
    expect(config.runnerUrl).toBe("https://runner.internal/v2");
    expect(config.slackApiBase).toBe("http://127.0.0.1:9999/slack/api");
    expect(config.dispatchMaxAttempts).toBe(3);
    expect(config.dispatchTimeoutMs).toBe(2500);
  });

  it("defaults SLACK_API_BASE to Slack's, dispatch to 8 attempts of 10 s", async () => {
    const config = loadConfig(await goodEnv());
    expect(config.slackApiBase).toBe("https://slack.com/api");
    expect(config.dispatchMaxAttempts).toBe(8);
    expect(config.dispatchTimeoutMs).toBe(10_000);
  });
});

describe("a bad configuration is a 503 naming every field (SPEC 3)", () => {
  let logged: MockInstance<typeof console.error>;
  beforeEach(() => {
    logged = vi.spyOn(console, "error").mockImplementation(() => {});
  });
  afterEach(() => {
    logged.mockRestore();
  });

  it("answers misconfigured with the count and the fields", async () => {
    const error = refusal({
      ...(await goodEnv()),
      RUNNER_SECRET: undefined,
      POLICY: { actions: { "k8s.x": { approvers: ["U0A1"], ttl_seconds: 900, max_ttl_seconds: 60 } } },
    });
    expect(error.status).toBe(503);
    expect(error.code).toBe("misconfigured");
    expect(error.message).toMatch(/^signoff is misconfigured: 3 problem\(s\) in POLICY, RUNNER_SECRET/);
    expect(error.toBody().error.details).toEqual([
      { path: 'POLICY.actions["k8s.x"].ttl_seconds', message: "900 is more than max_ttl_seconds (60)" },
      { path: 'POLICY.actions["k8s.x"].channel', message: expect.stringContaining("default_channel") },
      { path: "RUNNER_SECRET", message: "is required" },
    ]);
  });

  it("names the command that checks it: check-config before a deploy, with --env local in local mode", async () => {
    const bad = { ...(await goodEnv()), RUNNER_SECRET: undefined };
    expect(refusal(bad).message).toMatch(/; run `npm run check-config` before deploying$/);
    expect(refusal({ ...bad, LOCAL_MODE: "1" }).message).toMatch(/; run `npm run check-config -- --env local`$/);
  });

  it("requires every secret and RUNNER_URL", () => {
    expect(fields({ POLICY })).toEqual([
      "API_KEYS",
      "SLACK_SIGNING_SECRET",
      "SLACK_BOT_TOKEN",
      "RUNNER_SECRET",
      "EVENTS_SECRET",
      "RUNNER_URL",
      "AUDIT_SIGNING_KEY",
    ]);
    expect(refusal({ POLICY }).details.every((d) => d.message === "is required")).toBe(true);
  });

  it("requires AUDIT_SIGNING_KEY to be an Ed25519 private key, and says so when given the public one (SPEC 12)", async () => {
    const base = await goodEnv();
    const { AUDIT_SIGNING_KEY: _omitted, ...withoutKey } = base;
    expect(refusal(withoutKey).details).toEqual([{ path: "AUDIT_SIGNING_KEY", message: "is required" }]);
    expect(refusal({ ...base, AUDIT_SIGNING_KEY: AUDIT_PUBLIC_KEY }).details).toEqual([
      { path: "AUDIT_SIGNING_KEY", message: expect.stringMatching(/^is a public key \(auditpk_…\)/) },
    ]);
    const short = "auditsk_c2hvcnQ=";
    const error = refusal({ ...base, AUDIT_SIGNING_KEY: short });
    expect(error.details).toEqual([
      { path: "AUDIT_SIGNING_KEY", message: expect.stringContaining("32-byte Ed25519 private key") },
    ]);
    expect(JSON.stringify(error.toBody()) + error.message).not.toContain("c2hvcnQ");
    expect(fields({ ...base, AUDIT_SIGNING_KEY: SECRETS.RUNNER_SECRET })).toEqual(["AUDIT_SIGNING_KEY"]);
    expect(fields({ ...base, AUDIT_SIGNING_KEY: `${SECRETS.AUDIT_SIGNING_KEY}\n` })).toEqual(["AUDIT_SIGNING_KEY"]);
  });

  it("checks the shape of each secret without showing it", async () => {
    const bad = {
      SLACK_SIGNING_SECRET: "  signing-secret-with-spaces\n",
      SLACK_BOT_TOKEN: "xoxp-user-token-not-a-bot-0001",
      RUNNER_SECRET: "runner-secret-without-prefix-0001",
      EVENTS_SECRET: "whsec_c2hvcnQ=",
    };
    const error = refusal({ ...(await goodEnv()), ...bad });
    expect(error.details).toEqual([
      { path: "SLACK_SIGNING_SECRET", message: expect.stringContaining("whitespace") },
      { path: "SLACK_BOT_TOKEN", message: expect.stringContaining("xoxb-") },
      { path: "RUNNER_SECRET", message: expect.stringContaining("whsec_") },
      { path: "EVENTS_SECRET", message: "decodes to 5 bytes; at least 16 are needed" },
    ]);
    const shown = JSON.stringify(error.toBody()) + error.message;
    for (const value of Object.values(bad)) expect(shown).not.toContain(value.trim());
    expect(shown).not.toContain("c2hvcnQ");
  });

  it("refuses whsec_ that is not base64", async () => {
    expect(refusal({ ...(await goodEnv()), RUNNER_SECRET: "whsec_not*base64!!" }).details).toEqual([
      { path: "RUNNER_SECRET", message: expect.stringContaining("base64") },
    ]);
    expect(fields({ ...(await goodEnv()), RUNNER_SECRET: "whsec_" })).toEqual(["RUNNER_SECRET"]);
  });

  it("refuses the same secret for runner and events: proposers hold the events one", async () => {
    expect(refusal({ ...(await goodEnv()), EVENTS_SECRET: SECRETS.RUNNER_SECRET }).details).toEqual([
      { path: "EVENTS_SECRET", message: expect.stringContaining("differ from RUNNER_SECRET") },
    ]);
  });

  it("never shows API_KEYS content, even when it is broken", async () => {
    const apiKeys = `[{"name":"x","sha256":"${TOKENS.writer}"`;
    const error = refusal({ ...(await goodEnv()), API_KEYS: apiKeys });
    expect(error.details).toEqual([{ path: "API_KEYS", message: expect.stringMatching(/^is not valid JSON/) }]);
    expect(JSON.stringify(error.toBody())).not.toContain(TOKENS.writer);
  });

  it("refuses URLs that are not absolute http(s) or carry credentials", async () => {
    const base = await goodEnv();
    expect(fields({ ...base, RUNNER_URL: "runner.internal/run" })).toEqual(["RUNNER_URL"]);
    expect(fields({ ...base, RUNNER_URL: "ftp://runner.internal/run" })).toEqual(["RUNNER_URL"]);
    expect(fields({ ...base, RUNNER_URL: "https://u:p@runner.internal/run" })).toEqual(["RUNNER_URL"]);
    expect(fields({ ...base, SLACK_API_BASE: "slack" })).toEqual(["SLACK_API_BASE"]);
  });

  it("refuses dispatch tuning out of range", async () => {
    const base = await goodEnv();
    expect(fields({ ...base, DISPATCH_MAX_ATTEMPTS: 0 })).toEqual(["DISPATCH_MAX_ATTEMPTS"]);
    expect(fields({ ...base, DISPATCH_MAX_ATTEMPTS: "eight" })).toEqual(["DISPATCH_MAX_ATTEMPTS"]);
    expect(fields({ ...base, DISPATCH_TIMEOUT_MS: 2.5 })).toEqual(["DISPATCH_TIMEOUT_MS"]);
    expect(fields({ ...base, DISPATCH_TIMEOUT_MS: 10_000_000 })).toEqual(["DISPATCH_TIMEOUT_MS"]);
  });

  it("keeps refusing, with a fresh error each time, until the configuration changes", async () => {
    const bad = { ...(await goodEnv()), RUNNER_URL: undefined };
    const first = refusal(bad);
    const second = refusal({ ...bad });
    expect(second).not.toBe(first);
    expect(second.details).toEqual(first.details);
    // Logged for `wrangler tail` once per distinct configuration, not once per request.
    expect(logged).toHaveBeenCalledTimes(1);
    expect(String(logged.mock.calls[0]![0])).toContain("RUNNER_URL");
    expect(loadConfig({ ...bad, RUNNER_URL: "https://runner.internal/run" }).runnerUrl).toBe(
      "https://runner.internal/run",
    );
  });
});
