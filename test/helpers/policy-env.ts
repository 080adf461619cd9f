// Proposals of actions that are not in the bindings' POLICY (config tests pin its action list): the create request
// goes to the Worker's handler with the bindings plus those actions. The Durable Objects run with the bindings as they
// are: a proposal freezes its rule at creation, so nothing they do afterwards reads the policy.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { parsePolicy } from "../../src/config/policy.ts";
import type { ConfigError } from "../../src/config/problems.ts";
import worker from "../../src/index.ts";
import { POLICY, TOKENS } from "../fixtures.ts";
import { BASE, createdThisTest, json, proposalBody } from "./api.ts";

/** The bindings with `actions` added to POLICY (and any other top-level policy fields given). */
export function policyEnv(actions: Record<string, unknown>, top: Record<string, unknown> = {}): Cloudflare.Env {
  return { ...env, POLICY: JSON.stringify({ ...POLICY, ...top, actions: { ...POLICY.actions, ...actions } }) };
}

/** POST /v1/proposals under `bindings`, as the writer key; the answer as it came. */
export async function createUnder(bindings: Cloudflare.Env, overrides: Record<string, unknown>): Promise<Response> {
  const ctx = createExecutionContext();
  const request = new Request(`${BASE}/v1/proposals`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKENS.writer}`, "content-type": "application/json" },
    body: JSON.stringify(proposalBody(overrides)),
  });
  const res = await worker.fetch!(request as Request<unknown, IncomingRequestCfProperties>, bindings, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/** Creates a proposal under `bindings` and returns its JSON, asserting 201. */
export async function createIn(bindings: Cloudflare.Env, overrides: Record<string, unknown>) {
  const res = await createUnder(bindings, overrides);
  const body = await json(res);
  expect(res.status, JSON.stringify(body)).toBe(201);
  createdThisTest.add(body.id);
  return body;
}

/** What parsePolicy says about one action `k8s.x` (its problems' details); throws when the policy is accepted. */
export function actionProblems(action: Record<string, unknown>) {
  try {
    parsePolicy({ default_channel: "C0APPROVALS", actions: { "k8s.x": action } });
  } catch (error) {
    return (error as ConfigError).details;
  }
  throw new Error("accepted");
}
