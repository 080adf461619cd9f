// Who is opening a decision link, vouched for at decision time by Cloudflare Access: the application token Access
// puts in `Cf-Access-Jwt-Assertion` (or the `CF_Authorization` cookie), verified with jose against the team's JWKS
// with the configured issuer and audience. Possession of a link proves nothing; this proves who holds it now.
import { createRemoteJWKSet, errors, jwtVerify } from "jose";

export interface AccessConfig {
  /** The team domain, `https://<team>.cloudflareaccess.com`: the tokens' `iss`. */
  issuer: string;
  /** The Access application's AUD tag: the tokens' `aud`. */
  audience: string;
  /** Where the signing keys are: `<issuer>/cdn-cgi/access/certs` unless configured otherwise (local mode, tests). */
  jwksUrl: string;
}

export type AccessIdentity =
  | { ok: true; email: string }
  | { ok: false; reason: "missing" | "invalid" | "expired" | "no_email" | "unavailable" };

export const ACCESS_HEADER = "cf-access-jwt-assertion";
export const ACCESS_COOKIE = "CF_Authorization";
/** Access signs application tokens with RS256; nothing weaker or unsigned is accepted. */
const ALGORITHMS = ["RS256"];
const E_MAIL = /^[^\s@]{1,64}@[^\s@]{1,253}$/;

// One key set per JWKS URL and isolate: jose caches the keys and refetches (rate-limited) on an unknown `kid`.
const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

function keySet(url: string) {
  let set = keySets.get(url);
  if (!set) {
    set = createRemoteJWKSet(new URL(url), { timeoutDuration: 5_000, cooldownDuration: 30_000 });
    keySets.set(url, set);
  }
  return set;
}

/** The token a request carries: Access's header first, its cookie otherwise (both are set in front of the app). */
export function accessToken(headers: Headers): string | null {
  const header = headers.get(ACCESS_HEADER);
  if (header) return header;
  for (const part of (headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === ACCESS_COOKIE) return part.slice(eq + 1).trim() || null;
  }
  return null;
}

/** The verified e-mail of whoever sent `headers`, lowercased, or why there is none. Never throws. */
export async function verifyAccess(config: AccessConfig, headers: Headers): Promise<AccessIdentity> {
  const token = accessToken(headers);
  if (!token) return { ok: false, reason: "missing" };
  try {
    const { payload } = await jwtVerify(token, keySet(config.jwksUrl), {
      issuer: config.issuer,
      audience: config.audience,
      algorithms: ALGORITHMS,
      clockTolerance: 30,
    });
    const email = typeof payload.email === "string" ? payload.email.trim().toLowerCase() : "";
    if (!E_MAIL.test(email)) return { ok: false, reason: "no_email" };
    return { ok: true, email };
  } catch (error) {
    if (error instanceof errors.JWTExpired) return { ok: false, reason: "expired" };
    // The key set could not be fetched: say so, so the page can ask to retry rather than call the token bad.
    if (error instanceof errors.JWKSTimeout || (error instanceof TypeError && /fetch/i.test(error.message))) {
      return { ok: false, reason: "unavailable" };
    }
    return { ok: false, reason: "invalid" };
  }
}
