// Middleware the routes share: the checked configuration and the caller's API key on `c.var`, and JSON bodies
// refused by media type (415) and by size while they stream (413), before a handler reads them.

import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { type ApiKey, authenticate, hasScope, type Scope } from "../config/api-keys.ts";
import { type Config, loadConfig } from "../config/load.ts";
import { ApiError } from "../errors.ts";

/** SPEC 4: 413 for a body over 64 KiB. */
export const MAX_BODY_BYTES = 64 * 1024;

export type ConfigVars = { Bindings: Env; Variables: { config: Config } };
export type KeyVars = { Bindings: Env; Variables: { config: Config; key: ApiKey } };

/** Puts the checked configuration on `c.var.config`; a bad one answers 503 misconfigured, naming the fields. */
export const withConfig = createMiddleware<ConfigVars>(async (c, next) => {
  c.set("config", loadConfig(c.env));
  await next();
});

/**
 * Puts the API key behind `Authorization: Bearer …` on `c.var.key` when it holds one of `scopes` (after
 * withConfig). Refusals carry the RFC 6750 challenge, with an error code only when a bearer token was actually sent.
 */
export function requireScope(...scopes: [Scope, ...Scope[]]) {
  return createMiddleware<KeyVars>(async (c, next) => {
    const authorization = c.req.header("authorization");
    const key = await authenticate(c.var.config.apiKeys, authorization);
    if (!key) {
      const sentBearer = /^bearer\s/i.test(authorization ?? "");
      const refusal = new ApiError(401, "unauthorized", "missing or invalid API key (Authorization: Bearer <token>)");
      return c.json(refusal.toBody(), 401, {
        "www-authenticate": sentBearer ? `${CHALLENGE}, error="invalid_token"` : CHALLENGE,
      });
    }
    if (!scopes.some((scope) => hasScope(key, scope))) {
      const refusal = new ApiError(403, "forbidden", `this API key lacks the ${scopes.join(" or ")} scope`);
      return c.json(refusal.toBody(), 403, {
        // RFC 6750: scope is a space-separated list; any one of them would do.
        "www-authenticate": `${CHALLENGE}, error="insufficient_scope", scope="${scopes.join(" ")}"`,
      });
    }
    c.set("key", key);
    await next();
  });
}

const CHALLENGE = 'Bearer realm="signoff"';

const JSON_MEDIA_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

// Hono's limit refuses a declared Content-Length over the limit at once (HTTP framing holds a body to the length it
// declares) and counts the bytes of a body sent without one (chunked), stopping at the first byte too many: it never
// holds more than the limit.
const limitJson = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new ApiError(413, "payload_too_large", `body is larger than ${MAX_BODY_BYTES} bytes`);
  },
});

/** A JSON body of at most 64 KiB: 415 for another media type (whatever its size), else 413 when larger. */
export const jsonBody = createMiddleware<{ Bindings: Env }>(async (c, next) => {
  if (!JSON_MEDIA_TYPE.test(c.req.header("content-type") ?? "")) {
    throw new ApiError(415, "unsupported_media_type", "send the body as application/json");
  }
  return limitJson(c, next);
});
