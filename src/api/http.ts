// Request helpers shared by the routes: the body as text, JSON within a depth, zod errors as details, the :id proposal.
import type { Context } from "hono";
import type { z } from "zod";
import { ApiError } from "../errors.ts";
import { zodDetails } from "../lib/details.ts";
import { tooDeepAt } from "../lib/json-depth.ts";
import { type ProposalStub, proposalStub } from "../proposal/stub.ts";

export type AppEnv = { Bindings: Env };
/** What these helpers use of a route's context, whatever its middleware put on `c.var`. */
export type AppContext = Pick<Context<AppEnv>, "req" | "env">;

/** The body as UTF-8 text; jsonBody (middleware) has already refused it when too large or not JSON. */
export async function bodyText(c: AppContext): Promise<string> {
  const bytes = await c.req.arrayBuffer();
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError(400, "bad_json", "body is not valid UTF-8");
  }
}

/** No legitimate request nests deeper; deeper input is refused before it reaches recursive code. */
export const MAX_JSON_DEPTH = 32;

export function parseJson(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, "bad_json", "body is not valid JSON");
  }
  const deep = tooDeepAt(value, MAX_JSON_DEPTH);
  if (deep !== null) {
    const path = deep.length > 80 ? `${deep.slice(0, 80)}…` : deep;
    throw new ApiError(400, "invalid_request", `body nests deeper than ${MAX_JSON_DEPTH} levels`, [
      { path, message: `nests deeper than ${MAX_JSON_DEPTH} levels` },
    ]);
  }
  return value;
}

/** Validates with zod; a failure is a 400 whose details name every offending field. */
export function validate<S extends z.ZodType>(schema: S, input: unknown, where: string): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  // Paths are relative to the body or query; a problem with the whole of it is named by `where`.
  const details = zodDetails("", result.error.issues).map((d) => (d.path === "" ? { ...d, path: where } : d));
  throw new ApiError(400, "invalid_request", `${where} is invalid: ${details.map((d) => d.path).join(", ")}`, details);
}

/** Query parameters as a plain object (the last value wins for repeated names). */
export function queryOf(c: AppContext): Record<string, string> {
  return Object.fromEntries(new URL(c.req.url).searchParams);
}

/** The proposal named by the route's `:id`; 404 when the id is not one of ours. */
export function proposalOf(c: AppContext): ProposalStub {
  const stub = proposalStub(c.env.PROPOSALS, c.req.param("id") ?? "");
  if (!stub) throw proposalNotFound();
  return stub;
}

export function proposalNotFound(): ApiError {
  return new ApiError(404, "not_found", "no proposal with that id");
}
