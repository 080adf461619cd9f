// /mcp: the MCP server (Streamable HTTP, stateless) on the Hono app, for AI agents. The same Bearer API keys and
// scopes as the HTTP API: a missing or wrong key is a 401 with WWW-Authenticate before any JSON-RPC is read; a key
// without the scope a tool needs gets a tool error the model can read (src/mcp/tools.ts).
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { Hono } from "hono";
import { ApiError } from "../errors.ts";
import { mcpServer } from "../mcp/tools.ts";
import type { AppEnv } from "./http.ts";
import { MAX_BODY_BYTES, requireScope, withConfig } from "./middleware.ts";

export const mcpRoutes = new Hono<AppEnv>();

mcpRoutes.post("/", withConfig, requireScope("proposals:write", "proposals:read"), async (c) => {
  const { config, key } = c.var;
  // Stateless: no session id, a server and transport per request; a tool that waits answers on this request's
  // SSE stream (progress notifications, then the result), so no state needs to outlive it on any isolate.
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    maxRequestBodySize: MAX_BODY_BYTES,
  });
  await mcpServer({ config, key, ns: c.env.PROPOSALS }).connect(transport);
  return transport.handleRequest(c.req.raw);
});

// Stateless mode has no stream for the server to open on its own and no session to end: GET and DELETE are 405,
// which the MCP client expects of such a server.
mcpRoutes.on(["GET", "DELETE"], "/", (c) =>
  c.json(new ApiError(405, "method_not_allowed", "POST JSON-RPC to /mcp (stateless)").toBody(), 405, {
    allow: "POST",
  }),
);
