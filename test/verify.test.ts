// Issue 7, verification prompts ("was this you?"): one person is asked; their answer is the outcome (yes →
// acknowledged, no → denied, unsure → escalated), audited, shown on the card and sent as a signed outcome event;
// nothing is ever dispatched. Over Slack (a DM with three buttons) and over signed links, which answer by possession:
// the proposer delivers them to the addressee alone, never into a Teams channel.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { parsePolicy } from "../src/config/policy.ts";
import { mintLinkUrls } from "../src/links/token.ts";
import { publicId } from "../src/proposal/ids.ts";
import { applyClick, applyLink } from "../src/proposal/lifecycle.ts";
import { LINK_BINDINGS } from "./fixtures.ts";
import {
  auditOf,
  call,
  clickPayload,
  createdThisTest,
  createProposal,
  getProposal,
  proposalBody,
  runAlarm,
  settle,
  slackRequest,
  stubOf,
} from "./helpers/api.ts";
import {
  api,
  claimsOf,
  confirmLink,
  linkFor,
  openAndConfirm,
  openLink,
  PEER,
  pageKind,
  propose,
  signedLink,
  verifies,
  verifyBody,
} from "./helpers/links.ts";
import { EXPIRES_AT, makeProposal } from "./helpers/proposal-factory.ts";
import { peer } from "./peer/client.ts";

type Json = Record<string, any>;
const BEFORE = Date.parse(EXPIRES_AT) - 60_000;

const slackPrompt = (overrides: Json = {}) => ({
  action: { type: "verify.login", params: { ip: "198.51.100.4" } },
  summary: "Sign-in to the admin console from a new device",
  reason: "Firefox on Linux, Porto, 08:02 UTC",
  requested_by: "U0BOB",
  ...overrides,
});

/** A click on one of the DM card's answer buttons. */
const answer = (kind: "yes" | "no" | "unsure", id: string, user: string) =>
  slackRequest({
    ...clickPayload("approve", id, user, "D0BOB"),
    actions: [{ action_id: `signoff.verify_${kind}`, value: id, type: "button" }],
  });

async function dmCard(): Promise<Json> {
  const [post, ...more] = await peer.slackCalls("chat.postMessage");
  expect(more).toHaveLength(0);
  return post!;
}

function buttons(message: Json): Json[] {
  return ((message.blocks as Json[]).find((b) => b.type === "actions")?.elements ?? []) as Json[];
}

describe("the pure rules", () => {
  const prompt = (over: Json = {}) =>
    makeProposal({
      kind: "verify",
      requested_by: "U0BOB",
      rule: { requester_only: true, approvers: [], escalation: null },
      ...over,
    });

  it("only the person asked may answer, and only with an answer", () => {
    expect(
      applyClick(prompt(), { kind: "yes", user: "U0ALICE", memberOf: [], standing: "member", via: "slack" }, BEFORE),
    ).toMatchObject({
      ok: false,
      code: "requester_only",
    });
    expect(
      applyClick(prompt(), { kind: "approve", user: "U0BOB", memberOf: [], standing: "member", via: "slack" }, BEFORE),
    ).toMatchObject({
      ok: false,
      code: "wrong_kind",
    });
    expect(
      applyClick(
        makeProposal(),
        { kind: "yes", user: "U0ALICE", memberOf: [], standing: "member", via: "slack" },
        BEFORE,
      ),
    ).toMatchObject({ ok: false, code: "wrong_kind" });
  });

  it("each answer is an outcome, recorded with the answer", () => {
    for (const [kind, status] of [
      ["yes", "acknowledged"],
      ["no", "denied"],
      ["unsure", "escalated"],
    ] as const) {
      const t = applyClick(prompt(), { kind, user: "U0BOB", memberOf: [], standing: "member", via: "slack" }, BEFORE);
      expect(t.ok).toBe(true);
      if (!t.ok) continue;
      expect(t.proposal.status).toBe(status);
      expect(t.proposal.decision).toEqual({
        by: "slack:U0BOB",
        at: new Date(BEFORE).toISOString(),
        outcome: status,
        answer: kind,
      });
      expect(t.events.map((e) => e.type)).toEqual(["verify.answered", `proposal.${status}`]);
    }
  });

  it("by link: only the prompt's recipient; a second answer finds it answered", () => {
    const p = prompt({
      recipient: "bob@example.com",
      rule: { requester_only: true, approvers: [], escalation: null, links: { recipients: [], teams_recipient: null } },
    });
    expect(applyLink(p, { recipient: "eve@example.com", identity: null, choice: "yes" }, BEFORE)).toMatchObject({
      ok: false,
      code: "not_a_recipient",
    });
    expect(applyLink(p, { recipient: "bob@example.com", identity: null, choice: "approve" }, BEFORE)).toMatchObject({
      ok: false,
      code: "wrong_kind",
    });
    const t = applyLink(p, { recipient: "bob@example.com", identity: null, choice: "no" }, BEFORE);
    expect(t).toMatchObject({
      ok: true,
      proposal: { status: "denied", decision: { by: "link:bob@example.com", answer: "no" } },
    });
    if (t.ok)
      expect(
        applyLink(t.proposal, { recipient: "bob@example.com", identity: null, choice: "yes" }, BEFORE),
      ).toMatchObject({
        ok: false,
        code: "not_pending",
      });
  });
});

describe("over Slack: a DM with three answers", () => {
  it("the card goes to the user's DM with three buttons whose value is the proposal id only", async () => {
    const p = await propose(slackPrompt());
    expect(p).toMatchObject({
      kind: "verify",
      status: "pending",
      blast_radius: "",
      rollback: "",
      recipient: null,
      requested_by: "U0BOB",
    });
    expect(p.rule).toMatchObject({
      requester_only: true,
      approvers: [],
      required_approvals: 1,
      escalation: null,
      verify_labels: expect.any(Object),
    });
    expect(p).not.toHaveProperty("links");
    await settle(p.id);
    const card = await dmCard();
    expect(card.channel).toBe("U0BOB");
    expect(buttons(card).map((b) => [b.action_id, b.text.text, b.value])).toEqual([
      ["signoff.verify_yes", "Yes, that was me", p.id],
      ["signoff.verify_no", "No, that wasn't me", p.id],
      ["signoff.verify_unsure", "I'm not sure — escalate", p.id],
    ]);
    expect(buttons(card).some((b) => "confirm" in b)).toBe(false);
    expect(JSON.stringify(card.blocks)).toContain("Was this you?");
    expect(card.text).toMatch(/^Was this you\?: Sign-in to the admin console/);
  });

  it("only the addressee may answer: anyone else is refused, told why and audited; approve buttons do nothing here", async () => {
    const p = await propose(slackPrompt());
    await settle(p.id);
    await answer("yes", p.id, "U0ALICE");
    await slackRequest(clickPayload("approve", p.id, "U0BOB", "D0BOB"));
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    const ephemerals = await peer.slackCalls("chat.postEphemeral");
    expect(ephemerals.map((e) => e.user)).toEqual(["U0ALICE", "U0BOB"]);
    expect(String(ephemerals[0]!.text)).toMatch(/Only <@U0BOB> can answer/);
    const refused = (await auditOf(p.id)).filter((e) => e.type === "click.refused");
    expect(refused.map((e) => [e.actor, e.details.code])).toEqual([
      ["slack:U0ALICE", "requester_only"],
      ["slack:U0BOB", "wrong_kind"],
    ]);
  });

  for (const [kind, status, label] of [
    ["yes", "acknowledged", "Yes, that was me"],
    ["no", "denied", "No, that wasn't me"],
    ["unsure", "escalated", "I'm not sure — escalate"],
  ] as const) {
    it(`"${label}" → ${status}: the card shows the answer, a signed proposal.${status} event arrives, nothing is dispatched`, async () => {
      const p = await propose(slackPrompt({ callback_url: `${PEER}/events/verify-${kind}` }));
      await settle(p.id);
      const res = await answer(kind, p.id, "U0BOB");
      expect(res.status).toBe(200);
      await settle(p.id);

      const after = await getProposal(p.id);
      expect(after).toMatchObject({ status, decision: { by: "slack:U0BOB", outcome: status, answer: kind } });
      const events = await peer.requests(`/events/verify-${kind}`);
      expect(events).toHaveLength(1);
      expect(events[0]!.signature_valid).toBe(true);
      const event = JSON.parse(events[0]!.body);
      expect(event).toMatchObject({
        type: `proposal.${status}`,
        data: { id: p.id, kind: "verify", status, decision: { answer: kind } },
      });
      expect(event.data).not.toHaveProperty("teams");

      const update = (await peer.slackCalls("chat.update")).at(-1)!;
      expect(buttons(update)).toEqual([]);
      expect(JSON.stringify(update.blocks)).toContain(`Answered “${label}” by <@U0BOB>`);
      const audit = await auditOf(p.id);
      expect(audit.find((e) => e.type === "verify.answered")).toMatchObject({
        actor: "slack:U0BOB",
        details: { answer: kind, label, via: "slack" },
      });
      expect(audit.map((e) => e.type)).toContain(`proposal.${status}`);
      expect(await peer.requests("/runner")).toHaveLength(0);

      // The answer is final: a second click changes nothing.
      await answer("yes", p.id, "U0BOB");
      expect((await getProposal(p.id)).status).toBe(status);
    });
  }

  it("a prompt nobody answers expires, and says so", async () => {
    const p = await propose(slackPrompt({ ttl_seconds: 1, callback_url: `${PEER}/events/verify-expired` }));
    await settle(p.id);
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    await runAlarm(p.id);
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("expired");
    expect(JSON.parse((await peer.requests("/events/verify-expired"))[0]!.body).type).toBe("proposal.expired");
    expect(JSON.stringify((await peer.slackCalls("chat.update")).at(-1)!.blocks)).toContain("without an answer");
  });
});

describe("creating a prompt", () => {
  const create = (body: Json) => api("/v1/proposals", { body });
  const error = async (res: Response) => ((await res.json()) as Json).error;

  it("blast_radius and rollback are optional for prompts and still required for approvals", async () => {
    const prompt = await propose(slackPrompt({ kind: "verify" }));
    expect(prompt).toMatchObject({ blast_radius: "", rollback: "" });
    const approval = await create({ action: { type: "links.deploy", params: {} }, summary: "s", reason: "r" });
    expect(approval.status).toBe(400);
    expect((await error(approval)).details.map((d: Json) => d.path)).toEqual(["blast_radius", "rollback"]);
    // A prompt's texts, when given, must not be blank.
    expect((await create(slackPrompt({ blast_radius: " " }))).status).toBe(400);
  });

  it("kind must match the policy; the addressee is required; recipient only where links are", async () => {
    const mismatch = await create(slackPrompt({ kind: "approval" }));
    expect(mismatch.status).toBe(422);
    expect(await error(mismatch)).toMatchObject({ code: "kind_mismatch", details: [{ path: "kind" }] });
    const asVerify = await createProposalRaw({ kind: "verify" });
    expect(asVerify.status).toBe(422);
    expect((await error(asVerify)).code).toBe("kind_mismatch");

    const nobody = await create(slackPrompt({ requested_by: undefined }));
    expect(nobody.status).toBe(422);
    expect(await error(nobody)).toMatchObject({ code: "requested_by_required", details: [{ path: "requested_by" }] });
    const noLinks = await create(slackPrompt({ recipient: "bob@example.com" }));
    expect(noLinks.status).toBe(422);
    expect((await error(noLinks)).code).toBe("recipient_not_allowed");
    const approvalRecipient = await create({
      action: { type: "links.deploy", params: {} },
      summary: "s",
      reason: "r",
      blast_radius: "b",
      rollback: "r",
      recipient: "x@example.com",
    });
    expect((await error(approvalRecipient)).code).toBe("recipient_not_allowed");
    const linkless = await create(verifyBody({ recipient: undefined }));
    expect(linkless.status).toBe(422);
    expect(await error(linkless)).toMatchObject({ code: "recipient_required", details: [{ path: "recipient" }] });
    const badRecipient = await create(verifyBody({ recipient: "bob smith" }));
    expect(badRecipient.status).toBe(400);
    expect((await error(badRecipient)).details[0].path).toBe("recipient");
  });
});

/** The classic fixture key proposing k8s.rollout_restart with an extra body field. */
function createProposalRaw(extra: Json) {
  return call("/v1/proposals", { body: { ...proposalBody(), ...extra } });
}

describe("over signed links (never Teams)", () => {
  it("the create response has the recipient's three links; the page asks the question in the policy's words", async () => {
    const p = await propose(verifyBody({ callback_url: `${PEER}/events/device` }));
    expect(p).toMatchObject({ kind: "verify", recipient: "bob@example.com", requested_by: null });
    expect(p.links!.map((l) => [l.recipient, l.choice])).toEqual([
      ["bob@example.com", "yes"],
      ["bob@example.com", "no"],
      ["bob@example.com", "unsure"],
    ]);
    for (const link of p.links!) expect((await verifies(link.url)).ok).toBe(true);
    const page = await openLink(linkFor(p, "bob@example.com", "yes"));
    expect(pageKind(page.html)).toBe("confirm");
    expect(page.html).toContain("Was this you?");
    expect(page.html).toContain("Yes, I signed in");
    expect(page.html).toContain("New sign-in to your account from Lisbon");
    await settle(p.id);
    // No Slack user was named: no Slack card.
    expect(await peer.slackCalls("chat.postMessage")).toHaveLength(0);
  });

  it("the answer decides once and comes back as a signed event; another answer link then finds it answered", async () => {
    const p = await propose(verifyBody({ callback_url: `${PEER}/events/device` }));
    const done = await openAndConfirm(linkFor(p, "bob@example.com", "no"));
    expect(done.res.status).toBe(200);
    expect(done.html).toContain("Your answer “No, block it” was recorded");
    await settle(p.id);
    expect(await getProposal(p.id)).toMatchObject({
      status: "denied",
      decision: { by: "link:bob@example.com", answer: "no" },
    });
    const [event] = await peer.requests("/events/device");
    expect(event!.signature_valid).toBe(true);
    expect(JSON.parse(event!.body)).toMatchObject({ type: "proposal.denied", data: { decision: { answer: "no" } } });
    expect(pageKind((await openLink(linkFor(p, "bob@example.com", "yes"))).html)).toBe("not_pending");
    expect((await auditOf(p.id)).find((e) => e.type === "verify.answered")).toMatchObject({
      actor: "link:bob@example.com",
      details: { answer: "no", via: "link" },
    });
    expect(await peer.requests("/runner")).toHaveLength(0);
  });

  it("someone else's link (signed, but for another recipient) cannot answer", async () => {
    const p = await propose(verifyBody());
    const yes = claimsOf(linkFor(p, "bob@example.com", "yes"));
    const eve = await signedLink({ ...yes, r: "eve@example.com" });
    const fresh = await openLink(linkFor(p, "bob@example.com", "yes"));
    expect((await confirmLink(eve, { cookie: fresh.cookie, csrf: fresh.csrf })).res.status).toBe(400);
    expect((await getProposal(p.id)).status).toBe("pending");
  });

  it("a prompt's links never go into a Teams channel: only to the proposer, for the addressee alone", async () => {
    const p = await propose(verifyBody());
    await settle(p.id);
    expect(p.links).toHaveLength(3);
    expect(await peer.requests("/teams")).toHaveLength(0);
    // Anyone in a channel could have answered "yes, that was me": the policy refuses a webhook for it, by name.
    const refused = (() => {
      try {
        parsePolicy({
          actions: { "v.x": { kind: "verify", links: { enabled: true, teams_webhook: `${PEER}/teams/x` } } },
        });
        return [];
      } catch (error) {
        return (error as { details: Array<{ path: string; message: string }> }).details;
      }
    })();
    expect(refused).toEqual([
      { path: 'POLICY.actions["v.x"].links.teams_webhook', message: expect.stringContaining("by possession") },
    ]);
  });

  it("a prompt stored with a Teams webhook (from before the policy refused one) posts nothing to Teams, neither card nor outcome", async () => {
    const id = publicId(env.PROPOSALS.newUniqueId());
    const stored = makeProposal({
      id,
      kind: "verify",
      requested_by: null,
      recipient: "bob@example.com",
      expires_at: new Date(Date.now() + 600_000).toISOString(),
      rule: {
        requester_only: true,
        approvers: [],
        escalation: null,
        links: { recipients: [], teams_recipient: null },
        verify_labels: { yes: "Yes", no: "No", unsure: "Not sure" },
      },
      teams: { webhook: `${PEER}/teams/legacy`, card_posted: false, announced: null },
    });
    const created = await stubOf(id).create(stored, "legacy");
    expect(created.ok).toBe(true);
    createdThisTest.add(id);
    await settle(id);
    if (!created.ok) return;
    const [yes] = await mintLinkUrls(LINK_BINDINGS.LINK_SECRET, LINK_BINDINGS.PUBLIC_URL, stored, [
      created.links.find((l) => l.choice === "yes")!,
    ]);
    expect((await openAndConfirm(yes!.url)).res.status).toBe(200);
    await settle(id);
    expect((await getProposal(id)).status).toBe("acknowledged");
    expect(await peer.requests("/teams/legacy")).toHaveLength(0);
    expect((await auditOf(id)).filter((e) => e.type.startsWith("teams."))).toEqual([]);
  });

  it("a verification prompt with a Slack user and links: either may answer, the first answer wins", async () => {
    const p = await propose(verifyBody({ requested_by: "U0BOB" }));
    await settle(p.id);
    expect((await dmCard()).channel).toBe("U0BOB");
    await answer("yes", p.id, "U0BOB");
    const late = await openLink(linkFor(p, "bob@example.com", "no"));
    expect(pageKind(late.html)).toBe("not_pending");
    expect((await getProposal(p.id)).status).toBe("acknowledged");
  });
});

describe("policy for verification prompts", () => {
  const problems = (action: Json) => {
    try {
      parsePolicy({ actions: { "v.x": { kind: "verify", ...action } } });
      return [];
    } catch (error) {
      return (error as { details: Array<{ path: string; message: string }> }).details.map((d) =>
        d.path.replace('POLICY.actions["v.x"].', ""),
      );
    }
  };

  it("defaults: requester-only semantics, one answer, the default labels; no channel needed", () => {
    const action = parsePolicy({ actions: { "v.x": { kind: "verify", verify_labels: { unsure: "Ask the SOC" } } } })
      .actions["v.x"]!;
    expect(action).toMatchObject({
      requester_only: true,
      required_approvals: 1,
      approvers: [],
      channel: null,
      escalation: null,
    });
    expect(action.verify!.labels).toEqual({ yes: "Yes, that was me", no: "No, that wasn't me", unsure: "Ask the SOC" });
  });

  it("refuses the fields that do not apply, and bad labels, each by name", () => {
    expect(
      problems({
        approvers: ["U0ALICE"],
        required_approvals: 2,
        escalation: { approvers: ["U0LEAD"] },
        channel: "C0X",
        confirm: true,
        allow_self_approval: false,
        requester_only: false,
      }),
    ).toEqual([
      "approvers",
      "required_approvals",
      "requester_only",
      "allow_self_approval",
      "confirm",
      "channel",
      "escalation",
    ]);
    expect(problems({ verify_labels: { yes: "" } })).toEqual(["verify_labels.yes"]);
    expect(problems({ verify_labels: { yes: "x".repeat(76) } })).toEqual(["verify_labels.yes"]);
    expect(problems({ verify_labels: { maybe: "Perhaps" } })).toEqual(["verify_labels.maybe"]);
    expect(problems({ kind: "survey" })).toEqual(["kind"]);
    expect(problems({ links: { enabled: true, recipients: ["a@example.com"] } })).toEqual(["links.recipients"]);
    expect(problems({ links: { enabled: true, teams_webhook: "https://t.example/x", teams_recipient: "t" } })).toEqual([
      "links.teams_webhook",
      "links.teams_recipient",
    ]);
    // Possession-only links never go to a shared channel, not even from a block that is switched off for now.
    expect(problems({ links: { enabled: true, teams_webhook: "https://t.example/x" } })).toEqual([
      "links.teams_webhook",
    ]);
    expect(problems({ links: { enabled: false, teams_webhook: "https://t.example/x" } })).toEqual([
      "links.teams_webhook",
    ]);
    expect(problems({ links: { enabled: true } })).toEqual([]);
  });

  it("createProposal of the classic actions is untouched by all this", async () => {
    const p = await createProposal();
    expect(p).toMatchObject({ kind: "approval", recipient: null });
    expect(p.rule).not.toHaveProperty("verify_labels");
  });
});
