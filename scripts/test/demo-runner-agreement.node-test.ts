// The policy and the runner agree (issue 13): every params object an action's params_schema accepts is one the
// runner's allowlist will run, so nothing people approve is then refused for its params. Checked for local mode's
// demo policy (wrangler.toml [env.local]) against its runner (scripts/local/runner-actions.json), and for the
// example production policy (wrangler.toml [vars]) against the reference runner's shipped allowlist
// (examples/runner/actions.json), with hand-picked params and random ones.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import fc from "fast-check";
import { experimental_readRawConfig } from "wrangler";
import {
  type CompiledAction,
  compileAllowlist,
  parseAllowlist,
  renderArgv,
} from "../../examples/runner/src/allowlist.ts";
import { type ActionPolicy, parsePolicy, validateParams } from "../../src/config/policy.ts";
import { DEMO_PROPOSALS } from "../../src/local/demo.ts";
import { ROOT } from "../local/stack.ts";

/** The one demo action the local runner leaves out on purpose, so that local mode can show a runner's refusal. */
const REFUSED_ON_PURPOSE = "demo.runner_refuses";

const raw = experimental_readRawConfig({ config: join(ROOT, "wrangler.toml") }).rawConfig as {
  vars: Record<string, unknown>;
  env: { local: { vars: Record<string, unknown> } };
};

function runnerActions(path: string): Map<string, CompiledAction> {
  return compileAllowlist(parseAllowlist(JSON.parse(readFileSync(join(ROOT, path), "utf8"))));
}

/** Values worth trying for any string param: the edges of the patterns in use, options, shells, sizes, non-strings. */
const TRICKY: unknown[] = [
  "api",
  "api-",
  "-api",
  "a-b",
  "-",
  "-n",
  "--help",
  "--kubeconfig=/tmp/x",
  " leading space",
  "trailing space ",
  ".",
  "ok!",
  "hello from signoff",
  "",
  "a".repeat(63),
  "a".repeat(64),
  "a".repeat(200),
  "a".repeat(201),
  "API",
  "ünïcödé",
  "a\nb",
  "a/b",
  "$(id)",
  "a;rm -rf /",
  "x\u0000y",
  5,
  true,
  null,
  { nested: "x" },
];

/** Whether signoff would accept the params (so people could approve them) and whether the runner would run them. */
function verdicts(action: ActionPolicy, runner: CompiledAction, params: Record<string, unknown>) {
  const policy = validateParams(action, params);
  const rendered = renderArgv(runner, params);
  return { policyAccepts: policy.length === 0, runnerRuns: rendered.ok, policy, rendered };
}

function paramNames(action: ActionPolicy): string[] {
  const properties = (action.params_schema?.properties ?? {}) as Record<string, unknown>;
  return Object.keys(properties);
}

/** Every hand-picked params object for an action: its sample, each tricky value in each param, a missing and an extra one. */
function candidates(action: ActionPolicy): Record<string, unknown>[] {
  const sample = DEMO_PROPOSALS[action.type]?.action.params ?? {};
  const names = paramNames(action);
  const base = Object.fromEntries(names.map((name) => [name, (sample as Record<string, unknown>)[name] ?? "api"]));
  return [
    base,
    ...names.flatMap((name) => TRICKY.map((value) => ({ ...base, [name]: value }))),
    ...names.map((name) => Object.fromEntries(Object.entries(base).filter(([key]) => key !== name))),
    { ...base, extra: "x" },
  ];
}

function checkAgreement(actions: ActionPolicy[], runner: Map<string, CompiledAction>): void {
  for (const action of actions) {
    const compiled = runner.get(action.type);
    assert.ok(compiled, `${action.type} is in the policy but not in the runner's allowlist`);
    assert.ok(action.params_schema, `${action.type} has no params_schema: the policy would accept any params`);
    for (const params of candidates(action)) {
      const v = verdicts(action, compiled, params);
      assert.ok(
        !v.policyAccepts || v.runnerRuns,
        `${action.type}: signoff accepts ${JSON.stringify(params)} but the runner refuses it: ` +
          JSON.stringify(v.rendered),
      );
    }
    // Random strings from the characters the patterns are about: the same verdict both ways, so the form's error
    // is the runner's too (not only "accepted implies runs").
    const alphabet = "abcXYZ019-_ .,:!?/$;\n".split("");
    for (const name of paramNames(action)) {
      fc.assert(
        fc.property(
          fc.array(fc.constantFrom(...alphabet), { minLength: 0, maxLength: 210 }).map((chars) => chars.join("")),
          (value) => {
            const params = { ...candidates(action)[0], [name]: value };
            const v = verdicts(action, compiled, params);
            assert.equal(
              v.policyAccepts,
              v.runnerRuns,
              `${action.type}.${name} = ${JSON.stringify(value)}: policy ${JSON.stringify(v.policy)}, runner ${JSON.stringify(v.rendered)}`,
            );
          },
        ),
        { numRuns: 500 },
      );
    }
  }
}

describe("every demo action's params_schema accepts only what the local runner will run", () => {
  const policy = parsePolicy(raw.env.local.vars.POLICY);
  const runner = runnerActions("scripts/local/runner-actions.json");

  test("each demo action's sample runs, and no params that signoff accepts are refused by the runner", () => {
    const actions = Object.values(policy.actions).filter((a) => a.type !== REFUSED_ON_PURPOSE);
    for (const action of actions) {
      const sample = DEMO_PROPOSALS[action.type];
      assert.ok(sample, `${action.type} has no sample proposal in src/local/demo.ts`);
      const v = verdicts(action, runner.get(action.type)!, sample.action.params);
      assert.ok(v.policyAccepts && v.runnerRuns, `${action.type}'s sample: ${JSON.stringify(v)}`);
    }
    checkAgreement(actions, runner);
  });

  test(`${REFUSED_ON_PURPOSE} is the one exception, on purpose: in the policy, and refused whole by the runner`, () => {
    assert.ok(policy.actions[REFUSED_ON_PURPOSE], `${REFUSED_ON_PURPOSE} is in the demo policy`);
    assert.ok(DEMO_PROPOSALS[REFUSED_ON_PURPOSE], `${REFUSED_ON_PURPOSE} has a sample proposal`);
    assert.equal(runner.has(REFUSED_ON_PURPOSE), false, "the local runner's allowlist leaves it out");
    const others = Object.keys(policy.actions).filter((type) => !runner.has(type));
    assert.deepEqual(others, [REFUSED_ON_PURPOSE], "no other demo action is missing from the runner");
  });

  test("the check can fail: a policy pattern that lets an option through is caught", () => {
    const loose = parsePolicy({
      default_channel: "C0APPROVALS",
      actions: {
        "demo.echo": {
          approvers: ["U0ALICE"],
          params_schema: {
            type: "object",
            required: ["message"],
            properties: { message: { type: "string", pattern: "^[A-Za-z0-9_ .,:!?-]{1,200}$" } },
            additionalProperties: false,
          },
        },
      },
    });
    assert.throws(
      () => checkAgreement(Object.values(loose.actions), runner),
      /signoff accepts \{"message":"-.*but the runner refuses it/,
    );
  });
});

describe("the example production policy and the reference runner's shipped allowlist agree", () => {
  test("every action of wrangler.toml [vars] POLICY runs on examples/runner/actions.json exactly when signoff accepts it", () => {
    const policy = parsePolicy(raw.vars.POLICY);
    checkAgreement(Object.values(policy.actions), runnerActions("examples/runner/actions.json"));
  });
});
