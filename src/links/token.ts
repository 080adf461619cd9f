// Signed links (issue 7): one token per proposal, choice and recipient, HMAC-SHA256 with LINK_SECRET. A token
// proves only that its bearer holds the link; the Durable Object adds expiry, single use and who may decide.
//
//   v1.<base64url(JSON {p, c, r, e, n})>.<base64url(HMAC-SHA256(key, "v1.<payload>"))>
//
// p proposal id, c choice, r recipient, e expiry (Unix seconds), n a random nonce the proposal's object issued.
import { RECIPIENT_PATTERN } from "../config/policy.ts";
import { hmacKeyOf, hmacSha256, hmacSha256Verify } from "../lib/crypto.ts";
import { fromBase64Url, toBase64Url, utf8 } from "../lib/encoding.ts";
import type { LinkChoice } from "../proposal/types.ts";
import { parseSecret } from "../webhooks/standard-webhooks.ts";

export interface LinkClaims {
  /** Proposal id (`prp_…`). */
  p: string;
  /** What the link decides. */
  c: LinkChoice;
  /** Who it was minted for. */
  r: string;
  /** Expiry, Unix seconds: the proposal's deadline when minted. */
  e: number;
  /** The nonce the proposal's Durable Object issued for this recipient and choice: single use is kept there. */
  n: string;
}

export const LINK_CHOICES: readonly LinkChoice[] = ["approve", "deny", "yes", "no", "unsure"];
/** Longer than any token signoff mints (a 254-character recipient gives about 560); longer input is not parsed. */
export const MAX_TOKEN_CHARS = 1024;

const VERSION = "v1";
const PROPOSAL_ID = /^prp_[0-9a-f]{64}$/;
const NONCE = /^[A-Za-z0-9_-]{16,64}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const TAG_BYTES = 32;

export type LinkVerification =
  | { ok: true; claims: LinkClaims }
  | {
      ok: false;
      /** malformed: not a token at all; bad_signature: the MAC does not verify; bad_claims: signed, but not claims we mint. */
      reason: "malformed" | "bad_signature" | "bad_claims";
      /** The proposal id the (unverified) payload names, if it names one: refusals are audited against it. */
      claimedProposal: string | null;
    };

function keyFor(secret: string): Promise<CryptoKey> {
  const bytes = parseSecret(secret);
  if (!bytes) throw new TypeError("LINK_SECRET must be whsec_ followed by base64");
  return hmacKeyOf(bytes);
}

export async function mintLinkToken(secret: string, claims: LinkClaims): Promise<string> {
  const payload = toBase64Url(
    utf8(JSON.stringify({ p: claims.p, c: claims.c, r: claims.r, e: claims.e, n: claims.n })),
  );
  const signed = `${VERSION}.${payload}`;
  const tag = await hmacSha256(await keyFor(secret), signed);
  return `${signed}.${toBase64Url(tag)}`;
}

/**
 * Checks a token's form and signature (crypto.subtle.verify: constant time), then its claims. Never throws and
 * never looks at the claims before the signature verified, except to say which proposal a forgery names.
 */
export async function verifyLinkToken(secret: string, token: string): Promise<LinkVerification> {
  const malformed = { ok: false, reason: "malformed", claimedProposal: null } as const;
  if (typeof token !== "string" || token.length > MAX_TOKEN_CHARS) return malformed;
  const parts = token.split(".");
  if (parts.length !== 3) return malformed;
  const [version, payload, mac] = parts as [string, string, string];
  if (version !== VERSION || !BASE64URL.test(payload) || !BASE64URL.test(mac)) return malformed;
  const tag = fromBase64Url(mac);
  const claimed = () => claimedProposalOf(payload);
  // Canonical encoding only: a tag re-spelled in its unused low bits is another string, so another token.
  if (!tag || tag.length !== TAG_BYTES || toBase64Url(tag) !== mac)
    return { ok: false, reason: "bad_signature", claimedProposal: claimed() };
  let valid = false;
  try {
    valid = await hmacSha256Verify(await keyFor(secret), tag, `${VERSION}.${payload}`);
  } catch {
    valid = false;
  }
  if (!valid) return { ok: false, reason: "bad_signature", claimedProposal: claimed() };
  const claims = claimsOf(decodeJson(payload));
  return claims ? { ok: true, claims } : { ok: false, reason: "bad_claims", claimedProposal: claimed() };
}

function claimsOf(value: unknown): LinkClaims | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  if (Object.keys(v).sort().join(",") !== "c,e,n,p,r") return null;
  if (typeof v.p !== "string" || !PROPOSAL_ID.test(v.p)) return null;
  if (typeof v.c !== "string" || !(LINK_CHOICES as readonly string[]).includes(v.c)) return null;
  if (typeof v.r !== "string" || !RECIPIENT_PATTERN.test(v.r)) return null;
  if (typeof v.e !== "number" || !Number.isSafeInteger(v.e) || v.e <= 0) return null;
  if (typeof v.n !== "string" || !NONCE.test(v.n)) return null;
  return { p: v.p, c: v.c as LinkChoice, r: v.r, e: v.e, n: v.n };
}

function claimedProposalOf(payload: string): string | null {
  const value = decodeJson(payload);
  const p = typeof value === "object" && value !== null ? (value as { p?: unknown }).p : undefined;
  return typeof p === "string" && PROPOSAL_ID.test(p) ? p : null;
}

function decodeJson(payload: string): unknown {
  const bytes = fromBase64Url(payload);
  if (!bytes) return null;
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes)) as unknown;
  } catch {
    return null;
  }
}

/** A link's expiry: the proposal's deadline when it was minted, in whole seconds (never before the deadline). */
export function linkExpiry(expiresAtIso: string): number {
  return Math.ceil(Date.parse(expiresAtIso) / 1000);
}

export interface MintedLink {
  recipient: string;
  choice: LinkChoice;
  url: string;
}

/** URLs for issued links (`PUBLIC_URL/l/<token>`), in the order given. */
export async function mintLinkUrls(
  secret: string,
  publicUrl: string,
  proposal: { id: string; expires_at: string },
  issued: ReadonlyArray<{ recipient: string; choice: LinkChoice; nonce: string }>,
): Promise<MintedLink[]> {
  const e = linkExpiry(proposal.expires_at);
  return Promise.all(
    issued.map(async (link) => ({
      recipient: link.recipient,
      choice: link.choice,
      url: `${publicUrl}/l/${await mintLinkToken(secret, { p: proposal.id, c: link.choice, r: link.recipient, e, n: link.nonce })}`,
    })),
  );
}
