// Routes for proposers: create, read (with long-poll), cancel (SPEC 4).
import { Hono } from "hono";
import { callbackAllowed, keyAllowsAction } from "../config/api-keys.ts";
import { decisionRuleFor, validateParams } from "../config/policy.ts";
import { ApiError, toApiError } from "../errors.ts";
import { newProposal, requestSha256 } from "../proposal/create.ts";
import { idempotentObjectId, objectIdOf, publicId } from "../proposal/ids.ts";
import type { CreateOutcome, Outcome } from "../proposal/object.ts";
import { toView } from "../proposal/view.ts";
import { configOf, parseJson, queryOf, readBody, requireKey, validate, type AppContext, type AppEnv } from "./http.ts";
import { CreateProposalBody, WaitQuery } from "./schemas.ts";

export const proposalRoutes = new Hono<AppEnv>();

proposalRoutes.post("/", async (c) => {
  const config = configOf(c);
  const key = await requireKey(c, config, "proposals:write");
  const idempotencyKey = c.req.header("idempotency-key");
  if (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
    throw new ApiError(400, "invalid_request", "Idempotency-Key must be 1–255 visible ASCII characters", [
      { path: "Idempotency-Key", message: "1–255 visible ASCII characters" },
    ]);
  }
  const raw = parseJson(await readBody(c));
  const body = validate(CreateProposalBody, raw, "body");

  const type = body.action.type;
  if (!keyAllowsAction(key, type)) {
    throw new ApiError(403, "action_not_allowed", `this API key may not propose ${type}`, [{ path: "action.type", message: "not in the key's actions" }]);
  }
  const rule = decisionRuleFor(config.policy, type);
  const actionPolicy = config.policy.actions[type];
  if (!rule || !actionPolicy) {
    throw new ApiError(422, "unknown_action", `action type ${type} is not in the policy`, [{ path: "action.type", message: "not in POLICY.actions" }]);
  }
  const paramProblems = validateParams(actionPolicy, body.action.params);
  if (paramProblems.length > 0) {
    throw new ApiError(422, "invalid_params", `action.params do not satisfy ${type}'s params_schema`, paramProblems);
  }
  const ttlSeconds = body.ttl_seconds ?? actionPolicy.ttl_seconds;
  if (ttlSeconds < 1 || ttlSeconds > actionPolicy.max_ttl_seconds) {
    throw new ApiError(422, "ttl_out_of_range", `ttl_seconds must be from 1 to ${actionPolicy.max_ttl_seconds} for ${type}`, [
      { path: "ttl_seconds", message: `from 1 to ${actionPolicy.max_ttl_seconds}` },
    ]);
  }
  if (rule.requester_only && !body.requested_by) {
    throw new ApiError(422, "requested_by_required", `${type} can only be confirmed by its requester: give requested_by`, [
      { path: "requested_by", message: "required for requester_only actions" },
    ]);
  }
  if (body.callback_url) {
    const allowed = callbackAllowed(key, body.callback_url);
    if (!allowed.ok) throw new ApiError(403, "callback_not_allowed", allowed.message, [{ path: "callback_url", message: allowed.message }]);
  }

  const ns = c.env.PROPOSALS;
  const objectId = idempotencyKey ? idempotentObjectId(ns, key.name, idempotencyKey) : ns.newUniqueId();
  const proposal = newProposal({ id: publicId(objectId), body, keyName: key.name, rule, ttlSeconds, now: Date.now() });
  const outcome = (await ns.get(objectId).create(proposal, requestSha256(raw))) as CreateOutcome;
  if (!outcome.ok) throw toApiError(outcome.refusal);
  return c.json(toView(outcome.proposal), outcome.created ? 201 : 200);
});

proposalRoutes.get("/:id", async (c) => {
  const config = configOf(c);
  await requireKey(c, config, "proposals:read");
  const { wait } = validate(WaitQuery, queryOf(c), "query");
  const proposal = await stubOf(c).read(wait ?? 0);
  if (!proposal) throw notFound();
  return c.json(toView(proposal));
});

proposalRoutes.post("/:id/cancel", async (c) => {
  const config = configOf(c);
  const key = await requireKey(c, config, "proposals:write");
  const outcome = (await stubOf(c).cancel(key.name)) as Outcome;
  if (!outcome.ok) throw toApiError(outcome.refusal);
  return c.json(toView(outcome.proposal));
});

export function stubOf(c: AppContext) {
  const id = objectIdOf(c.env.PROPOSALS, c.req.param("id") ?? "");
  if (!id) throw notFound();
  return c.env.PROPOSALS.get(id);
}

function notFound(): ApiError {
  return new ApiError(404, "not_found", "no proposal with that id");
}
