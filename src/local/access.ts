// Local mode's stand-in for Cloudflare Access (issue 11), so that approval links decide end to end with no account:
// an RS256 key pair made with jose by `npm start` (LOCAL_ACCESS_KEY in .dev.vars), its public half served as a
// JWKS, and an application token minted for the person chosen on the stand-in page and put on each request to
// /l/*, as Access's edge puts Cf-Access-Jwt-Assertion on the requests it lets through. The production verifier
// (src/identity/access.ts) checks these tokens like real ones: fetched keys, issuer, audience, RS256, expiry.
// Plain jose and data: `npm start` (Node) makes the key with it, the local entry (workerd) signs with it.
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";
import type { AccessConfig } from "../identity/access.ts";
import { demoUser } from "./demo.ts";

/** Who the stand-in page says you are when you open a link: a demo user id, or empty for "not signed in". */
export const LOCAL_IDENTITY_COOKIE = "signoff_local_as";
/** Where the local entry serves the issuer's keys (ACCESS_JWKS_URL in local mode). */
export const LOCAL_JWKS_PATH = "/__local/access/certs";
/** Minted per request, as Access's header is: a few minutes are plenty and keep a copied token short-lived. */
const TOKEN_TTL_SECONDS = 300;
const ALG = "RS256";
/** The members of an RSA JWK that are private (RFC 7518 6.3.2); what is left is the public key. */
const PRIVATE_MEMBERS = new Set(["d", "p", "q", "dp", "dq", "qi", "oth"]);

/** The private key as `npm start` writes it: an RSA JWK with its kid (its thumbprint) and alg. */
export interface LocalAccessKey extends JWK {
  kty: "RSA";
  kid: string;
  alg: typeof ALG;
  d: string;
  n: string;
  e: string;
}

/** A fresh issuer key, as JSON text for .dev.vars. */
export async function newLocalAccessKey(): Promise<string> {
  const { privateKey } = await generateKeyPair(ALG, { extractable: true, modulusLength: 2048 });
  const jwk = await exportJWK(privateKey);
  const key = { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: ALG, use: "sig" };
  return JSON.stringify(key);
}

/** The key from LOCAL_ACCESS_KEY, or null when it is missing or not an RSA private JWK. */
export function parseLocalAccessKey(text: unknown): LocalAccessKey | null {
  if (typeof text !== "string" || text === "") return null;
  let jwk: unknown;
  try {
    jwk = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof jwk !== "object" || jwk === null) return null;
  const k = jwk as Record<string, unknown>;
  const strings = ["kid", "n", "e", "d"].every((name) => typeof k[name] === "string" && k[name] !== "");
  return strings && k.kty === "RSA" && k.alg === ALG ? (jwk as LocalAccessKey) : null;
}

/** What the JWKS endpoint serves: the public half only, as Access's certs endpoint lists its keys. */
export function publicJwks(key: LocalAccessKey): { keys: JWK[] } {
  const pub = Object.fromEntries(Object.entries(key).filter(([name]) => !PRIVATE_MEMBERS.has(name)));
  return { keys: [{ ...pub, use: "sig" }] };
}

// Importing an RSA key costs a little; there is one key per run. Keyed by the whole key, not by its kid: a kid is
// only a name, and a key with another's kid must not sign with the other's key.
const imported = new Map<string, Promise<CryptoKey | Uint8Array>>();

/** An Access application token for `email`, shaped like Access's own (aud as a list, type "app"). */
export async function mintAccessToken(
  key: LocalAccessKey,
  access: Pick<AccessConfig, "issuer" | "audience">,
  email: string,
  now = Date.now(),
): Promise<string> {
  const id = JSON.stringify(key);
  let signing = imported.get(id);
  if (!signing) {
    signing = importJWK(key, ALG);
    imported.set(id, signing);
  }
  const iat = Math.floor(now / 1000);
  return new SignJWT({ email, type: "app", country: "XX" })
    .setProtectedHeader({ alg: ALG, kid: key.kid, typ: "JWT" })
    .setIssuer(access.issuer)
    .setAudience([access.audience])
    .setSubject(`local-${email}`)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + TOKEN_TTL_SECONDS)
    .sign(await signing);
}

/** The e-mail of the demo person the stand-in cookie names, or null (no cookie, "not signed in", unknown id). */
export function signedInEmail(headers: Headers): string | null {
  for (const part of (headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === LOCAL_IDENTITY_COOKIE) {
      return demoUser(decodeURIComponent(part.slice(eq + 1).trim()))?.email ?? null;
    }
  }
  return null;
}
