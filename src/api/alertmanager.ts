// POST /v1/adapters/alertmanager: Alertmanager's webhook (payload version 4). Each firing alert a policy route matches
// becomes a proposal through the same creation path as POST /v1/proposals, under an Idempotency-Key from its
// fingerprint and start, so a re-sent group posts no second card; a resolved alert cancels its pending proposal.
// The door proposes and cancels its own proposals, as its key may; it never decides.
import { createHash } from "node:crypto";
import { Hono } from "hono";
import { type AlertFields, renderRoute, routeFor } from "../config/alert-routes.ts";
import { ApiError } from "../errors.ts";
import { idempotentObjectId, publicId } from "../proposal/ids.ts";
import { proposalStubAt } from "../proposal/stub.ts";
import { type AppEnv, bodyText, parseJson, validate } from "./http.ts";
import { jsonBody, requireScope, withConfig } from "./middleware.ts";
import { type Proposer, propose } from "./propose.ts";
import { ALERT_OUTCOMES, AlertmanagerPayload, type AlertmanagerResponse } from "./schemas.ts";

type Alert = AlertmanagerPayload["alerts"][number];
type AlertResult = AlertmanagerResponse["alerts"][number] & { retry?: boolean };

/** The decision's reason on a proposal its alert's resolution cancelled: the card and the audit log show it. */
export const RESOLVED_REASON = "alert resolved before anyone decided";

/** How long Alertmanager should wait before re-sending a group one of whose alerts met a fault (Slack unreachable). */
const RETRY_AFTER_SECONDS = 30;

/** One alert instance, one proposal: Alertmanager keeps fingerprint and startsAt for its firing and resolved sends. */
export function alertIdempotencyKey(alert: Pick<Alert, "fingerprint" | "startsAt">): string {
  return `alertmanager:${alert.fingerprint}:${alert.startsAt}`;
}

/**
 * The group_key of a route with `group: true`: Alertmanager's group, hashed (its groupKey can be far longer than a
 * group_key's 64 characters), so the alerts Alertmanager sends as one group share one card (docs/grouping.md).
 */
export function alertGroupKey(groupKey: string): string {
  return `alertmanager:${createHash("sha256").update(groupKey).digest("hex").slice(0, 32)}`;
}

export const alertmanagerRoutes = new Hono<AppEnv>();

alertmanagerRoutes.post("/", withConfig, requireScope("proposals:write"), jsonBody, async (c) => {
  const { config, key } = c.var;
  const payload = validate(AlertmanagerPayload, parseJson(await bodyText(c)), "body");
  const proposer: Proposer = { config, key, ns: c.env.PROPOSALS };
  // One at a time, in the payload's order: a group is a handful of alerts, and each answer is the DO's own.
  const results: AlertResult[] = [];
  for (const alert of payload.alerts) results.push(await handle(proposer, payload, alert));
  const counts = Object.fromEntries(
    ALERT_OUTCOMES.map((o) => [o, results.filter((r) => r.outcome === o).length]),
  ) as AlertmanagerResponse["counts"];
  const alerts = results.map(({ retry: _, ...result }) => result);
  const faults = results.flatMap((r, i) => (r.retry ? [{ path: `alerts[${i}]`, message: r.reason ?? "" }] : []));
  if (faults.length === 0) return c.json({ counts, alerts } satisfies AlertmanagerResponse);
  // Alertmanager re-sends a group on a 5xx: what was created comes back `existing`, the rest is tried again.
  throw new ApiError(503, "retry_later", "some alerts met a passing fault; send the group again", faults, {
    "retry-after": String(RETRY_AFTER_SECONDS),
  });
});

async function handle(proposer: Proposer, payload: AlertmanagerPayload, alert: Alert): Promise<AlertResult> {
  const { ns, key, config } = proposer;
  const matched = routeFor(config.policy.adapters.alertmanager.routes, alert.labels);
  const objectId = idempotentObjectId(ns, key.name, alertIdempotencyKey(alert));
  const result: AlertResult = {
    fingerprint: alert.fingerprint,
    alertname: alert.labels.alertname ?? null,
    status: alert.status,
    outcome: "skipped",
    route: matched?.index ?? null,
    proposal_id: null,
    proposal_status: null,
    reason: null,
  };
  if (alert.status === "resolved") {
    // Tried whether or not a route matches now: the policy may have changed since the alert fired.
    const stub = proposalStubAt(ns, objectId);
    const cancelled = await stub.cancel(key.name, RESOLVED_REASON);
    if (cancelled.ok) return { ...result, outcome: "cancelled", ...proposalOf(cancelled.proposal) };
    if (cancelled.refusal.status === 404)
      return { ...result, reason: matched ? "no proposal was made for this alert" : "matches no route" };
    const existing = await stub.read();
    return {
      ...result,
      ...(existing ? proposalOf(existing) : {}),
      reason: `its proposal is ${existing?.status ?? "gone"}: it was settled before the alert resolved`,
    };
  }
  if (!matched) return { ...result, reason: "matches no route" };
  const fields: AlertFields = { ...alert, externalURL: payload.externalURL };
  const rendered = renderRoute(matched.route, fields);
  if (!rendered.ok) {
    const needs = rendered.missing.join(", ");
    return { ...result, outcome: "refused", reason: `the route's templates need ${needs}, which the alert lacks` };
  }
  const body = {
    ...rendered.body,
    ...(matched.route.group ? { group_key: alertGroupKey(payload.groupKey) } : {}),
    metadata: {
      alertmanager: {
        fingerprint: alert.fingerprint,
        startsAt: alert.startsAt,
        alertname: alert.labels.alertname ?? null,
        generatorURL: alert.generatorURL,
        receiver: payload.receiver,
      },
    },
  };
  try {
    const { created, view } = await propose(proposer, body, alertIdempotencyKey(alert));
    return { ...result, outcome: created ? "created" : "existing", ...proposalOf(view) };
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.code === "idempotency_conflict") {
      // Re-sent with other annotations (a value in the description moved): the first proposal stands, unchanged.
      const existing = await proposalStubAt(ns, objectId).read();
      const reason = "already proposed; the alert's texts have changed since, and the card keeps the first ones";
      return { ...result, outcome: "existing", proposal_id: publicId(objectId), ...proposalOf(existing), reason };
    }
    return {
      ...result,
      outcome: "refused",
      reason: error.message,
      details: error.details,
      ...(error.status === 503 ? { retry: true } : {}),
    };
  }
}

function proposalOf(p: { id: string; status: string } | null): { proposal_id?: string; proposal_status?: string } {
  return p ? { proposal_id: p.id, proposal_status: p.status } : {};
}
