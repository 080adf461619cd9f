// The one way a proposal is created, whatever the door (POST /v1/proposals, the Alertmanager receiver, MCP): the body
// validated, every policy and key check in order, then the proposal's Durable Object asked to create it.

import { type ApiKey, callbackAllowed, keyAllowsAction } from "../config/api-keys.ts";
import type { Config } from "../config/load.ts";
import {
  actionKind,
  decisionRuleFor,
  freezeAt,
  type Policy,
  actionPolicy as policyOf,
  ttlBounds,
  validateParams,
} from "../config/policy.ts";
import { ApiError, toApiError } from "../errors.ts";
import { type MintedLink, mintLinkUrls } from "../links/token.ts";
import { newProposal, requestSha256 } from "../proposal/create.ts";
import { idempotentObjectId, publicId } from "../proposal/ids.ts";
import type { ProposalObject } from "../proposal/object.ts";
import { proposalStubAt } from "../proposal/stub.ts";
import { type ProposalView, toView } from "../proposal/view.ts";
import { planProblems } from "../slack/plan.ts";
import { membershipOf } from "../slack/usergroups.ts";
import { validate } from "./http.ts";
import { CreateProposalBody, CreateVerifyBody } from "./schemas.ts";

/** Who proposes: the checked configuration, the caller's API key and the proposals' namespace. */
export interface Proposer {
  config: Config;
  key: ApiKey;
  ns: DurableObjectNamespace<ProposalObject>;
}

export interface Proposed {
  /** false: an Idempotency-Key replay of the same body, answered with the proposal it created first. */
  created: boolean;
  /** The proposal as the API shows it, plus a verification prompt's signed links when its action enables them. */
  view: ProposalView & { links?: MintedLink[] };
}

/**
 * Validates `raw` (a create body, as POST /v1/proposals takes it) and creates the proposal, or answers the one an
 * Idempotency-Key already made. Every refusal is an ApiError naming the field; nothing is created on a refusal.
 */
export async function propose(proposer: Proposer, raw: unknown, idempotencyKey?: string): Promise<Proposed> {
  const { config, key, ns } = proposer;
  // Approvals keep SPEC 4's required texts; a verification prompt may leave blast_radius and rollback out.
  const body = validate(verifyExpected(config.policy, raw) ? CreateVerifyBody : CreateProposalBody, raw, "body");

  const type = body.action.type;
  if (!keyAllowsAction(key, type)) {
    throw new ApiError(403, "action_not_allowed", `this API key may not propose ${type}`, [
      { path: "action.type", message: "not in the key's actions" },
    ]);
  }
  // The first risk rule whose condition holds for this proposal tightens the rule it freezes.
  const rule = decisionRuleFor(config.policy, type, { ...body, params: body.action.params });
  const actionPolicy = config.policy.actions[type];
  if (!rule || !actionPolicy) {
    throw new ApiError(422, "unknown_action", `action type ${type} is not in the policy`, [
      { path: "action.type", message: "not in POLICY.actions" },
    ]);
  }
  const kind = actionKind(actionPolicy);
  if (body.kind !== undefined && body.kind !== kind) {
    const what =
      kind === "verify" ? 'a verification prompt (policy kind "verify")' : 'an approval (policy kind "approval")';
    throw new ApiError(422, "kind_mismatch", `${type} is ${what}`, [
      { path: "kind", message: `must be "${kind}" for ${type}, or left out` },
    ]);
  }
  const links = actionPolicy.links ?? null;
  if (body.recipient !== undefined && !(kind === "verify" && links)) {
    throw new ApiError(
      422,
      "recipient_not_allowed",
      `recipient is only for verification prompts whose action enables links`,
      [
        {
          path: "recipient",
          message:
            kind === "verify"
              ? `${type} does not enable links: address the prompt with requested_by`
              : `approval links go to the policy's links.recipients`,
        },
      ],
    );
  }
  if (kind === "verify" && links && body.recipient === undefined) {
    throw new ApiError(422, "recipient_required", `${type} sends its question as signed links: give recipient`, [
      { path: "recipient", message: "required for verification prompts whose action enables links" },
    ]);
  }
  const paramProblems = validateParams(actionPolicy, body.action.params);
  if (paramProblems.length > 0) {
    throw new ApiError(422, "invalid_params", `action.params do not satisfy ${type}'s params_schema`, paramProblems);
  }
  // The card cuts nothing that will run: a plan it cannot show whole is refused, not shown in part (issue 11 item 4).
  const planTooLarge = planProblems(body.action.params);
  if (planTooLarge.length > 0) {
    throw new ApiError(
      422,
      "plan_too_large",
      "action.params are too long for the Slack card to show whole",
      planTooLarge,
    );
  }
  const ttl = ttlBounds(actionPolicy, rule);
  const ttlSeconds = body.ttl_seconds ?? ttl.default;
  if (ttlSeconds < 1 || ttlSeconds > ttl.max) {
    const because = rule.risk?.ttl_seconds != null ? ` (risk rule: ${rule.risk.label})` : "";
    throw new ApiError(422, "ttl_out_of_range", `ttl_seconds must be from 1 to ${ttl.max} for ${type}${because}`, [
      { path: "ttl_seconds", message: `must be from 1 to ${ttl.max}${because}` },
    ]);
  }
  const now = Date.now();
  const freeze = freezeAt(config.policy, type, now);
  // In a freeze, an action with break-glass still takes proposals: marked frozen, only break-glass can approve them.
  if (freeze && !rule.break_glass) {
    throw new ApiError(
      422,
      "frozen",
      `${type} is in the change freeze "${freeze.name}" until ${freeze.ends_at}; nothing was created`,
      [
        {
          path: "action.type",
          message: `covered by the change freeze "${freeze.name}", which ends at ${freeze.ends_at}`,
        },
      ],
    );
  }
  if (kind === "verify" && !links && !body.requested_by) {
    throw new ApiError(422, "requested_by_required", `${type} asks one person in Slack: give requested_by`, [
      { path: "requested_by", message: "required for verification prompts (the Slack user to ask)" },
    ]);
  }
  if (kind === "approval" && rule.requester_only && !body.requested_by) {
    throw new ApiError(
      422,
      "requested_by_required",
      `${type} can only be confirmed by its requester: give requested_by`,
      [{ path: "requested_by", message: "required for requester_only actions" }],
    );
  }
  // A grouped card is a channel's: a verification prompt or a requester_only approval is one person's, in their DM.
  if (body.group_key !== undefined && (kind === "verify" || rule.requester_only)) {
    const why = kind === "verify" ? "a verification prompt" : "requester_only (its card is the requester's DM)";
    throw new ApiError(422, "group_key_not_allowed", `${type} is ${why}: group_key is for channel cards only`, [
      { path: "group_key", message: "only approvals whose card goes to a channel can be grouped" },
    ]);
  }
  if (body.callback_url) {
    const allowed = callbackAllowed(key, body.callback_url);
    if (!allowed.ok)
      throw new ApiError(403, "callback_not_allowed", allowed.message, [
        { path: "callback_url", message: allowed.message },
      ]);
  }
  // Last of the checks, as the only one that may ask Slack: bad input is refused without a network call.
  if (actionPolicy.requesters !== null && body.requested_by !== undefined)
    await requireRequester(config, type, actionPolicy.requesters, body.requested_by);

  const objectId = idempotencyKey ? idempotentObjectId(ns, key.name, idempotencyKey) : ns.newUniqueId();
  const proposal = newProposal({
    id: publicId(objectId),
    draft: body,
    keyName: key.name,
    rule: freeze ? { ...rule, freeze } : rule,
    ttlSeconds,
    now,
    kind,
    // A risk rule that narrows who decides froze no links: no Teams card either.
    teamsWebhook: kind === "approval" && rule.links ? (links?.teams_webhook ?? null) : null,
  });
  const outcome = await proposalStubAt(ns, objectId).create(proposal, requestSha256(raw));
  if (!outcome.ok) throw toApiError(outcome.refusal);
  const created = outcome.proposal;
  // Approval links never leave signoff through the API (SPEC 12): whoever holds the proposer's key would hold every
  // recipient's vote. signoff mails them and posts the Teams card's itself. A verification prompt's links decide by
  // possession and never dispatch: they are the proposer's to deliver (SMS, e-mail) to the addressee alone, so only
  // this answer (and an Idempotency-Key replay of it) carries them; GET never does.
  if (created.kind !== "verify" || !created.rule.links || config.linkSecret === null || config.publicUrl === null)
    return { created: outcome.created, view: toView(created) };
  const minted = await mintLinkUrls(config.linkSecret, config.publicUrl, created, outcome.links);
  return { created: outcome.created, view: { ...toView(created), links: minted } };
}

/** How long a proposer should wait before trying again when Slack could not say who is in a requesters group. */
const SLACK_RETRY_AFTER_SECONDS = 30;

/**
 * `requested_by` must be one of the action's `requesters`: listed itself, or a member of a listed user group (SPEC 12:
 * otherwise a stolen key names any account, a guest's or its own, and on a requester_only action that account decides
 * alone). A group Slack cannot list right now is a fault, not bad input: 503 with Retry-After, nothing created. The
 * answer never lists the requesters (user ids are not the proposer's to know).
 */
async function requireRequester(
  config: Config,
  type: string,
  requesters: readonly string[],
  user: string,
): Promise<void> {
  if (requesters.includes(user)) return;
  const groups = requesters.filter((id) => id.startsWith("S"));
  const membership =
    groups.length === 0
      ? { memberOf: [], unresolved: [] }
      : await membershipOf(user, groups, { base: config.slackApiBase, token: config.slackBotToken });
  if (membership.memberOf.length > 0) return;
  if (membership.unresolved.length > 0) {
    throw new ApiError(
      503,
      "slack_unavailable",
      `Slack could not say just now whether ${user} may request ${type}; nothing was created, try again later`,
      [{ path: "requested_by", message: "its user-group membership could not be checked with Slack just now" }],
      { "retry-after": String(SLACK_RETRY_AFTER_SECONDS) },
    );
  }
  throw new ApiError(422, "requester_not_allowed", `${user} may not be named as requested_by for ${type}`, [
    { path: "requested_by", message: `${user} is not among ${type}'s requesters (users and user groups)` },
  ]);
}

/** Whether the body is meant as a verification prompt: it says so, or its action's policy does. */
function verifyExpected(policy: Policy, raw: unknown): boolean {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return false;
  const { kind, action } = raw as { kind?: unknown; action?: unknown };
  if (kind === "verify") return true;
  const type = typeof action === "object" && action !== null ? (action as { type?: unknown }).type : undefined;
  const found = typeof type === "string" ? policyOf(policy, type) : undefined;
  return found !== undefined && actionKind(found) === "verify";
}
