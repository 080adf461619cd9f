// POLICY (SPEC 3): defaults, strictness, each cross-field rule, params_schema checks and params validation.
import { describe, expect, it } from "vitest";
import type { ActionPolicy, Policy } from "../src/config/policy.ts";
import { actionPolicy, decisionRuleFor, parsePolicy, ttlAllowed, validateParams } from "../src/config/policy.ts";
import { POLICY } from "./fixtures.ts";
import { problemsOf } from "./helpers/config-problems.ts";

/** The details parsePolicy throws for `input`; fails the test when it does not throw a ConfigError. */
const problems = (input: unknown) => problemsOf(() => parsePolicy(input));

function withAction(
  action: Record<string, unknown>,
  top: Record<string, unknown> = { default_channel: "C0APPROVALS" },
) {
  return { ...top, actions: { "k8s.x": action } };
}

function only(action: Record<string, unknown>): ActionPolicy {
  return actionPolicy(parsePolicy(withAction(action)), "k8s.x")!;
}

describe("defaults (SPEC 3)", () => {
  it("applies every documented default and resolves the channel to default_channel", () => {
    const action = only({ approvers: ["U0ALICE"] });
    expect(action).toEqual({
      type: "k8s.x",
      approvers: ["U0ALICE"],
      required_approvals: 1,
      allow_self_approval: false,
      requester_only: false,
      requesters: null,
      ttl_seconds: 600,
      max_ttl_seconds: 86400,
      channel: "C0APPROVALS",
      confirm: true,
      params_schema: null,
      escalation: null,
      remind_at: [0.5, 0.9],
    });
  });

  it("keeps the action's own channel over default_channel", () => {
    expect(only({ approvers: ["U0ALICE"], channel: "C0OWN" }).channel).toBe("C0OWN");
  });

  it("defaults escalation.extend_ttl_seconds to 0 and its channel to the action's", () => {
    const action = only({ approvers: ["U0ALICE"], channel: "C0OWN", escalation: { approvers: ["S0LEADS"] } });
    expect(action.escalation).toEqual({
      approvers: ["S0LEADS"],
      required_approvals: 1,
      channel: "C0OWN",
      extend_ttl_seconds: 0,
      after_seconds: null,
    });
  });

  it("parses the test fixture policy, given as an object or as a string of JSON", () => {
    const fromObject = parsePolicy(POLICY);
    const fromString = parsePolicy(JSON.stringify(POLICY));
    expect(fromString).toEqual(fromObject);
    expect(Object.keys(fromObject.actions).sort()).toEqual(["db.failover", "demo.echo", "k8s.rollout_restart"]);
    expect(fromObject.actions["db.failover"]!.required_approvals).toBe(2);
    expect(fromObject.actions["db.failover"]!.confirm).toBe(false);
  });

  it("lets a requester_only action go without approvers or channel", () => {
    const policy = parsePolicy({
      actions: { "demo.echo": { requester_only: true, requesters: ["U0BOB"], ttl_seconds: 30 } },
    });
    expect(policy.actions["demo.echo"]).toMatchObject({
      approvers: [],
      requester_only: true,
      channel: null,
      ttl_seconds: 30,
    });
  });

  it("freezes the parsed policy, which every request shares", () => {
    const policy = parsePolicy(POLICY);
    expect(Object.isFrozen(policy)).toBe(true);
    expect(Object.isFrozen(policy.actions["k8s.rollout_restart"]!.approvers)).toBe(true);
  });
});

describe("cross-field rules name the field", () => {
  it("approvers must not be empty unless requester_only", () => {
    expect(problems(withAction({}))).toEqual([
      { path: 'POLICY.actions["k8s.x"].approvers', message: expect.stringContaining("requester_only") },
    ]);
    expect(problems(withAction({ approvers: [] }))[0]!.path).toBe('POLICY.actions["k8s.x"].approvers');
  });

  it("ttl_seconds may not exceed max_ttl_seconds, even as a default", () => {
    expect(problems(withAction({ approvers: ["U0A1"], ttl_seconds: 700, max_ttl_seconds: 600 }))).toEqual([
      { path: 'POLICY.actions["k8s.x"].ttl_seconds', message: "700 is more than max_ttl_seconds (600)" },
    ]);
    expect(problems(withAction({ approvers: ["U0A1"], max_ttl_seconds: 300 }))).toEqual([
      { path: 'POLICY.actions["k8s.x"].ttl_seconds', message: "(default) 600 is more than max_ttl_seconds (300)" },
    ]);
  });

  it("required_approvals may not exceed the listed users", () => {
    expect(problems(withAction({ approvers: ["U0A1", "W0B2"], required_approvals: 3 }))).toEqual([
      { path: 'POLICY.actions["k8s.x"].required_approvals', message: expect.stringContaining("3 approvals") },
    ]);
  });

  it("required_approvals is not counted against groups, whose size is unknown until asked", () => {
    expect(only({ approvers: ["U0A1", "S0GROUP"], required_approvals: 3 }).required_approvals).toBe(3);
  });

  it("required_approvals must be 1 for requester_only", () => {
    expect(problems(withAction({ requester_only: true, requesters: ["U0A1"], required_approvals: 2 }))).toEqual([
      { path: 'POLICY.actions["k8s.x"].required_approvals', message: expect.stringContaining("requester_only") },
    ]);
  });

  it("a channel must resolve unless requester_only", () => {
    expect(problems({ actions: { "k8s.x": { approvers: ["U0A1"] } } })).toEqual([
      { path: 'POLICY.actions["k8s.x"].channel', message: expect.stringContaining("default_channel") },
    ]);
  });

  it("an escalation needs somewhere to go", () => {
    expect(
      problems({
        actions: { "k8s.x": { requester_only: true, requesters: ["U0A1"], escalation: { approvers: ["S0LEADS"] } } },
      }),
    ).toEqual([{ path: 'POLICY.actions["k8s.x"].escalation.channel', message: expect.any(String) }]);
  });

  it("remind_at: fractions of the TTL in (0, 1), ascending, each once; [] turns reminders off (issue 16)", () => {
    expect(only({ approvers: ["U0A1"], remind_at: [] }).remind_at).toEqual([]);
    expect(only({ approvers: ["U0A1"], remind_at: [0.25, 0.5, 0.75] }).remind_at).toEqual([0.25, 0.5, 0.75]);
    const at = (i: number) => `POLICY.actions["k8s.x"].remind_at[${i}]`;
    expect(problems(withAction({ approvers: ["U0A1"], remind_at: [0, 1] }))).toEqual([
      { path: at(0), message: "must be more than 0" },
      { path: at(1), message: "must be less than 1 (a fraction of the TTL)" },
    ]);
    expect(problems(withAction({ approvers: ["U0A1"], remind_at: [0.9, 0.5, 0.5] }))).toEqual([
      { path: at(1), message: "must be more than the one before it (0.9): ascending" },
      { path: at(2), message: "is listed twice" },
    ]);
    expect(problems(withAction({ approvers: ["U0A1"], remind_at: "0.5" }))).toEqual([
      { path: 'POLICY.actions["k8s.x"].remind_at', message: expect.stringMatching(/array/) },
    ]);
    expect(problems(withAction({ approvers: ["U0A1"], remind_at_: [0.5] }))[0]).toMatchObject({
      message: expect.stringContaining("remind_at"),
    });
  });

  it("escalation.after_seconds: a whole number of seconds, less than max_ttl_seconds (issue 16)", () => {
    const escalating = (after: unknown) => ({
      approvers: ["U0A1"],
      max_ttl_seconds: 3600,
      escalation: { approvers: ["S0LEADS"], after_seconds: after },
    });
    expect(only(escalating(300)).escalation?.after_seconds).toBe(300);
    const path = 'POLICY.actions["k8s.x"].escalation.after_seconds';
    expect(problems(withAction(escalating(3600)))).toEqual([
      { path, message: "3600 is not less than max_ttl_seconds (3600): no proposal would ever wait that long" },
    ]);
    expect(problems(withAction(escalating(0)))).toEqual([{ path, message: expect.any(String) }]);
    expect(problems(withAction(escalating(1.5)))).toEqual([{ path, message: expect.any(String) }]);
    expect(decisionRuleFor(parsePolicy(withAction(escalating(300))), "k8s.x")?.escalation?.after_seconds).toBe(300);
  });

  it("an approver listed twice would count twice: refused", () => {
    expect(problems(withAction({ approvers: ["U0A1", "U0A1"] }))).toEqual([
      { path: 'POLICY.actions["k8s.x"].approvers[1]', message: "is listed twice" },
    ]);
  });

  it("reports every problem of every action at once", () => {
    const details = problems({
      default_channel: "C0APPROVALS",
      actions: {
        "a.one": { approvers: [], ttl_seconds: 0 },
        "a.two": { approvers: ["U0A1"], ttl_seconds: 900, max_ttl_seconds: 60 },
      },
    });
    expect(details.map((d) => d.path).sort()).toEqual([
      'POLICY.actions["a.one"].ttl_seconds',
      'POLICY.actions["a.two"].ttl_seconds',
    ]);
  });
});

describe("strict input: typos are errors, not silent defaults", () => {
  it("refuses an unknown action field and suggests the right one", () => {
    expect(problems(withAction({ approvers: ["U0A1"], ttl: 60 }))).toEqual([
      { path: 'POLICY.actions["k8s.x"].ttl', message: 'unknown field (did you mean "ttl_seconds"?)' },
    ]);
    expect(problems(withAction({ approvers: ["U0A1"], requried_approvals: 2 }))[0]).toEqual({
      path: 'POLICY.actions["k8s.x"].requried_approvals',
      message: 'unknown field (did you mean "required_approvals"?)',
    });
  });

  it("still checks the other fields of an action with an unknown field", () => {
    const details = problems(withAction({ approvers: [], colour: "red" }));
    expect(details.map((d) => d.path).sort()).toEqual([
      'POLICY.actions["k8s.x"].approvers',
      'POLICY.actions["k8s.x"].colour',
    ]);
  });

  it("refuses unknown top-level and escalation fields", () => {
    expect(problems({ ...withAction({ approvers: ["U0A1"] }), default_chanel: "C0X" })[0]).toEqual({
      path: "POLICY.default_chanel",
      message: 'unknown field (did you mean "default_channel"?)',
    });
    expect(problems(withAction({ approvers: ["U0A1"], escalation: { approvers: ["U0B"], extend: 5 } }))[0]!.path).toBe(
      'POLICY.actions["k8s.x"].escalation.extend',
    );
  });

  it("refuses bad types without echoing values", () => {
    expect(problems(withAction({ approvers: ["U0A1"], ttl_seconds: "600" }))).toEqual([
      { path: 'POLICY.actions["k8s.x"].ttl_seconds', message: "must be an integer, not a string" },
    ]);
    expect(problems(withAction({ approvers: ["U0A1"], required_approvals: 0 }))[0]!.message).toBe("must be at least 1");
    expect(problems(withAction({ approvers: ["U0A1"], confirm: "yes" }))[0]!.path).toBe(
      'POLICY.actions["k8s.x"].confirm',
    );
  });

  it("refuses Slack names where ids are needed", () => {
    expect(problems(withAction({ approvers: ["@alice"] }))[0]!.path).toBe('POLICY.actions["k8s.x"].approvers[0]');
    expect(problems(withAction({ approvers: ["U0A1"], channel: "#ops" }))[0]).toEqual({
      path: 'POLICY.actions["k8s.x"].channel',
      message: expect.stringContaining("channel id"),
    });
  });

  it("refuses action type names outside a-z 0-9 _ . -", () => {
    expect(problems({ default_channel: "C0A", actions: { "K8s Restart": { approvers: ["U0A1"] } } })).toEqual([
      { path: 'POLICY.actions["K8s Restart"]', message: expect.stringContaining("a-z") },
    ]);
  });

  it("refuses an empty actions map, a missing policy and bad JSON", () => {
    expect(problems({ actions: {} })).toEqual([
      { path: "POLICY.actions", message: expect.stringContaining("at least one") },
    ]);
    expect(problems(undefined)).toEqual([{ path: "POLICY", message: "is required" }]);
    expect(problems('{"actions": ')).toEqual([
      { path: "POLICY", message: expect.stringMatching(/^is not valid JSON/) },
    ]);
    expect(problems([])).toEqual([{ path: "POLICY", message: "must be an object, not an array" }]);
  });
});

describe("params_schema must be a usable JSON Schema", () => {
  const at = 'POLICY.actions["k8s.x"].params_schema';
  const schemaProblems = (params_schema: unknown) => problems(withAction({ approvers: ["U0A1"], params_schema }));

  it("accepts the fixture's schema", () => {
    expect(parsePolicy(POLICY).actions["k8s.rollout_restart"]!.params_schema).toMatchObject({
      required: ["deployment"],
    });
  });

  it("refuses a schema that is not an object", () => {
    expect(schemaProblems("object")).toEqual([{ path: at, message: expect.stringContaining("JSON Schema") }]);
    expect(schemaProblems([])).toEqual([{ path: at, message: expect.stringContaining("JSON Schema") }]);
  });

  it("refuses misspelt keywords, which would silently allow everything", () => {
    expect(schemaProblems({ type: "object", require: ["deployment"] })).toEqual([
      { path: `${at}.require`, message: expect.stringContaining('did you mean "required"') },
    ]);
  });

  it("refuses wrongly typed keywords, unknown types and formats, and bad patterns", () => {
    const details = schemaProblems({
      type: "object",
      required: "deployment",
      properties: { a: { type: "strng" }, b: { type: "string", pattern: "([" }, c: { type: "string", format: "nope" } },
      patternProperties: { "[": true },
    });
    expect(details.map((d) => d.path).sort()).toEqual(
      [
        `${at}.patternProperties["["]`,
        `${at}.properties.a.type`,
        `${at}.properties.b.pattern`,
        `${at}.properties.c.format`,
        `${at}.required`,
      ].sort(),
    );
  });

  it("refuses a $ref that resolves to nothing and an unsupported draft", () => {
    expect(schemaProblems({ type: "object", properties: { a: { $ref: "#/$defs/missing" } } })).toEqual([
      { path: `${at}.properties.a.$ref`, message: expect.stringContaining("does not resolve") },
    ]);
    expect(schemaProblems({ $schema: "http://json-schema.org/draft-03/schema#", type: "object" })[0]!.path).toBe(
      `${at}.$schema`,
    );
  });

  it("accepts $refs into $defs, vendor extensions and annotations", () => {
    const action = only({
      approvers: ["U0A1"],
      params_schema: {
        $defs: { name: { type: "string", minLength: 1 } },
        type: "object",
        title: "restart",
        "x-ui": { order: 1 },
        properties: { deployment: { $ref: "#/$defs/name", description: "which one" } },
      },
    });
    expect(validateParams(action, { deployment: "api" })).toEqual([]);
    expect(validateParams(action, { deployment: "" })).toEqual([
      { path: "action.params.deployment", message: expect.stringContaining("short") },
    ]);
  });
});

describe("validateParams (SPEC 3: params are validated before anything is posted)", () => {
  const policy: Policy = parsePolicy(POLICY);
  const restart = actionPolicy(policy, "k8s.rollout_restart")!;
  const failover = actionPolicy(policy, "db.failover")!;

  it("accepts params that satisfy the schema", () => {
    expect(validateParams(restart, { deployment: "api" })).toEqual([]);
  });

  it("names each failing param, and says in words what it must be (issue 13)", () => {
    expect(validateParams(restart, {})).toEqual([{ path: "action.params.deployment", message: "is required" }]);
    expect(validateParams(restart, { deployment: "API;rm -rf" })).toEqual([
      { path: "action.params.deployment", message: "must match ^[a-z0-9-]{1,63}$" },
    ]);
    expect(validateParams(restart, { deployment: 7 })).toEqual([
      { path: "action.params.deployment", message: "must be a string" },
    ]);
    expect(validateParams(restart, { deployment: "api", extra: 1 })).toEqual([
      { path: "action.params.extra", message: "is not allowed here" },
    ]);
  });

  it("names nested and odd paths readably", () => {
    const action = only({
      approvers: ["U0A1"],
      params_schema: {
        type: "object",
        properties: { hosts: { type: "array", items: { type: "string" } }, "a/b c": { type: "integer" } },
      },
    });
    expect(validateParams(action, { hosts: ["a", 2], "a/b c": "x" })).toEqual([
      { path: "action.params.hosts[1]", message: "must be a string" },
      { path: 'action.params["a/b c"]', message: "must be a whole number" },
    ]);
  });

  it("requires a JSON object, with or without a schema", () => {
    for (const action of [restart, failover]) {
      for (const params of [[], "x", 3, null, undefined]) {
        expect(validateParams(action, params)).toEqual([{ path: "action.params", message: "must be a JSON object" }]);
      }
    }
  });

  it("without a schema, allows any object up to 4 KiB serialized", () => {
    expect(validateParams(failover, { anything: ["goes", 1, { nested: true }] })).toEqual([]);
    const room = 4096 - JSON.stringify({ s: "" }).length;
    expect(validateParams(failover, { s: "x".repeat(room) })).toEqual([]);
    expect(validateParams(failover, { s: "x".repeat(room + 1) })).toEqual([
      { path: "action.params", message: expect.stringContaining("4097 bytes") },
    ]);
    // Bytes, not characters: "é" is two.
    expect(validateParams(failover, { s: "é".repeat(room / 2 + 1) })).not.toEqual([]);
  });

  it("validates with an ActionPolicy that crossed a serialization boundary", () => {
    const copy = structuredClone(restart);
    expect(validateParams(copy, { deployment: "api" })).toEqual([]);
    expect(validateParams(copy, {})).toHaveLength(1);
  });
});

describe("decisionRuleFor", () => {
  const policy = parsePolicy(POLICY);

  it("freezes the action's rule with its channel resolved", () => {
    expect(decisionRuleFor(policy, "k8s.rollout_restart")).toEqual({
      approvers: ["U0ALICE", "S0ONCALL"],
      required_approvals: 1,
      allow_self_approval: false,
      requester_only: false,
      confirm: true,
      channel: "C0INCIDENT",
      escalation: { approvers: ["S0SRELEADS"], required_approvals: 1, channel: "C0ESCALATE", extend_ttl_seconds: 600 },
      remind_at: [0.5, 0.9],
    });
    expect(decisionRuleFor(policy, "demo.echo")).toMatchObject({
      requester_only: true,
      channel: "C0APPROVALS",
      escalation: null,
    });
  });

  it("returns a mutable copy that shares nothing with the policy", () => {
    const rule = decisionRuleFor(policy, "db.failover")!;
    rule.approvers.push("U0MALLORY");
    expect(policy.actions["db.failover"]!.approvers).not.toContain("U0MALLORY");
  });

  it("knows no action outside the policy, inherited names included", () => {
    expect(decisionRuleFor(policy, "k8s.delete_namespace")).toBeUndefined();
    expect(decisionRuleFor(policy, "constructor")).toBeUndefined();
    expect(actionPolicy(policy, "toString")).toBeUndefined();
  });
});

describe("ttlAllowed", () => {
  it("allows 1 to max_ttl_seconds", () => {
    const action = actionPolicy(parsePolicy(POLICY), "k8s.rollout_restart")!;
    expect([0, 1, 3600, 3601, 1.5].map((ttl) => ttlAllowed(action, ttl))).toEqual([false, true, true, false, false]);
  });
});

describe("validateParams never throws on hostile params", () => {
  it("answers with a detail for params nested absurdly deep", () => {
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    const recursive = only({
      approvers: ["U0A1"],
      params_schema: {
        $defs: { node: { type: "object", properties: { a: { $ref: "#/$defs/node" } } } },
        $ref: "#/$defs/node",
      },
    });
    const plain = actionPolicy(parsePolicy(POLICY), "db.failover")!;
    for (const action of [recursive, plain]) {
      const details = validateParams(action, deep);
      expect(details).toHaveLength(1);
      expect(details[0]!.path).toBe("action.params");
    }
  });
});

describe("people, requesters and escalation (SPEC 12)", () => {
  it("joins each person's identities; one identity belongs to one person", () => {
    const policy = parsePolicy({
      ...withAction({ approvers: ["U0ALICE"] }),
      people: { alice: ["U0ALICE", "alice@example.com"], bob: ["U0BOB"] },
    });
    expect(policy.people).toEqual({ U0ALICE: "alice", "alice@example.com": "alice", U0BOB: "bob" });
    expect(decisionRuleFor(policy, "k8s.x")?.people).toEqual(policy.people);
    expect(
      problems({ ...withAction({ approvers: ["U0ALICE"] }), people: { alice: ["U0ALICE"], mallory: ["U0ALICE"] } }),
    ).toEqual([{ path: "POLICY.people.mallory[0]", message: "already belongs to alice: one identity, one person" }]);
    expect(problems({ ...withAction({ approvers: ["U0ALICE"] }), people: { alice: ["S0GROUP"] } })).toHaveLength(1);
  });

  it("counts people, not identities, against required_approvals", () => {
    const twoOfOne = {
      ...withAction({
        approvers: ["U0ALICE"],
        required_approvals: 2,
        links: { enabled: true, recipients: ["alice@example.com"] },
      }),
      people: { alice: ["U0ALICE", "alice@example.com"] },
    };
    expect(problems(twoOfOne)).toEqual([
      { path: 'POLICY.actions["k8s.x"].required_approvals', message: expect.stringContaining("asks for 2") },
    ]);
  });

  it("requester_only needs requesters, so a stolen key cannot address an account of its choosing", () => {
    expect(problems(withAction({ requester_only: true }))).toEqual([
      { path: 'POLICY.actions["k8s.x"].requesters', message: expect.stringContaining("requested_by") },
    ]);
    expect(only({ requester_only: true, requesters: ["U0BOB", "S0TEAM"] }).requesters).toEqual(["U0BOB", "S0TEAM"]);
  });

  it("escalation.required_approvals defaults to 1 and cannot exceed the distinct people listed", () => {
    expect(
      problems(withAction({ approvers: ["U0A1"], escalation: { approvers: ["U0L1"], required_approvals: 2 } })),
    ).toEqual([
      { path: 'POLICY.actions["k8s.x"].escalation.required_approvals', message: expect.stringContaining("2") },
    ]);
  });
});
