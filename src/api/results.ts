// POST /v1/proposals/:id/result: the runner's asynchronous result, signed with RUNNER_SECRET.
import { Hono } from "hono";
import { claimResultId } from "../dispatch/result-ids.ts";
import { ApiError, toApiError } from "../errors.ts";
import { verifyWebhook } from "../webhooks/standard-webhooks.ts";
import { type AppEnv, bodyText, parseJson, proposalOf, validate } from "./http.ts";
import { jsonBody, withConfig } from "./middleware.ts";
import { ResultBody } from "./schemas.ts";

export const resultRoutes = new Hono<AppEnv>();

resultRoutes.post("/:id/result", withConfig, jsonBody, async (c) => {
  const { config } = c.var;
  const text = await bodyText(c);
  // Verified before it is parsed: an unsigned, forged or stale report changes nothing.
  const verified = await verifyWebhook(config.runnerSecret, c.req.raw.headers, text, Math.floor(Date.now() / 1000));
  if (!verified.ok) throw new ApiError(401, "bad_signature", `runner result refused: ${verified.reason}`);
  const { proposal_id: named, ...result } = validate(ResultBody, parseJson(text), "body");
  const id = c.req.param("id");
  // A signed result must not be replayable on another proposal: by the id it names, and by
  // its webhook-id, which may serve one proposal only.
  if (named !== undefined && named !== id)
    throw new ApiError(401, "wrong_proposal", "this signed result names another proposal");
  const stub = proposalOf(c);
  // A body that names its proposal is bound by the signature itself, so recording it never
  // needs D1. Without proposal_id, the webhook-id is claimed globally first.
  if (named === undefined && (await claimOrUnavailable(c.env.AUDIT_DB, verified.id, id)) === "other_proposal") {
    throw new ApiError(401, "replayed", "this result (webhook-id) was already delivered for another proposal");
  }
  const outcome = await stub.recordResult(verified.id, result);
  if (!outcome.ok) throw toApiError(outcome.refusal);
  return c.json({ ok: true, status: outcome.proposal.status });
});

async function claimOrUnavailable(db: D1Database, webhookId: string, proposalId: string) {
  try {
    return await claimResultId(db, webhookId, proposalId, Date.now());
  } catch {
    // The runner retries a 503; sending proposal_id in the body avoids this dependency.
    throw new ApiError(
      503,
      "unavailable",
      "cannot check this result for replay right now; retry, or include proposal_id in the body",
    );
  }
}
