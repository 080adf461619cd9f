// The Hono app: mounts every route group and turns errors into SPEC 4's JSON shape.
import { Hono } from "hono";
import pkg from "../package.json";
import { actionRoutes } from "./api/actions.ts";
import { alertmanagerRoutes } from "./api/alertmanager.ts";
import { auditRoutes } from "./api/audit.ts";
import type { AppEnv } from "./api/http.ts";
import { keyRoutes } from "./api/keys.ts";
import { mcpRoutes } from "./api/mcp.ts";
import { withConfig } from "./api/middleware.ts";
import { openApiDocument } from "./api/openapi.ts";
import { proposalRoutes } from "./api/proposals.ts";
import { resultRoutes } from "./api/results.ts";
import { metricsRoutes, statsRoutes } from "./api/stats.ts";
import { ApiError } from "./errors.ts";
import { linkRoutes } from "./links/routes.ts";
import { slackEventRoutes } from "./slack/events.ts";
import { slackRoutes } from "./slack/interactions.ts";

export const VERSION: string = pkg.version;

export function buildApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  // withConfig: a bad configuration answers 503 misconfigured, naming the fields.
  app.get("/healthz", withConfig, (c) => c.json({ ok: true, version: VERSION }));
  app.get("/openapi.json", (c) => c.json(openApiDocument()));
  app.route("/v1/proposals", resultRoutes);
  app.route("/v1/proposals", proposalRoutes);
  app.route("/v1/actions", actionRoutes);
  app.route("/v1/adapters/alertmanager", alertmanagerRoutes);
  app.route("/v1/audit", auditRoutes);
  app.route("/v1/keys", keyRoutes);
  app.route("/v1/stats", statsRoutes);
  app.route("/metrics", metricsRoutes);
  app.route("/mcp", mcpRoutes);
  app.route("/slack", slackRoutes);
  app.route("/slack", slackEventRoutes);
  app.route("/l", linkRoutes);

  app.notFound((c) =>
    c.json(new ApiError(404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`).toBody(), 404),
  );
  app.onError((error, c) => {
    if (error instanceof ApiError) return c.json(error.toBody(), error.status, error.headers);
    // Anything else is our fault: logged here, never described to the caller.
    console.error(`unhandled error on ${c.req.method} ${new URL(c.req.url).pathname}:`, error);
    return c.json(new ApiError(503, "internal", "internal error").toBody(), 500);
  });
  return app;
}
