// Local mode end to end, as a new user sees it (SPEC 9): the stack `npm start` runs (on free ports, with its own
// state, secrets and token in a temporary directory), driven in headless Chromium through the Slack stand-in.
// Chromium: see browser.ts (CHROMIUM_PATH, /usr/bin/chromium, or the one @sparticuz/chromium ships).
// Screenshots go to test-results/screenshots, or to SCREENSHOTS_DIR (docs/screenshots to refresh the docs).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Browser, Locator, Page } from "playwright-core";
import { type LocalStack, startLocal } from "../scripts/local/stack.ts";
import { launchChromium, SCREENSHOTS } from "./browser.ts";

/** From a click to the card showing the runner's result: alarm, dispatch, chat.update, one page poll. */
const FLOW_MS = 30_000;

let dir: string;
let stack: LocalStack | undefined;
let browser: Browser | undefined;
let page: Page;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "signoff-e2e-"));
  const lines: string[] = [];
  try {
    stack = await startLocal({
      port: 0,
      runnerPort: 0,
      persistTo: join(dir, "state"),
      devVarsPath: join(dir, ".dev.vars"),
      tokenPath: join(dir, "demo-token"),
      log: (line) => lines.push(line),
    });
  } catch (error) {
    throw new Error(`local stack did not start: ${(error as Error).message}\n${lines.slice(-40).join("\n")}`);
  }
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
});

after(async () => {
  await browser?.close();
  const pids = stack?.pids ?? [];
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
  // Nothing left behind: the runner's and wrangler's process groups (workerd included) are gone.
  for (const pid of pids) {
    assert.throws(() => process.kill(-pid, 0), { code: "ESRCH" }, `process group ${pid} still running after stop()`);
  }
});

async function actAs(user: string): Promise<void> {
  await page.selectOption("#as", user);
  await page.waitForFunction(
    (u) =>
      (document.querySelector<HTMLElement>("#role")?.dataset.for ?? "") === u &&
      new URL(location.href).searchParams.get("as") === u,
    user,
  );
}

/** Fills the page's form for `type` with `params` (and a TTL, else the policy's) and submits it. */
async function submit(type: string, params: Record<string, string>, ttl = ""): Promise<void> {
  await page.selectOption("#p-type", type);
  await page.fill("#p-params", JSON.stringify(params));
  await page.fill("#p-ttl", ttl);
  await page.click("#p-submit");
}

/** Submits the page's form for `type` with `params`; returns the new proposal's id. */
async function propose(type: string, params: Record<string, string>, ttl = ""): Promise<string> {
  await submit(type, params, ttl);
  // The page clears the previous result when the form is submitted; this waits for the new one.
  const result = page.locator("#propose-result.ok[data-proposal-id]");
  await result.waitFor({ timeout: 10_000 }).catch(async () => {
    throw new Error(`proposal not created: ${await page.locator("#propose-result").textContent()}`);
  });
  const id = await result.getAttribute("data-proposal-id");
  assert.match(id ?? "", /^prp_/);
  return id!;
}

/** Submits the form expecting a refusal; the lines the page shows for it. */
async function refusedProposal(type: string, params: Record<string, string>, ttl = ""): Promise<string> {
  await submit(type, params, ttl);
  const result = page.locator("#propose-result.err");
  await result.waitFor({ timeout: 10_000 });
  return result.innerText();
}

/**
 * The emoji on the page whose symbol the browser cannot draw: each `.emoji` is drawn on a canvas in its own font
 * and compared with a private-use character no font has, which is what a missing glyph looks like (an empty box).
 */
async function undrawableEmoji(): Promise<string[]> {
  return page.evaluate(() => {
    const canvas = document.createElement("canvas");
    canvas.width = 48;
    canvas.height = 48;
    const ctx = canvas.getContext("2d", { willReadFrequently: true })!;
    const draw = (text: string, font: string) => {
      ctx.clearRect(0, 0, 48, 48);
      ctx.font = font;
      ctx.fillText(text, 8, 32);
      return ctx.getImageData(0, 0, 48, 48).data.join(",");
    };
    return [...document.querySelectorAll<HTMLElement>(".emoji")]
      .filter((node) => {
        const font = getComputedStyle(node).font;
        return draw(node.textContent ?? "", font) === draw("\u{E000}", font);
      })
      .map((node) => `${node.title} ${node.textContent}`);
  });
}

function card(id: string): Locator {
  return page.locator(`article.msg[data-proposal-id="${id}"]`);
}

async function press(id: string, label: "Approve" | "Deny" | "Escalate"): Promise<void> {
  await card(id).getByRole("button", { name: label, exact: true }).click();
}

async function api(path: string): Promise<Record<string, any>> {
  const res = await fetch(`${stack!.url}${path}`, { headers: { authorization: `Bearer ${stack!.token}` } });
  assert.equal(res.status, 200, `${path}: HTTP ${res.status}`);
  return (await res.json()) as Record<string, any>;
}

/** On failure: a screenshot, what the page showed and what the Worker and runner printed, in the error. */
async function explained(steps: () => Promise<void>): Promise<void> {
  try {
    await steps();
  } catch (error) {
    const shot = join(SCREENSHOTS, "failure.png");
    await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
    const shown = await page
      .locator("body")
      .innerText()
      .catch(() => "(page unreadable)");
    (error as Error).message +=
      `\n--- screenshot: ${shot}\n--- page:\n${shown}\n--- output:\n${stack?.recentOutput().split("\n").slice(-60).join("\n")}`;
    throw error;
  }
}

test("propose, approve as an approver, see the runner's output; an outsider is refused; deny with a reason; decide by mailed link as the people it was sent to", {
  timeout: 300_000,
}, async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await explained(async () => {
    await flow();
    await byMailedLink();
  });
});

test("the first fifteen minutes: who may decide, form errors in words, an outsider told whom to ask, a runner's refusal and why, an expired card", {
  timeout: 300_000,
}, async () => {
  await explained(firstRun);
});

test("the Home tab: what waits for the chosen person, approved from there through the card's confirm dialog", {
  timeout: 300_000,
}, async () => {
  await explained(homeTab);
});

test("break-glass: the card's button opens its modal, a reason is required, one break-glass approver approves alone", {
  timeout: 300_000,
}, async () => {
  await explained(breakGlass);
});

async function breakGlass(): Promise<void> {
  await page.goto(`${stack!.url}/?as=U0CAROL`);
  await page.waitForSelector("body[data-ready='1']");
  const id = await propose("demo.break_glass", { message: "approved alone by break-glass" });
  await card(id).getByRole("button", { name: "Break glass", exact: true }).click();
  await page.locator("#modal:not([hidden])").waitFor({ timeout: FLOW_MS });
  assert.equal(await page.locator("#modal-title").innerText(), "Break glass");
  // The stand-in, like Slack's client, refuses to send the modal with its required reason empty.
  await page.click("#modal-submit");
  await page.locator("[data-error-for='reason']", { hasText: "required" }).waitFor({ timeout: FLOW_MS });
  await page.fill("#modal-body textarea[data-block-id='reason']", "Outage: the fix cannot wait");
  await page.click("#modal-submit");
  await page.locator("#modal").waitFor({ state: "hidden" });
  await card(id).getByText("Outage: the fix cannot wait").first().waitFor({ timeout: FLOW_MS });
  // The runner answers at once; its result lands a moment after the card changes.
  let status = "";
  for (let i = 0; i < 50 && status !== "succeeded"; i++) {
    status = (await api(`/v1/proposals/${id}`)).status;
    if (status !== "succeeded") await new Promise((r) => setTimeout(r, 200));
  }
  const p = await api(`/v1/proposals/${id}`);
  assert.equal(p.status, "succeeded");
  assert.equal(p.decision.break_glass, true);
  assert.deepEqual(
    p.approvals.map((a: { user: string }) => a.user),
    ["U0CAROL"],
  );
}

async function homeTab(): Promise<void> {
  await page.goto(`${stack!.url}/?as=U0ALICE`);
  await page.waitForSelector("body[data-ready='1']");
  const id = await propose("k8s.rollout_restart", { deployment: "home-tab" });
  await card(id).getByRole("button", { name: "Approve", exact: true }).waitFor({ timeout: FLOW_MS });
  await page.click("#tab-home");
  // Listed once its audit flush has written the Home index (right after creation): open the tab until it is.
  const waiting = page.locator("#home .b-section", { hasText: '"deployment":"home-tab"' });
  const deadline = Date.now() + FLOW_MS;
  while (!(await waiting.count()) && Date.now() < deadline) {
    await page.click("#home-open");
    await page.waitForTimeout(500);
  }
  assert.match(await page.locator("#home").innerText(), /Waiting for you[\s\S]*Restart deployment api/);
  // Its Approve is the card's: the same confirm dialog, then the view is drawn again saying so.
  const buttons = page.locator("#home .b-actions").filter({ has: page.getByRole("button", { name: "Approve" }) });
  await buttons.last().getByRole("button", { name: "Approve", exact: true }).click();
  await page.locator("#confirm:not([hidden])").waitFor();
  await page.click("#confirm-ok");
  await page.locator("#home", { hasText: "Your approval was recorded." }).waitFor({ timeout: FLOW_MS });
  assert.equal((await api(`/v1/proposals/${id}`)).approvals[0].user, "U0ALICE");
  // Bob requested it (the sample's requested_by): it is under Yours on his Home tab.
  await actAs("U0BOB");
  await page.locator("#home", { hasText: /Yours[\s\S]*Restart deployment api/ }).waitFor({ timeout: FLOW_MS });
  await page.click("#tab-slack");
}

async function flow(): Promise<void> {
  await page.goto(`${stack!.url}/?as=U0ALICE`);
  await page.waitForSelector("body[data-ready='1']");
  assert.equal(await page.title(), "signoff · local Slack stand-in");

  // A demo.echo proposal from the page's form: the card appears, posted through the stand-in's chat.postMessage.
  const echo = await propose("demo.echo", { message: "hello from the e2e test" });
  await card(echo).getByRole("button", { name: "Approve", exact: true }).waitFor({ timeout: FLOW_MS });
  assert.match(await card(echo).innerText(), /Say hello through the runner/);
  const restart = await propose("k8s.rollout_restart", { deployment: "api" });
  await card(restart).getByRole("button", { name: "Approve", exact: true }).waitFor({ timeout: FLOW_MS });

  // Alice approves (through Slack's confirm dialog); the runner echoes; the card says so, without buttons.
  await actAs("U0ALICE");
  await press(echo, "Approve");
  await page.locator("#confirm:not([hidden])").waitFor();
  assert.match(await page.locator("#confirm-title").innerText(), /Approve this action\?/);
  await page.click("#confirm-ok");
  // The output's code block, not the params' (`{"message":"hello from the e2e test"}`), which is there from the start.
  await card(echo)
    .locator("pre", { hasText: /^hello from the e2e test/ })
    .waitFor({ timeout: FLOW_MS });
  const approved = await card(echo).innerText();
  assert.match(approved, /Approved by @alice/);
  assert.match(approved, /Succeeded/);
  assert.equal(await card(echo).getByRole("button").count(), 0, "a decided card keeps no buttons");
  const state = await api(`/v1/proposals/${echo}`);
  assert.equal(state.status, "succeeded");
  assert.match(state.result.output, /hello from the e2e test/);
  await card(echo).screenshot({ path: join(SCREENSHOTS, "approved-card.png") });

  // Mallory, an outsider, clicks Approve on the other card: nothing changes, and only she sees why.
  await actAs("U0MALLORY");
  await press(restart, "Approve");
  await page.click("#confirm-ok");
  const refusal = page.locator("article.msg.ephemeral", { hasText: "not among the approvers" });
  await refusal.waitFor({ timeout: FLOW_MS });
  assert.match(await refusal.innerText(), /Only visible to you/);
  assert.equal((await api(`/v1/proposals/${restart}`)).status, "pending");
  await card(restart).getByRole("button", { name: "Approve", exact: true }).waitFor();
  await page.screenshot({ path: join(SCREENSHOTS, "standin.png"), fullPage: true });

  // …and whom to ask instead, as the card says it (issue 13).
  assert.match(await refusal.innerText(), /Can approve: @alice, @oncall — 1 needed, not the requester @bob\./);

  // The refusal is Mallory's alone.
  await actAs("U0ALICE");
  await page.waitForFunction(() => document.querySelectorAll("article.msg.ephemeral").length === 0);

  // Oscar (approver through the S0ONCALL group) denies with a reason, through the modal.
  await actAs("U0OSCAR");
  await press(restart, "Deny");
  await page.locator("#modal:not([hidden])").waitFor({ timeout: FLOW_MS });
  assert.equal(await page.locator("#modal-title").innerText(), "Deny proposal");
  await page.fill("#modal-body textarea[data-block-id='reason']", "Not during the release freeze");
  await page.click("#modal-submit");
  await page.locator("#modal").waitFor({ state: "hidden" });
  await card(restart).getByText("Not during the release freeze").waitFor({ timeout: FLOW_MS });
  assert.match(await card(restart).innerText(), /Denied by @oscar/);
  const denied = await api(`/v1/proposals/${restart}`);
  assert.equal(denied.status, "denied");
  assert.equal(denied.decision.reason, "Not during the release freeze");

  // Every one of those clicks went through the production signature check, and is in the audit log.
  const audit = await api(`/v1/audit?proposal_id=${restart}`);
  const types = (audit.events as Array<{ type: string; actor: string }>).map((e) => `${e.type} ${e.actor}`);
  assert.ok(
    types.some((t) => t.startsWith("click.refused slack:U0MALLORY")),
    types.join("\n"),
  );
  assert.ok(
    types.some((t) => t.startsWith("proposal.denied slack:U0OSCAR")),
    types.join("\n"),
  );
}

async function showMail(): Promise<void> {
  await page.click("#tab-mail");
  await page.locator("#mail-view:not([hidden])").waitFor();
}

/** Opens the link from the Mail tab in the new tab the page opens for it; the link's page, once it has loaded. */
async function openFromMail(id: string, choice: "approve" | "deny"): Promise<Page> {
  const link = page.locator(`#mailbox a.mail-link[data-proposal-id="${id}"][data-choice="${choice}"]`);
  await link.waitFor({ timeout: FLOW_MS });
  const [opened] = await Promise.all([page.context().waitForEvent("page"), link.click()]);
  await opened.waitForSelector("main[data-page]");
  return opened;
}

/**
 * Issue 11: an approval by link works end to end in local mode. signoff mails demo.by_link's links to alice@ and
 * dave@ (caught by the local mail API, shown on the Mail tab); each link decides only for the person signed in to
 * the local Access issuer, who is whoever the page says you are.
 */
async function byMailedLink(): Promise<void> {
  await page.click("#tab-slack");
  const id = await propose("demo.by_link", { message: "two people agreed by mail" });
  assert.match(await page.locator("#propose-result").innerText(), /mailed to alice@example\.com, dave@example\.com/);

  // Alice's mailbox has her message with her two links; Mallory's has none of it.
  await actAs("U0ALICE");
  await showMail();
  const aliceMail = page.locator("#mailbox article.mail", { has: page.locator(`a[data-proposal-id="${id}"]`) });
  await aliceMail.waitFor({ timeout: FLOW_MS });
  assert.match(await aliceMail.innerText(), /To\s+alice@example\.com/);
  assert.deepEqual(
    await aliceMail
      .locator("a.mail-link")
      .evaluateAll((links) => links.map((a) => (a as HTMLElement).dataset.recipient)),
    ["alice@example.com", "alice@example.com"],
  );
  await page.screenshot({ path: join(SCREENSHOTS, "standin-mail.png"), fullPage: true });

  // Signed out of the local Access, her own link refuses: holding a link is not being its recipient.
  await page.uncheck("#signed-in");
  const refused = await openFromMail(id, "approve");
  assert.equal(await refused.getAttribute("main", "data-page"), "forbidden");
  assert.match(await refused.locator("main").innerText(), /Sign in to decide/);
  await refused.close();
  await page.check("#signed-in");

  // Signed in as Alice: the confirmation page, then one approval of two.
  const first = await openFromMail(id, "approve");
  assert.equal(await first.getAttribute("main", "data-page"), "confirm");
  assert.match(await first.locator("main").innerText(), /alice@example\.com/);
  await first.getByRole("button", { name: "Confirm: Approve" }).click();
  await first.waitForSelector("main[data-page='decided']");
  assert.match(await first.locator(".status").innerText(), /1 of 2/);
  await first.close();
  assert.equal((await api(`/v1/proposals/${id}`)).status, "pending");

  await actAs("U0MALLORY");
  await page.waitForFunction(() => document.querySelectorAll("#mailbox article.mail").length === 0);

  // Dave, from his own mailbox: the second approval; the runner runs it.
  await actAs("U0DAVE");
  const second = await openFromMail(id, "approve");
  assert.equal(await second.getAttribute("main", "data-page"), "confirm");
  await second.getByRole("button", { name: "Confirm: Approve" }).click();
  await second.waitForSelector("main[data-page='decided']");
  assert.match(await second.locator(".status").innerText(), /the action will run now/);
  await second.close();

  let state = await api(`/v1/proposals/${id}`);
  for (const deadline = Date.now() + FLOW_MS; state.status !== "succeeded" && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    state = await api(`/v1/proposals/${id}`);
  }
  assert.equal(state.status, "succeeded", JSON.stringify(state));
  assert.match(state.result.output, /approved by link: two people agreed by mail/);
  assert.deepEqual(
    state.approvals.map((a: { user: string }) => a.user),
    ["link:alice@example.com", "link:dave@example.com"],
  );
}

/**
 * Issue 13, "the first fifteen minutes", walked as a newcomer would in the stand-in: what each person may do, what a
 * card says about who may decide, form errors that name the field, an outsider's refusal that names the approvers,
 * a runner's refusal with its reason on the card, and an expired card whose symbols a plain Chromium can draw.
 */
async function firstRun(): Promise<void> {
  await page.goto(`${stack!.url}/?as=U0ALICE`);
  await page.waitForSelector("body[data-ready='1']");
  await page.click("#tab-slack");

  // Who each person is, read from the demo policy: right for every demo action.
  await actAs("U0ALICE");
  assert.match(await page.locator("#role").innerText(), /^approves demo\.echo, .*demo\.by_link by mailed link/);
  await actAs("U0MALLORY");
  assert.equal(await page.locator("#role").innerText(), "outsider: may decide nothing");
  assert.match(
    await page.locator("#people").innerText(),
    /@carol U0CAROL — decides demo\.echo, k8s\.rollout_restart once escalated/,
  );
  assert.match(await page.locator("#groups").innerText(), /S0ONCALL \(@oncall\) = @oscar, @bob/);

  // Form errors name the field and say what it must be; nothing is created.
  const option = await refusedProposal("demo.echo", { message: "-n hidden" });
  assert.match(option, /HTTP 422 invalid_params\n• message must match \^\[A-Za-z0-9_\.,:!\?\]/);
  const ttl = await refusedProposal("demo.echo", { message: "hello" }, "soon");
  assert.match(ttl, /• ttl_seconds must be a whole number of seconds/);

  // The card says who may decide, from the rule the proposal froze.
  const refused = await propose("demo.runner_refuses", { message: "approved, then refused" });
  const pending = card(refused);
  await pending.getByRole("button", { name: "Approve", exact: true }).waitFor({ timeout: FLOW_MS });
  assert.match(await pending.innerText(), /Can approve: @alice, @oncall — 1 needed, not the requester @bob/);

  // An outsider is refused, and told whom to ask.
  await press(refused, "Approve");
  await page.click("#confirm-ok");
  const refusal = page.locator("article.msg.ephemeral", { hasText: "demo.runner_refuses" });
  await refusal.waitFor({ timeout: FLOW_MS });
  assert.match(
    await refusal.innerText(),
    /not among the approvers for demo\.runner_refuses\.\s+Can approve: @alice, @oncall/,
  );

  // Alice approves; the local runner refuses (its allowlist leaves this action out); the card says why.
  await actAs("U0ALICE");
  await press(refused, "Approve");
  await page.click("#confirm-ok");
  await pending.getByText(/Dispatch failed: the runner refused \(HTTP 403\)/).waitFor({ timeout: FLOW_MS });
  const failed = await pending.innerText();
  assert.match(failed, /"code":"action_not_allowed"/);
  assert.match(failed, /is not in the runner's allowlist/);
  assert.match(failed, /Nothing ran\./);
  assert.doesNotMatch(failed, /Can approve:/, "a decided card no longer says who may decide");
  const state = await api(`/v1/proposals/${refused}`);
  assert.equal(state.status, "dispatch_failed");
  assert.equal(state.dispatch.refusal.http_status, 403);
  assert.match(state.dispatch.refusal.reason, /action_not_allowed/);
  await pending.screenshot({ path: join(SCREENSHOTS, "runner-refused-card.png") });

  // A card past its deadline: expired, nothing ran, and every symbol on the page drawn (no empty boxes).
  const brief = await propose("demo.echo", { message: "nobody will answer" }, "2");
  await card(brief)
    .getByText(/Expired .* with 0 of 1 approvals\. Nothing ran\./)
    .waitFor({ timeout: FLOW_MS });
  assert.ok(await card(brief).locator(".emoji[title=':hourglass:']").count(), "the expired card has its symbol");
  assert.deepEqual(await undrawableEmoji(), []);
}
