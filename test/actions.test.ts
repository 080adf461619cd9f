// GET /v1/actions (contract §4): what the calling key may propose and how each action is decided, in the shape
// /openapi.json declares, with counts of who may decide and never an id, an address or a secret.
import { Validator } from "@cfworker/json-schema";
import { describe, expect, it } from "vitest";
import { POLICY, SECRETS, SOC_KEY, TOKENS } from "./fixtures.ts";
import { call, json } from "./helpers/api.ts";
import { expectError } from "./helpers/contract.ts";
import { api as linkApi } from "./helpers/links.ts";

type Json = Record<string, any>;

const types = (body: Json) => body.actions.map((a: Json) => a.type);

describe("GET /v1/actions", () => {
  it("lists the actions the key's patterns allow, sorted, each with its schema, TTLs and rule", async () => {
    const res = await call("/v1/actions");
    expect(res.status).toBe(200);
    const body = await json(res);
    // The writer key allows k8s.*, db.failover and demo.echo: all three of the policy's actions.
    expect(types(body)).toEqual(["db.failover", "demo.echo", "k8s.rollout_restart"]);
    const [failover, echo, restart] = body.actions;
    expect(restart).toEqual({
      type: "k8s.rollout_restart",
      kind: "approval",
      params_schema: POLICY.actions["k8s.rollout_restart"].params_schema,
      ttl_seconds: 600,
      max_ttl_seconds: 3600,
      requested_by: "any",
      rule: {
        required_approvals: 1,
        approvers: { users: 1, groups: 1, links: 0 },
        allow_self_approval: false,
        requester_only: false,
        confirm: true,
        escalation: { required_approvals: 1, extend_ttl_seconds: 600 },
      },
    });
    expect(failover.rule).toMatchObject({
      required_approvals: 2,
      approvers: { users: 3, groups: 0, links: 0 },
      confirm: false,
      escalation: null,
    });
    expect(failover.params_schema).toBeNull();
    expect(echo).toMatchObject({ requested_by: "required", ttl_seconds: 30, rule: { requester_only: true } });
  });

  it("names no user, group, channel, recipient or secret", async () => {
    const text = JSON.stringify(await json(await linkApi("/v1/actions")));
    expect(text).toContain("links.deploy");
    for (const secret of [/U0[A-Z]+/, /S0[A-Z]+/, /C0[A-Z]+/, /@example\.com/, /teams-sre/, /whsec_|xoxb-|so_/])
      expect(text).not.toMatch(secret);
    expect(text).not.toContain(SECRETS.SLACK_BOT_TOKEN);
  });

  it("counts link recipients among those who may decide, and marks verification prompts", async () => {
    const body = await json(await linkApi("/v1/actions", { token: SOC_KEY.token }));
    const byType = Object.fromEntries(body.actions.map((a: Json) => [a.type, a]));
    expect(byType["links.deploy"].rule).toMatchObject({
      required_approvals: 2,
      approvers: { users: 1, groups: 0, links: 3 },
    });
    expect(byType["links.gated"].requested_by).toBe("listed");
    expect(byType["verify.login"].kind).toBe("verify");
    expect(byType["verify.device"].rule.approvers.links).toBe(0);
  });

  it("narrows to one action for a key that may propose only that one", async () => {
    expect(types(await json(await call("/v1/actions", { token: TOKENS.other })))).toEqual(["k8s.rollout_restart"]);
  });

  it("answers a read-only key too", async () => {
    const res = await call("/v1/actions", { token: TOKENS.reader });
    expect(res.status).toBe(200);
    expect(types(await json(res))).toEqual(["db.failover", "demo.echo", "k8s.rollout_restart"]);
  });

  it("refuses a key with neither proposals scope (403, naming both) and a missing key (401)", async () => {
    const forbidden = await call("/v1/actions", { token: TOKENS.auditor });
    const refusal = await expectError(forbidden, 403);
    expect(refusal.error).toMatchObject({
      code: "forbidden",
      message: expect.stringContaining("proposals:write or proposals:read"),
    });
    expect(forbidden.headers.get("www-authenticate")).toBe(
      'Bearer realm="signoff", error="insufficient_scope", scope="proposals:write proposals:read"',
    );
    expect((await expectError(await call("/v1/actions", { token: null }), 401)).error.code).toBe("unauthorized");
  });

  it("answers in the shape /openapi.json declares", async () => {
    const doc = await json(await call("/openapi.json", { token: null }));
    const schema = doc.paths["/v1/actions"].get.responses["200"].content["application/json"].schema;
    const validator = new Validator(schema, "2020-12");
    for (const res of [await call("/v1/actions"), await linkApi("/v1/actions", { token: SOC_KEY.token })]) {
      const result = validator.validate(await json(res));
      expect(result.errors).toEqual([]);
      expect(result.valid).toBe(true);
    }
  });
});
