// Builds `Proposal` objects for unit tests: a plausible pending proposal, with any field overridden.
import type { DecisionRule } from "../../src/config/policy.ts";
import type { Proposal } from "../../src/proposal/types.ts";

export const PLAN_SHA256 = "3f2a9c0d4b1e8f7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b";
export const CREATED_AT = "2026-03-01T12:00:00.000Z";
export const EXPIRES_AT = "2026-03-01T12:10:00.000Z";

export type ProposalOverrides = Partial<Omit<Proposal, "rule">> & { rule?: Partial<DecisionRule> };

let counter = 0;

export function makeProposal(overrides: ProposalOverrides = {}): Proposal {
  counter += 1;
  const { rule, ...rest } = overrides;
  return {
    id: `prp_test${String(counter).padStart(4, "0")}AbCdEfGhIjKlMnOp`,
    kind: "approval",
    status: "pending",
    action: { type: "k8s.rollout_restart", params: { deployment: "api" } },
    summary: "Restart deployment api (rolling)",
    reason: "OOMKilled x4 in 5m on api-7f9",
    blast_radius: "1 of 6 replicas at a time, prod",
    rollback: "kubectl rollout undo deployment/api",
    requested_by: "U0BOB",
    recipient: null,
    created_by: "alertmanager",
    created_at: CREATED_AT,
    expires_at: EXPIRES_AT,
    plan_sha256: PLAN_SHA256,
    callback_url: null,
    metadata: null,
    rule: {
      approvers: ["U0ALICE", "S0ONCALL"],
      required_approvals: 1,
      allow_self_approval: false,
      requester_only: false,
      confirm: true,
      channel: "C0INCIDENT",
      escalation: { approvers: ["S0SRELEADS"], channel: "C0ESCALATE", extend_ttl_seconds: 600 },
      ...rule,
    },
    approvals: [],
    escalated: null,
    decision: null,
    dispatch: { attempts: 0, last_error: null, dispatched_at: null },
    result: null,
    slack: { messages: [] },
    teams: null,
    mail: null,
    ...rest,
  };
}
