// The MCP server at /mcp (contract §4), driven by the official MCP SDK client over Streamable HTTP inside workerd:
// initialize, list the tools (exactly four, annotated truthfully), propose, approve with a signed Slack click, read
// the outcome. Invalid arguments are tool errors naming the field, never a 5xx; no tool, argument or sequence decides.

import { exports } from "cloudflare:workers";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CfWorkerJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/cfworker";
import { afterEach, describe, expect, it } from "vitest";
import { TOKENS } from "./fixtures.ts";
import { auditOf, BASE, call, click, createdThisTest, getProposal, proposalBody, settle } from "./helpers/api.ts";
import { expectError } from "./helpers/contract.ts";

type Json = Record<string, any>;

const clients: Client[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
});

/** An MCP client connected to the Worker with `token`, its requests sent through exports.default.fetch. */
async function connect(token: string = TOKENS.writer): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${BASE}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
    fetch: (url, init) => exports.default.fetch(new Request(url, init)),
  });
  const client = new Client(
    { name: "signoff-test", version: "1.0.0" },
    { jsonSchemaValidator: new CfWorkerJsonSchemaValidator() },
  );
  await client.connect(transport);
  clients.push(client);
  return client;
}

/** propose_action's arguments: the API's create body (the same fields), with `overrides`. */
const proposeArgs = (overrides: Json = {}): Json => proposalBody(overrides);

async function callTool(client: Client, name: string, args: Json = {}, options = {}): Promise<Json> {
  const result = (await client.callTool({ name, arguments: args }, undefined, options)) as Json;
  const id = result.structuredContent?.id;
  if (typeof id === "string") createdThisTest.add(id);
  return result;
}

const textOf = (result: Json) => result.content.map((c: Json) => c.text).join("\n");

describe("MCP server at /mcp", () => {
  it("initializes and lists exactly four tools, with truthful annotations and nothing that decides", async () => {
    const client = await connect();
    expect(client.getServerVersion()?.name).toBe("signoff");
    expect(client.getServerCapabilities()).toMatchObject({ tools: {} });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(["list_actions", "propose_action", "get_proposal", "cancel_proposal"]);
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    expect(byName.list_actions!.annotations).toMatchObject({ readOnlyHint: true });
    expect(byName.get_proposal!.annotations).toMatchObject({ readOnlyHint: true });
    expect(byName.propose_action!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false });
    expect(byName.cancel_proposal!.annotations).toMatchObject({ readOnlyHint: false });
    // What a model reads about blast_radius and rollback says what they must contain.
    const props = (byName.propose_action!.inputSchema as Json).properties;
    expect(props.blast_radius.description).toMatch(/what it touches/);
    expect(props.rollback.description).toMatch(/how to undo it/);
    // No tool and no argument names a decision.
    const everything = JSON.stringify(tools);
    expect(everything).not.toMatch(/"(approve|deny|escalate|decide)[a-z_]*"\s*:/i);
    expect(tools.map((t) => t.name).join(" ")).not.toMatch(/approve|deny|escalate|decide|click/);
    // Nor anything beside tools.
    await expect(client.listPrompts()).rejects.toThrow();
    await expect(client.listResources()).rejects.toThrow();
  });

  it("list_actions is GET /v1/actions for the key", async () => {
    const client = await connect(TOKENS.other);
    const result = await callTool(client, "list_actions");
    const api = await (await call("/v1/actions", { token: TOKENS.other })).json();
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual(api);
    expect(JSON.parse(textOf(result))).toEqual(api);
  });

  it("propose, approve with a signed Slack click, read the outcome", async () => {
    const client = await connect();
    const proposed = await callTool(client, "propose_action", proposeArgs());
    expect(proposed.isError).toBeFalsy();
    const p = proposed.structuredContent!;
    expect(p).toMatchObject({ status: "pending", approvals: 0, required_approvals: 1 });
    expect(p.id).toMatch(/^prp_[0-9a-f]{64}$/);
    expect(Date.parse(p.deadline) - Date.now()).toBeGreaterThan(590_000);
    const stored = await getProposal(p.id);
    expect(stored).toMatchObject({ created_by: "alertmanager", requested_by: "U0BOB", summary: proposeArgs().summary });
    await settle(p.id);
    expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
    await settle(p.id);
    const outcome = await callTool(client, "get_proposal", { id: p.id });
    expect(outcome.structuredContent).toMatchObject({
      id: p.id,
      status: "succeeded",
      approvals: 1,
      decision: { by: "slack:U0ALICE", outcome: "approved" },
      result: { status: "succeeded" },
    });
  });

  it("waits like ?wait=: holds until someone decides, with progress notifications when asked", async () => {
    const client = await connect();
    const p = (await callTool(client, "propose_action", proposeArgs({ action: { type: "db.failover", params: {} } })))
      .structuredContent!;
    await settle(p.id);
    const progress: Json[] = [];
    const waiting = callTool(
      client,
      "get_proposal",
      { id: p.id, wait_seconds: 30 },
      {
        onprogress: (n: Json) => progress.push(n),
      },
    );
    const notified = async (count: number) => {
      while (progress.length < count) await new Promise((resolve) => setTimeout(resolve, 10));
    };
    // The first notification says the wait began; db.failover needs two approvals: the first is progress, the
    // second ends the wait.
    await notified(1);
    expect(progress[0]!.message).toMatch(/^pending: 0 of 2 approvals, \d+ s left to decide$/);
    expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
    await notified(2);
    expect(progress[1]!.message).toMatch(/^pending: 1 of 2 approvals/);
    expect((await click("approve", p.id, "U0DAVE")).status).toBe(200);
    const result = await waiting;
    expect(["approved", "dispatched", "succeeded"]).toContain(result.structuredContent!.status);
    expect(progress.at(-1)!.message).toMatch(/^approved: 2 of 2 approvals/);
    expect(progress.every((n) => n.total === 30)).toBe(true);
    await settle(p.id);
  });

  it("propose_action with wait_seconds returns the status it held for; with nothing decided, still pending", async () => {
    const client = await connect();
    const started = Date.now();
    const result = await callTool(client, "propose_action", proposeArgs({ wait_seconds: 1 }));
    expect(result.structuredContent).toMatchObject({ status: "pending" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it("invalid arguments are tool errors naming the field, never a 5xx, and create nothing", async () => {
    const client = await connect();
    const cases: [Json, string][] = [
      [proposeArgs({ summary: 42 }), "summary"],
      [
        proposeArgs({ action: { type: "k8s.rollout_restart", params: { deployment: "API!" } } }),
        "action.params.deployment",
      ],
      [proposeArgs({ blast_radius: "   " }), "blast_radius"],
      [proposeArgs({ action: { type: "nope.never", params: {} } }), "action.type"],
      [proposeArgs({ ttl_seconds: 999_999 }), "ttl_seconds"],
      [proposeArgs({ wait_seconds: 61 }), "wait_seconds"],
      [{ ...proposeArgs(), rollback: undefined }, "rollback"],
    ];
    for (const [args, field] of cases) {
      const result = await callTool(client, "propose_action", args);
      expect(result.isError, JSON.stringify(args)).toBe(true);
      expect(textOf(result)).toContain(field);
    }
    const bad = await callTool(client, "get_proposal", { id: "prp_nope" });
    expect(bad.isError).toBe(true);
    expect(textOf(bad)).toContain("id");
    const missing = await callTool(client, "get_proposal", { id: `prp_${"0".repeat(64)}` });
    expect(missing.isError).toBe(true);
    expect(textOf(missing)).toMatch(/not_found/);
  });

  it("the same Bearer keys: 401 with WWW-Authenticate without one; a missing scope is a tool error", async () => {
    const initialize = {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } },
    };
    const headers = { accept: "application/json, text/event-stream" };
    const missing = await call("/mcp", { body: initialize, token: null, headers });
    await expectError(missing, 401);
    expect(missing.headers.get("www-authenticate")).toBe('Bearer realm="signoff"');
    const wrong = await call("/mcp", { body: initialize, token: "so_wrong_token_0000000000000000000000000", headers });
    await expectError(wrong, 401);
    expect(wrong.headers.get("www-authenticate")).toContain('error="invalid_token"');
    // The auditor key has neither proposals scope: refused before any JSON-RPC is read.
    await expectError(await call("/mcp", { body: initialize, token: TOKENS.auditor, headers }), 403);
    await expect(connect("so_wrong_token_0000000000000000000000000")).rejects.toThrow();
    // The reader key may list and read, not propose or cancel.
    const reader = await connect(TOKENS.reader);
    expect((await callTool(reader, "list_actions")).isError).toBeFalsy();
    const refused = await callTool(reader, "propose_action", proposeArgs());
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/lacks the proposals:write scope/);
    // GET and DELETE: stateless, no stream and no session.
    expect((await call("/mcp", { token: TOKENS.writer })).status).toBe(405);
  });

  it("cancel_proposal: the creating key only, pending only", async () => {
    const mine = await connect();
    const theirs = await connect(TOKENS.other);
    const p = (await callTool(mine, "propose_action", proposeArgs())).structuredContent!;
    const refused = await callTool(theirs, "cancel_proposal", { id: p.id });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/only the key that created a proposal may cancel it/);
    expect((await getProposal(p.id)).status).toBe("pending");
    const cancelled = await callTool(mine, "cancel_proposal", { id: p.id });
    expect(cancelled.structuredContent).toMatchObject({ status: "cancelled", decision: { by: "key:alertmanager" } });
    const again = await callTool(mine, "cancel_proposal", { id: p.id });
    expect(again.isError).toBe(true);
    expect(textOf(again)).toMatch(/wrong_state/);
  });

  it("no tool, argument or sequence decides: every call leaves proposals pending or cancelled", async () => {
    const client = await connect();
    const p = (await callTool(client, "propose_action", proposeArgs({ requested_by: "U0ALICE" }))).structuredContent!;
    // Extra arguments that would decide in other APIs are refused by the schema or ignored; none changes the status.
    const attempts: [string, Json][] = [
      ["propose_action", { ...proposeArgs(), approve: true, status: "approved", decision: { outcome: "approved" } }],
      ["propose_action", proposeArgs({ idempotency_key: "same", requested_by: "U0ALICE" })],
      ["propose_action", proposeArgs({ idempotency_key: "same", requested_by: "U0ALICE" })],
      ["get_proposal", { id: p.id, approve: true }],
      ["get_proposal", { id: p.id, wait_seconds: 1 }],
      ["list_actions", { approve: p.id }],
      ["cancel_proposal", { id: p.id, outcome: "approved" }],
    ];
    for (const [name, args] of attempts) {
      await callTool(client, name, args);
      expect(["pending", "cancelled"]).toContain((await getProposal(p.id)).status);
    }
    const events = await auditOf(p.id);
    expect(events.map((e) => e.type)).not.toContain("approval.recorded");
    expect(events.every((e) => e.actor === "key:alertmanager" || e.actor === "system")).toBe(true);
  });
});

describe("MCP propose_action and grouped cards", () => {
  it("passes group_key to the same creation path: kept on the proposal, and a bad one is a tool error naming it", async () => {
    const client = await connect();
    const proposed = await callTool(client, "propose_action", proposeArgs({ group_key: "incident-42" }));
    expect(proposed.isError).toBeFalsy();
    expect((await getProposal(proposed.structuredContent.id)).group_key).toBe("incident-42");
    const refused = await callTool(client, "propose_action", proposeArgs({ group_key: " padded " }));
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain("group_key");
  });
});
