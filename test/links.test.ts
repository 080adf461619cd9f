// Issue 7, signed links, and issue 11 item 1, links that need a person: per-choice, per-recipient tokens; approval
// links that signoff mails to their recipients itself (no API answer carries them) and that decide only for the
// person Cloudflare Access vouches for at decision time; a confirmation page that a GET (a mail scanner, an
// unfurler, a curious person) can load any number of times without deciding anything; a POST that decides once,
// behind a CSRF check; M-of-N over distinct people; and the Teams card that carries the links.
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { checkConfig } from "../src/config/check.ts";
import { parsePolicy } from "../src/config/policy.ts";
import worker from "../src/index.ts";
import { type LinkClaims, mintLinkToken, verifyLinkToken } from "../src/links/token.ts";
import { escapeTeamsMarkdown } from "../src/teams/card.ts";
import { ACCESS_AUD, LINK_BINDINGS, MAIL_API_TOKEN, MAIL_FROM, SECRETS, SOC_KEY, TOKENS } from "./fixtures.ts";
import {
  auditOf,
  BASE,
  call,
  click,
  createdThisTest,
  createProposal,
  getProposal,
  inJobTable,
  jobsOf,
  json,
  runJobsNow,
  settle,
  stubOf,
} from "./helpers/api.ts";
import {
  accessJwt,
  api,
  approvalBody,
  claimsOf,
  confirmLink,
  linkEnv,
  mailedLink,
  openAndConfirm,
  openLink,
  PEER,
  pageKind,
  pathOf,
  propose,
  type SignIn,
  send,
  sentMails,
  signedLink,
  verifies,
} from "./helpers/links.ts";
import { countedStream, paddedForm } from "./helpers/streams.ts";
import { peer } from "./peer/client.ts";

const SECRET = LINK_BINDINGS.LINK_SECRET;
const OTHER_SECRET = "whsec_b3RoZXItbGluay1zZWNyZXQtMDAwMDAwMDAwMA==";
const PROPOSAL_ID = `prp_${"ab".repeat(32)}`;
const CLAIMS: LinkClaims = {
  p: PROPOSAL_ID,
  c: "approve",
  r: "alice@example.com",
  e: 4_102_444_800,
  n: "bm9uY2Utbm9uY2Utbm9uY2U",
};

const solo = (overrides: Record<string, unknown> = {}) =>
  approvalBody({
    action: { type: "links.solo", params: { service: "billing" } },
    summary: "Restart billing workers",
    ...overrides,
  });

/** Flips one character of a base64url string to another valid one. */
function flip(text: string, at: number): string {
  const c = text[at]!;
  return text.slice(0, at) + (c === "A" ? "B" : "A") + text.slice(at + 1);
}

async function statusOf(id: string): Promise<string> {
  return (await getProposal(id)).status as string;
}

async function linkRows(id: string) {
  return runInDurableObject(stubOf(id), (_i, state) =>
    state.storage.sql.exec(`SELECT recipient, choice, used_at FROM links ORDER BY rowid`).toArray(),
  );
}

describe("tokens: v1.<payload>.<HMAC-SHA256>, verified in constant time", () => {
  it("a minted token verifies and carries proposal, choice, recipient, expiry and nonce", async () => {
    const token = await mintLinkToken(SECRET, CLAIMS);
    expect(token).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(await verifyLinkToken(SECRET, token)).toEqual({ ok: true, claims: CLAIMS });
  });

  it("a byte of the payload flipped, the signature flipped, another secret: bad_signature", async () => {
    const token = await mintLinkToken(SECRET, CLAIMS);
    const [v, payload, mac] = token.split(".") as [string, string, string];
    for (let at = 0; at < payload.length; at += 7) {
      const result = await verifyLinkToken(SECRET, `${v}.${flip(payload, at)}.${mac}`);
      expect(result.ok, `payload char ${at}`).toBe(false);
    }
    for (let at = 0; at < mac.length; at += 5) {
      expect(await verifyLinkToken(SECRET, `${v}.${payload}.${flip(mac, at)}`)).toMatchObject({
        ok: false,
        reason: "bad_signature",
      });
    }
    const foreign = await mintLinkToken(OTHER_SECRET, CLAIMS);
    // A forgery still says which proposal it names, so the refusal can be audited there.
    expect(await verifyLinkToken(SECRET, foreign)).toEqual({
      ok: false,
      reason: "bad_signature",
      claimedProposal: PROPOSAL_ID,
    });
  });

  it("truncated tokens and junk are refused without being parsed", async () => {
    const token = await mintLinkToken(SECRET, CLAIMS);
    const junk = [
      "",
      "v1",
      token.slice(0, -1),
      token.slice(0, token.lastIndexOf(".")),
      token.slice(0, 20),
      `v2${token.slice(2)}`,
      `${token}.extra`,
      token.replace(/\./g, ""),
      "v1..",
      "v1.%%%.%%%",
      "v1.e30.AAAA",
      "x".repeat(5000),
      `v1.${"A".repeat(2000)}.${"A".repeat(43)}`,
    ];
    for (const candidate of junk) {
      expect((await verifyLinkToken(SECRET, candidate)).ok, candidate.slice(0, 40)).toBe(false);
    }
  });

  it("a correctly signed token with claims signoff never mints (another choice word, extra fields) is refused", async () => {
    expect(
      await verifyLinkToken(SECRET, await mintLinkToken(SECRET, { ...CLAIMS, c: "launch" as never })),
    ).toMatchObject({ ok: false, reason: "bad_claims" });
    expect(await verifyLinkToken(SECRET, await mintLinkToken(SECRET, { ...CLAIMS, r: "<script>" }))).toMatchObject({
      ok: false,
      reason: "bad_claims",
    });
  });
});

describe("approval links never reach the proposer: signoff mails them to each recipient", () => {
  it("the create response, an Idempotency-Key replay and GET carry no approval link (nor the Teams webhook)", async () => {
    const headers = { "idempotency-key": `links-${crypto.randomUUID()}` };
    const first = await api("/v1/proposals", { body: approvalBody(), headers });
    const again = await api("/v1/proposals", { body: approvalBody(), headers });
    expect([first.status, again.status]).toEqual([201, 200]);
    const created = await json(first);
    const replayed = await json(again);
    await settle(created.id);
    const view = await getProposal(created.id);
    const mails = await sentMails(created.id);
    expect(mails).toHaveLength(3); // the links exist: they went to their recipients
    for (const [what, answer] of [
      ["create", created],
      ["replay", replayed],
      ["GET", view],
    ] as const) {
      expect(answer, what).not.toHaveProperty("links");
      expect(answer, what).not.toHaveProperty("teams"); // the webhook URL is a credential too
      expect(answer, what).not.toHaveProperty("mail");
      const raw = JSON.stringify(answer);
      expect(raw, what).not.toContain("/l/");
      for (const mail of mails) {
        for (const url of [mail.approve!, mail.deny!]) expect(raw, what).not.toContain(pathOf(url).slice(3, 40));
      }
      expect(raw, what).not.toContain("/teams/approve");
    }
    expect(created.rule.links).toEqual({
      recipients: ["alice@example.com", "bob@example.com", "carol+ops@example.com"],
      teams_recipient: "teams-sre",
    });
  });

  it("one mail per e-mail recipient, with exactly their approve and deny links, each verifying and expiring at the deadline", async () => {
    const p = await propose(approvalBody());
    await settle(p.id);
    const mails = await sentMails(p.id);
    const recipients = ["alice@example.com", "bob@example.com", "carol+ops@example.com"];
    expect(mails.map((m) => m.to).sort()).toEqual(recipients.map((r) => [r]));
    const nonces = new Set<string>();
    for (const mail of mails) {
      const [to] = mail.to as [string];
      expect(mail.from).toBe(MAIL_FROM);
      expect(mail.headers.authorization).toBe(`Bearer ${MAIL_API_TOKEN}`);
      expect(mail.headers["content-type"]).toMatch(/^application\/json/);
      // Stable per proposal and recipient, naming neither the address nor a link.
      expect(mail.headers["idempotency-key"]).toMatch(new RegExp(`^${p.id}/mail/[0-2]$`));
      const links = [...`${mail.text}\n${mail.html}`.matchAll(/https:\/\/signoff\.test\/l\/[A-Za-z0-9._-]+/g)].map(
        (m) => m[0],
      );
      expect(new Set(links)).toEqual(new Set([mail.approve, mail.deny]));
      for (const [url, choice] of [
        [mail.approve!, "approve"],
        [mail.deny!, "deny"],
      ] as const) {
        expect(url.startsWith(`${LINK_BINDINGS.PUBLIC_URL}/l/v1.`)).toBe(true);
        const verified = await verifies(url);
        expect(verified).toMatchObject({
          ok: true,
          claims: { p: p.id, c: choice, r: to, e: Math.ceil(Date.parse(p.expires_at) / 1000) },
        });
        nonces.add(claimsOf(url).n);
      }
    }
    expect(nonces.size).toBe(6);
    // Nobody gets a mail for the Teams card's identity: its links are on the card only.
    expect(mails.some((m) => m.to.includes("teams-sre"))).toBe(false);
    const audit = await auditOf(p.id);
    expect(
      audit
        .filter((e) => e.type === "mail.sent")
        .map((e) => e.details)
        .sort((a, b) => a.recipient.localeCompare(b.recipient)),
    ).toEqual(recipients.map((recipient) => ({ recipient, attempt: 1 })));
    const logged = JSON.stringify(audit);
    expect(logged).not.toContain("/l/");
    expect(logged).not.toContain(MAIL_API_TOKEN);
  });

  it("the mail quotes the proposer's words HTML-escaped, shows the whole plan, and says the links need sign-in and are for that person only", async () => {
    const params = { service: "api", note: "<img src=x onerror=alert(1)> & `rm -rf`", pad: "é\u202e" };
    const p = await propose(
      approvalBody({
        action: { type: "links.deploy", params },
        summary: "Deploy <script>alert(1)</script>\r\nBcc: everyone@example.com",
        reason: 'Approve here instead: <a href="https://evil.example">https://evil.example</a>',
      }),
    );
    await settle(p.id);
    const mail = (await sentMails(p.id)).find((m) => m.to.includes("bob@example.com"))!;
    // One header line: the summary cannot add a Bcc or anything else.
    expect(mail.subject).toBe("Approval needed: Deploy <script>alert(1)</script> Bcc: everyone@example.com");
    expect(mail.subject).not.toMatch(/[\r\n]/);
    expect(mail.html).not.toContain("<script>");
    expect(mail.html).not.toContain("<img");
    expect(mail.html).not.toContain('href="https://evil.example"');
    expect(mail.html).toContain("Deploy &lt;script&gt;alert(1)&lt;/script&gt;");
    expect(mail.html).toContain("&lt;a href=&quot;https://evil.example&quot;&gt;");
    // signoff's two links are the only anchors.
    expect([...mail.html.matchAll(/<a /g)]).toHaveLength(2);
    expect(mail.text).toContain("> Deploy <script>alert(1)</script>"); // quoted as the proposer's words
    expect(mail.text).toContain("the proposer's words, not signoff's");
    expect(mail.text).toContain("Proposed by API key soc");
    // The whole plan, as ASCII JSON that parses to exactly what will run.
    const plan = /Params \(exactly what will run, as JSON\):\n([\s\S]*?\n\})\n/.exec(mail.text)?.[1] ?? "";
    expect(plan).toMatch(/^[\x20-\x7e\n]*$/);
    expect(JSON.parse(plan)).toEqual(params);
    expect(mail.html).toContain("&lt;img src=x onerror=alert(1)&gt; &amp; \\u0060rm -rf\\u0060");
    for (const part of [mail.text, mail.html]) {
      expect(part).toContain("for bob@example.com only");
      expect(part).toContain("sign in as bob@example.com");
      expect(part).toContain("decides nothing");
    }
  });

  it("a mail API answering 503 is retried after its Retry-After and delivers once; an alarm run again mails nobody twice", async () => {
    await peer.script("/mail/emails", [{ status: 503, headers: { "retry-after": "3" }, body: { leaked: "upstream" } }]);
    const p = await propose(solo());
    await settle(p.id);
    let audit = await auditOf(p.id);
    expect(audit.filter((e) => e.type.startsWith("mail."))).toEqual([
      expect.objectContaining({
        type: "mail.failed",
        actor: "system",
        details: { recipient: "dana@example.com", attempt: 1, error: "HTTP 503", final: false },
      }),
    ]);
    const [job] = await jobsOf(p.id, "mail");
    expect(job).toMatchObject({ key: "dana@example.com", attempt: 1 });
    const wait = job!.due_at - Date.now();
    expect(wait).toBeGreaterThan(1_000);
    expect(wait).toBeLessThanOrEqual(3_000);
    await runJobsNow(p.id, ["mail"]);
    const attempts = await peer.requests("/mail/emails");
    expect(attempts).toHaveLength(2);
    expect(attempts[1]!.body).toBe(attempts[0]!.body); // the same mail, the same links
    expect(attempts[1]!.headers["idempotency-key"]).toBe(attempts[0]!.headers["idempotency-key"]);
    audit = await auditOf(p.id);
    expect(audit.filter((e) => e.type === "mail.sent").map((e) => e.details)).toEqual([
      { recipient: "dana@example.com", attempt: 2 },
    ]);
    expect(JSON.stringify(audit)).not.toContain("upstream");

    // The job asked for again (as an alarm that runs twice would): the delivery is on record, nothing is sent.
    await inJobTable(p.id, (jobs) => jobs.schedule("mail", "dana@example.com", 0));
    await settle(p.id);
    expect(await peer.requests("/mail/emails")).toHaveLength(2);
    // The link it carried decides.
    expect((await openAndConfirm(await mailedLink(p, "dana@example.com", "approve"))).res.status).toBe(200);
  });

  it("a mail API refusing (400) is audited mail.failed, final, never retried; the decision goes on through Slack and Teams", async () => {
    await peer.script("/mail/emails", [{ status: 400 }, { status: 400 }, { status: 400 }]);
    const p = await propose(approvalBody());
    await settle(p.id);
    const failed = (await auditOf(p.id)).filter((e) => e.type === "mail.failed");
    expect(failed.map((e) => e.details).sort((a, b) => a.recipient.localeCompare(b.recipient))).toEqual(
      ["alice@example.com", "bob@example.com", "carol+ops@example.com"].map((recipient) => ({
        recipient,
        attempt: 1,
        error: "HTTP 400",
        final: true,
      })),
    );
    expect(await jobsOf(p.id, "mail")).toEqual([]);
    await runJobsNow(p.id);
    expect(await peer.requests("/mail/emails")).toHaveLength(3);
    // Nothing about the mail touched the proposal: Slack and the Teams card still decide it.
    expect(await statusOf(p.id)).toBe("pending");
    const card = JSON.parse((await peer.requests("/teams/approve"))[0]!.body).attachments[0].content;
    expect((await openAndConfirm(card.actions[0].url, { as: "bob@example.com" })).res.status).toBe(200);
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);
    expect(await statusOf(p.id)).toBe("succeeded");
  });

  it("a proposal decided before its mails could go out sends none: mail.skipped", async () => {
    await peer.script("/mail/emails", [{ status: 503 }]);
    const p = await propose(solo());
    await settle(p.id);
    const cancelled = await api(`/v1/proposals/${p.id}/cancel`, { method: "POST" });
    expect(cancelled.status).toBe(200);
    await runJobsNow(p.id, ["mail"]);
    expect(await peer.requests("/mail/emails")).toHaveLength(1);
    expect((await auditOf(p.id)).find((e) => e.type === "mail.skipped")).toMatchObject({
      details: { recipient: "dana@example.com", status: "cancelled" },
    });
  });

  it("a proposal created in a change freeze mails no links, and an approve link's page says only break-glass can approve", async () => {
    // links.deploy with break-glass, during a freeze: created, marked frozen; no link approval can count.
    const base = await linkEnv();
    const policy = JSON.parse(base.POLICY);
    const hour = 3_600_000;
    policy.freezes = [
      {
        name: "release freeze",
        actions: ["links.deploy"],
        start: new Date(Date.now() - hour).toISOString(),
        end: new Date(Date.now() + hour).toISOString(),
      },
    ];
    policy.actions["links.deploy"].break_glass = { approvers: ["U0LEAD"], reason_required: true };
    const ctx = createExecutionContext();
    const res = await worker.fetch!(
      new Request(`${BASE}/v1/proposals`, {
        method: "POST",
        headers: { authorization: `Bearer ${SOC_KEY.token}`, "content-type": "application/json" },
        body: JSON.stringify(approvalBody()),
      }) as Request<unknown, IncomingRequestCfProperties>,
      { ...base, POLICY: JSON.stringify(policy) },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    const p = (await res.json()) as { id: string; rule: { freeze?: { name: string } } };
    expect(res.status, JSON.stringify(p)).toBe(201);
    createdThisTest.add(p.id);
    expect(p.rule.freeze?.name).toBe("release freeze");
    await settle(p.id);
    await runJobsNow(p.id, ["mail"]);
    expect(await sentMails(p.id)).toEqual([]);
    expect((await auditOf(p.id)).filter((e) => e.type.startsWith("mail."))).toEqual([]);
    // The Teams card says why and offers Deny alone.
    const card = JSON.parse((await peer.requests("/teams/approve"))[0]!.body).attachments[0].content;
    expect(card.actions.map((a: { title: string }) => a.title)).toEqual(["Deny"]);
    const texts = card.body.map((b: { text: string }) => b.text).join("\n");
    expect(texts).toContain(escapeTeamsMarkdown('change freeze "release freeze"'));
    expect(texts).toContain(escapeTeamsMarkdown("only break-glass can approve it. Break-glass is in Slack."));
    // Its approve link all the same (issued with the proposal, as a card drawn before would carry it): refused on
    // its page, before any button is offered.
    const deny = claimsOf(card.actions[0].url as string);
    const nonce = await runInDurableObject(stubOf(p.id), (_i, state) =>
      state.storage.sql
        .exec<{ nonce: string }>(`SELECT nonce FROM links WHERE recipient = ? AND choice = 'approve'`, deny.r)
        .one(),
    );
    const approve = await signedLink({ ...deny, c: "approve", n: nonce.nonce });
    const page = await openLink(approve, { as: "alice@example.com" });
    expect(page.res.status).toBe(403);
    expect(pageKind(page.html)).toBe("forbidden");
    expect(page.html).toContain("release freeze");
    expect(page.html).toContain("only break-glass can approve it");
    expect(page.csrf).toBeNull();
    // A POST all the same (a page opened before, a hand-made form): the same words, and nothing counted.
    const csrf = "a".repeat(43);
    const posted = await confirmLink(approve, { cookie: csrf, csrf, as: "alice@example.com" });
    expect(posted.res.status).toBe(403);
    expect(posted.html).toContain("only break-glass can approve it");
    expect((await getProposal(p.id)).approvals).toEqual([]);
    expect((await auditOf(p.id)).filter((e) => e.type === "link.refused").map((e) => e.details.code)).toEqual([
      "frozen",
    ]);
  });

  it("an action with links disabled (or none) answers no links and mails nothing, and /l/ refuses a token for it", async () => {
    const quiet = await propose(approvalBody({ action: { type: "links.quiet", params: {} } }));
    expect(quiet).not.toHaveProperty("links");
    expect(quiet.rule).not.toHaveProperty("links");
    const classic = await createProposal();
    expect(classic).not.toHaveProperty("links");

    // Even a correctly signed token (only signoff holds LINK_SECRET) cannot decide one of these.
    for (const p of [quiet, classic]) {
      const url = await signedLink({
        p: p.id,
        c: "approve",
        r: "alice@example.com",
        e: Math.ceil(Date.now() / 1000) + 600,
        n: "AAAAAAAAAAAAAAAAAAAAAA",
      });
      const page = await openLink(url);
      expect(page.res.status).toBe(403);
      expect(page.html).toContain("Links are not enabled for this action");
      expect(page.cookie).toBeNull();
      const posted = await confirmLink(url, { cookie: "c".repeat(43), csrf: "c".repeat(43) });
      expect(posted.res.status).toBe(403);
      expect(await statusOf(p.id)).toBe("pending");
      await settle(p.id);
      expect((await getProposal(p.id)).approvals).toEqual([]);
    }
    expect(await peer.requests("/mail/emails")).toHaveLength(0);
  });
});

describe("prefetch: a GET never decides", () => {
  it("the page states the proposal and the choice; GET ten times and HEAD three times change nothing", async () => {
    const p = await propose(solo({ summary: 'Restart <b>billing</b> & "friends"' }));
    const url = await mailedLink(p, "dana@example.com", "approve");
    for (let i = 0; i < 10; i++) {
      const page = await openLink(url, { headers: { "user-agent": "Mozilla/5.0 (compatible; SafeLinks scanner)" } });
      expect(page.res.status).toBe(200);
      expect(pageKind(page.html)).toBe("confirm");
    }
    for (let i = 0; i < 3; i++) {
      const head = await openLink(url, { method: "HEAD" });
      expect(head.res.status).toBe(200);
      expect(head.html).toBe("");
    }
    const page = await openLink(url);
    expect(page.html).toContain("Approve this action?");
    expect(page.html).toContain("Restart &lt;b&gt;billing&lt;/b&gt; &amp; &quot;friends&quot;");
    expect(page.html).not.toContain("<b>billing</b>");
    expect(page.html).toContain('data-choice="approve"');
    expect(page.html).toContain("dana@example.com");
    expect(page.html).toContain("Opening this page decided nothing");
    expect(page.html).toMatch(/<form method="post" action="\/l\/v1\.[^"]+">/);

    await settle(p.id);
    const after = await getProposal(p.id);
    expect(after.status).toBe("pending");
    expect(after.approvals).toEqual([]);
    // The mail that brought the link is the only thing that happened.
    expect((await auditOf(p.id)).map((e) => e.type)).toEqual(["proposal.created", "mail.sent"]);
    expect((await linkRows(p.id)).every((row) => row.used_at === null)).toBe(true);
    expect(await peer.requests("/runner")).toHaveLength(0);
  });

  it("pages are locked down: CSP, no framing, no caching, no referrer outside the origin, a strict CSRF cookie", async () => {
    const p = await propose(solo());
    const page = await openLink(await mailedLink(p, "dana@example.com", "deny"));
    const h = page.res.headers;
    expect(h.get("content-type")).toBe("text/html; charset=utf-8");
    expect(h.get("content-security-policy")).toContain(
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    );
    expect(h.get("x-frame-options")).toBe("DENY");
    expect(h.get("cache-control")).toBe("no-store");
    expect(h.get("referrer-policy")).toBe("same-origin");
    const [pair, ...attributes] = page.setCookie!.split("; ");
    expect(pair).toMatch(/^signoff_csrf=[A-Za-z0-9_-]{43}$/);
    expect(attributes.sort()).toEqual([
      "HttpOnly",
      expect.stringMatching(/^Max-Age=\d+$/),
      "Path=/l/",
      "SameSite=Strict",
      "Secure",
    ]);
    expect(page.csrf).toBe(page.cookie);
    expect(page.html).toContain('name="reason"'); // deny asks for an optional reason
    expect(page.html).not.toMatch(/<script|<link|<img|https?:\/\/(?!signoff)/i);
    const invalid = await openLink(`${LINK_BINDINGS.PUBLIC_URL}/l/v1.nope.nope`);
    expect(invalid.res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(invalid.res.headers.get("x-frame-options")).toBe("DENY");
    await settle(p.id);
  });
});

describe("POST decides once", () => {
  it("the button approves as link:<the person signed in>; the plan is dispatched once; the same link again is 'already used' and audited", async () => {
    const p = await propose(solo());
    const url = await mailedLink(p, "dana@example.com", "approve");
    const page = await openLink(url);
    const done = await confirmLink(url, { cookie: page.cookie, csrf: page.csrf });
    expect(done.res.status).toBe(200);
    expect(pageKind(done.html)).toBe("decided");
    expect(done.html).toContain("the action will run now");
    await settle(p.id);

    const after = await getProposal(p.id);
    expect(after.status).toBe("succeeded");
    expect(after.approvals).toEqual([
      { user: "link:dana@example.com", person: "dana@example.com", at: expect.any(String) },
    ]);
    expect(after.decision).toMatchObject({ by: "link:dana@example.com", outcome: "approved" });
    const runs = await peer.requests("/runner");
    expect(runs).toHaveLength(1);
    expect(JSON.parse(runs[0]!.body).approvers).toEqual(["link:dana@example.com"]);

    const again = await confirmLink(url, { cookie: page.cookie, csrf: page.csrf });
    expect(again.res.status).toBe(409);
    expect(pageKind(again.html)).toBe("already_used");
    expect(again.html).toContain("This link was already used");
    const reopened = await openLink(url);
    expect(pageKind(reopened.html)).toBe("already_used");
    // The deny link of the same recipient finds the proposal decided.
    const denyPage = await openLink(await mailedLink(p, "dana@example.com", "deny"));
    expect(pageKind(denyPage.html)).toBe("not_pending");

    await settle(p.id);
    expect(await peer.requests("/runner")).toHaveLength(1);
    const audit = await auditOf(p.id);
    expect(audit.filter((e) => e.type === "proposal.approved")).toHaveLength(1);
    expect(audit.find((e) => e.type === "approval.recorded")).toMatchObject({
      actor: "link:dana@example.com",
      details: { via: "link", recipient: "dana@example.com", person: "dana@example.com" },
    });
    expect(audit.find((e) => e.type === "link.refused")).toMatchObject({
      actor: "link:dana@example.com",
      details: { code: "already_used", choice: "approve" },
    });
    expect((await linkRows(p.id)).find((r) => r.choice === "approve")!.used_at).toEqual(expect.any(Number));
  });

  it("deny by link takes an optional reason into the decision and the audit log", async () => {
    const p = await propose(solo());
    const done = await openAndConfirm(await mailedLink(p, "dana@example.com", "deny"), {
      reason: "  Not during the <freeze>  ",
    });
    expect(done.res.status).toBe(200);
    expect(done.html).toContain("Nothing will run");
    const after = await getProposal(p.id);
    expect(after).toMatchObject({
      status: "denied",
      decision: { by: "link:dana@example.com", outcome: "denied", reason: "Not during the <freeze>" },
    });
    await settle(p.id);
    expect((await auditOf(p.id)).find((e) => e.type === "proposal.denied")).toMatchObject({
      actor: "link:dana@example.com",
      details: { reason: "Not during the <freeze>", via: "link" },
    });
    expect(await peer.requests("/runner")).toHaveLength(0);
  });

  it("two concurrent POSTs of the same link decide once", async () => {
    const p = await propose(solo());
    const url = await mailedLink(p, "dana@example.com", "approve");
    const page = await openLink(url);
    const both = await Promise.all([
      confirmLink(url, { cookie: page.cookie, csrf: page.csrf }),
      confirmLink(url, { cookie: page.cookie, csrf: page.csrf }),
    ]);
    expect(both.map((r) => r.res.status).sort()).toEqual([200, 409]);
    await settle(p.id);
    expect(await peer.requests("/runner")).toHaveLength(1);
  });
});

describe("CSRF: the POST must come from the link's own page", () => {
  const cases: Array<
    [string, (page: { cookie: string | null; csrf: string | null }) => Parameters<typeof confirmLink>[1], string]
  > = [
    ["no cookie", (page) => ({ cookie: null, csrf: page.csrf }), "csrf_cookie"],
    ["no form field", (page) => ({ cookie: page.cookie, csrf: null }), "csrf_cookie"],
    [
      "a field that does not match the cookie",
      (page) => ({ cookie: page.cookie, csrf: `${page.csrf!.slice(0, -1)}${page.csrf!.endsWith("A") ? "B" : "A"}` }),
      "csrf_cookie",
    ],
    [
      "matching values an attacker chose, without our cookie's form",
      () => ({ cookie: "short", csrf: "short" }),
      "csrf_cookie",
    ],
    [
      "a foreign Origin",
      (page) => ({ cookie: page.cookie, csrf: page.csrf, origin: "https://evil.example" }),
      "csrf_origin",
    ],
    [
      "Origin: null (a sandboxed or no-referrer page)",
      (page) => ({ cookie: page.cookie, csrf: page.csrf, origin: "null" }),
      "csrf_origin",
    ],
  ];
  for (const [name, options, code] of cases) {
    it(`${name}: 403, nothing decided, audited`, async () => {
      const p = await propose(solo());
      const url = await mailedLink(p, "dana@example.com", "approve");
      const page = await openLink(url);
      const res = await confirmLink(url, options(page));
      expect(res.res.status).toBe(403);
      expect(res.html).toContain("Nothing was decided");
      expect(await statusOf(p.id)).toBe("pending");
      await settle(p.id);
      expect((await auditOf(p.id)).find((e) => e.type === "link.refused")).toMatchObject({
        actor: "link:dana@example.com",
        details: { code },
      });
      expect((await linkRows(p.id)).every((r) => r.used_at === null)).toBe(true);
      // The link still works from its page.
      expect((await confirmLink(url, { cookie: page.cookie, csrf: page.csrf })).res.status).toBe(200);
      await settle(p.id);
    });
  }

  it("a POST that is not a form is refused", async () => {
    const p = await propose(solo());
    const url = await mailedLink(p, "dana@example.com", "approve");
    const jsonPost = await send(
      new Request(url, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }),
    );
    expect(jsonPost.status).toBe(415);
    expect(await statusOf(p.id)).toBe("pending");
    await settle(p.id);
  });

  it("a form of 4 MiB sent chunked without Content-Length is 413 and decides nothing; it is never read whole", async () => {
    const p = await propose(solo());
    const url = await mailedLink(p, "dana@example.com", "approve");
    const page = await openLink(url);
    // The page's own form with its CSRF value, padded: read whole, it would approve.
    const body = countedStream(paddedForm(`csrf=${page.csrf}`, 4 * 1024 * 1024));
    const res = await send(
      new Request(url, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          cookie: `signoff_csrf=${page.cookie}`,
          origin: new URL(url).origin,
        },
        body: body.stream,
      }),
    );
    expect(res.status).toBe(413);
    expect(await res.text()).toContain("The form was too large.");
    expect(body.pulled()).toBeLessThan(1024 * 1024);
    expect(await statusOf(p.id)).toBe("pending");
    expect((await linkRows(p.id)).every((r) => r.used_at === null)).toBe(true);
    // The link still works from its page.
    expect((await confirmLink(url, { cookie: page.cookie, csrf: page.csrf })).res.status).toBe(200);
    await settle(p.id);
  });
});

describe("tampered, expired, and someone else's links", () => {
  it("a tampered POST gets a clear page that never echoes the token, and is audited on the proposal it names", async () => {
    const p = await propose(solo());
    const url = await mailedLink(p, "dana@example.com", "approve");
    const page = await openLink(url);
    const token = pathOf(url).slice("/l/".length);
    const [v, payload, mac] = token.split(".") as [string, string, string];
    const forged = `${LINK_BINDINGS.PUBLIC_URL}/l/${v}.${payload}.${flip(mac, 3)}`;
    const get = await openLink(forged);
    expect(get.res.status).toBe(400);
    expect(get.html).toContain("This link is not valid");
    expect(get.html).not.toContain(mac.slice(0, 12));
    const post = await confirmLink(forged, { cookie: page.cookie, csrf: page.csrf });
    expect(post.res.status).toBe(400);
    expect(post.html).not.toContain(payload.slice(0, 12));
    // Signed with another secret: the same.
    const foreign = `${LINK_BINDINGS.PUBLIC_URL}/l/${await mintLinkToken(OTHER_SECRET, claimsOf(url))}`;
    expect((await confirmLink(foreign, { cookie: page.cookie, csrf: page.csrf })).res.status).toBe(400);
    expect(await statusOf(p.id)).toBe("pending");
    await settle(p.id);
    const refused = (await auditOf(p.id)).filter((e) => e.type === "link.refused");
    expect(refused.map((e) => [e.actor, e.details.code])).toEqual([
      ["link:?", "bad_signature"],
      ["link:?", "bad_signature"],
    ]);
    // A forgery naming no real proposal changes nothing anywhere.
    const nowhere = `${LINK_BINDINGS.PUBLIC_URL}/l/${await mintLinkToken(OTHER_SECRET, CLAIMS)}`;
    expect((await confirmLink(nowhere, { cookie: page.cookie, csrf: page.csrf })).res.status).toBe(400);
  });

  it("a link past its expiry: a clear page on GET, and on POST the same plus an audit event", async () => {
    const p = await propose(solo());
    const url = await mailedLink(p, "dana@example.com", "approve");
    const stale = await signedLink({ ...claimsOf(url), e: Math.floor(Date.now() / 1000) - 5 });
    const page = await openLink(stale);
    expect(page.res.status).toBe(410);
    expect(pageKind(page.html)).toBe("expired");
    const fresh = await openLink(url);
    const post = await confirmLink(stale, { cookie: fresh.cookie, csrf: fresh.csrf });
    expect(post.res.status).toBe(410);
    expect(post.html).toContain("This link has expired");
    expect(await statusOf(p.id)).toBe("pending");
    await settle(p.id);
    expect((await auditOf(p.id)).find((e) => e.type === "link.refused")).toMatchObject({
      details: { code: "expired" },
    });
  });

  it("a link of a proposal past its deadline: expired page; POST refused and the expiry applied", async () => {
    const p = await propose(solo({ ttl_seconds: 1 }));
    const url = await mailedLink(p, "dana@example.com", "approve");
    const page = await openLink(url);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(pageKind((await openLink(url)).html)).toBe("expired");
    const post = await confirmLink(url, { cookie: page.cookie, csrf: page.csrf });
    expect(post.res.status).toBe(410);
    expect(await statusOf(p.id)).toBe("expired");
    await settle(p.id);
    expect(await peer.requests("/runner")).toHaveLength(0);
  });

  it("a token for someone who is not a recipient (or another proposal's nonce) decides nothing, and is audited", async () => {
    const p = await propose(approvalBody());
    const alice = claimsOf(await mailedLink(p, "alice@example.com", "approve"));
    const mallory = await signedLink({ ...alice, r: "mallory@example.com" });
    const page = await openLink(mallory);
    expect(page.res.status).toBe(400);
    const fresh = await openLink(await mailedLink(p, "alice@example.com", "approve"));
    const post = await confirmLink(mallory, { cookie: fresh.cookie, csrf: fresh.csrf });
    expect(post.res.status).toBe(400);
    // A genuine nonce with another choice is not that choice's link either.
    const swapped = await signedLink({ ...alice, c: "deny" });
    expect((await confirmLink(swapped, { cookie: fresh.cookie, csrf: fresh.csrf })).res.status).toBe(400);
    expect(await statusOf(p.id)).toBe("pending");
    await settle(p.id);
    const refused = (await auditOf(p.id)).filter((e) => e.type === "link.refused");
    expect(refused.map((e) => [e.actor, e.details.code])).toEqual([
      ["link:mallory@example.com", "unknown_link"],
      ["link:alice@example.com", "unknown_link"],
    ]);
  });
});

describe("identity at decision time: an approval link decides only for its recipient, signed in through Access", () => {
  /** Opens dana's link as dana (the page needs her sign-in too), then posts its form as `as`. */
  async function postAs(as: SignIn) {
    const p = await propose(solo());
    const url = await mailedLink(p, "dana@example.com", "approve");
    const page = await openLink(url);
    expect(page.res.status).toBe(200);
    const res = await confirmLink(url, { cookie: page.cookie, csrf: page.csrf, as });
    return { p, url, page, res };
  }

  async function expectNothingDecided(id: string, code: string) {
    expect(await statusOf(id)).toBe("pending");
    expect((await getProposal(id)).approvals).toEqual([]);
    expect((await linkRows(id)).every((row) => row.used_at === null)).toBe(true);
    await settle(id);
    expect(await peer.requests("/runner")).toHaveLength(0);
    const refused = (await auditOf(id)).filter((e) => e.type === "link.refused");
    expect(refused.map((e) => [e.actor, e.details.code, e.details.choice])).toEqual([
      ["link:dana@example.com", code, "approve"],
    ]);
  }

  it("a POST without an Access token: 403 identity_required, nothing changed, audited; possession is not enough", async () => {
    const { p, url, page, res } = await postAs(null);
    expect(res.res.status).toBe(403);
    expect(pageKind(res.html)).toBe("forbidden");
    expect(res.html).toContain("Sign in to decide");
    await expectNothingDecided(p.id, "identity_required");
    // The page itself is not offered without a sign-in either (and a GET still records nothing).
    const anonymous = await openLink(url, { as: null });
    expect(anonymous.res.status).toBe(403);
    expect(anonymous.cookie).toBeNull();
    expect(anonymous.html).not.toContain('name="csrf"');
    // Dana, signed in, still decides with the same link.
    expect((await confirmLink(url, { cookie: page.cookie, csrf: page.csrf })).res.status).toBe(200);
    await settle(p.id);
    expect(await statusOf(p.id)).toBe("succeeded");
  });

  it("a valid token for another e-mail: 403 wrong_identity, nothing changed, audited", async () => {
    // bob@example.com is a genuine Access user and even a recipient elsewhere: still not dana.
    const { p, res } = await postAs("bob@example.com");
    expect(res.res.status).toBe(403);
    expect(res.html).toContain("You are signed in as bob@example.com, but this link was sent to someone else.");
    await expectNothingDecided(p.id, "wrong_identity");
  });

  it("the e-mail is compared as Access vouches for it, case-insensitively; the approval names that identity", async () => {
    const { p, res } = await postAs("Dana@Example.com");
    expect(res.res.status).toBe(200);
    expect((await getProposal(p.id)).approvals.map((a: { user: string }) => a.user)).toEqual(["link:dana@example.com"]);
  });

  const forgeries: Array<[string, () => Promise<string>]> = [
    [
      "signed by another key (same kid)",
      async () => {
        const pair = (await crypto.subtle.generateKey(
          {
            name: "RSASSA-PKCS1-v1_5",
            modulusLength: 2048,
            publicExponent: new Uint8Array([1, 0, 1]),
            hash: "SHA-256",
          },
          true,
          ["sign", "verify"],
        )) as CryptoKeyPair;
        return accessJwt("dana@example.com", { key: pair.privateKey });
      },
    ],
    ["for another Access application (aud)", () => accessJwt("dana@example.com", { audience: `${ACCESS_AUD}-other` })],
    [
      "from another team domain (iss)",
      () => accessJwt("dana@example.com", { issuer: "https://evil.cloudflareaccess.com" }),
    ],
    ["expired two minutes ago", () => accessJwt("dana@example.com", { expiresIn: -120 })],
    [
      "unsigned (alg none)",
      async () => {
        const b64 = (value: unknown) =>
          btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
        const now = Math.floor(Date.now() / 1000);
        return `${b64({ alg: "none", typ: "JWT" })}.${b64({ email: "dana@example.com", iss: PEER, aud: ACCESS_AUD, exp: now + 60 })}.`;
      },
    ],
    ["without an e-mail claim", () => accessJwt("", { claims: { email: undefined, sub: "service-token" } })],
  ];
  for (const [name, token] of forgeries) {
    it(`an Access token ${name} counts as no sign-in: 403 identity_required, nothing changed, audited`, async () => {
      const { p, url, res } = await postAs({ token: await token() });
      expect(res.res.status).toBe(403);
      expect(res.html).toContain("Sign in to decide");
      await expectNothingDecided(p.id, "identity_required");
      expect((await openLink(url, { as: { token: await token() } })).res.status).toBe(403);
    });
  }
});

describe("M of N through links: distinct people", () => {
  it("distinct recipients count once each; the same link cannot count twice; Slack and links add up", async () => {
    const p = await propose(approvalBody());
    await settle(p.id);
    const first = await openAndConfirm(await mailedLink(p, "bob@example.com", "approve"));
    expect(first.res.status).toBe(200);
    expect(first.html).toContain("1 of 2");
    const half = await getProposal(p.id);
    expect(half.status).toBe("pending");
    expect(half.approvals.map((a: { user: string }) => a.user)).toEqual(["link:bob@example.com"]);
    // Bob's link is spent; a Slack approval by U0ALICE is another person and counts.
    expect((await openLink(await mailedLink(p, "bob@example.com", "approve"))).res.status).toBe(409);
    await settle(p.id);
    // The Slack card shows the link approver as text, never as a mention.
    const card = JSON.stringify((await peer.slackCalls("chat.update")).at(-1)!.blocks);
    expect(card).toContain("bob@example.com (by link)");
    expect(card).not.toContain("<@link:");
    await click("approve", p.id, "U0ALICE");
    const done = await getProposal(p.id);
    expect(done.status).not.toBe("pending");
    expect(done.approvals.map((a: { user: string }) => a.user)).toEqual(["link:bob@example.com", "U0ALICE"]);
    await settle(p.id);
    expect(JSON.parse((await peer.requests("/runner"))[0]!.body).approvers).toEqual([
      "link:bob@example.com",
      "U0ALICE",
    ]);
  });

  it("two link recipients make the two approvals; a third finds it decided", async () => {
    const p = await propose(approvalBody());
    await openAndConfirm(await mailedLink(p, "alice@example.com", "approve"));
    const second = await openAndConfirm(await mailedLink(p, "bob@example.com", "approve"));
    expect(second.html).toContain("the action will run now");
    const late = await openLink(await mailedLink(p, "carol+ops@example.com", "approve"));
    expect(pageKind(late.html)).toBe("not_pending");
    await settle(p.id);
    expect((await getProposal(p.id)).approvals.map((a: { user: string }) => a.user)).toEqual([
      "link:alice@example.com",
      "link:bob@example.com",
    ]);
    expect(await peer.requests("/runner")).toHaveLength(1);
  });

  it("one person, one vote: U0ALICE in Slack and alice@example.com by link are alice (people), who counts once", async () => {
    // Slack first, then the link: refused as already approved, nothing changes, audited.
    const p = await propose(approvalBody());
    await settle(p.id);
    expect((await click("approve", p.id, "U0ALICE")).status).toBe(200);
    const url = await mailedLink(p, "alice@example.com", "approve");
    const page = await openLink(url);
    const again = await confirmLink(url, { cookie: page.cookie, csrf: page.csrf });
    expect(again.res.status).toBe(403);
    expect(again.html).toContain("You already approved");
    await settle(p.id);
    expect(await getProposal(p.id)).toMatchObject({
      status: "pending",
      approvals: [{ user: "U0ALICE", person: "alice" }],
    });
    expect((await auditOf(p.id)).find((e) => e.type === "link.refused")).toMatchObject({
      actor: "link:alice@example.com",
      details: { code: "already_approved" },
    });

    // The link first, then Slack: the click is refused, told why, audited.
    const q = await propose(approvalBody());
    await settle(q.id);
    expect((await openAndConfirm(await mailedLink(q, "alice@example.com", "approve"))).res.status).toBe(200);
    await click("approve", q.id, "U0ALICE");
    await settle(q.id);
    expect(await getProposal(q.id)).toMatchObject({
      status: "pending",
      approvals: [{ user: "link:alice@example.com", person: "alice" }],
    });
    expect((await auditOf(q.id)).find((e) => e.type === "click.refused")).toMatchObject({
      actor: "slack:U0ALICE",
      details: { code: "already_approved" },
    });
    // A second person completes it.
    await openAndConfirm(await mailedLink(q, "bob@example.com", "approve"));
    await settle(q.id);
    expect(await statusOf(q.id)).toBe("succeeded");
    expect(JSON.parse((await peer.requests("/runner")).at(-1)!.body).approvers).toEqual([
      "link:alice@example.com",
      "link:bob@example.com",
    ]);
  });

  it("four-eyes holds through links: the requester (U0ALICE) cannot approve as alice@example.com", async () => {
    const p = await propose(approvalBody({ requested_by: "U0ALICE" }));
    const url = await mailedLink(p, "alice@example.com", "approve");
    const page = await openLink(url);
    const res = await confirmLink(url, { cookie: page.cookie, csrf: page.csrf });
    expect(res.res.status).toBe(403);
    expect(res.html).toContain("someone else has to approve it (four-eyes rule)");
    await settle(p.id);
    expect(await getProposal(p.id)).toMatchObject({ status: "pending", approvals: [] });
    expect((await auditOf(p.id)).find((e) => e.type === "link.refused")).toMatchObject({
      actor: "link:alice@example.com",
      details: { code: "self_approval", choice: "approve" },
    });
    // The requester may still deny: four-eyes is about approving.
    expect((await openAndConfirm(await mailedLink(p, "alice@example.com", "deny"))).res.status).toBe(200);
    expect(await statusOf(p.id)).toBe("denied");
  });
});

describe("Teams: an Adaptive Card with the links, then a follow-up per status change", () => {
  it("posts the card to the policy's webhook: structure, escaped texts, one OpenUrl per choice with links that verify", async () => {
    const hostile =
      "Deploy [click me](https://evil.example) **now** <at>all</at> {{DATE(2030-01-01T00:00:00Z, SHORT)}} www.evil.example";
    const p = await propose(
      approvalBody({
        summary: hostile.slice(0, 300),
        reason: "see https://evil.example/x and mail admin@evil.example",
      }),
    );
    await settle(p.id);
    const posts = await peer.requests("/teams/approve");
    expect(posts).toHaveLength(1);
    expect(posts[0]!.headers["content-type"]).toMatch(/^application\/json/);
    const message = JSON.parse(posts[0]!.body);
    expect(message.type).toBe("message");
    expect(message.attachments).toHaveLength(1);
    const attachment = message.attachments[0];
    expect(attachment.contentType).toBe("application/vnd.microsoft.card.adaptive");
    const card = attachment.content;
    expect(card).toMatchObject({ type: "AdaptiveCard", version: "1.4" });
    expect(card.body.length).toBeGreaterThan(3);
    for (const block of card.body)
      expect(block).toMatchObject({ type: "TextBlock", wrap: true, text: expect.any(String) });
    const texts = card.body.map((b: { text: string }) => b.text).join("\n");
    expect(texts).toContain(escapeTeamsMarkdown(hostile));
    // Nothing the proposer wrote can form a link, mention, emphasis or date function.
    expect(texts).not.toMatch(/\]\(/);
    expect(texts).not.toMatch(/(?<!\\)https?:\/\//);
    expect(texts).not.toContain("{{DATE");
    expect(texts).not.toContain("<at>");
    expect(texts).not.toMatch(/(?<!\\)\*\*now(?<!\\)\*\*/);
    expect(texts).not.toMatch(/admin(?<!\\)@evil/);

    expect(card.actions.map((a: { type: string; title: string }) => [a.type, a.title])).toEqual([
      ["Action.OpenUrl", "Approve"],
      ["Action.OpenUrl", "Deny"],
    ]);
    const claims = await Promise.all(card.actions.map((a: { url: string }) => verifies(a.url)));
    expect(claims.map((c) => c.ok && [c.claims.p, c.claims.r, c.claims.c])).toEqual([
      [p.id, "teams-sre", "approve"],
      [p.id, "teams-sre", "deny"],
    ]);
    expect((await auditOf(p.id)).find((e) => e.type === "teams.posted")).toMatchObject({
      actor: "system",
      details: { message: "card", status: "pending" },
    });
  });

  it("the card's links count for whichever recipient signs in, each person once; anyone else is refused; follow-ups announce the outcome without buttons", async () => {
    const p = await propose(approvalBody());
    await settle(p.id);
    const card = JSON.parse((await peer.requests("/teams/approve"))[0]!.body).attachments[0].content;
    const teamsApprove = card.actions[0].url as string;
    // The channel is shared: its links decide only for the policy's recipients, as whoever signs in.
    const page = await openLink(teamsApprove, { as: "mallory@example.com" });
    expect(page.res.status).toBe(403);
    expect(page.html).toContain("signed in as mallory@example.com");
    const anyone = await openLink(teamsApprove, { as: "alice@example.com" });
    expect(
      (await confirmLink(teamsApprove, { cookie: anyone.cookie, csrf: anyone.csrf, as: "mallory@example.com" })).res
        .status,
    ).toBe(403);
    expect((await confirmLink(teamsApprove, { cookie: anyone.cookie, csrf: anyone.csrf, as: null })).res.status).toBe(
      403,
    );
    expect((await openAndConfirm(teamsApprove, { as: "alice@example.com" })).res.status).toBe(200);
    await settle(p.id);
    // One approval of two: not a status change, so no follow-up yet. It is alice's, whichever link she used.
    expect(await peer.requests("/teams/approve")).toHaveLength(1);
    expect((await getProposal(p.id)).approvals).toEqual([
      { user: "link:alice@example.com", person: "alice", at: expect.any(String) },
    ]);
    const audit = await auditOf(p.id);
    expect(audit.find((e) => e.type === "approval.recorded")).toMatchObject({
      actor: "link:alice@example.com",
      details: { recipient: "teams-sre", person: "alice", via: "link" },
    });
    expect(audit.filter((e) => e.type === "link.refused").map((e) => [e.actor, e.details.code])).toEqual([
      ["link:teams-sre", "wrong_identity"],
      ["link:teams-sre", "identity_required"],
    ]);
    // alice's own mailed link does not give her a second vote.
    const own = await openLink(await mailedLink(p, "alice@example.com", "approve"));
    const twice = await confirmLink(await mailedLink(p, "alice@example.com", "approve"), {
      cookie: own.cookie,
      csrf: own.csrf,
    });
    expect(twice.res.status).toBe(403);
    expect(twice.html).toContain("You already approved");
    expect(await statusOf(p.id)).toBe("pending");

    await openAndConfirm(await mailedLink(p, "bob@example.com", "approve"));
    await settle(p.id);
    const posts = (await peer.requests("/teams/approve")).map((r) => JSON.parse(r.body).attachments[0].content);
    expect(posts.length).toBeGreaterThanOrEqual(2);
    for (const followUp of posts.slice(1)) {
      expect(followUp).not.toHaveProperty("actions");
      expect(followUp.type).toBe("AdaptiveCard");
    }
    const last = posts
      .at(-1)!
      .body.map((b: { text: string }) => b.text)
      .join("\n");
    expect((await getProposal(p.id)).status).toBe("succeeded");
    expect(last).toContain("Succeeded");
    expect((await auditOf(p.id)).filter((e) => e.type === "teams.posted").at(-1)).toMatchObject({
      details: { message: "outcome", status: "succeeded" },
    });
    expect(JSON.parse((await peer.requests("/runner"))[0]!.body).approvers).toEqual([
      "link:alice@example.com",
      "link:bob@example.com",
    ]);
  });

  it("429 honours Retry-After, 500s are retried with backoff, and the card arrives; failures are audited", async () => {
    await peer.script("/teams/approve", [
      { status: 429, headers: { "retry-after": "7" } },
      { status: 500 },
      { status: 503 },
    ]);
    const p = await propose(approvalBody());
    await settle(p.id);
    const failed = (await auditOf(p.id)).filter((e) => e.type === "teams.failed");
    expect(failed[0]).toMatchObject({
      details: { message: "card", attempt: 1, error: "HTTP 429 rate limited", final: false },
    });
    const [job] = await jobsOf(p.id, "teams");
    const wait = job!.due_at - Date.now();
    expect(wait).toBeGreaterThan(5_000);
    expect(wait).toBeLessThanOrEqual(7_000);
    await runJobsNow(p.id, ["teams"]);
    await runJobsNow(p.id, ["teams"]);
    await runJobsNow(p.id, ["teams"]);
    const attempts = await peer.requests("/teams/approve");
    expect(attempts).toHaveLength(4);
    expect(new Set(attempts.map((a) => a.body)).size).toBe(1); // the same card each time
    const audit = await auditOf(p.id);
    expect(audit.filter((e) => e.type === "teams.failed").map((e) => e.details.error)).toEqual([
      "HTTP 429 rate limited",
      "HTTP 500",
      "HTTP 503",
    ]);
    expect(audit.filter((e) => e.type === "teams.posted")).toHaveLength(1);
    // None of it touched the proposal, which can still be decided.
    expect(await statusOf(p.id)).toBe("pending");
  });

  it("a refusing webhook (4xx) is audited once as final and never blocks the decision", async () => {
    await peer.script("/teams/approve", [{ status: 404 }]);
    const p = await propose(approvalBody());
    await settle(p.id);
    expect((await auditOf(p.id)).find((e) => e.type === "teams.failed")).toMatchObject({
      details: { error: "HTTP 404", final: true },
    });
    await openAndConfirm(await mailedLink(p, "alice@example.com", "approve"));
    await openAndConfirm(await mailedLink(p, "bob@example.com", "approve"));
    await settle(p.id);
    expect(await statusOf(p.id)).toBe("succeeded");
    // After the card was given up, the outcome is still announced.
    const outcome = (await peer.requests("/teams/approve"))
      .slice(1)
      .map((r) => JSON.parse(r.body).attachments[0].content.body[0].text);
    expect(outcome.at(-1)).toContain("Succeeded");
  });
});

describe("/openapi.json", () => {
  it("describes kind, recipient, the create response's links (a prompt's only) and the /l/{token} pages", async () => {
    const doc = await json(await call("/openapi.json", { token: null }));
    const create = doc.paths["/v1/proposals"].post;
    const body = create.requestBody.content["application/json"].schema;
    expect(body.properties.kind.enum).toEqual(["approval", "verify"]);
    expect(body.properties).toHaveProperty("recipient");
    const created = create.responses["201"].content["application/json"].schema;
    expect(created.properties.links.items.properties).toHaveProperty("url");
    // Only a verification prompt's answers: an approval's links are never in an answer.
    expect(created.properties.links.items.properties.choice.enum).toEqual(["yes", "no", "unsure"]);
    expect(created.properties.links.description).toContain("Approval links are never returned");
    expect(doc.paths["/l/{token}"].post.description).toContain("Cf-Access-Jwt-Assertion");
    expect(created.properties.status.enum).toEqual(expect.arrayContaining(["acknowledged", "escalated"]));
    expect(
      doc.paths["/v1/proposals/{id}"].get.responses["200"].content["application/json"].schema.properties,
    ).not.toHaveProperty("links");
    expect(Object.keys(doc.paths["/l/{token}"])).toEqual(["get", "post"]);
  });
});

describe("policy and configuration for links", () => {
  const action = (extra: Record<string, unknown>) => ({
    default_channel: "C0APPROVALS",
    actions: { "x.y": { approvers: ["U0ALICE"], ...extra } },
  });
  const problems = (policy: unknown) => {
    try {
      parsePolicy(policy);
      return [];
    } catch (error) {
      return (error as { details: Array<{ path: string; message: string }> }).details;
    }
  };

  it("links are off by default; enabled ones resolve recipients, webhook and Teams identity", () => {
    expect(parsePolicy(action({})).actions["x.y"]).not.toHaveProperty("links");
    expect(parsePolicy(action({ links: { recipients: ["a@example.com"] } })).actions["x.y"]).not.toHaveProperty(
      "links",
    );
    expect(
      parsePolicy(
        action({
          links: { enabled: true, recipients: ["a@example.com"], teams_webhook: "https://x.webhook.office.com/abc" },
        }),
      ).actions["x.y"]!.links,
    ).toEqual({
      recipients: ["a@example.com"],
      teams_webhook: "https://x.webhook.office.com/abc",
      teams_recipient: "teams",
    });
    // Only links: no Slack approvers, no channel needed.
    expect(
      parsePolicy({
        actions: {
          "x.y": { links: { enabled: true, recipients: ["a@example.com", "b@example.com"] }, required_approvals: 2 },
        },
      }).actions["x.y"],
    ).toMatchObject({ approvers: [], channel: null });
  });

  it("refuses what does not fit, each at its own path", () => {
    const at = (field: string) => `POLICY.actions["x.y"].${field}`;
    const paths = (extra: Record<string, unknown>) => problems(action(extra)).map((d) => d.path);
    // A typo is named at its own path; the checks across fields still run on what is left.
    expect(paths({ links: { enabled: true, recipient: ["a@example.com"] } })).toEqual([
      at("links.recipient"),
      at("links.recipients"),
    ]);
    expect(problems(action({ links: { enabled: true, recipients: ["a b"] } }))[0]).toMatchObject({
      path: at("links.recipients[0]"),
      message: expect.stringContaining("e-mail"),
    });
    expect(paths({ links: { enabled: true, recipients: ["a@example.com", "a@example.com"] } })).toEqual([
      at("links.recipients[1]"),
    ]);
    expect(paths({ links: { enabled: true } })).toEqual([at("links.recipients")]);
    expect(paths({ links: { enabled: true, recipients: ["a@example.com"], teams_recipient: "t" } })).toEqual([
      at("links.teams_recipient"),
    ]);
    expect(paths({ links: { enabled: true, recipients: ["teams"], teams_webhook: "https://t.example/x" } })).toEqual([
      at("links.teams_recipient"),
    ]);
    expect(
      paths({ links: { enabled: true, recipients: ["a@example.com"], teams_webhook: "http://teams.example/x" } }),
    ).toEqual([at("links.teams_webhook")]);
    expect(
      paths({ links: { enabled: true, recipients: ["a@example.com"], teams_webhook: "https://u:p@teams.example/x" } }),
    ).toEqual([at("links.teams_webhook")]);
    expect(paths({ links: { enabled: "yes" } })).toEqual([at("links.enabled")]);
    expect(
      paths({
        requester_only: true,
        requesters: ["U0ALICE"],
        approvers: [],
        links: { enabled: true, recipients: ["a@example.com"] },
      }),
    ).toEqual([at("links.enabled")]);
    expect(paths({ required_approvals: 3, links: { enabled: true, recipients: ["a@example.com"] } })).toEqual([
      at("required_approvals"),
    ]);
    expect(paths({ verify_labels: { yes: "Y" } })).toEqual([at("verify_labels")]);
    // http to loopback is fine (tests, local mode)
    expect(
      paths({ links: { enabled: true, recipients: ["a@example.com"], teams_webhook: "http://127.0.0.1:9/teams" } }),
    ).toEqual([]);
  });

  const keys = JSON.stringify([{ name: "k", sha256: "a".repeat(64), scopes: ["proposals:write"] }]);
  /** Cloudflare Access and the mail API, as an operator would set them. */
  const IDENTITY = {
    ACCESS_TEAM_DOMAIN: "https://example-team.cloudflareaccess.com",
    ACCESS_AUD: "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2",
    MAIL_API_URL: "https://api.resend.com/emails",
    MAIL_FROM,
    MAIL_API_TOKEN,
  };

  it("Access is required once an approval action enables links, a mail API once its links go to e-mail addresses", () => {
    const base = { ...SECRETS, ...LINK_BINDINGS, API_KEYS: keys, RUNNER_URL: "https://runner.internal/run" };
    const problems = (policy: unknown, extra: Record<string, unknown> = {}) => {
      const result = checkConfig({ ...base, POLICY: policy, ...extra });
      return result.ok ? [] : result.problems.map((p) => p.path);
    };
    const mailed = { actions: { "x.y": { links: { enabled: true, recipients: ["a@example.com"] } } } };
    const byPhone = { actions: { "x.y": { links: { enabled: true, recipients: ["+4915123456789"] } } } };
    const prompt = { actions: { "v.x": { kind: "verify", links: { enabled: true } } } };
    expect(problems(mailed)).toEqual([
      "ACCESS_TEAM_DOMAIN",
      "ACCESS_AUD",
      "MAIL_API_URL",
      "MAIL_FROM",
      "MAIL_API_TOKEN",
    ]);
    expect(problems(byPhone)).toEqual(["ACCESS_TEAM_DOMAIN", "ACCESS_AUD"]);
    // A verification prompt's links answer by possession and are delivered by the proposer: neither is needed.
    expect(problems(prompt)).toEqual([]);
    expect(problems(mailed, IDENTITY)).toEqual([]);
    const ok = checkConfig({ ...base, POLICY: mailed, ...IDENTITY });
    expect(ok.ok && ok.config.access).toEqual({
      issuer: IDENTITY.ACCESS_TEAM_DOMAIN,
      audience: IDENTITY.ACCESS_AUD,
      jwksUrl: `${IDENTITY.ACCESS_TEAM_DOMAIN}/cdn-cgi/access/certs`,
    });
    expect(ok.ok && ok.config.mail).toEqual({ url: IDENTITY.MAIL_API_URL, token: MAIL_API_TOKEN, from: MAIL_FROM });
    // All or nothing, each named; the token's value never in a message.
    const half = checkConfig({ ...base, POLICY: mailed, ...IDENTITY, ACCESS_AUD: "", MAIL_FROM: "nobody" });
    expect(half.ok ? [] : half.problems.map((p) => p.path)).toEqual(["ACCESS_AUD", "MAIL_FROM"]);
    expect(JSON.stringify(half)).not.toContain(MAIL_API_TOKEN);
    expect(problems(mailed, { ...IDENTITY, ACCESS_TEAM_DOMAIN: "http://team.example.com" })).toEqual([
      "ACCESS_TEAM_DOMAIN",
    ]);
  });

  it("LINK_SECRET and PUBLIC_URL are required once an action enables links, and checked whenever given", async () => {
    const base = { ...SECRETS, ...IDENTITY, API_KEYS: keys, RUNNER_URL: "https://runner.internal/run" };
    const withLinks = { actions: { "x.y": { links: { enabled: true, recipients: ["a@example.com"] } } } };
    const noLinks = { default_channel: "C0A", actions: { "x.y": { approvers: ["U0A1"] } } };
    const paths = (env: Record<string, unknown>) => {
      const result = checkConfig(env);
      return result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
    };
    expect(paths({ ...base, POLICY: noLinks })).toEqual([]);
    expect(paths({ ...base, POLICY: withLinks })).toEqual([
      'LINK_SECRET: is required when links are enabled (POLICY.actions["x.y"].links)',
      'PUBLIC_URL: is required when links are enabled (POLICY.actions["x.y"].links)',
    ]);
    const ok = checkConfig({ ...base, POLICY: withLinks, ...LINK_BINDINGS });
    expect(ok.ok && [ok.config.linkSecret, ok.config.publicUrl]).toEqual([
      LINK_BINDINGS.LINK_SECRET,
      "https://signoff.test",
    ]);
    expect(
      paths({ ...base, POLICY: withLinks, LINK_SECRET: "whsec_c2hvcnQ=", PUBLIC_URL: "https://signoff.test" })[0],
    ).toMatch(/^LINK_SECRET: decodes to 5 bytes/);
    expect(
      paths({ ...base, POLICY: withLinks, LINK_SECRET: SECRETS.EVENTS_SECRET, PUBLIC_URL: "https://signoff.test" })[0],
    ).toMatch(/^LINK_SECRET: must differ/);
    expect(
      paths({
        ...base,
        POLICY: withLinks,
        LINK_SECRET: LINK_BINDINGS.LINK_SECRET,
        PUBLIC_URL: "http://signoff.example.com",
      })[0],
    ).toMatch(/^PUBLIC_URL: must use https/);
    expect(
      paths({
        ...base,
        POLICY: withLinks,
        LINK_SECRET: LINK_BINDINGS.LINK_SECRET,
        PUBLIC_URL: "https://signoff.example.com/app",
      })[0],
    ).toMatch(/^PUBLIC_URL: must be the Worker's origin only/);
    expect(
      paths({
        ...base,
        POLICY: withLinks,
        LINK_SECRET: LINK_BINDINGS.LINK_SECRET,
        PUBLIC_URL: "http://localhost:8787/",
      }),
    ).toEqual([]);
    expect(paths({ ...base, POLICY: noLinks, LINK_SECRET: "oops" })).toEqual([
      "LINK_SECRET: must be whsec_ followed by base64 (a Standard Webhooks secret)",
    ]);
  });

  it("a policy change never touches a waiting proposal's links: the rule is frozen at creation", async () => {
    const p = await propose(solo());
    expect(p.rule.links).toEqual({ recipients: ["dana@example.com"], teams_recipient: null });
    // The reader key (default env) sees the same frozen rule.
    const res = await call(`/v1/proposals/${p.id}`, { token: TOKENS.reader });
    expect((await json(res)).rule.links).toEqual(p.rule.links);
    await settle(p.id);
  });
});

describe("what will run is shown whole off Slack too (issue 11 item 4)", () => {
  it("Teams and the link page show the whole plan as ASCII JSON; Teams says whose the texts are", async () => {
    const params = { pad: "x".repeat(2000), real: "drop table users", sneaky: "a\u202eb\u200bc`d é" };
    const p = await propose(approvalBody({ action: { type: "links.deploy", params } }));
    await settle(p.id);
    const [post] = await peer.requests("/teams/approve");
    const card = JSON.parse(post!.body).attachments[0].content;
    expect(card.body[2].text).toBe(
      escapeTeamsMarkdown("Proposed by API key soc: the summary above and the texts below are the proposer's words."),
    );
    const monospace = card.body.filter((b: { fontType?: string }) => b.fontType === "Monospace");
    expect(monospace).toHaveLength(1);
    // Teams shows the text with its Markdown escapes (a backslash before punctuation) removed.
    const teamsShown = (monospace[0].text as string).replace(/\\(.)/g, "$1");
    expect(teamsShown).toMatch(/^[\x20-\x7e]*$/);
    expect(JSON.parse(teamsShown)).toEqual(params);

    const page = await openLink(await mailedLink(p, "alice@example.com", "approve"));
    const pre = /<dt>Params<\/dt><dd><pre>([\s\S]*?)<\/pre>/.exec(page.html)?.[1] ?? "";
    const pageShown = pre
      .replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">")
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&amp;/g, "&");
    expect(pageShown).toMatch(/^[\x20-\x7e\n]*$/);
    expect(JSON.parse(pageShown)).toEqual(params);
  });
});
