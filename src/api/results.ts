// POST /v1/proposals/:id/result: the runner's asynchronous result, signed with RUNNER_SECRET.
import { Hono } from "hono";
import { ApiError, toApiError } from "../errors.ts";
import { verifyWebhook } from "../webhooks/standard-webhooks.ts";
import { configOf, parseJson, readBody, validate, type AppEnv } from "./http.ts";
import { stubOf } from "./proposals.ts";
import { ResultBody } from "./schemas.ts";
import type { Outcome } from "../proposal/object.ts";

export const resultRoutes = new Hono<AppEnv>();

resultRoutes.post("/:id/result", async (c) => {
  const config = configOf(c);
  const text = await readBody(c);
  // Verified before it is parsed: an unsigned, forged or stale report changes nothing.
  const verified = await verifyWebhook(config.runnerSecret, c.req.raw.headers, text, Math.floor(Date.now() / 1000));
  if (!verified.ok) throw new ApiError(401, "bad_signature", `runner result refused: ${verified.reason}`);
  const body = validate(ResultBody, parseJson(text), "body");
  const outcome = (await stubOf(c).recordResult(verified.id, body)) as Outcome;
  if (!outcome.ok) throw toApiError(outcome.refusal);
  return c.json({ ok: true, status: outcome.proposal.status });
});
