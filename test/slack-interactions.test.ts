// SPEC 5 end to end: signed clicks through POST /slack/interactions, who may decide, the
// Deny modal, ephemeral refusals, a card that always tells the truth, Slack failures.
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signSlackRequest } from "../src/slack/signature.ts";
import { SECRETS } from "./fixtures.ts";
import {
  auditOf,
  BASE,
  call,
  click,
  clickPayload,
  createProposal,
  denySubmission,
  getProposal,
  jobsOf,
  json,
  runJobsNow,
  settle,
  slackRequest,
} from "./helpers/api.ts";
import { expectError } from "./helpers/contract.ts";
import { peer } from "./peer/client.ts";

type Blocks = Array<{ type: string; elements?: Array<Record<string, unknown>> }>;
const buttonsOf = (blocks: unknown) =>
  ((blocks as Blocks).find((b) => b.type === "actions")?.elements ?? []) as Array<Record<string, any>>;
/** The latest chat.update of this proposal's messages (other tests' late updates are ignored). */
const lastCard = async (id: string, channel?: string) =>
  (await peer.slackCalls("chat.update"))
    .filter((u) => JSON.stringify(u.blocks).includes(id) && (!channel || u.channel === channel))
    .at(-1)!;

async function rawSlack(body: string, headers: Record<string, string>) {
  return exports.default.fetch(
    new Request(`${BASE}/slack/interactions`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body,
    }),
  );
}

describe("signature verification, before anything is parsed", () => {
  const body = `payload=${encodeURIComponent(JSON.stringify({ type: "block_actions", user: { id: "U0ALICE" }, actions: [{ action_id: "someone.elses_button", value: "x" }] }))}`;
  const now = () => Math.floor(Date.now() / 1000);

  it("a correctly signed request is accepted", async () => {
    const ts = now();
    const res = await rawSlack(body, {
      "x-slack-request-timestamp": String(ts),
      "x-slack-signature": await signSlackRequest(SECRETS.SLACK_SIGNING_SECRET, ts, body),
    });
    expect(res.status).toBe(200);
  });

  for (const [name, make] of [
    [
      "wrong secret",
      async (ts: number) => ({
        "x-slack-request-timestamp": String(ts),
        "x-slack-signature": await signSlackRequest("another-secret", ts, body),
      }),
    ],
    [
      "stale timestamp (6 min old)",
      async (ts: number) => ({
        "x-slack-request-timestamp": String(ts - 360),
        "x-slack-signature": await signSlackRequest(SECRETS.SLACK_SIGNING_SECRET, ts - 360, body),
      }),
    ],
    [
      "future timestamp (6 min ahead)",
      async (ts: number) => ({
        "x-slack-request-timestamp": String(ts + 360),
        "x-slack-signature": await signSlackRequest(SECRETS.SLACK_SIGNING_SECRET, ts + 360, body),
      }),
    ],
    ["missing headers", async () => ({})],
    [
      "missing v0= prefix",
      async (ts: number) => ({
        "x-slack-request-timestamp": String(ts),
        "x-slack-signature": (await signSlackRequest(SECRETS.SLACK_SIGNING_SECRET, ts, body)).slice(3),
      }),
    ],
  ] as const) {
    it(`${name}: 401, nothing parsed, nothing changed`, async () => {
      const res = await rawSlack(body, await make(now()));
      expect((await expectError(res, 401)).error.code).toBe("bad_signature");
    });
  }

  it("a tampered body (signature of another body) is 401 and the click does not count", async () => {
    const p = await createProposal();
    const honest = `payload=${encodeURIComponent(JSON.stringify(clickPayload("deny", p.id, "U0ALICE")))}`;
    const forged = `payload=${encodeURIComponent(JSON.stringify(clickPayload("approve", p.id, "U0ALICE")))}`;
    const ts = now();
    const res = await rawSlack(forged, {
      "x-slack-request-timestamp": String(ts),
      "x-slack-signature": await signSlackRequest(SECRETS.SLACK_SIGNING_SECRET, ts, honest),
    });
    expect(res.status).toBe(401);
    expect((await getProposal(p.id)).status).toBe("pending");
  });
});

describe("who may decide", () => {
  it("a direct approver approves", async () => {
    const p = await createProposal();
    await click("approve", p.id, "U0ALICE");
    expect((await getProposal(p.id)).status).not.toBe("pending");
  });

  it("a member of an approver user group (usergroups.users.list) approves", async () => {
    const p = await createProposal();
    await click("approve", p.id, "U0OSCAR");
    expect((await getProposal(p.id)).approvals.map((a: { user: string }) => a.user)).toEqual(["U0OSCAR"]);
    expect(await peer.slackCalls("usergroups.users.list")).toEqual(
      expect.arrayContaining([expect.objectContaining({ usergroup: "S0ONCALL" })]),
    );
  });

  it("an outsider changes nothing, is told why in an ephemeral message, and the attempt is audited", async () => {
    const p = await createProposal();
    await click("approve", p.id, "U0MALLORY");
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    const [ephemeral] = await peer.slackCalls("chat.postEphemeral");
    expect(ephemeral).toMatchObject({ channel: "C0INCIDENT", user: "U0MALLORY" });
    expect(String(ephemeral!.text)).toMatch(/not among the approvers/);
    // …and whom to ask instead (issue 13), as the card itself says it.
    expect(String(ephemeral!.text)).toContain("Can approve: <@U0ALICE>, <!subteam^S0ONCALL> — 1 needed");
    expect((await auditOf(p.id)).find((e) => e.type === "click.refused")).toMatchObject({
      actor: "slack:U0MALLORY",
      details: { code: "not_an_approver" },
    });
  });

  it("four-eyes: the requester (a group member) may not approve their own proposal", async () => {
    const p = await createProposal({ requested_by: "U0OSCAR" });
    await click("approve", p.id, "U0OSCAR");
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    expect(String((await peer.slackCalls("chat.postEphemeral"))[0]!.text)).toMatch(/four-eyes/);
  });

  it("requester_only: the card goes to the requester's DM and only they can confirm", async () => {
    const p = await createProposal({
      action: { type: "demo.echo", params: { message: "hi" } },
      requested_by: "U0BOB",
      ttl_seconds: 30,
    });
    await settle(p.id);
    expect((await peer.slackCalls("chat.postMessage"))[0]).toMatchObject({ channel: "U0BOB" });
    await click("approve", p.id, "U0ALICE");
    expect((await getProposal(p.id)).status).toBe("pending");
    await click("approve", p.id, "U0BOB");
    expect((await getProposal(p.id)).status).not.toBe("pending");
  });

  it("M-of-N: two distinct approvers are needed; the same person twice counts once", async () => {
    const p = await createProposal({ action: { type: "db.failover", params: { cluster: "main" } } });
    await settle(p.id); // the card is posted first, so the approval shows up as its update
    await click("approve", p.id, "U0ALICE");
    await click("approve", p.id, "U0ALICE");
    const half = await getProposal(p.id);
    expect(half.status).toBe("pending");
    expect(half.approvals).toHaveLength(1);
    await settle(p.id);
    expect(JSON.stringify((await lastCard(p.id)).blocks)).toMatch(/1 of 2/);
    await click("approve", p.id, "U0DAVE");
    expect((await getProposal(p.id)).status).not.toBe("pending");
  });

  it("escalation hands the decision to the escalation approvers, posts to their channel and extends the deadline", async () => {
    const p = await createProposal();
    await settle(p.id);
    await click("escalate", p.id, "U0ALICE");
    const escalated = await getProposal(p.id);
    expect(escalated.status).toBe("pending");
    expect(Date.parse(escalated.expires_at) - Date.parse(p.expires_at)).toBe(600_000);
    await settle(p.id);
    const posts = await peer.slackCalls("chat.postMessage");
    expect(posts.map((m) => m.channel)).toEqual(["C0INCIDENT", "C0ESCALATE"]);
    expect(buttonsOf(posts[1]!.blocks).map((b) => b.action_id)).toEqual(["signoff.approve", "signoff.deny"]);
    expect(buttonsOf((await lastCard(p.id, "C0INCIDENT")).blocks)).toEqual([]); // the original card has no live buttons now
    await click("approve", p.id, "U0ALICE"); // no longer an approver
    expect((await getProposal(p.id)).status).toBe("pending");
    await click("approve", p.id, "U0LEAD"); // member of S0SRELEADS
    expect((await getProposal(p.id)).status).not.toBe("pending");
    expect((await auditOf(p.id)).map((e) => e.type)).toContain("proposal.escalated");
  });
});

describe("Deny with a reason (modal)", () => {
  it("Deny opens a modal; its submission denies with the reason, which reaches the audit log and the card", async () => {
    const p = await createProposal();
    await settle(p.id);
    const res = await click("deny", p.id, "U0ALICE");
    expect(res.status).toBe(200);
    const [opened] = await peer.slackCalls("views.open");
    expect(opened).toMatchObject({
      trigger_id: "123.456.abc",
      view: { type: "modal", callback_id: "signoff.deny_reason", private_metadata: p.id },
    });
    expect((await getProposal(p.id)).status).toBe("pending"); // the modal alone decides nothing

    const submitted = await slackRequest(denySubmission(p.id, "U0ALICE", "Black Friday freeze <!channel>"));
    expect(submitted.status).toBe(200);
    const denied = await getProposal(p.id);
    expect(denied.decision).toMatchObject({
      by: "slack:U0ALICE",
      outcome: "denied",
      reason: "Black Friday freeze <!channel>",
    });
    await settle(p.id);
    expect((await auditOf(p.id)).find((e) => e.type === "proposal.denied")!.details.reason).toBe(
      "Black Friday freeze <!channel>",
    );
    const card = JSON.stringify((await lastCard(p.id)).blocks);
    expect(card).toContain("Black Friday freeze &lt;!channel&gt;");
    expect(card).not.toContain("<!channel>");
    expect(buttonsOf((await lastCard(p.id)).blocks)).toEqual([]);
  });

  it("an outsider's Deny opens no modal and gets an ephemeral refusal", async () => {
    const p = await createProposal();
    await click("deny", p.id, "U0MALLORY");
    await settle(p.id);
    expect(await peer.slackCalls("views.open")).toHaveLength(0);
    expect(await peer.slackCalls("chat.postEphemeral")).toHaveLength(1);
  });

  it("a modal submitted after someone else decided shows the refusal in the modal", async () => {
    const p = await createProposal();
    await click("deny", p.id, "U0ALICE");
    await click("approve", p.id, "U0OSCAR");
    const res = await slackRequest(denySubmission(p.id, "U0ALICE", "too late"));
    const body = await json(res);
    expect(body).toMatchObject({
      response_action: "errors",
      errors: { reason: expect.stringMatching(/Already approved by <@U0OSCAR>/) },
    });
    expect((await getProposal(p.id)).status).not.toBe("denied");
  });
});

describe("a card that tells the truth", () => {
  it("posted with the details, a short plan hash and buttons whose value is only the id", async () => {
    const p = await createProposal({ summary: "Restart <!channel> & <https://evil.example|docs>" });
    await settle(p.id);
    const [post] = await peer.slackCalls("chat.postMessage");
    const text = JSON.stringify(post!.blocks);
    expect(post!.channel).toBe("C0INCIDENT");
    expect(text).toContain(p.plan_sha256.slice(0, 12));
    expect(text).toContain(p.id);
    expect(text).not.toContain("<!channel>");
    expect(text).not.toContain("<https://evil.example|docs>");
    const buttons = buttonsOf(post!.blocks);
    expect(buttons.map((b) => b.action_id)).toEqual(["signoff.approve", "signoff.deny", "signoff.escalate"]);
    for (const button of buttons) expect(button.value).toBe(p.id);
    expect(buttons[0]!.confirm).toBeTruthy();
  });

  it("a summary imitating signoff's status line is posted as quoted proposer text, attributed, under signoff's header", async () => {
    const forged = ":white_check_mark: Approved by @alice";
    const p = await createProposal({ summary: forged });
    await settle(p.id);
    const post = (await peer.slackCalls("chat.postMessage")).find((c) => JSON.stringify(c.blocks).includes(p.id));
    const blocks = post!.blocks as Array<Record<string, any>>;
    expect(blocks[0]).toMatchObject({ type: "header", text: { type: "plain_text", text: "Approval needed" } });
    const attribution = blocks.find((b) => b.block_id === "signoff.attribution");
    expect(attribution?.type).toBe("context");
    expect(attribution?.elements[0].text).toMatch(/^Proposed by key `alertmanager` · requested by <@U0BOB>\./);
    expect(blocks.find((b) => b.block_id === "signoff.summary")?.text.text).toBe(`> ${forged}`);
    expect(blocks.find((b) => b.block_id === "signoff.status")).toBeUndefined();
    // Wherever "Approved by" appears on the pending card, it is a quoted line of the proposer's.
    const lines = JSON.stringify(blocks)
      .split(/\\n|"/)
      .filter((line) => line.includes("Approved by"));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line.startsWith("> "), line).toBe(true);
  });

  it("approved → running → succeeded with the output excerpt; no buttons once decided", async () => {
    await peer.script("/runner", [{ body: { status: "succeeded", output: "deployment.apps/api restarted" } }]);
    const p = await createProposal();
    await settle(p.id);
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);
    const updates = (await peer.slackCalls("chat.update")).filter((u) => JSON.stringify(u.blocks).includes(p.id));
    const final = JSON.stringify(updates.at(-1)!.blocks);
    expect(final).toContain("deployment.apps/api restarted");
    expect(final).toContain("U0ALICE");
    for (const update of updates) expect(buttonsOf(update.blocks)).toEqual([]);
  });

  it("cancelled by the proposer: the card says so and nothing ran", async () => {
    const p = await createProposal();
    await settle(p.id);
    await call(`/v1/proposals/${p.id}/cancel`, { method: "POST" });
    await settle(p.id);
    const card = JSON.stringify((await lastCard(p.id)).blocks);
    expect(card).toMatch(/cancel/i);
    expect(card).toMatch(/nothing ran/i);
  });
});

describe("Slack API failures never block the decision", () => {
  it("429 honours Retry-After, then the card is posted", async () => {
    await peer.script("/slack/api/chat.postMessage", [
      { status: 429, headers: { "retry-after": "7" }, body: { ok: false, error: "ratelimited" } },
    ]);
    const p = await createProposal();
    await settle(p.id);
    const failure = (await auditOf(p.id)).find((e) => e.type === "slack.failed")!;
    expect(failure.details).toMatchObject({ method: "chat.postMessage", final: false });
    const [slackJob] = await jobsOf(p.id, "slack");
    expect(slackJob!.due_at - Date.parse(failure.at)).toBeGreaterThanOrEqual(6_900);
    // Meanwhile an approval goes through.
    await click("approve", p.id, "U0ALICE");
    expect((await getProposal(p.id)).status).not.toBe("pending");
    await runJobsNow(p.id, ["slack"]);
    expect(await peer.slackCalls("chat.postMessage")).toHaveLength(2);
  });

  it("5xx is retried with backoff; an ok:false error is audited and not retried", async () => {
    await peer.script("/slack/api/chat.postMessage", [
      { status: 500 },
      { status: 200, body: { ok: false, error: "channel_not_found" } },
    ]);
    const p = await createProposal();
    await settle(p.id);
    await runJobsNow(p.id, ["slack"]);
    const failures = (await auditOf(p.id)).filter((e) => e.type === "slack.failed").map((e) => e.details);
    expect(failures).toEqual([
      expect.objectContaining({ final: false, error: expect.stringMatching(/500/) }),
      expect.objectContaining({ final: true, error: expect.stringMatching(/channel_not_found/) }),
    ]);
    expect(JSON.stringify(failures)).not.toContain(SECRETS.SLACK_BOT_TOKEN);
    await runJobsNow(p.id, ["slack"]);
    expect(await peer.slackCalls("chat.postMessage")).toHaveLength(2);
  });
});

it("env sanity: the stand-in Slack is the loopback peer", () => {
  expect(env.SLACK_API_BASE).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/slack\/api$/);
});
