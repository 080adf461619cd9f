import { exports, env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { peer } from "./peer/client.ts";
it("works", async () => {
  const res = await exports.default.fetch("http://x/healthz");
  expect(await res.json()).toEqual({ ok: true });
  await fetch((env as any).SLACK_API_BASE + "/chat.postMessage", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ channel: "C1" }) });
  expect((await peer.requests()).length).toBe(1);
  const r = await env.AUDIT_DB.prepare("select count(*) as n from audit_events").first();
  expect(r).toEqual({ n: 0 });
});
