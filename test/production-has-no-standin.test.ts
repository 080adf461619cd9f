// SPEC 9: the local Slack stand-in is never part of a production deploy. This runs the production entry
// (wrangler.toml's top level, src/index.ts) and asks it for the stand-in's routes — on a loopback host, where
// the local entry would serve them. The bundle-level proof is scripts/test/production-bundle.node-test.ts.
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { expectError } from "./helpers/contract.ts";

const STANDIN_ROUTES: Array<[method: string, path: string]> = [
  ["GET", "/"],
  ["POST", "/__local/slack/api/chat.postMessage"],
  ["POST", "/__local/slack/api/usergroups.users.list"],
  ["GET", "/__local/state?as=U0ALICE"],
  ["POST", "/__local/click"],
  ["POST", "/__local/propose"],
  // The local Access issuer's keys and the mail catcher (issue 11).
  ["GET", "/__local/access/certs"],
  ["POST", "/__local/mail/api/emails"],
];

describe("production has no Slack stand-in", () => {
  for (const [method, path] of STANDIN_ROUTES) {
    for (const host of ["http://localhost:8787", "http://127.0.0.1:8787", "https://signoff.example.com"]) {
      it(`${method} ${path} on ${host} is 404`, async () => {
        const res = await exports.default.fetch(
          new Request(`${host}${path}`, {
            method,
            headers: { "content-type": "application/json", authorization: "Bearer xoxb-test-bot-token" },
            ...(method === "POST"
              ? { body: JSON.stringify({ channel: "C0APPROVALS", text: "hi", as: "U0ALICE" }) }
              : {}),
          }),
        );
        expect(res.headers.get("x-signoff-local")).toBeNull();
        expect((await expectError(res, 404)).error.code).toBe("not_found");
      });
    }
  }

  it("has neither the stand-in's bindings nor LOCAL_MODE", () => {
    expect(env.LOCAL_SLACK).toBeUndefined();
    expect(env.LOCAL_MAIL).toBeUndefined();
    expect(env.LOCAL_MODE).toBeUndefined();
  });
});
