// SPEC 5: Slack API answers are classified — 429 honours Retry-After, 5xx/network/timeouts retry, the rest fail — and errors never leak the token.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { retryAfterMs } from "../src/lib/retry.ts";
import { callSlack, type SlackCallResult } from "../src/slack/web-api.ts";
import { peer } from "./peer/client.ts";

const base = () => env.SLACK_API_BASE;
const TOKEN = "xoxb-secret-test-token-must-never-leak-0123456789";
const path = (method: string) => `/slack/api/${method}`;

function errorOf(result: SlackCallResult): string {
  return result.kind === "ok" ? "" : result.error;
}

function expectNoLeak(result: SlackCallResult, ...secrets: string[]) {
  const error = errorOf(result);
  for (const secret of [TOKEN, "xoxb-", ...secrets]) expect(error).not.toContain(secret);
}

describe("callSlack: success", () => {
  it("POSTs JSON with the bot token as a Bearer header and returns Slack's data", async () => {
    const result = await callSlack(base(), TOKEN, "chat.postMessage", {
      channel: "C0INCIDENT",
      text: "hi",
      blocks: [{ type: "divider" }],
    });
    expect(result.kind).toBe("ok");
    expect(result.kind === "ok" ? result.data : null).toMatchObject({ ok: true, channel: "C0INCIDENT" });
    expect(result.kind === "ok" ? typeof result.data.ts : null).toBe("string");

    const [request, ...more] = await peer.requests(path("chat.postMessage"));
    expect(more).toEqual([]);
    expect(request?.method).toBe("POST");
    expect(request?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(request?.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(JSON.parse(request?.body ?? "")).toEqual({
      channel: "C0INCIDENT",
      text: "hi",
      blocks: [{ type: "divider" }],
    });
    expect(request?.body).not.toContain(TOKEN);
  });

  it("sends usergroups.users.list form-encoded, since Slack refuses JSON for it", async () => {
    const result = await callSlack(base(), TOKEN, "usergroups.users.list", {
      usergroup: "S0ONCALL",
      include_disabled: false,
    });
    expect(result).toEqual({ kind: "ok", data: { ok: true, users: ["U0BOB", "U0OSCAR"] } });
    const [request] = await peer.requests(path("usergroups.users.list"));
    expect(request?.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(Object.fromEntries(new URLSearchParams(request?.body))).toEqual({
      usergroup: "S0ONCALL",
      include_disabled: "false",
    });
    expect(request?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it("tolerates a trailing slash on the base URL", async () => {
    expect((await callSlack(`${base()}/`, TOKEN, "chat.update", { channel: "C1", ts: "1.2" })).kind).toBe("ok");
    expect(await peer.requests(path("chat.update"))).toHaveLength(1);
  });
});

describe("callSlack: Slack says no (failed, not retried)", () => {
  it("ok:false with an error code fails with that code", async () => {
    await peer.script(path("chat.postMessage"), [{ body: { ok: false, error: "channel_not_found" } }]);
    const result = await callSlack(base(), TOKEN, "chat.postMessage", { channel: "C0NOPE", text: "x" });
    expect(result).toEqual({ kind: "failed", error: "chat.postMessage: channel_not_found" });
  });

  it("ok:false with invalid_auth fails (a bad token is not fixed by retrying)", async () => {
    await peer.script(path("chat.update"), [{ body: { ok: false, error: "invalid_auth" } }]);
    expect(await callSlack(base(), TOKEN, "chat.update", {})).toEqual({
      kind: "failed",
      error: "chat.update: invalid_auth",
    });
  });

  it("other 4xx fail with the status and Slack's code when there is one", async () => {
    await peer.script(path("views.open"), [
      { status: 400, body: { ok: false, error: "invalid_arguments" } },
      { status: 404, headers: { "content-type": "text/html" }, body: `<html>not found ${TOKEN}</html>` },
      { status: 403, body: { ok: false, error: `leaked ${TOKEN}` } },
    ]);
    const bad = await callSlack(base(), TOKEN, "views.open", {});
    const notFound = await callSlack(base(), TOKEN, "views.open", {});
    const forbidden = await callSlack(base(), TOKEN, "views.open", {});
    expect(bad).toEqual({ kind: "failed", error: "views.open: HTTP 400 invalid_arguments" });
    expect(notFound).toEqual({ kind: "failed", error: "views.open: HTTP 404" });
    expect(forbidden).toEqual({ kind: "failed", error: "views.open: HTTP 403" });
    for (const result of [bad, notFound, forbidden]) expectNoLeak(result, "<html>", "leaked");
  });

  it("a 200 that is not Slack's JSON fails without quoting it", async () => {
    await peer.script(path("chat.postMessage"), [
      { headers: { "content-type": "text/plain" }, body: `gateway says ${TOKEN}` },
    ]);
    const result = await callSlack(base(), TOKEN, "chat.postMessage", {});
    expect(result.kind).toBe("failed");
    expectNoLeak(result, "gateway says");
  });

  it("never repeats an error 'code' that is not one (it could carry anything)", async () => {
    await peer.script(path("chat.postMessage"), [{ body: { ok: false, error: `bad token ${TOKEN} <!channel>` } }]);
    const result = await callSlack(base(), TOKEN, "chat.postMessage", {});
    expect(result).toEqual({ kind: "failed", error: "chat.postMessage: ok:false without an error code" });
  });

  it("refuses a malformed method name without calling anything", async () => {
    const result = await callSlack(base(), TOKEN, "../__peer/reset", {});
    expect(result.kind).toBe("failed");
    expect(await peer.requests("/")).toEqual([]);
  });
});

describe("callSlack: try again (retry)", () => {
  it("429 honours Retry-After in seconds", async () => {
    await peer.script(path("chat.postMessage"), [
      { status: 429, headers: { "retry-after": "7" }, body: { ok: false, error: "ratelimited" } },
    ]);
    const result = await callSlack(base(), TOKEN, "chat.postMessage", { channel: "C1", text: "x" });
    expect(result).toEqual({ kind: "retry", afterMs: 7000, error: "chat.postMessage: HTTP 429 rate limited" });
  });

  it("429 without Retry-After leaves the delay to the caller's backoff", async () => {
    await peer.script(path("chat.postMessage"), [{ status: 429, body: {} }]);
    const result = await callSlack(base(), TOKEN, "chat.postMessage", {});
    expect(result).toMatchObject({ kind: "retry", afterMs: null });
  });

  it("200 with ok:false ratelimited also honours Retry-After", async () => {
    await peer.script(path("chat.update"), [
      { headers: { "retry-after": "3" }, body: { ok: false, error: "ratelimited" } },
    ]);
    expect(await callSlack(base(), TOKEN, "chat.update", {})).toEqual({
      kind: "retry",
      afterMs: 3000,
      error: "chat.update: ratelimited",
    });
  });

  it("transient Slack errors (internal_error, service_unavailable) are retried", async () => {
    await peer.script(path("chat.update"), [
      { body: { ok: false, error: "internal_error" } },
      { body: { ok: false, error: "service_unavailable" } },
    ]);
    expect(await callSlack(base(), TOKEN, "chat.update", {})).toMatchObject({ kind: "retry", afterMs: null });
    expect(await callSlack(base(), TOKEN, "chat.update", {})).toMatchObject({ kind: "retry", afterMs: null });
  });

  it("408 is retried and a 503's Retry-After is honoured: the rule every outbound call shares", async () => {
    await peer.script(path("chat.update"), [
      { status: 408, body: {} },
      { status: 503, headers: { "retry-after": "5" }, body: {} },
    ]);
    expect(await callSlack(base(), TOKEN, "chat.update", {})).toEqual({
      kind: "retry",
      afterMs: null,
      error: "chat.update: HTTP 408",
    });
    expect(await callSlack(base(), TOKEN, "chat.update", {})).toEqual({
      kind: "retry",
      afterMs: 5000,
      error: "chat.update: HTTP 503",
    });
  });

  it.each([500, 502, 503, 504])("HTTP %i is retried with backoff, without quoting the body", async (status) => {
    await peer.script(path("chat.postMessage"), [{ status, body: { ok: false, error: "fatal_error", echo: TOKEN } }]);
    const result = await callSlack(base(), TOKEN, "chat.postMessage", {});
    expect(result).toEqual({ kind: "retry", afterMs: null, error: `chat.postMessage: HTTP ${status}` });
  });

  // workerd logs "Uncaught (in promise) … Network connection lost" for a dropped connection even
  // when the fetch rejection is caught (a bare try/await fetch does the same); it is not a failure.
  it("a dropped connection is a network error, retried", async () => {
    await peer.script(path("chat.postMessage"), [{ destroy: true }]);
    const result = await callSlack(base(), TOKEN, "chat.postMessage", { channel: "C1" });
    expect(result.kind).toBe("retry");
    expect(result).toMatchObject({ afterMs: null });
    expect(errorOf(result)).toMatch(/^chat\.postMessage: network error/);
    expectNoLeak(result);
  });

  it("a hanging Slack times out and is retried", async () => {
    await peer.script(path("chat.postMessage"), [{ delay_ms: 1500, body: { ok: true } }]);
    const started = Date.now();
    const result = await callSlack(base(), TOKEN, "chat.postMessage", {}, fetch, 100);
    expect(Date.now() - started).toBeLessThan(1400);
    expect(result).toEqual({ kind: "retry", afterMs: null, error: "chat.postMessage: timed out after 100 ms" });
  });

  it("an unreachable base is a network error, retried", async () => {
    const result = await callSlack("http://127.0.0.1:9/api", TOKEN, "chat.postMessage", {}, fetch, 2000);
    expect(result).toMatchObject({ kind: "retry", afterMs: null });
    expectNoLeak(result, "127.0.0.1");
  });

  it("a fetch that throws with the token in its message does not leak it", async () => {
    const leaky = (async () => {
      throw new TypeError(`connect failed with Authorization: Bearer ${TOKEN}`);
    }) as typeof fetch;
    const result = await callSlack(base(), TOKEN, "chat.postMessage", {}, leaky);
    expect(result).toEqual({ kind: "retry", afterMs: null, error: "chat.postMessage: network error (TypeError)" });
  });
});

describe("retryAfterMs", () => {
  it("reads seconds and HTTP dates, and ignores nonsense", () => {
    const now = Date.parse("2026-03-01T12:00:00Z");
    expect(retryAfterMs("30", now)).toBe(30_000);
    expect(retryAfterMs(" 0 ", now)).toBe(0);
    expect(retryAfterMs("Sun, 01 Mar 2026 12:00:10 GMT", now)).toBe(10_000);
    expect(retryAfterMs("Sun, 01 Mar 2026 11:00:00 GMT", now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeNull();
    expect(retryAfterMs("-5", now)).toBeNull();
    expect(retryAfterMs(null, now)).toBeNull();
  });
});
