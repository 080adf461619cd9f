// The happy path end to end (SPEC 2, 5, 6, 8), as a smoke test: a proposal is created, its card
// posted, one approver clicks, the runner is sent one signed dispatch and answers with a result,
// the card says so, and the audit log tells the whole story in order, each step by its actor.
import { describe, expect, it } from "vitest";
import { auditOf, click, createProposal, getProposal, settle } from "./helpers/api.ts";
import { peer } from "./peer/client.ts";

describe("smoke", () => {
  it("create, card, approve, dispatch, audit", async () => {
    const p = await createProposal();
    expect(p.status).toBe("pending");
    await settle(p.id);
    const posts = await peer.slackCalls("chat.postMessage");
    expect(posts.length).toBe(1);
    const res = await click("approve", p.id, "U0ALICE");
    expect(res.status).toBe(200);
    await settle(p.id);
    const after = await getProposal(p.id);
    expect(after.status).toBe("succeeded");
    const runner = await peer.requests("/runner");
    expect(runner.length).toBe(1);
    expect(runner[0]!.signature_valid).toBe(true);
    expect(JSON.stringify((await peer.slackCalls("chat.update")).at(-1)?.blocks)).toMatch(/Succeeded/);

    const events = await auditOf(p.id);
    // The card's updates run beside the dispatch, so where they fall among its events varies.
    const story = events.filter((e) => e.type !== "slack.message_updated").map((e) => [e.type, e.actor]);
    expect(story).toEqual([
      ["proposal.created", "key:alertmanager"],
      ["slack.message_posted", "system"],
      ["approval.recorded", "slack:U0ALICE"],
      ["proposal.approved", "slack:U0ALICE"],
      ["dispatch.attempt", "system"],
      ["dispatch.answer", "runner"],
      ["proposal.succeeded", "runner"],
    ]);
    // The last word is the card updated to the outcome.
    expect(events.at(-1)).toMatchObject({ type: "slack.message_updated", actor: "system" });
  });
});
