// Standard Webhooks signing and verification, checked against the `standardwebhooks` reference library.
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { parseSecret, signWebhook, verifyWebhook } from "../src/webhooks/standard-webhooks.ts";
import { SECRETS } from "./fixtures.ts";

// The test vector published with the Standard Webhooks libraries (and Svix's before them).
const VECTOR = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};

const SECRET = SECRETS.RUNNER_SECRET;
const OTHER_SECRET = SECRETS.EVENTS_SECRET;
const BODY = JSON.stringify({
  type: "proposal.approved",
  proposal_id: "prp_abc",
  action: { type: "demo.echo", params: { message: "hi ünïcødé ✓" } },
});

/** The library checks timestamps against Date.now(), so anything it verifies must be signed "now". */
const now = () => Math.floor(Date.now() / 1000);

function headersOf(record: Record<string, string>): Headers {
  return new Headers(record);
}

describe("parseSecret", () => {
  it("decodes the key bytes of a whsec_ secret", () => {
    const key = parseSecret("whsec_AAECAwQ=");
    expect(key && [...key]).toEqual([0, 1, 2, 3, 4]);
    expect(parseSecret(VECTOR.secret)?.length).toBe(24);
  });

  it.each([
    ["no prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    ["another prefix", "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    ["prefix in upper case", "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    ["empty key", "whsec_"],
    ["empty string", ""],
    ["not base64", "whsec_not*base64!"],
    ["base64url alphabet", "whsec_ab-_"],
    ["missing padding", "whsec_AAECAwQ"],
    ["embedded whitespace", "whsec_AAEC AwQ="],
    ["trailing newline", "whsec_AAECAwQ=\n"],
    ["leading space", " whsec_AAECAwQ="],
  ])("refuses %s", (_label, secret) => {
    expect(parseSecret(secret)).toBeNull();
  });
});

describe("signWebhook", () => {
  it("reproduces the published Standard Webhooks test vector", async () => {
    const headers = await signWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.body);
    expect(headers).toEqual({
      "webhook-id": VECTOR.id,
      "webhook-timestamp": String(VECTOR.timestamp),
      "webhook-signature": VECTOR.signature,
    });
  });

  it("produces headers the standardwebhooks library verifies", async () => {
    const headers = await signWebhook(SECRET, "msg_ours_1", now(), BODY);
    expect(new Webhook(SECRET).verify(BODY, headers)).toEqual(JSON.parse(BODY));
  });

  it("is not verifiable with another secret", async () => {
    const headers = await signWebhook(SECRET, "msg_ours_2", now(), BODY);
    expect(() => new Webhook(OTHER_SECRET).verify(BODY, headers)).toThrow();
  });

  it("signs exactly what the library signs, for any id, time and body", async () => {
    const library = new Webhook(SECRET);
    for (const [id, timestamp, body] of [
      ["msg_1", 0, ""],
      ["prp_x", 1_700_000_000, "{}"],
      ["a.b.c", 4_102_444_800, "line1\nline2\r\n\u0000 ✓ 𝄞"],
    ] as const) {
      const ours = await signWebhook(SECRET, id, timestamp, body);
      expect(ours["webhook-signature"]).toBe(library.sign(id, new Date(timestamp * 1000), body));
    }
  });

  it("refuses a malformed secret, id or timestamp instead of signing with it", async () => {
    await expect(signWebhook("not-a-secret", "msg", now(), BODY)).rejects.toThrow(TypeError);
    await expect(signWebhook(SECRET, "", now(), BODY)).rejects.toThrow(TypeError);
    await expect(signWebhook(SECRET, "msg 1", now(), BODY)).rejects.toThrow(TypeError);
    await expect(signWebhook(SECRET, "msg", 1.5, BODY)).rejects.toThrow(TypeError);
    await expect(signWebhook(SECRET, "msg", -1, BODY)).rejects.toThrow(TypeError);
    await expect(signWebhook(SECRET, "msg", Number.NaN, BODY)).rejects.toThrow(TypeError);
  });
});

describe("verifyWebhook", () => {
  it("accepts the published test vector", async () => {
    const headers = headersOf({
      "webhook-id": VECTOR.id,
      "webhook-timestamp": String(VECTOR.timestamp),
      "webhook-signature": VECTOR.signature,
    });
    expect(await verifyWebhook(VECTOR.secret, headers, VECTOR.body, VECTOR.timestamp)).toEqual({
      ok: true,
      id: VECTOR.id,
      timestamp: VECTOR.timestamp,
    });
  });

  it("accepts a delivery signed by the standardwebhooks library", async () => {
    const t = now();
    const signature = new Webhook(SECRET).sign("msg_lib_1", new Date(t * 1000), BODY);
    const headers = headersOf({
      "webhook-id": "msg_lib_1",
      "webhook-timestamp": String(t),
      "webhook-signature": signature,
    });
    expect(await verifyWebhook(SECRET, headers, BODY, t)).toEqual({ ok: true, id: "msg_lib_1", timestamp: t });
  });

  it("accepts its own signature and reads header names case-insensitively", async () => {
    const t = now();
    const signed = await signWebhook(SECRET, "msg_own", t, BODY);
    const headers = headersOf({
      "Webhook-Id": signed["webhook-id"],
      "WEBHOOK-TIMESTAMP": signed["webhook-timestamp"],
      "Webhook-Signature": signed["webhook-signature"],
    });
    expect(await verifyWebhook(SECRET, headers, BODY, t)).toEqual({ ok: true, id: "msg_own", timestamp: t });
  });

  describe("tampering", () => {
    const T = 1_700_000_000;
    const signedHeaders = async () => signWebhook(SECRET, "msg_t", T, BODY);

    it("refuses a changed body", async () => {
      const headers = headersOf(await signedHeaders());
      expect(await verifyWebhook(SECRET, headers, BODY.replace("demo.echo", "demo.rm"), T)).toEqual({
        ok: false,
        reason: "bad_signature",
      });
      expect(await verifyWebhook(SECRET, headers, `${BODY} `, T)).toEqual({ ok: false, reason: "bad_signature" });
    });

    it("refuses a changed id", async () => {
      const headers = headersOf({ ...(await signedHeaders()), "webhook-id": "msg_u" });
      expect(await verifyWebhook(SECRET, headers, BODY, T)).toEqual({ ok: false, reason: "bad_signature" });
    });

    it("refuses a changed timestamp, even inside the tolerance", async () => {
      const headers = headersOf({ ...(await signedHeaders()), "webhook-timestamp": String(T + 1) });
      expect(await verifyWebhook(SECRET, headers, BODY, T)).toEqual({ ok: false, reason: "bad_signature" });
    });

    it("refuses a signature made with another secret", async () => {
      const headers = headersOf(await signWebhook(OTHER_SECRET, "msg_t", T, BODY));
      expect(await verifyWebhook(SECRET, headers, BODY, T)).toEqual({ ok: false, reason: "bad_signature" });
    });

    it("refuses a signature with one flipped bit", async () => {
      const signed = await signedHeaders();
      const tag = Uint8Array.from(atob(signed["webhook-signature"].slice(3)), (c) => c.charCodeAt(0));
      tag[31] = tag[31]! ^ 1;
      const forged = `v1,${btoa(String.fromCharCode(...tag))}`;
      const headers = headersOf({ ...signed, "webhook-signature": forged });
      expect(await verifyWebhook(SECRET, headers, BODY, T)).toEqual({ ok: false, reason: "bad_signature" });
    });

    it("refuses a valid tag under another version label", async () => {
      const signed = await signedHeaders();
      const relabelled = signed["webhook-signature"].replace(/^v1,/, "v2,");
      const headers = headersOf({ ...signed, "webhook-signature": relabelled });
      expect(await verifyWebhook(SECRET, headers, BODY, T)).toEqual({ ok: false, reason: "bad_signature" });
    });
  });

  describe("timestamps", () => {
    const T = 1_700_000_000;
    const at = async (signedAt: number, nowSeconds: number, tolerance?: number) =>
      verifyWebhook(
        SECRET,
        headersOf(await signWebhook(SECRET, "msg_ts", signedAt, BODY)),
        BODY,
        nowSeconds,
        tolerance,
      );

    it("accepts up to the tolerance either way (default 300 s)", async () => {
      expect((await at(T, T + 300)).ok).toBe(true);
      expect((await at(T, T - 300)).ok).toBe(true);
    });

    it("refuses a stale timestamp", async () => {
      expect(await at(T, T + 301)).toEqual({ ok: false, reason: "stale" });
      expect(await at(T, T + 86_400)).toEqual({ ok: false, reason: "stale" });
    });

    it("refuses a timestamp from the future", async () => {
      expect(await at(T, T - 301)).toEqual({ ok: false, reason: "future" });
    });

    it("honours a custom tolerance", async () => {
      expect(await at(T, T + 10, 5)).toEqual({ ok: false, reason: "stale" });
      expect(await at(T, T - 10, 5)).toEqual({ ok: false, reason: "future" });
      expect((await at(T, T + 5, 5)).ok).toBe(true);
    });

    it("fails closed on a clock that is not a number", async () => {
      expect(await at(T, Number.NaN)).toEqual({ ok: false, reason: "bad_timestamp" });
      expect(await at(T, T, Number.NaN)).toEqual({ ok: false, reason: "bad_timestamp" });
    });

    it.each([
      ["not a number", "soon"],
      ["trailing junk", `${T}abc`],
      ["a fraction", `${T}.5`],
      ["negative", `-${T}`],
      ["leading zero", `0${T}`],
      ["leading plus", `+${T}`],
      ["exponent", "1.7e9"],
      ["beyond a safe integer", "9999999999999999"],
    ])("refuses a timestamp that is %s", async (_label, timestamp) => {
      const signed = await signWebhook(SECRET, "msg_ts", T, BODY);
      const headers = headersOf({ ...signed, "webhook-timestamp": timestamp });
      expect(await verifyWebhook(SECRET, headers, BODY, T)).toEqual({ ok: false, reason: "bad_timestamp" });
    });
  });

  describe("multiple signatures", () => {
    const T = 1_700_000_000;

    it("passes when any v1 entry matches (secret rotation), wherever it sits", async () => {
      const good = (await signWebhook(SECRET, "msg_m", T, BODY))["webhook-signature"];
      const old = (await signWebhook(OTHER_SECRET, "msg_m", T, BODY))["webhook-signature"];
      for (const list of [
        `${old} ${good}`,
        `${good} ${old}`,
        `v1a,c2lnbmF0dXJl ${good}`,
        `junk ${good}`,
        `  ${old}  ${good} `,
      ]) {
        const headers = headersOf({ "webhook-id": "msg_m", "webhook-timestamp": String(T), "webhook-signature": list });
        expect(await verifyWebhook(SECRET, headers, BODY, T)).toEqual({ ok: true, id: "msg_m", timestamp: T });
      }
    });

    it("fails when no entry matches", async () => {
      const old = (await signWebhook(OTHER_SECRET, "msg_m", T, BODY))["webhook-signature"];
      const list = `${old} v1,${btoa("x".repeat(32))} v1a,${btoa("y".repeat(64))}`;
      const headers = headersOf({ "webhook-id": "msg_m", "webhook-timestamp": String(T), "webhook-signature": list });
      expect(await verifyWebhook(SECRET, headers, BODY, T)).toEqual({ ok: false, reason: "bad_signature" });
    });

    it("accepts a library-made header listing an old and a current signature", async () => {
      const t = now();
      const date = new Date(t * 1000);
      const list = `${new Webhook(OTHER_SECRET).sign("msg_r", date, BODY)} ${new Webhook(SECRET).sign("msg_r", date, BODY)}`;
      const headers = headersOf({ "webhook-id": "msg_r", "webhook-timestamp": String(t), "webhook-signature": list });
      expect((await verifyWebhook(SECRET, headers, BODY, t)).ok).toBe(true);
      expect((await verifyWebhook(OTHER_SECRET, headers, BODY, t)).ok).toBe(true);
    });

    it("refuses a header stuffed with entries before the valid one", async () => {
      const good = (await signWebhook(SECRET, "msg_m", T, BODY))["webhook-signature"];
      const list = `${"v1,AAAA ".repeat(100)}${good}`;
      const headers = headersOf({ "webhook-id": "msg_m", "webhook-timestamp": String(T), "webhook-signature": list });
      expect(await verifyWebhook(SECRET, headers, BODY, T)).toEqual({ ok: false, reason: "bad_signature" });
    });
  });

  describe("missing headers", () => {
    const T = 1_700_000_000;

    it.each(["webhook-id", "webhook-timestamp", "webhook-signature"] as const)(
      "refuses a delivery without %s",
      async (name) => {
        const signed: Record<string, string> = await signWebhook(SECRET, "msg_h", T, BODY);
        delete signed[name];
        expect(await verifyWebhook(SECRET, headersOf(signed), BODY, T)).toEqual({
          ok: false,
          reason: "missing_headers",
        });
      },
    );

    it("refuses empty header values", async () => {
      const signed = await signWebhook(SECRET, "msg_h", T, BODY);
      expect(await verifyWebhook(SECRET, headersOf({ ...signed, "webhook-id": "" }), BODY, T)).toEqual({
        ok: false,
        reason: "missing_headers",
      });
    });

    it("refuses a request with no Standard Webhooks headers at all", async () => {
      expect(await verifyWebhook(SECRET, new Headers(), BODY, T)).toEqual({ ok: false, reason: "missing_headers" });
    });
  });

  describe("bad secret", () => {
    it.each([["not-a-secret"], ["whsec_"], ["whsec_%%%%"], ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]])(
      "refuses to verify with %j",
      async (secret) => {
        const headers = headersOf({
          "webhook-id": VECTOR.id,
          "webhook-timestamp": String(VECTOR.timestamp),
          "webhook-signature": VECTOR.signature,
        });
        expect(await verifyWebhook(secret, headers, VECTOR.body, VECTOR.timestamp)).toEqual({
          ok: false,
          reason: "bad_secret",
        });
      },
    );
  });

  describe("junk input never throws", () => {
    const T = 1_700_000_000;
    it.each([
      "v1",
      "v1,",
      "v1,,",
      ",",
      "v1,%%%%",
      "v1,AAAA",
      "v1,AAA",
      `v1,${btoa("z".repeat(31))}`,
      `v1,${btoa("z".repeat(33))}`,
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
      "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=",
      "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
      "x".repeat(10_000),
    ])("answers bad_signature for signature %#", async (signature) => {
      const headers = headersOf({
        "webhook-id": "msg_j",
        "webhook-timestamp": String(T),
        "webhook-signature": signature,
      });
      expect(await verifyWebhook(SECRET, headers, BODY, T)).toEqual({ ok: false, reason: "bad_signature" });
    });

    it("survives a Headers object that throws", async () => {
      const hostile = {
        get: () => {
          throw new Error("boom");
        },
      } as unknown as Headers;
      expect(await verifyWebhook(SECRET, hostile, BODY, T)).toEqual({ ok: false, reason: "bad_signature" });
    });
  });
});
