// GET /v1/keys: the Ed25519 public keys that sign outcome events and dispatches (`v1a`), so a listener verifies
// without holding anything that signs. Public material, so no API key is needed, like a JWKS endpoint.
import { Hono } from "hono";
import { toBase64Url } from "../lib/encoding.ts";
import { signingKeys } from "../webhooks/signing-keys.ts";
import { type ConfigVars, withConfig } from "./middleware.ts";
import type { PublicKeys } from "./schemas.ts";

export const keyRoutes = new Hono<ConfigVars>();

keyRoutes.get("/", withConfig, async (c) => {
  const config = c.var.config;
  const published = async (use: "events" | "runner", list: readonly string[]) =>
    (await signingKeys(list)).map(({ kid, publicKey, rawPublicKey }) => ({
      kid,
      use,
      alg: "Ed25519" as const,
      public_key: publicKey,
      jwk: { kty: "OKP" as const, crv: "Ed25519" as const, x: toBase64Url(rawPublicKey), kid },
    }));
  const body: PublicKeys = {
    keys: [
      ...(await published("events", config.eventsSigningKeys)),
      ...(await published("runner", config.runnerSigningKeys)),
    ],
  };
  // Short enough that a rotation reaches listeners within minutes; they also refetch on an unknown signature.
  c.header("cache-control", "public, max-age=300");
  return c.json(body);
});
