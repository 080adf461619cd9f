// GET /v1/actions: the actions the calling key may propose, each with its params schema, TTLs and decision rule,
// so a proposer (CLI, Action, MCP client) can build a valid proposal without reading the policy. Counts, never ids.
import { Hono } from "hono";
import { type ApiKey, keyAllowsAction } from "../config/api-keys.ts";
import { type ActionPolicy, actionKind, type Policy } from "../config/policy.ts";
import type { AppEnv } from "./http.ts";
import { requireScope, withConfig } from "./middleware.ts";
import type { ActionsResponse } from "./schemas.ts";

type ActionDescription = ActionsResponse["actions"][number];

function requestedBy(action: ActionPolicy): ActionDescription["requested_by"] {
  if (action.requester_only) return "required";
  return action.requesters === null ? "any" : "listed";
}

function describe(action: ActionPolicy): ActionDescription {
  const groups = action.approvers.filter((id) => id.startsWith("S")).length;
  return {
    type: action.type,
    kind: actionKind(action),
    params_schema: action.params_schema,
    ttl_seconds: action.ttl_seconds,
    max_ttl_seconds: action.max_ttl_seconds,
    requested_by: requestedBy(action),
    rule: {
      required_approvals: action.required_approvals,
      approvers: {
        users: action.approvers.length - groups,
        groups,
        links: action.links && actionKind(action) === "approval" ? action.links.recipients.length : 0,
      },
      allow_self_approval: action.allow_self_approval,
      requester_only: action.requester_only,
      confirm: action.confirm,
      escalation: action.escalation
        ? {
            required_approvals: action.escalation.required_approvals,
            extend_ttl_seconds: action.escalation.extend_ttl_seconds,
          }
        : null,
    },
  };
}

/** The policy's actions that `key`'s action patterns allow, sorted by type. */
export function actionsFor(policy: Policy, key: ApiKey): ActionsResponse {
  const allowed = Object.values(policy.actions).filter((action) => keyAllowsAction(key, action.type));
  allowed.sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  return { actions: allowed.map(describe) };
}

export const actionRoutes = new Hono<AppEnv>();

actionRoutes.get("/", withConfig, requireScope("proposals:write", "proposals:read"), (c) =>
  c.json(actionsFor(c.var.config.policy, c.var.key)),
);
