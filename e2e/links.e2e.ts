// Signed links in a real browser (issue 7): the production Worker (wrangler.toml's top level, not local mode) under
// `wrangler dev` on a free port, its secrets and a policy with links passed as --var (no .dev.vars is read), a
// small runner on loopback, and headless Chromium opening a link as its recipient would.
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

let dir: string;
let worker: ChildProcess | undefined;
let peer: Server | undefined;
let browser: Browser | undefined;
let page: Page;
let base: string;
let peerBase: string;
const output: string[] = [];
const dispatches: string[] = [];

/** The runner (and anything else the Worker calls) on loopback, plus a page on another origin for the CSRF check. */
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

test("a link opens a confirmation page that decides nothing; its button decides once; the link is then used up", {
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
    const links = created.body.links as Array<{ recipient: string; choice: string; url: string }>;
    assert.equal(links.length, 4);
    const approve = links.find((l) => l.recipient === "alice@example.com" && l.choice === "approve")!.url;
    assert.ok(approve.startsWith(`${base}/l/v1.`), approve);

    // A mail scanner gets there first.
    for (let i = 0; i < 3; i++) assert.equal((await fetch(approve)).status, 200);

    // Alice opens her link: the page says what she is about to do, and nothing has happened yet.
    await page.goto(approve);
    await page.waitForSelector("main[data-page='confirm']");
    assert.equal(await page.locator("h1").innerText(), "Approve this action?");
    assert.equal(await page.locator(".summary").innerText(), "Deploy checkout 2.8.0 to production <now>");
    const shown = await page.locator("main").innerText();
    assert.match(shown, /release\.deploy/);
    assert.match(shown, /Fixes the double-charge bug/);
    assert.match(shown, /alice@example\.com/);
    assert.match(shown, /Your choice: Approve/);
    assert.equal(await page.getByRole("button", { name: "Confirm: Approve" }).count(), 1);
    const pending = await api(`/v1/proposals/${id}`);
    assert.equal(pending.body.status, "pending");
    assert.deepEqual(pending.body.approvals, []);
    assert.equal(dispatches.length, 0);
    await page.screenshot({ path: join(SCREENSHOTS, "link-confirm.png"), fullPage: true });

    // Another site that knows the link posts its form while Alice's browser holds the page's cookie: the
    // cookie stays home (SameSite=Strict) and the Origin is foreign. Refused; nothing decided.
    await page.goto(`${peerBase}/attacker?target=${encodeURIComponent(approve)}`);
    await page.waitForSelector("main[data-page='forbidden']");
    assert.match(await page.locator("h1").innerText(), /Nothing was decided/);
    assert.equal((await api(`/v1/proposals/${id}`)).body.status, "pending");

    // Back on her link's page, the button decides.
    await page.goto(approve);
    await page.waitForSelector("main[data-page='confirm']");

    // One approval of one: the button decides, the runner gets the plan.
    await page.getByRole("button", { name: "Confirm: Approve" }).click();
    await page.waitForSelector("main[data-page='decided']");
    assert.match(await page.locator(".status").innerText(), /the action will run now/);
    const done = await until(
      "the proposal",
      async () => (await api(`/v1/proposals/${id}`)).body,
      (b) => b.status === "succeeded",
    );
    assert.deepEqual(
      done.approvals.map((a: { user: string }) => a.user),
      ["link:alice@example.com"],
    );
    assert.equal(dispatches.length, 1);
    await page.screenshot({ path: join(SCREENSHOTS, "link-decided.png"), fullPage: true });

    // The same link again (a second click in the mail, a reload): used up, and it says so.
    await page.goto(approve);
    await page.waitForSelector("main[data-page='already_used']");
    assert.equal(await page.locator("h1").innerText(), "This link was already used");
    assert.equal(await page.getByRole("button").count(), 0);
    // Bob's link finds the decision made.
    await page.goto(links.find((l) => l.recipient === "bob@example.com" && l.choice === "deny")!.url);
    await page.waitForSelector("main[data-page='not_pending']");

    const audit = await api(`/v1/audit?proposal_id=${id}`);
    const types = (audit.body.events as Array<{ type: string; actor: string; details: Record<string, unknown> }>).map(
      (e) => `${e.type} ${e.actor} ${String(e.details.code ?? "")}`.trim(),
    );
    assert.ok(types.includes("link.refused link:alice@example.com csrf_origin"), types.join("\n"));
    assert.ok(types.includes("approval.recorded link:alice@example.com"), types.join("\n"));
    assert.ok(types.includes("proposal.approved link:alice@example.com"), types.join("\n"));
    assert.equal(dispatches.length, 1);
  });
});
