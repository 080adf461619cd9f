// Risk rules (issue 17): CEL conditions checked when the policy loads (syntax, unknown names with "did you mean",
// tighten-only), the first match frozen into the proposal, shown on the card and in the API view, and applied to
// who may decide, how many and how long.
import { describe, expect, it } from "vitest";
import { decisionRuleFor, parsePolicy } from "../src/config/policy.ts";
import { ConfigError } from "../src/config/problems.ts";
import type { ErrorDetail } from "../src/errors.ts";
import { deciders } from "../src/proposal/lifecycle.ts";
import { riskText } from "../src/slack/card.ts";
import { RISK_ACTIONS } from "./fixtures.ts";
import { auditOf, click, getProposal, json, settle } from "./helpers/api.ts";
import { createIn, createUnder, policyEnv } from "./helpers/policy-env.ts";
import { makeProposal } from "./helpers/proposal-factory.ts";
import { peer } from "./peer/client.ts";

const SCALE = RISK_ACTIONS["k8s.scale"];

function problems(rules: unknown[], action: Record<string, unknown> = {}): ErrorDetail[] {
  try {
    parsePolicy({ default_channel: "C0APPROVALS", actions: { "k8s.x": { ...SCALE, rules, ...action } } });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).details;
  }
  throw new Error("parsePolicy accepted the rules");
}

const at = (i: number, field: string) => `POLICY.actions["k8s.x"].rules[${i}].${field}`;

describe("risk rules are checked when the policy loads", () => {
  it("a CEL syntax error names the rule and where the condition breaks", () => {
    expect(problems([{ when: "params.replicas >", required_approvals: 2 }])).toEqual([
      { path: at(0, "when"), message: expect.stringMatching(/^is not a valid CEL condition: .*at character \d+/) },
    ]);
  });

  it("an unknown variable, an unknown param and an unknown field each say what was probably meant", () => {
    expect(problems([{ when: "parms.replicas > 10", required_approvals: 2 }])).toEqual([
      {
        path: at(0, "when"),
        message: expect.stringContaining('uses parms, which is not defined (did you mean "params"?)'),
      },
    ]);
    expect(problems([{ when: "params.replcas > 10", required_approvals: 2 }])).toEqual([
      {
        path: at(0, "when"),
        message: 'reads params.replcas, which params_schema does not allow (did you mean "replicas"?)',
      },
    ]);
    expect(problems([{ when: "params.replicas > 10", required_approval: 2 }])).toEqual([
      { path: at(0, "required_approval"), message: 'unknown field (did you mean "required_approvals"?)' },
    ]);
  });

  it("a condition must be true or false", () => {
    expect(problems([{ when: "params.replicas + 1", required_approvals: 2 }])).toEqual([
      { path: at(0, "when"), message: expect.stringMatching(/must be a condition \(true or false\)/) },
    ]);
  });

  it("refuses every rule that would loosen what the action says", () => {
    const base = { required_approvals: 2, ttl_seconds: 600 };
    expect(
      problems(
        [
          { when: "true", required_approvals: 1 },
          { when: "true", ttl_seconds: 601 },
          { when: "true", allow_self_approval: true },
          { when: "true", confirm: false },
          { when: "true", approvers: ["U0MALLORY"] },
        ],
        { ...base, approvers: ["U0ALICE", "U0DAVE"] },
      ).map((d) => d.path),
    ).toEqual([
      at(0, "required_approvals"),
      at(1, "ttl_seconds"),
      at(2, "allow_self_approval"),
      at(3, "confirm"),
      `${at(4, "approvers")}[0]`,
    ]);
    // More approvals than the narrowed list has people.
    expect(
      problems([{ when: "true", approvers: ["U0ALICE"], required_approvals: 2 }], { approvers: ["U0ALICE", "U0DAVE"] }),
    ).toEqual([
      { path: at(0, "required_approvals"), message: "asks for 2 approvals but only 1 people could give one" },
    ]);
  });

  it("refuses a rule that would leave an escalated proposal too few people to decide it", () => {
    const escalating = {
      approvers: ["U0ALICE", "U0DAVE", "U0LEAD"],
      escalation: { approvers: ["U0LEAD", "U0BOB"], channel: "C0ESCALATE" },
    };
    expect(
      problems(
        [
          { when: "true", approvers: ["U0ALICE", "U0DAVE"] },
          { when: "true", required_approvals: 3 },
          { when: "true", approvers: ["U0DAVE", "U0LEAD"], required_approvals: 2 },
        ],
        escalating,
      ),
    ).toEqual([
      {
        path: at(0, "approvers"),
        message:
          "once escalated, 1 approval is needed (the rule carries into the escalated decision) but only 0 people " +
          "are listed both here and in escalation.approvers",
      },
      {
        path: at(1, "required_approvals"),
        message:
          "once escalated, 3 approvals are needed (the rule carries into the escalated decision) but only 2 people " +
          "are among escalation.approvers",
      },
      {
        path: at(2, "approvers"),
        message:
          "once escalated, 2 approvals are needed (the rule carries into the escalated decision) but only 1 person " +
          "is listed both here and in escalation.approvers",
      },
    ]);
  });

  it("accepts a group the action does not list (narrowing: only people in both lists decide)", () => {
    const policy = parsePolicy({ default_channel: "C0APPROVALS", actions: { "k8s.x": SCALE } });
    expect(policy.actions["k8s.x"]!.rules).toHaveLength(2);
  });
});

describe("the first matching rule is frozen into the proposal's rule", () => {
  const policy = parsePolicy({ default_channel: "C0APPROVALS", actions: { "k8s.scale": SCALE } });
  const input = (replicas: number | string) => ({
    params: { deployment: "api", replicas },
    summary: "s",
    reason: "r",
  });

  it("no match leaves the action's rule as it is", () => {
    expect(decisionRuleFor(policy, "k8s.scale", input(3))).toEqual(decisionRuleFor(policy, "k8s.scale"));
  });

  it("tightens by the first rule that matches, even when a later one matches too", () => {
    const rule = decisionRuleFor(policy, "k8s.scale", input(80))!;
    expect(rule.risk).toEqual({
      index: 0,
      when: "params.replicas > 50",
      label: "replicas > 50",
      approvers: ["S0SRELEADS"],
      required_approvals: null,
      ttl_seconds: 300,
      unevaluable: false,
    });
    expect(rule.required_approvals).toBe(1);
    expect(decisionRuleFor(policy, "k8s.scale", input(20))!).toMatchObject({
      required_approvals: 2,
      risk: { index: 1, label: "replicas > 10", approvers: null },
    });
  });

  it("a condition that cannot be evaluated applies its rule (doubt tightens)", () => {
    expect(decisionRuleFor(policy, "k8s.scale", input("many"))!.risk).toMatchObject({ index: 0, unevaluable: true });
  });
});

describe("an escalated proposal under a risk rule, as the card says it", () => {
  // The action needs 2; the rule narrows to dave, lead and bob without touching M; the escalation needs 1.
  const escalated = makeProposal({
    requested_by: "U0ERIN",
    escalated: { by: "slack:U0DAVE", at: "2026-03-01T12:01:00.000Z", prior_approvals: [] },
    rule: {
      approvers: ["U0ALICE", "U0DAVE", "U0LEAD", "U0BOB"],
      required_approvals: 2,
      escalation: { approvers: ["U0LEAD", "U0BOB", "U0OSCAR"], channel: "C0ESCALATE", extend_ttl_seconds: 0 },
      risk: {
        index: 0,
        when: "true",
        label: "risky",
        approvers: ["U0DAVE", "U0LEAD", "U0BOB"],
        required_approvals: null,
        ttl_seconds: null,
        unevaluable: false,
      },
    },
  });

  it("names only the people both the escalation and the rule allow, and the escalated decision's own count", () => {
    expect(deciders(escalated)).toMatchObject({ approvers: ["U0LEAD", "U0BOB"], required: 1 });
    expect(riskText(escalated)).toBe(":rotating_light: *Risk rule:* 1 approval needed: risky");
    // A rule that raised M raises the escalated decision's too.
    const raised = {
      ...escalated,
      rule: { ...escalated.rule, risk: { ...escalated.rule.risk!, required_approvals: 2 } },
    };
    expect(deciders(raised).required).toBe(2);
    expect(riskText(raised)).toBe(":rotating_light: *Risk rule:* 2 approvals needed: risky");
  });
});

describe("a proposal under a risk rule", () => {
  const bindings = policyEnv(RISK_ACTIONS);
  const scale = (replicas: number, extra: Record<string, unknown> = {}) => ({
    action: { type: "k8s.scale", params: { deployment: "api", replicas } },
    summary: `Scale api to ${replicas}`,
    ...extra,
  });

  it("needs the rule's approvals, and says so on the card and in the API view", async () => {
    const p = await createIn(bindings, scale(20));
    expect(p.rule).toMatchObject({ required_approvals: 2, risk: { label: "replicas > 10", index: 1 } });
    await settle(p.id);
    const [post] = await peer.slackCalls("chat.postMessage");
    expect(JSON.stringify(post!.blocks)).toContain("*Risk rule:* 2 approvals needed: replicas &gt; 10");
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    await click("approve", p.id, "U0DAVE");
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("succeeded");
    expect((await peer.requests("/runner")).length).toBe(1);
  });

  it("narrows who decides to the rule's approvers and its time to decide to the rule's", async () => {
    const p = await createIn(bindings, scale(80));
    expect(Date.parse(p.expires_at) - Date.parse(p.created_at)).toBe(300_000);
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    expect((await auditOf(p.id)).find((e) => e.type === "click.refused")).toMatchObject({
      actor: "slack:U0ALICE",
      details: { code: "not_an_approver" },
    });
    await click("approve", p.id, "U0LEAD");
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("succeeded");
  });

  it("refuses a ttl_seconds beyond the rule's, naming the rule", async () => {
    const res = await createUnder(bindings, scale(80, { ttl_seconds: 600 }));
    expect(res.status).toBe(422);
    expect(await json(res)).toMatchObject({
      error: { code: "ttl_out_of_range", message: expect.stringContaining("risk rule: replicas > 50") },
    });
  });

  it("carries into the escalated decision: its M is the least the escalation needs, its approvers narrow it", async () => {
    // Escalation alone needs 1 of lead, bob, oscar; the rule narrows to dave, lead and bob and asks for 2.
    const drain = {
      "k8s.drain": {
        approvers: ["U0ALICE", "U0DAVE", "U0LEAD", "U0BOB"],
        channel: "C0INCIDENT",
        escalation: { approvers: ["U0LEAD", "U0BOB", "U0OSCAR"], channel: "C0ESCALATE" },
        rules: [
          {
            when: "params.nodes > 3",
            label: "nodes > 3",
            approvers: ["U0DAVE", "U0LEAD", "U0BOB"],
            required_approvals: 2,
          },
        ],
      },
    };
    const p = await createIn(policyEnv(drain), {
      action: { type: "k8s.drain", params: { nodes: 5 } },
      summary: "Drain 5 nodes",
      requested_by: "U0ERIN",
    });
    expect(p.rule.risk).toMatchObject({ approvers: ["U0DAVE", "U0LEAD", "U0BOB"], required_approvals: 2 });
    await click("escalate", p.id, "U0DAVE");
    await settle(p.id);
    expect((await getProposal(p.id)).escalated).toMatchObject({ by: "slack:U0DAVE" });
    // An escalation approver the rule does not list decides nothing; the rule's two are still needed.
    await click("approve", p.id, "U0OSCAR");
    await click("approve", p.id, "U0LEAD");
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    expect((await auditOf(p.id)).filter((e) => e.type === "click.refused")).toMatchObject([
      { actor: "slack:U0OSCAR", details: { code: "not_an_approver" } },
    ]);
    const recorded = (await auditOf(p.id)).find((e) => e.type === "approval.recorded");
    expect(recorded?.details).toMatchObject({ count: 1, required: 2 });
    await click("approve", p.id, "U0BOB");
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("succeeded");
    expect((await peer.requests("/runner")).length).toBe(1);
  });

  it("leaves a proposal no rule matches as the action says", async () => {
    const p = await createIn(bindings, scale(3));
    expect(p.rule.risk).toBeUndefined();
    expect(p.rule.required_approvals).toBe(1);
  });
});
