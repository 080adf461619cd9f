// Routes for proposers: create, read (with long-poll), cancel (SPEC 4).
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { ApiError, toApiError } from "../errors.ts";
import { toView } from "../proposal/view.ts";
import { type AppEnv, bodyText, parseJson, proposalNotFound, proposalOf, queryOf, validate } from "./http.ts";
import { jsonBody, requireScope, withConfig } from "./middleware.ts";
import { propose } from "./propose.ts";
import { WaitQuery } from "./schemas.ts";

export const proposalRoutes = new Hono<AppEnv>();

/** A malformed Idempotency-Key is refused before the body is looked at (so before 415 and 413). */
const idempotencyKeyHeader = createMiddleware<{ Bindings: Env; Variables: { idempotencyKey: string | undefined } }>(
  async (c, next) => {
    const idempotencyKey = c.req.header("idempotency-key");
    if (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
      throw new ApiError(400, "invalid_request", "Idempotency-Key must be 1–255 visible ASCII characters", [
        { path: "Idempotency-Key", message: "1–255 visible ASCII characters" },
      ]);
    }
    c.set("idempotencyKey", idempotencyKey);
    await next();
  },
);

proposalRoutes.post("/", withConfig, requireScope("proposals:write"), idempotencyKeyHeader, jsonBody, async (c) => {
  const { config, key, idempotencyKey } = c.var;
  const raw = parseJson(await bodyText(c));
  const { created, view } = await propose({ config, key, ns: c.env.PROPOSALS }, raw, idempotencyKey);
  return c.json(view, created ? 201 : 200);
});

proposalRoutes.get("/:id", withConfig, requireScope("proposals:read"), async (c) => {
  const { wait } = validate(WaitQuery, queryOf(c), "query");
  const proposal = await proposalOf(c).read(wait ?? 0);
  if (!proposal) throw proposalNotFound();
  return c.json(toView(proposal));
});

proposalRoutes.post("/:id/cancel", withConfig, requireScope("proposals:write"), async (c) => {
  const outcome = await proposalOf(c).cancel(c.var.key.name);
  if (!outcome.ok) throw toApiError(outcome.refusal);
  return c.json(toView(outcome.proposal));
});
