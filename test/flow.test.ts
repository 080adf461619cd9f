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
    const events = await auditOf(p.id);
    console.log(events.map((e) => e.type).join(" "));
  });
});
