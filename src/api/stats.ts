// GET /v1/stats: time to decision per action over a window, and GET /metrics: the same log's counters and
// decision-time histogram for Prometheus (issue 16). Both read the D1 audit log only; scope audit:read.
import { Hono } from "hono";
import { ApiError } from "../errors.ts";
import { actionStats } from "../stats/compute.ts";
import { PROMETHEUS_CONTENT_TYPE, renderMetrics } from "../stats/prometheus.ts";
import { counterRows, decisionHistogram, statsRows } from "../stats/store.ts";
import { timelines } from "../stats/timeline.ts";
import { type AppEnv, queryOf, validate } from "./http.ts";
import { requireScope, withConfig } from "./middleware.ts";
import { MetricsParams, StatsQueryParams } from "./schemas.ts";

/** The window when `since` is not given: the 30 days before `until`. */
export const DEFAULT_STATS_DAYS = 30;

export const statsRoutes = new Hono<AppEnv>();

statsRoutes.get("/", withConfig, requireScope("audit:read"), async (c) => {
  const q = validate(StatsQueryParams, queryOf(c), "query");
  const until = q.until ?? Date.now();
  const since = q.since ?? until - DEFAULT_STATS_DAYS * 86_400_000;
  if (since >= until) {
    throw new ApiError(400, "invalid_request", "query is invalid: since must be before until", [
      { path: "since", message: "must be before until" },
    ]);
  }
  const { rows, truncated } = await statsRows(c.env.AUDIT_DB, {
    since_ms: since,
    until_ms: until,
    action: q.action ?? null,
  });
  return c.json({
    since: new Date(since).toISOString(),
    until: new Date(until).toISOString(),
    truncated,
    actions: actionStats(timelines(rows)),
  });
});

export const metricsRoutes = new Hono<AppEnv>();

metricsRoutes.get("/", withConfig, requireScope("audit:read"), async (c) => {
  validate(MetricsParams, queryOf(c), "query");
  const [counters, histogram] = await Promise.all([counterRows(c.env.AUDIT_DB), decisionHistogram(c.env.AUDIT_DB)]);
  return c.body(renderMetrics(counters, histogram), 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
});
