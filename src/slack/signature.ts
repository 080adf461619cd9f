// Slack request signing (v0): verifies a request came from Slack, recently, before anything in it is parsed (SPEC 5).
import { hmacKeyOf, hmacSha256, hmacSha256Verify } from "../lib/crypto.ts";
import { fromHex, toHex, utf8 } from "../lib/encoding.ts";

/** How far a request's timestamp may be from now, either way (SPEC 5: five minutes). */
export const SLACK_MAX_SKEW_SECONDS = 300;

export type SlackSignatureCheck = { ok: true } | { ok: false; reason: string };

const SIGNATURE = /^v0=([0-9a-fA-F]{64})$/;
// Digits only: no sign, no fraction, no exponent, no padding. Slack sends Unix seconds.
const TIMESTAMP = /^[0-9]{1,12}$/;

function baseString(timestamp: string, rawBody: string): string {
  return `v0:${timestamp}:${rawBody}`;
}

/**
 * Checks `X-Slack-Signature` against HMAC-SHA256(secret, `v0:<timestamp>:<raw body>`) in
 * constant time (WebCrypto verify), and refuses timestamps more than five minutes in the
 * past or the future. Never throws: every failure is `{ ok: false, reason }`, where the
 * reason names the check, never a secret or the expected signature.
 * https://docs.slack.dev/authentication/verifying-requests-from-slack
 */
export async function verifySlackSignature(
  secret: string,
  headers: Headers,
  rawBody: string,
  nowSeconds: number,
): Promise<SlackSignatureCheck> {
  try {
    if (!secret) return { ok: false, reason: "no signing secret configured" };
    const timestamp = headers.get("x-slack-request-timestamp");
    const signature = headers.get("x-slack-signature");
    if (timestamp === null) return { ok: false, reason: "missing X-Slack-Request-Timestamp" };
    if (signature === null) return { ok: false, reason: "missing X-Slack-Signature" };
    if (!TIMESTAMP.test(timestamp)) return { ok: false, reason: "X-Slack-Request-Timestamp is not an integer" };
    if (!Number.isFinite(nowSeconds)) return { ok: false, reason: "no current time" };
    const skew = nowSeconds - Number(timestamp);
    if (skew > SLACK_MAX_SKEW_SECONDS) return { ok: false, reason: "request timestamp is too old" };
    if (skew < -SLACK_MAX_SKEW_SECONDS) return { ok: false, reason: "request timestamp is in the future" };
    const hex = SIGNATURE.exec(signature)?.[1];
    const tag = hex === undefined ? null : fromHex(hex);
    if (!tag) return { ok: false, reason: "X-Slack-Signature is not v0= followed by 64 hex digits" };
    const key = await hmacKeyOf(utf8(secret));
    if (!(await hmacSha256Verify(key, tag, baseString(timestamp, rawBody)))) {
      return { ok: false, reason: "signature mismatch" };
    }
    return { ok: true };
  } catch {
    return { ok: false, reason: "signature could not be checked" };
  }
}

/** The `X-Slack-Signature` value Slack would send: for tests and the local Slack stand-in. */
export async function signSlackRequest(secret: string, timestamp: number | string, body: string): Promise<string> {
  const key = await hmacKeyOf(utf8(secret));
  return `v0=${toHex(await hmacSha256(key, baseString(String(timestamp), body)))}`;
}
