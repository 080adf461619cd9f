// Signed links in a real browser (issue 7), decided only by the person they were mailed to (issue 11, SPEC 12): the
// production Worker (wrangler.toml's top level, not local mode) under `wrangler dev` on a free port, its secrets
// and a policy with links passed as --var (no .dev.vars is read), and one small loopback peer that is the runner,
// the mail API (it catches what signoff sends) and the Cloudflare Access team domain (it serves the JWKS of a key
// made here with jose). Headless Chromium opens the link from the caught mail with the `CF_Authorization` cookie
// Access would set, for the recipient, for someone else, or none.
// Chromium: see browser.ts (CHROMIUM_PATH, /usr/bin/chromium, or the one @sparticuz/chromium ships).
// Screenshots go to test-results/screenshots, or to SCREENSHOTS_DIR (docs/screenshots to refresh the docs).
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import type { Browser, Page } from "playwright-core";
import { checkNode, freePort, ROOT } from "../scripts/local/stack.ts";
import { launchChromium, SCREENSHOTS } from "./browser.ts";

const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

const TOKEN = `so_e2e_${randomBytes(24).toString("hex")}`;
const secret = () => `whsec_${randomBytes(32).toString("base64")}`;
const POLICY = {
  actions: {
    // Decided only through links: two people, one approval each.
    "release.deploy": {
      ttl_seconds: 900,
      links: { enabled: true, recipients: ["alice@example.com", "bob@example.com"] },
    },
  },
};

// Cloudflare Access, as far as signoff sees it: an application's AUD tag, and the team's signing key (RS256).
const ACCESS_AUD = `signoff-e2e-${randomBytes(16).toString("hex")}`;
// The mail API signoff posts approval links to (src/mail/send.ts: Bearer token, `{from, to: [addr], subject, text, html}`).
const MAIL_PATH = "/mail/emails";
const MAIL_FROM = "signoff <signoff@example.com>";
const MAIL_API_TOKEN = `re_e2e_${randomBytes(24).toString("hex")}`;

interface CaughtMail {
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string;
}

let dir: string;
let worker: ChildProcess | undefined;
let peer: Server | undefined;
let browser: Browser | undefined;
let page: Page;
let base: string;
let peerBase: string;
let accessKey: CryptoKey;
let accessJwk: JWK;
const output: string[] = [];
const dispatches: string[] = [];
const mail: CaughtMail[] = [];
/** Requests to the mail API that it refused (a wrong token, a bad body): there must be none. */
const mailRefused: string[] = [];

/** A key pair like Access's (RS256, with a kid), made here; the peer serves its public half. */
async function makeAccessKey(): Promise<{ key: CryptoKey; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { key: privateKey, jwk: { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: "RS256", use: "sig" } };
}

/** An Access application token for `email`, signed with `key` (by default the team's; another one forges). */
function accessToken(email: string, key: CryptoKey = accessKey, audience = ACCESS_AUD): Promise<string> {
  return new SignJWT({ email, type: "app" })
    .setProtectedHeader({ alg: "RS256", kid: accessJwk.kid! })
    .setIssuer(peerBase)
    .setAudience([audience])
    .setSubject(`e2e-${email}`)
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(key);
}

/** The mail API: checks the token and the shape as a real one would, and keeps each message. */
function catchMail(req: { headers: Record<string, string | string[] | undefined> }, body: string): number {
  if (req.headers.authorization !== `Bearer ${MAIL_API_TOKEN}`) {
    mailRefused.push(`authorization ${JSON.stringify(req.headers.authorization ?? null)}`);
    return 401;
  }
  try {
    const m = JSON.parse(body) as CaughtMail;
    const ok =
      typeof m.from === "string" &&
      Array.isArray(m.to) &&
      m.to.length > 0 &&
      m.to.every((a) => typeof a === "string") &&
      typeof m.subject === "string" &&
      typeof m.text === "string" &&
      typeof m.html === "string";
    if (!ok) throw new Error("not {from, to: [addr], subject, text, html}");
    mail.push(m);
    return 200;
  } catch (error) {
    mailRefused.push(`body: ${(error as Error).message}`);
    return 422;
  }
}

/**
 * The runner, the mail API and the Access team domain (anything else the Worker calls) on loopback, plus a page
 * on another origin for the CSRF check.
 */
function startPeer(port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/run") {
        dispatches.push(Buffer.concat(chunks).toString("utf8"));
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ status: "succeeded", output: "release deployed" }));
        return;
      }
      if (req.method === "POST" && req.url === MAIL_PATH) {
        const status = catchMail(req, Buffer.concat(chunks).toString("utf8"));
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(status === 200 ? { id: `e2e-${mail.length}` } : { statusCode: status }));
        return;
      }
      if (req.method === "GET" && req.url === "/cdn-cgi/access/certs") {
        // Where Access serves a team's keys; signoff finds it from ACCESS_TEAM_DOMAIN (no ACCESS_JWKS_URL here).
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ keys: [accessJwk] }));
        return;
      }
      const target = new URL(req.url ?? "/", "http://peer").searchParams.get("target");
      if (req.method === "GET" && target) {
        // Another site that knows a link and posts its form for the visitor: the classic cross-site request.
        res.writeHead(200, { "content-type": "text/html" });
        res.end(
          `<!doctype html><form id="f" method="post" action="${target}"><input name="csrf" value="guess"></form><script>document.getElementById("f").submit()</script>`,
        );
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"ok":true}');
    });
  });
  return new Promise((resolveListen) => server.listen(port, "127.0.0.1", () => resolveListen(server)));
}

function wrangler(args: string[], detached: boolean): ChildProcess {
  return spawn(process.execPath, [WRANGLER, ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      CI: "true",
      WRANGLER_SEND_METRICS: "false",
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      NO_COLOR: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached,
  });
}

async function waitForHealth(url: string, deadline: number): Promise<void> {
  let last = "no answer";
  while (Date.now() < deadline) {
    if (worker?.exitCode !== null && worker?.exitCode !== undefined)
      throw new Error(`wrangler dev exited:\n${output.slice(-40).join("\n")}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
      if (res.ok) return;
      last = `HTTP ${res.status}: ${await res.text()}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer in time (${last})\n${output.slice(-40).join("\n")}`);
}

before(async () => {
  checkNode();
  dir = mkdtempSync(join(tmpdir(), "signoff-links-e2e-"));
  const [port, peerPort, inspectorPort] = [await freePort(), await freePort(), await freePort()];
  base = `http://localhost:${port}`;
  peerBase = `http://127.0.0.1:${peerPort}`;
  ({ key: accessKey, jwk: accessJwk } = await makeAccessKey());
  peer = await startPeer(peerPort);

  const state = join(dir, "state");
  const migrate = spawnSync(
    process.execPath,
    [WRANGLER, "d1", "migrations", "apply", "signoff-audit", "--local", "--persist-to", state],
    {
      cwd: ROOT,
      env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
      encoding: "utf8",
    },
  );
  assert.equal(migrate.status, 0, `d1 migrations failed:\n${migrate.stdout}\n${migrate.stderr}`);

  const apiKeys = [
    {
      name: "e2e",
      sha256: createHash("sha256").update(TOKEN).digest("hex"),
      scopes: ["proposals:write", "proposals:read", "audit:read"],
      actions: ["release.*"],
    },
  ];
  const vars: Record<string, string> = {
    POLICY: JSON.stringify(POLICY),
    RUNNER_URL: `${peerBase}/run`,
    SLACK_API_BASE: `${peerBase}/slack/api`,
    PUBLIC_URL: base,
    LINK_SECRET: secret(),
    RUNNER_SECRET: secret(),
    EVENTS_SECRET: secret(),
    AUDIT_SIGNING_KEY: `auditsk_${randomBytes(32).toString("base64")}`,
    SLACK_SIGNING_SECRET: randomBytes(16).toString("hex"),
    SLACK_BOT_TOKEN: "xoxb-e2e",
    API_KEYS: JSON.stringify(apiKeys),
    // Access in front of /l/*: the peer is the team domain (issuer, and its certs at the default path).
    ACCESS_TEAM_DOMAIN: peerBase,
    ACCESS_AUD,
    // signoff mails approval links itself.
    MAIL_API_URL: `${peerBase}${MAIL_PATH}`,
    MAIL_FROM,
    MAIL_API_TOKEN,
  };
  worker = wrangler(
    [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(inspectorPort),
      "--persist-to",
      state,
      // No .dev.vars, no .env: everything the Worker sees is below.
      "--env-file",
      "/dev/null",
      ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
      "--show-interactive-dev-session=false",
    ],
    true,
  );
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) output.push(line);
    if (output.length > 400) output.splice(0, output.length - 400);
  };
  worker.stdout?.on("data", keep);
  worker.stderr?.on("data", keep);
  await waitForHealth(`http://127.0.0.1:${port}/healthz`, Date.now() + 90_000);

  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 860, height: 720 } });
});

after(async () => {
  await browser?.close();
  const pid = worker?.pid;
  if (pid !== undefined && worker?.exitCode === null) {
    const exited = new Promise<void>((r) => worker!.once("exit", () => r()));
    try {
      process.kill(-pid, "SIGTERM"); // wrangler's own process group: workerd goes with it
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // already gone
      }
    }, 8_000);
    await exited;
    clearTimeout(timer);
  }
  if (pid !== undefined) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // nothing left
    }
  }
  await new Promise<void>((r) => (peer ? peer.close(() => r()) : r()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function api(path: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${base}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...init.headers },
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function until<T>(
  what: string,
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!ok(value)) {
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 200));
    value = await read();
  }
  return value;
}

/** On failure: a screenshot, what the page showed and what wrangler printed, in the error. */
async function explained(steps: () => Promise<void>): Promise<void> {
  try {
    await steps();
  } catch (error) {
    const shot = join(SCREENSHOTS, "links-failure.png");
    await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
    const shown = await page
      .locator("body")
      .innerText()
      .catch(() => "(page unreadable)");
    (error as Error).message +=
      `\n--- screenshot: ${shot}\n--- page:\n${shown}\n--- wrangler:\n${output.slice(-60).join("\n")}`;
    throw error;
  }
}

/** The links of this signoff in a text (`<PUBLIC_URL>/l/<token>`), each with the claims its token carries. */
function linksIn(text: string): Array<{ url: string; p: string; c: string; r: string }> {
  const pattern = new RegExp(`${base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/l/[A-Za-z0-9._-]+`, "g");
  return [...new Set([...text.matchAll(pattern)].map((m) => m[0].replace(/\.+$/, "")))].map((url) => {
    // v1.<base64url of JSON {p, c, r, e, n}>.<MAC>: read here only to tell the links apart.
    const payload = url.slice(url.indexOf("/l/") + 3).split(".")[1] ?? "";
    return {
      url,
      ...(JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { p: string; c: string; r: string }),
    };
  });
}

/** Waits for the mail signoff sends `address` about proposal `id`; its approve and deny links. */
async function mailFor(address: string, id: string) {
  const found = await until(
    `mail to ${address} about ${id}`,
    async () => mail.find((m) => m.to.includes(address) && linksIn(`${m.text}\n${m.html}`).some((l) => l.p === id)),
    (m) => m !== undefined,
  );
  const m = found!;
  assert.equal(m.from, MAIL_FROM);
  assert.deepEqual(m.to, [address], "one recipient per message: a link is for its addressee alone");
  assert.ok(m.subject.trim() !== "", "a subject");
  const links = linksIn(`${m.text}\n${m.html}`);
  // Only this recipient's links: nobody's mail carries a link meant for someone else.
  assert.deepEqual(
    links.filter((l) => l.r !== address || l.p !== id),
    [],
  );
  const link = (choice: string) => {
    const url = links.find((l) => l.c === choice)?.url;
    assert.ok(url, `a ${choice} link in the mail to ${address}:\n${m.text}`);
    return url;
  };
  return { approve: link("approve"), deny: link("deny") };
}

/** What Cloudflare Access would have put in this browser: its CF_Authorization cookie with `token`, or none. */
async function signIn(token: string | null): Promise<void> {
  const context = page.context();
  await context.clearCookies({ name: "CF_Authorization" });
  if (token) await context.addCookies([{ name: "CF_Authorization", value: token, url: base }]);
}

async function status(id: string): Promise<Record<string, any>> {
  return (await api(`/v1/proposals/${id}`)).body;
}

test("an approval link arrives by mail and decides only for its recipient, signed in at decision time; a GET decides nothing; the button decides once", {
  timeout: 180_000,
}, async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await explained(async () => {
    const created = await api("/v1/proposals", {
      method: "POST",
      body: JSON.stringify({
        action: { type: "release.deploy", params: { service: "checkout", version: "2.8.0" } },
        summary: "Deploy checkout 2.8.0 to production <now>",
        reason: "Fixes the double-charge bug (INC-512); canary clean for 3 h",
        blast_radius: "checkout for all shoppers, rolling over 15 min",
        rollback: "deploy checkout 2.7.4",
      }),
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id as string;
    // SPEC 12: the proposer never sees an approval link; signoff mails each recipient theirs.
    assert.ok(!JSON.stringify(created.body).includes("/l/"), `the API answered links: ${JSON.stringify(created.body)}`);
    const alice = await mailFor("alice@example.com", id);
    const bob = await mailFor("bob@example.com", id);
    assert.ok(alice.approve.startsWith(`${base}/l/v1.`), alice.approve);
    const [aliceToken, bobToken] = [await accessToken("alice@example.com"), await accessToken("bob@example.com")];

    // A mail scanner gets there first, without anyone signed in: refused, and nothing written.
    for (let i = 0; i < 3; i++) assert.equal((await fetch(alice.approve)).status, 403);
    // Even in Alice's own session a GET only shows the page (previews, prefetches): nothing is decided.
    for (let i = 0; i < 3; i++)
      assert.equal((await fetch(alice.approve, { headers: { "cf-access-jwt-assertion": aliceToken } })).status, 200);
    assert.equal((await status(id)).status, "pending");

    // Whoever holds the link but is not signed in is refused: possession is not identity.
    await signIn(null);
    await page.goto(alice.approve);
    await page.waitForSelector("main[data-page='forbidden']");
    assert.match(await page.locator("main").innerText(), /Sign in to decide/);
    assert.equal(await page.getByRole("button").count(), 0);
    // Bob, a recipient himself, signed in as Bob, with Alice's link (she forwarded it): refused, by name.
    await signIn(bobToken);
    await page.goto(alice.approve);
    await page.waitForSelector("main[data-page='forbidden']");
    assert.match(await page.locator("main").innerText(), /signed in as bob@example\.com/);
    // A token with Alice's e-mail that Access did not sign (another key, the team's kid): refused.
    const forger = await makeAccessKey();
    await signIn(await accessToken("alice@example.com", forger.key));
    await page.goto(alice.approve);
    await page.waitForSelector("main[data-page='forbidden']");
    // Signed by Access, but for another application: refused.
    await signIn(await accessToken("alice@example.com", accessKey, "another-application-aud"));
    await page.goto(alice.approve);
    await page.waitForSelector("main[data-page='forbidden']");
    await page.screenshot({ path: join(SCREENSHOTS, "link-refused.png"), fullPage: true });
    assert.equal((await status(id)).status, "pending");

    // Alice, signed in, opens her link: the page says what she is about to do, and nothing has happened yet.
    await signIn(aliceToken);
    await page.goto(alice.approve);
    await page.waitForSelector("main[data-page='confirm']");
    assert.equal(await page.locator("h1").innerText(), "Approve this action?");
    assert.equal(await page.locator(".summary").innerText(), "Deploy checkout 2.8.0 to production <now>");
    const shown = await page.locator("main").innerText();
    assert.match(shown, /release\.deploy/);
    assert.match(shown, /Fixes the double-charge bug/);
    assert.match(shown, /alice@example\.com/);
    assert.match(shown, /Your choice: Approve/);
    assert.equal(await page.getByRole("button", { name: "Confirm: Approve" }).count(), 1);
    const pending = await status(id);
    assert.equal(pending.status, "pending");
    assert.deepEqual(pending.approvals, []);
    assert.equal(dispatches.length, 0);
    await page.screenshot({ path: join(SCREENSHOTS, "link-confirm.png"), fullPage: true });

    // Another site that knows the link posts its form while Alice's browser holds the page's cookie: the
    // cookie stays home (SameSite=Strict) and the Origin is foreign. Refused; nothing decided.
    await page.goto(`${peerBase}/attacker?target=${encodeURIComponent(alice.approve)}`);
    await page.waitForSelector("main[data-page='forbidden']");
    assert.match(await page.locator("h1").innerText(), /Nothing was decided/);
    assert.equal((await status(id)).status, "pending");

    // Identity is checked again when the button is pressed: the page was opened as Alice, but by the time it is
    // pressed nobody, or Bob, is signed in. Refused both times; nothing decided.
    for (const [token, says] of [
      [null, /Sign in to decide/],
      [bobToken, /signed in as bob@example\.com/],
    ] as const) {
      await signIn(aliceToken);
      await page.goto(alice.approve);
      await page.waitForSelector("main[data-page='confirm']");
      await signIn(token);
      await page.getByRole("button", { name: "Confirm: Approve" }).click();
      await page.waitForSelector("main[data-page='forbidden']");
      assert.match(await page.locator("main").innerText(), says);
      assert.equal((await status(id)).status, "pending");
    }

    // Back on her link's page, signed in, the button decides: one approval of one, the runner gets the plan.
    await signIn(aliceToken);
    await page.goto(alice.approve);
    await page.waitForSelector("main[data-page='confirm']");
    await page.getByRole("button", { name: "Confirm: Approve" }).click();
    await page.waitForSelector("main[data-page='decided']");
    assert.match(await page.locator(".status").innerText(), /the action will run now/);
    const done = await until(
      "the proposal",
      () => status(id),
      (b) => b.status === "succeeded",
    );
    assert.deepEqual(
      done.approvals.map((a: { user: string }) => a.user),
      ["link:alice@example.com"],
    );
    assert.equal(dispatches.length, 1);
    await page.screenshot({ path: join(SCREENSHOTS, "link-decided.png"), fullPage: true });

    // The same link again (a second click in the mail, a reload): used up, and it says so.
    await page.goto(alice.approve);
    await page.waitForSelector("main[data-page='already_used']");
    assert.equal(await page.locator("h1").innerText(), "This link was already used");
    assert.equal(await page.getByRole("button").count(), 0);
    // Bob's own link, Bob signed in, finds the decision made.
    await signIn(bobToken);
    await page.goto(bob.deny);
    await page.waitForSelector("main[data-page='not_pending']");

    const audit = await api(`/v1/audit?proposal_id=${id}`);
    const types = (audit.body.events as Array<{ type: string; actor: string; details: Record<string, unknown> }>).map(
      (e) => `${e.type} ${e.actor} ${String(e.details.code ?? "")}`.trim(),
    );
    for (const expected of [
      "link.refused link:alice@example.com csrf_origin",
      "link.refused link:alice@example.com identity_required",
      "link.refused link:alice@example.com wrong_identity",
      "approval.recorded link:alice@example.com",
      "proposal.approved link:alice@example.com",
    ]) {
      assert.ok(types.includes(expected), `${expected} not in:\n${types.join("\n")}`);
    }
    assert.equal(dispatches.length, 1);
    assert.deepEqual(mailRefused, [], "the mail API refused a request of signoff's");
  });
});
