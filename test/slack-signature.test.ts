// SPEC 5: every Slack request is verified (v0 HMAC, constant time, ±5 min) before it is parsed.
import { describe, expect, it } from "vitest";
import { hmacKeyOf } from "../src/lib/crypto.ts";
import { utf8 } from "../src/lib/encoding.ts";
import { SLACK_MAX_SKEW_SECONDS, signSlackRequest, verifySlackSignature } from "../src/slack/signature.ts";

// Slack's published example: https://docs.slack.dev/authentication/verifying-requests-from-slack
const SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const TIMESTAMP = 1531420618;
const BODY =
  "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const EXPECTED = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

// Note: Headers trims surrounding whitespace from values (Fetch spec), so " 1531420618" is not a case.
function headers(signature: string | null, timestamp: string | number | null): Headers {
  const h = new Headers({ "content-type": "application/x-www-form-urlencoded" });
  if (signature !== null) h.set("X-Slack-Signature", signature);
  if (timestamp !== null) h.set("X-Slack-Request-Timestamp", String(timestamp));
  return h;
}

async function refusal(check: Promise<{ ok: true } | { ok: false; reason: string }>): Promise<string> {
  const result = await check;
  expect(result.ok).toBe(false);
  return result.ok ? "" : result.reason;
}

describe("Slack request signature (SPEC 5)", () => {
  it("signs Slack's published example to the published signature", async () => {
    expect(await signSlackRequest(SECRET, TIMESTAMP, BODY)).toBe(EXPECTED);
  });

  it("accepts Slack's published example at its own time", async () => {
    expect(await verifySlackSignature(SECRET, headers(EXPECTED, TIMESTAMP), BODY, TIMESTAMP)).toEqual({ ok: true });
  });

  it("accepts upper-case hex in the signature", async () => {
    const upper = `v0=${EXPECTED.slice(3).toUpperCase()}`;
    expect(await verifySlackSignature(SECRET, headers(upper, TIMESTAMP), BODY, TIMESTAMP)).toEqual({ ok: true });
  });

  it("accepts a timestamp exactly five minutes old or ahead", async () => {
    const h = headers(EXPECTED, TIMESTAMP);
    expect(await verifySlackSignature(SECRET, h, BODY, TIMESTAMP + SLACK_MAX_SKEW_SECONDS)).toEqual({ ok: true });
    expect(await verifySlackSignature(SECRET, h, BODY, TIMESTAMP - SLACK_MAX_SKEW_SECONDS)).toEqual({ ok: true });
  });

  it("keys are imported once per secret, yet a rotated secret is checked with its own key, both ways", async () => {
    // hmacKeyOf caches the imported key by the secret's bytes: after a rotation (the same isolate, both secrets
    // alive in turn) neither secret may verify what the other signed.
    const ROTATED = "0000000000000000000000000000rot8";
    const signedWithRotated = await signSlackRequest(ROTATED, TIMESTAMP, BODY);
    for (let round = 0; round < 2; round++) {
      expect(await verifySlackSignature(SECRET, headers(EXPECTED, TIMESTAMP), BODY, TIMESTAMP)).toEqual({ ok: true });
      expect(await refusal(verifySlackSignature(ROTATED, headers(EXPECTED, TIMESTAMP), BODY, TIMESTAMP))).toBe(
        "signature mismatch",
      );
      expect(await verifySlackSignature(ROTATED, headers(signedWithRotated, TIMESTAMP), BODY, TIMESTAMP)).toEqual({
        ok: true,
      });
      expect(await refusal(verifySlackSignature(SECRET, headers(signedWithRotated, TIMESTAMP), BODY, TIMESTAMP))).toBe(
        "signature mismatch",
      );
    }
    const [a, b] = [hmacKeyOf(utf8(SECRET)), hmacKeyOf(utf8(SECRET))];
    expect(a).toBe(b);
    expect(hmacKeyOf(utf8(ROTATED))).not.toBe(a);
  });

  it("refuses the wrong secret", async () => {
    const reason = await refusal(verifySlackSignature("not-the-secret", headers(EXPECTED, TIMESTAMP), BODY, TIMESTAMP));
    expect(reason).toMatch(/mismatch/);
  });

  it("refuses a tampered body", async () => {
    const tampered = BODY.replace("user_id=U2CERLKJA", "user_id=U2CERLKJB");
    expect(await refusal(verifySlackSignature(SECRET, headers(EXPECTED, TIMESTAMP), tampered, TIMESTAMP))).toMatch(
      /mismatch/,
    );
  });

  it("refuses a tampered timestamp (it is part of what is signed)", async () => {
    const h = headers(EXPECTED, TIMESTAMP + 1);
    expect(await refusal(verifySlackSignature(SECRET, h, BODY, TIMESTAMP))).toMatch(/mismatch/);
  });

  it("refuses a stale timestamp (more than five minutes old)", async () => {
    const h = headers(EXPECTED, TIMESTAMP);
    expect(await refusal(verifySlackSignature(SECRET, h, BODY, TIMESTAMP + SLACK_MAX_SKEW_SECONDS + 1))).toMatch(
      /too old/,
    );
  });

  it("refuses a timestamp more than five minutes in the future", async () => {
    const h = headers(EXPECTED, TIMESTAMP);
    expect(await refusal(verifySlackSignature(SECRET, h, BODY, TIMESTAMP - SLACK_MAX_SKEW_SECONDS - 1))).toMatch(
      /future/,
    );
  });

  it("refuses a replay of a once-valid request long after", async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await refusal(verifySlackSignature(SECRET, headers(EXPECTED, TIMESTAMP), BODY, now))).toMatch(/too old/);
  });

  it("refuses missing headers", async () => {
    expect(await refusal(verifySlackSignature(SECRET, headers(EXPECTED, null), BODY, TIMESTAMP))).toMatch(/Timestamp/);
    expect(await refusal(verifySlackSignature(SECRET, headers(null, TIMESTAMP), BODY, TIMESTAMP))).toMatch(/Signature/);
    expect(await refusal(verifySlackSignature(SECRET, new Headers(), BODY, TIMESTAMP))).toMatch(/missing/);
  });

  it.each([["1531420618.5"], ["-1531420618"], ["+1531420618"], ["1.531420618e9"], [""], ["abc"]])(
    "refuses a timestamp that is not a plain integer: %j",
    async (timestamp) => {
      const reason = await refusal(verifySlackSignature(SECRET, headers(EXPECTED, timestamp), BODY, TIMESTAMP));
      expect(reason).toMatch(/integer/);
    },
  );

  it("refuses a signature without the v0= prefix", async () => {
    const hex = EXPECTED.slice(3);
    for (const bad of [hex, `v1=${hex}`, `V0=${hex}`, `=${hex}`, `v0${hex}`]) {
      expect(await refusal(verifySlackSignature(SECRET, headers(bad, TIMESTAMP), BODY, TIMESTAMP))).toMatch(/v0=/);
    }
  });

  it("refuses a signature that is not 64 hex digits", async () => {
    const hex = EXPECTED.slice(3);
    for (const bad of [
      `v0=${hex.slice(0, 63)}g`,
      `v0=${hex.slice(0, 62)}`,
      `v0=${hex}00`,
      "v0=",
      `${EXPECTED}, ${EXPECTED}`,
    ]) {
      expect(await refusal(verifySlackSignature(SECRET, headers(bad, TIMESTAMP), BODY, TIMESTAMP))).toMatch(/v0=/);
    }
  });

  it("refuses when no signing secret is configured", async () => {
    expect(await refusal(verifySlackSignature("", headers(EXPECTED, TIMESTAMP), BODY, TIMESTAMP))).toMatch(/secret/);
  });

  it("never throws and never echoes the secret or the expected signature", async () => {
    const inputs: Array<[string, Headers, string, number]> = [
      [SECRET, headers(`v0=${"0".repeat(64)}`, TIMESTAMP), BODY, TIMESTAMP],
      [SECRET, headers(EXPECTED, TIMESTAMP), BODY, Number.NaN],
      [SECRET, headers(EXPECTED, "9".repeat(12)), BODY, TIMESTAMP],
      [SECRET, headers(EXPECTED, TIMESTAMP), "\u{1F600}\u0000\uD800", TIMESTAMP],
    ];
    for (const args of inputs) {
      const reason = await refusal(verifySlackSignature(...args));
      expect(reason).not.toContain(SECRET);
      expect(reason).not.toContain(EXPECTED.slice(3));
    }
  });

  it("round-trips its own signatures for any body", async () => {
    const body = JSON.stringify({ payload: "ünïcödé 🎉 & <tags>" });
    const now = 1_800_000_000;
    const signature = await signSlackRequest("another-secret", now, body);
    expect(signature).toMatch(/^v0=[0-9a-f]{64}$/);
    expect(await verifySlackSignature("another-secret", headers(signature, now), body, now + 10)).toEqual({ ok: true });
  });
});
