// The approval policy (SPEC 3 `POLICY`): parsed strictly with defaults, checked across fields, and the pure
// questions asked of it per proposal (its decision rule, whether its params are acceptable).

import type { Validator } from "@cfworker/json-schema";
import { z } from "zod";
import type { ErrorDetail } from "../errors.ts";
import { closest, formatPath, zodDetails } from "../lib/details.ts";
import { isLoopbackHost } from "../lib/hosts.ts";
import { ACTION_TYPE_PATTERN } from "./action-patterns.ts";
import { ADAPTER_VOCABULARY, type AlertRoute, parseAdapters } from "./alert-routes.ts";
import { type ActiveFreeze, activeFreeze, type Freeze, parseFreezes } from "./freezes.ts";
import { compileParamsSchema, schemaErrors } from "./json-schema.ts";
import { ConfigError, decodeJson, deepFreeze, explainIssue, isPlainObject } from "./problems.ts";
import {
  matchRiskRule,
  parseRiskRules,
  type RiskRule,
  RULE_WHEN_MAX,
  RULES_MAX,
  type RuleInput,
} from "./risk-rules.ts";

/** Slack user (`U…`, `W…`) and user-group (`S…`) ids. */
export const APPROVER_PATTERN = /^[UWS][A-Z0-9]{2,}$/;
/** Slack conversation ids: public (`C…`), private (`G…`), DM (`D…`). Names break when a channel is renamed. */
export const CHANNEL_PATTERN = /^[CGD][A-Z0-9]{2,}$/;
/** Params of an action without a params_schema: a JSON object of at most this many bytes serialized (SPEC 3). */
export const MAX_UNSCHEMED_PARAMS_BYTES = 4096;
/**
 * Signed-link recipients (policy `links.recipients`, a verification prompt's `recipient`): an e-mail address or
 * an opaque id such as a phone number or a directory id, compared exactly as written.
 */
export const RECIPIENT_PATTERN = /^[A-Za-z0-9._%+@=-]{1,254}$/;
export const RECIPIENT_MESSAGE = "must be an e-mail address or an opaque id: 1–254 of A-Z a-z 0-9 . _ % + @ = -";
/** A recipient signoff mails its approval links to (SPEC 12): one that is an e-mail address. */
export function isMailRecipient(recipient: string): boolean {
  return recipient.includes("@");
}
/** A person's name in the policy's `people` directory (what the audit log and the card call them). */
export const PERSON_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** Slack's limit for a button's text; the labels are also the Teams card's and the confirmation page's buttons. */
export const VERIFY_LABEL_MAX = 75;
/** Edit before approve: at most this many editable params per action (one modal field each), names this long. */
export const EDITABLE_PARAMS_MAX = 20;
const EDITABLE_PARAM_NAME_MAX = 64;
/** A year: no approval should wait longer, and it keeps deadlines far from Date's limits. */
const MAX_SECONDS = 365 * 24 * 3600;

const approver = z
  .string()
  .regex(APPROVER_PATTERN, "must be a Slack user id (U…, W…) or user-group id (S…), not a name or @handle");
const channel = z.string().regex(CHANNEL_PATTERN, "must be a Slack channel id (C…, G…, D…), not a #name");
const seconds = z.int().min(1).max(MAX_SECONDS);

const recipient = z.string().regex(RECIPIENT_PATTERN, RECIPIENT_MESSAGE);
const verifyLabel = z.string().max(VERIFY_LABEL_MAX).regex(/\S/, "must not be blank");

const verifyLabelsShape = {
  yes: verifyLabel.optional(),
  no: verifyLabel.optional(),
  unsure: verifyLabel.optional(),
};

const linksShape = {
  enabled: z.boolean().default(false),
  recipients: z.array(recipient).optional(),
  teams_webhook: z.string().max(2048).optional(),
  teams_recipient: recipient.optional(),
};

const escalationShape = {
  approvers: z.array(approver).min(1),
  required_approvals: z.int().min(1).default(1),
  channel: channel.nullish(),
  extend_ttl_seconds: z.int().min(0).max(MAX_SECONDS).default(0),
  after_seconds: seconds.optional(),
};

/** Reminders before a decision (issue 16): at these fractions of the TTL, unless the action says otherwise. */
export const DEFAULT_REMIND_AT: readonly number[] = [0.5, 0.9];
const remindFraction = z.number().gt(0, "must be more than 0").lt(1, "must be less than 1 (a fraction of the TTL)");
const ruleShape = {
  when: z.string().max(RULE_WHEN_MAX).regex(/\S/, "must not be blank: a CEL condition such as params.replicas > 10"),
  label: z.string().max(80).regex(/\S/, "must not be blank").optional(),
  required_approvals: z.int().min(1).optional(),
  approvers: z.array(approver).min(1).optional(),
  ttl_seconds: seconds.optional(),
  confirm: z.boolean().optional(),
  allow_self_approval: z.boolean().optional(),
};

const breakGlassShape = {
  approvers: z.array(approver).min(1),
  reason_required: z.literal(true, { error: "must be true: a break-glass approval always records why" }).default(true),
};

function actionSchemaWith(object: typeof z.strictObject | typeof z.object) {
  return object({
    approvers: z.array(approver).default([]),
    required_approvals: z.int().min(1).default(1),
    allow_self_approval: z.boolean().default(false),
    requester_only: z.boolean().default(false),
    requesters: z.array(approver).optional(),
    ttl_seconds: seconds.default(600),
    max_ttl_seconds: seconds.default(86400),
    channel: channel.nullish(),
    confirm: z.boolean().default(true),
    params_schema: z.unknown().optional(),
    escalation: object(escalationShape).nullish(),
    kind: z.enum(["approval", "verify"]).default("approval"),
    verify_labels: object(verifyLabelsShape).optional(),
    links: object(linksShape).optional(),
    remind_at: z.array(remindFraction).max(10).optional(),
    rules: z.array(object(ruleShape)).max(RULES_MAX).optional(),
    break_glass: object(breakGlassShape).optional(),
    editable_params: z.array(z.string().min(1).max(EDITABLE_PARAM_NAME_MAX)).max(EDITABLE_PARAMS_MAX).optional(),
    edit_schema: z.unknown().optional(),
  });
}
/** Refuses unknown fields, so that a typo is an error rather than a silently applied default. */
const actionSchema = actionSchemaWith(z.strictObject);
/** The same without the unknown-field check: once those are reported, the cross-field checks still run. */
const lenientActionSchema = actionSchemaWith(z.object);

/** An identity a person can decide with: a Slack user id, or what a signed link is addressed to (an e-mail). */
const identity = z
  .string()
  .regex(RECIPIENT_PATTERN, `must be a Slack user id (U…, W…) or ${RECIPIENT_MESSAGE.slice(5)}`)
  .refine((id) => !/^S[A-Z0-9]{2,}$/.test(id), "a user group is not a person: list its members' own ids");

const policySchema = z.strictObject({
  default_channel: channel.nullish(),
  people: z
    .record(z.string().regex(PERSON_PATTERN, "person names use a-z, 0-9 and . _ -"), z.array(identity).min(1))
    .optional(),
  actions: z.record(z.string(), z.unknown()),
  freezes: z.unknown().optional(),
  adapters: z.unknown().optional(),
});

const VOCABULARY = [
  ...Object.keys(policySchema.shape),
  ...Object.keys(actionSchema.shape),
  ...Object.keys(escalationShape),
  ...Object.keys(verifyLabelsShape),
  ...Object.keys(linksShape),
  ...Object.keys(ruleShape),
  ...Object.keys(breakGlassShape),
  ...ADAPTER_VOCABULARY,
];

/** A verification prompt's button labels (policy `verify_labels`, defaults applied). */
export interface VerifyLabels {
  yes: string;
  no: string;
  unsure: string;
}

export const DEFAULT_VERIFY_LABELS: VerifyLabels = {
  yes: "Yes, that was me",
  no: "No, that wasn't me",
  unsure: "I'm not sure — escalate",
};

/** Signed-link deciders frozen from the policy (approval actions; a verify prompt's is its `recipient`). */
export interface LinkRule {
  /** Who gets links (e-mail-like or opaque ids); each counts once toward required_approvals. */
  recipients: string[];
  /** The identity the Teams card's links are minted for (approval actions with a Teams webhook), else null. */
  teams_recipient: string | null;
}

/** Who may decide, frozen from the policy when the proposal is created (SPEC 3). */
export interface DecisionRule {
  /** Slack user ids (U…/W…) and user-group ids (S…). */
  approvers: string[];
  required_approvals: number;
  allow_self_approval: boolean;
  requester_only: boolean;
  confirm: boolean;
  channel: string | null;
  escalation: {
    approvers: string[];
    channel: string | null;
    extend_ttl_seconds: number;
    /** Distinct people needed once escalated, never the escalator or the requester (absent before it existed: 1). */
    required_approvals?: number;
    /** Seconds after creation at which an undecided proposal escalates by itself (absent or null: never). */
    after_seconds?: number | null;
  } | null;
  /** Fractions of the TTL at which the undecided are reminded (absent in proposals created before reminders: none). */
  remind_at?: number[];
  /** Signed links, when the action enables them (absent in proposals created before links existed). */
  links?: LinkRule | null;
  /** A verification prompt's button labels (absent or null for approvals). */
  verify_labels?: VerifyLabels | null;
  /** The policy's `people` directory at creation, identity → person; absent when it has none (each id is a person). */
  people?: Record<string, string>;
  /** The risk rule that matched when the proposal was created (its tightening is already in the fields above). */
  risk?: FrozenRiskRule;
  /** Who may approve alone, with a reason (policy `break_glass`); absent when the action has none. */
  break_glass?: { approvers: string[]; reason_required: true };
  /** The change freeze the proposal was created in: only break-glass can approve it. Absent when none. */
  freeze?: { name: string; ends_at: string };
  /** Edit before approve (policy `editable_params`): what an approver may change, and what the result must pass. */
  edit?: EditRule;
}

/**
 * An action's edit-before-approve rule as a proposal froze it: the params an approver may change, the schemas the
 * edited params must pass (the action's params_schema and its edit_schema), and its risk rules' conditions, so an edit
 * that would make another risk rule apply is refused. Frozen like the rest: a policy change never widens it.
 */
export interface EditRule {
  params: string[];
  params_schema: Record<string, unknown>;
  /** The action's edit_schema, or null. */
  schema: Record<string, unknown> | null;
  /** The conditions of the action's risk rules, in order (empty when it has none). */
  rules: string[];
}

/** A risk rule as a proposal froze it: which one, what the card says, and the narrowed approvers. */
export interface FrozenRiskRule {
  /** Its index in the action's `rules` when the proposal was created. */
  index: number;
  when: string;
  label: string;
  /**
   * Only people listed both here and in `approvers` (directly or through a group) decide — once escalated, both here and
   * in the escalation's approvers; null: not narrowed.
   */
  approvers: string[] | null;
  /**
   * The rule's own required_approvals (null: it left the action's): already in `required_approvals` above, and the
   * least an escalated decision needs too. Absent in proposals frozen before it was kept (then: null).
   */
  required_approvals?: number | null;
  /** The longest time to decide it allows, or null. */
  ttl_seconds: number | null;
  /** The condition could not be evaluated for this proposal (a missing param): doubt tightens, so it applied. */
  unevaluable: boolean;
}

export interface Escalation {
  approvers: string[];
  /** Distinct people, other than whoever escalated and the requester, who must approve once escalated. */
  required_approvals: number;
  /** Where the escalated decision is asked: the escalation's channel, else the action's. */
  channel: string | null;
  extend_ttl_seconds: number;
  /** Seconds after creation at which an undecided proposal escalates by itself, or null (only by a click). */
  after_seconds: number | null;
}

/** One action's policy with every default applied and `channel` resolved. */
export interface ActionPolicy {
  type: string;
  approvers: string[];
  required_approvals: number;
  allow_self_approval: boolean;
  requester_only: boolean;
  /** Who a proposal may name as `requested_by` (users and groups); null: anyone (not allowed with requester_only). */
  requesters: string[] | null;
  ttl_seconds: number;
  max_ttl_seconds: number;
  /** The action's channel, else `default_channel`; null only for `requester_only` actions (their card goes to a DM). */
  channel: string | null;
  confirm: boolean;
  params_schema: Record<string, unknown> | null;
  escalation: Escalation | null;
  /** Present only for `kind: "verify"` actions (verification prompts); see `actionKind()`. */
  verify?: { labels: VerifyLabels };
  /** Present only when `links.enabled`: who may decide through signed links, and the Teams webhook. */
  links?: LinksPolicy;
  /** Fractions of the TTL (ascending, each in (0, 1)) at which the undecided are reminded in Slack; [] for none. */
  remind_at: number[];
  /** Risk rules (approval actions), in order: the first whose condition holds tightens the proposal's rule. */
  rules?: RiskRule[];
  /** Break-glass (approval actions): one of these people may approve alone with a reason, even in a freeze. */
  break_glass?: { approvers: string[]; reason_required: true };
  /** Edit before approve (approval actions): params an approver may change, each in params_schema; edit_schema or null. */
  edit?: { params: string[]; schema: Record<string, unknown> | null };
}

/** An action's signed links (policy `links`), defaults applied. */
export interface LinksPolicy {
  /** Approval actions: who gets links. Empty for verify actions (each prompt names its `recipient`). */
  recipients: string[];
  /** https (http only to a loopback host): where the Adaptive Card goes, or null. */
  teams_webhook: string | null;
  /** Approval actions with a Teams webhook: the identity the card's links are minted for (default "teams"). */
  teams_recipient: string | null;
}

export type ActionKind = "approval" | "verify";

export function actionKind(action: ActionPolicy): ActionKind {
  return action.verify ? "verify" : "approval";
}

export interface Policy {
  default_channel: string | null;
  /** The `people` directory inverted: each identity (Slack user id, e-mail) to its person's name. */
  people: Readonly<Record<string, string>>;
  /** Keyed by action type; look up with `actionPolicy()`, which ignores inherited keys. */
  actions: Readonly<Record<string, ActionPolicy>>;
  /** Change freezes: while one covers an action, it takes no new proposals (see `freezeAt`). */
  freezes: readonly Freeze[];
  /** Doors that turn another system's messages into proposals (`adapters.alertmanager.routes`). */
  adapters: { alertmanager: { routes: readonly AlertRoute[] } };
}

// Validators are built once per parsed policy; an ActionPolicy that crossed an RPC boundary gets one lazily.
const validators = new WeakMap<ActionPolicy, Validator>();

function countsStatically(ids: readonly string[]): boolean {
  return ids.every((id) => !id.startsWith("S"));
}

function duplicates(ids: readonly string[], at: (i: number) => string): ErrorDetail[] {
  return ids.flatMap((id, i) => (ids.indexOf(id) < i ? [{ path: at(i), message: "is listed twice" }] : []));
}

function parseAction(
  type: string,
  raw: unknown,
  defaultChannel: string | null,
  people: Readonly<Record<string, string>>,
  root: string,
): { action?: ActionPolicy; validator?: Validator; details: ErrorDetail[] } {
  const at = (...segments: (string | number)[]) => formatPath(root, ["actions", type, ...segments]);
  if (!ACTION_TYPE_PATTERN.test(type)) {
    return {
      details: [{ path: at(), message: "action type names use a-z, 0-9 and _ . - (starting with a letter or digit)" }],
    };
  }
  const strict = actionSchema.safeParse(raw, { error: explainIssue });
  const details: ErrorDetail[] = strict.success ? [] : zodDetails(at(), strict.error.issues, VOCABULARY);
  const onlyUnknownFields = !strict.success && strict.error.issues.every((i) => i.code === "unrecognized_keys");
  const parsed = onlyUnknownFields ? lenientActionSchema.safeParse(raw) : strict;
  if (!parsed.success) return { details };
  const a = parsed.data;
  const given = (field: string) => isPlainObject(raw) && Object.hasOwn(raw, field);

  details.push(...duplicates(a.approvers, (i) => at("approvers", i)));
  if (a.requesters) details.push(...duplicates(a.requesters, (i) => at("requesters", i)));
  const verify = a.kind === "verify";
  const links = a.links?.enabled ? a.links : null;
  if (a.links) details.push(...linksProblems(a.links, verify, at));
  // Deciders through links count toward M of N like approvers do (each recipient once; the Teams channel once).
  const linkDeciders =
    links && !verify ? (links.recipients?.length ?? 0) + (links.teams_webhook !== undefined ? 1 : 0) : 0;
  if (verify) {
    details.push(...verifyProblems(a, given, at));
    if (a.rules !== undefined) details.push({ path: at("rules"), message: 'does not apply to kind: "verify"' });
    if (a.break_glass !== undefined) {
      details.push({ path: at("break_glass"), message: 'does not apply to kind: "verify": nothing is approved' });
    }
  } else {
    if (a.verify_labels !== undefined) {
      details.push({ path: at("verify_labels"), message: 'only for kind: "verify" (verification prompts)' });
    }
    if (links && a.requester_only) {
      details.push({
        path: at("links", "enabled"),
        message: "links cannot decide a requester_only action: only the requester, in Slack, may",
      });
    }
  }
  if (!verify && a.approvers.length === 0 && !a.requester_only && linkDeciders === 0) {
    details.push({
      path: at("approvers"),
      message: "list at least one approver (user U…/W… or group S…), or set requester_only: true",
    });
  }
  if (verify) {
    // verifyProblems names required_approvals, approvers and requester_only when they do not fit.
  } else if (a.requester_only && (a.requesters ?? []).length === 0) {
    // Otherwise a stolen key names any account as requested_by (a guest, its own) and that account decides alone.
    details.push({
      path: at("requesters"),
      message: "list the users and groups a requester_only proposal may name as requested_by (U…, W…, S…)",
    });
  } else if (a.requester_only && a.required_approvals > 1) {
    details.push({
      path: at("required_approvals"),
      message: "must be 1 when requester_only is true: only the requester decides",
    });
  } else if (
    !a.requester_only &&
    a.approvers.length + linkDeciders > 0 &&
    countsStatically(a.approvers) &&
    a.required_approvals > distinctPeople([...a.approvers, ...(links?.recipients ?? [])], people) + teamsDeciders(links)
  ) {
    const listed =
      linkDeciders > 0
        ? `${a.approvers.length} approver(s) and ${linkDeciders} link recipient(s) are`
        : `${a.approvers.length} approver(s) are`;
    details.push({
      path: at("required_approvals"),
      message: `asks for ${a.required_approvals} approvals but only ${listed} listed`,
    });
  }
  if (a.ttl_seconds > a.max_ttl_seconds) {
    details.push({
      path: at("ttl_seconds"),
      message: `${given("ttl_seconds") ? "" : "(default) "}${a.ttl_seconds} is more than max_ttl_seconds (${a.max_ttl_seconds})`,
    });
  }
  // A verification prompt goes to its addressee's DM; an action decided only through links posts no Slack card.
  const resolved = verify ? null : (a.channel ?? defaultChannel);
  const linksOnly = a.approvers.length === 0 && linkDeciders > 0;
  if (resolved === null && !a.requester_only && !verify && !linksOnly) {
    details.push({
      path: at("channel"),
      message: "no channel: set channel here or default_channel at the top of POLICY",
    });
  }
  let escalation: Escalation | null = null;
  if (a.escalation && !verify) {
    details.push(...duplicates(a.escalation.approvers, (i) => at("escalation", "approvers", i)));
    const listed = a.escalation.approvers;
    if (countsStatically(listed) && a.escalation.required_approvals > distinctPeople(listed, people)) {
      details.push({
        path: at("escalation", "required_approvals"),
        message:
          `asks for ${a.escalation.required_approvals} approvals but only ` +
          `${distinctPeople(listed, people)} distinct people are listed`,
      });
    }
    const escalationChannel = a.escalation.channel ?? resolved;
    if (escalationChannel === null) {
      details.push({
        path: at("escalation", "channel"),
        message: "no channel to escalate to: set escalation.channel, channel or default_channel",
      });
    }
    const after = a.escalation.after_seconds ?? null;
    if (after !== null && after >= a.max_ttl_seconds) {
      details.push({
        path: at("escalation", "after_seconds"),
        message: `${after} is not less than max_ttl_seconds (${a.max_ttl_seconds}): no proposal would ever wait that long`,
      });
    }
    escalation = {
      approvers: a.escalation.approvers,
      required_approvals: a.escalation.required_approvals,
      channel: escalationChannel,
      extend_ttl_seconds: a.escalation.extend_ttl_seconds,
      after_seconds: after,
    };
  }
  const remindAt = a.remind_at ?? [...DEFAULT_REMIND_AT];
  remindAt.forEach((fraction, i) => {
    const previous = remindAt[i - 1];
    if (previous !== undefined && fraction <= previous) {
      details.push({
        path: at("remind_at", i),
        message:
          fraction === previous ? "is listed twice" : `must be more than the one before it (${previous}): ascending`,
      });
    }
  });
  const staticCount =
    !a.requester_only && countsStatically(a.approvers)
      ? distinctPeople([...a.approvers, ...(links?.recipients ?? [])], people) + teamsDeciders(links)
      : null;
  const risk =
    a.rules && !verify
      ? parseRiskRules(
          a.rules,
          {
            approvers: a.approvers,
            required_approvals: a.required_approvals,
            allow_self_approval: a.allow_self_approval,
            requester_only: a.requester_only,
            ttl_seconds: a.ttl_seconds,
            confirm: a.confirm,
            params_schema: a.params_schema,
            distinctPeople: (ids) => distinctPeople(ids, people),
            available: staticCount,
            escalation: a.escalation
              ? { approvers: a.escalation.approvers, required_approvals: a.escalation.required_approvals }
              : null,
          },
          at,
        )
      : null;
  if (risk) details.push(...risk.details);
  if (a.break_glass && !verify) {
    details.push(...duplicates(a.break_glass.approvers, (i) => at("break_glass", "approvers", i)));
    if (a.requester_only) {
      details.push({
        path: at("break_glass"),
        message: "a requester_only action is the requester's call alone: it has no break-glass",
      });
    }
  }
  let validator: Validator | undefined;
  let paramsSchema: Record<string, unknown> | null = null;
  if (a.params_schema !== undefined) {
    const compiled = compileParamsSchema(a.params_schema, at("params_schema"));
    if (compiled.ok) {
      validator = compiled.validator;
      paramsSchema = a.params_schema as Record<string, unknown>; // compileParamsSchema refused anything else
    } else details.push(...compiled.details);
  }
  details.push(...editProblems(a, verify, at));
  if (details.length > 0) return { details };
  const labels: VerifyLabels = { ...DEFAULT_VERIFY_LABELS, ...a.verify_labels };
  const action: ActionPolicy = {
    type,
    approvers: a.approvers,
    required_approvals: a.required_approvals,
    allow_self_approval: a.allow_self_approval,
    // A verification prompt is answered by its addressee alone: requester_only semantics, one answer.
    requester_only: verify ? true : a.requester_only,
    requesters: a.requesters ? [...a.requesters] : null,
    ttl_seconds: a.ttl_seconds,
    max_ttl_seconds: a.max_ttl_seconds,
    channel: resolved,
    confirm: a.confirm,
    params_schema: paramsSchema === null ? null : structuredClone(paramsSchema),
    escalation,
    remind_at: remindAt,
    ...(verify ? { verify: { labels } } : {}),
    ...(links
      ? {
          links: {
            recipients: [...(links.recipients ?? [])],
            teams_webhook: links.teams_webhook ?? null,
            teams_recipient: verify || links.teams_webhook === undefined ? null : (links.teams_recipient ?? "teams"),
          },
        }
      : {}),
    ...(risk && risk.rules.length > 0 ? { rules: risk.rules } : {}),
    ...(a.break_glass && !verify
      ? { break_glass: { approvers: [...a.break_glass.approvers], reason_required: true as const } }
      : {}),
    ...(a.editable_params && a.editable_params.length > 0
      ? {
          edit: {
            params: [...a.editable_params],
            schema: a.edit_schema === undefined ? null : structuredClone(a.edit_schema as Record<string, unknown>),
          },
        }
      : {}),
  };
  return { action, ...(validator ? { validator } : {}), details };
}

/**
 * Problems of an action's `editable_params` and `edit_schema` (edit before approve): each name a property of its
 * params_schema (a typo gets a "did you mean"), none twice; edit_schema a usable JSON Schema, only with editable_params;
 * neither on a verification prompt (nothing is approved) nor on a requester_only action (no one else decides).
 */
function editProblems(
  a: {
    editable_params?: string[] | undefined;
    edit_schema?: unknown;
    params_schema?: unknown;
    requester_only: boolean;
  },
  verify: boolean,
  at: At,
): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  const names = a.editable_params;
  if (a.edit_schema !== undefined) {
    const compiled = compileParamsSchema(a.edit_schema, at("edit_schema"));
    if (!compiled.ok) details.push(...compiled.details);
    if (!names || names.length === 0)
      details.push({ path: at("edit_schema"), message: "only with editable_params: it checks what an edit changes" });
  }
  if (!names) return details;
  if (verify) return [...details, { path: at("editable_params"), message: 'does not apply to kind: "verify"' }];
  if (a.requester_only) {
    details.push({ path: at("editable_params"), message: "a requester_only action is the requester's call alone" });
    return details;
  }
  details.push(...duplicates(names, (i) => at("editable_params", i)));
  const properties = isPlainObject(a.params_schema) ? a.params_schema.properties : undefined;
  if (!isPlainObject(properties)) {
    details.push({
      path: at("editable_params"),
      message: "needs a params_schema with properties: an edit is checked against it, as a new proposal would be",
    });
    return details;
  }
  const known = Object.keys(properties);
  names.forEach((name, i) => {
    if (Object.hasOwn(properties, name)) return;
    const guess = closest(name, known);
    details.push({
      path: at("editable_params", i),
      message: `is not a property of params_schema${guess ? ` (did you mean "${guess}"?)` : ""}`,
    });
  });
  return details;
}

/** How many different people `identities` are, joining those the `people` directory says are one person. */
function distinctPeople(identities: readonly string[], people: Readonly<Record<string, string>>): number {
  return new Set(identities.map((id) => people[id] ?? id)).size;
}

/** The Teams card's links, when there is no recipient list to say who clicks them, count as one decider. */
function teamsDeciders(
  links: { recipients?: string[] | undefined; teams_webhook?: string | undefined } | null,
): number {
  return links && links.teams_webhook !== undefined && (links.recipients?.length ?? 0) === 0 ? 1 : 0;
}

type ParsedLinks = {
  enabled: boolean;
  recipients?: string[] | undefined;
  teams_webhook?: string | undefined;
  teams_recipient?: string | undefined;
};
type At = (...segments: (string | number)[]) => string;

/** Problems of an action's `links`; the shapes are checked even while disabled, the combinations only when enabled. */
function linksProblems(links: ParsedLinks, verify: boolean, at: At): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  if (links.teams_webhook !== undefined) {
    const problem = webhookUrlProblem(links.teams_webhook);
    if (problem) details.push({ path: at("links", "teams_webhook"), message: problem });
  }
  if (links.recipients) details.push(...duplicates(links.recipients, (i) => at("links", "recipients", i)));
  if (verify && links.teams_webhook !== undefined) {
    // Refused even while links are disabled: enabling them later must not be what posts them to a channel.
    details.push({
      path: at("links", "teams_webhook"),
      message:
        'not for kind: "verify": a verification prompt\'s links answer by possession, and anyone in a Teams channel ' +
        "could answer for the addressee; the proposer delivers them to that person alone",
    });
  }
  if (!links.enabled) return details;
  if (verify) {
    if (links.recipients !== undefined) {
      details.push({
        path: at("links", "recipients"),
        message: "a verification prompt's links go to the proposal's own recipient: list none here",
      });
    }
    if (links.teams_recipient !== undefined) {
      details.push({
        path: at("links", "teams_recipient"),
        message: "a verification prompt's links go to the proposal's recipient alone: leave this out",
      });
    }
    return details;
  }
  if ((links.recipients?.length ?? 0) === 0 && links.teams_webhook === undefined) {
    details.push({
      path: at("links", "recipients"),
      message: "list at least one recipient (or set teams_webhook) when links are enabled",
    });
  }
  if (links.teams_recipient !== undefined && links.teams_webhook === undefined) {
    details.push({
      path: at("links", "teams_recipient"),
      message: "only with teams_webhook: it names who the Teams card's links are for",
    });
  }
  const teamsRecipient = links.teams_webhook === undefined ? undefined : (links.teams_recipient ?? "teams");
  if (teamsRecipient !== undefined && links.recipients?.includes(teamsRecipient)) {
    details.push({
      path: at("links", "teams_recipient"),
      message: `"${teamsRecipient}" is also in recipients: the Teams card needs an identity of its own`,
    });
  }
  return details;
}

/** A verification prompt is one person's answer: the fields about approvers, channels and escalation do not apply. */
function verifyProblems(
  a: { approvers: string[]; required_approvals: number; requester_only: boolean; escalation?: unknown },
  given: (field: string) => boolean,
  at: At,
): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  const notForVerify = (field: string, why: string) =>
    details.push({ path: at(field), message: `does not apply to kind: "verify": ${why}` });
  if (a.approvers.length > 0) notForVerify("approvers", "only the person asked may answer");
  if (a.required_approvals !== 1) notForVerify("required_approvals", "one answer decides (leave it out, or 1)");
  if (given("requester_only") && !a.requester_only)
    notForVerify("requester_only", "only the person asked may answer (it is implied)");
  if (given("allow_self_approval")) notForVerify("allow_self_approval", "there is no approval");
  if (given("confirm")) notForVerify("confirm", "the answer buttons have no confirm dialog");
  if (given("channel")) notForVerify("channel", "the question goes to the person's Slack DM");
  if (a.escalation) notForVerify("escalation", `"unsure" ends the prompt as escalated, for the proposer to act on`);
  return details;
}

/** Outgoing webhooks (Teams): https, or plain http to a loopback host (tests, local mode); no credentials in the URL. */
export function webhookUrlProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "is not an absolute URL";
  }
  if (url.username !== "" || url.password !== "") return "must not contain user:password@";
  if (url.protocol === "https:") return null;
  if (url.protocol === "http:" && isLoopbackHost(url.hostname)) return null;
  return "must use https (plain http only to a loopback host)";
}

/**
 * Parses `POLICY` (an object, or a string of JSON). Throws a ConfigError listing every problem found, each at
 * its field's path (`POLICY.actions["k8s.rollout_restart"].ttl_seconds`). The result is deeply frozen.
 */
export function parsePolicy(input: unknown, root = "POLICY"): Policy {
  const decoded = decodeJson(input);
  if (!decoded.ok) throw new ConfigError(`${root} ${decoded.message}`, [{ path: root, message: decoded.message }]);
  if (decoded.value === undefined || decoded.value === null || decoded.value === "") {
    throw new ConfigError(`${root} is required`, [{ path: root, message: "is required" }]);
  }
  // The top level and each action are checked apart, so that one mistake does not hide the others.
  const value = decoded.value;
  const details: ErrorDetail[] = [];
  const top = policySchema.safeParse(value, { error: explainIssue });
  if (!top.success) details.push(...zodDetails(root, top.error.issues, VOCABULARY));
  const rawDefault = isPlainObject(value) ? value.default_channel : undefined;
  const defaultChannel = typeof rawDefault === "string" ? rawDefault : null;
  const people = peopleOf(isPlainObject(value) ? value.people : undefined, root, details);
  const rawActions = isPlainObject(value) ? value.actions : undefined;
  const entries = isPlainObject(rawActions) ? Object.entries(rawActions) : [];
  const actions: Record<string, ActionPolicy> = {};
  const built = new Map<ActionPolicy, Validator>();
  if (isPlainObject(rawActions) && entries.length === 0) {
    details.push({
      path: `${root}.actions`,
      message: "define at least one action: every action type not listed is refused",
    });
  }
  for (const [type, raw] of entries) {
    const result = parseAction(type, raw, defaultChannel, people, root);
    details.push(...result.details);
    if (result.action) {
      actions[type] = result.action;
      if (result.validator) built.set(result.action, result.validator);
    }
  }
  const rawFreezes = isPlainObject(value) ? value.freezes : undefined;
  const types = entries.map(([type]) => type);
  const freezes = rawFreezes === undefined ? { freezes: [], details: [] } : parseFreezes(rawFreezes, types, root);
  details.push(...freezes.details);
  const routes = parseAdapters(isPlainObject(value) ? value.adapters : undefined, actions, root, details);
  if (details.length > 0) throw new ConfigError(`${root} has ${details.length} problem(s)`, details);
  for (const [action, validator] of built) validators.set(action, validator);
  return deepFreeze({
    default_channel: defaultChannel,
    people,
    actions,
    freezes: freezes.freezes,
    adapters: { alertmanager: { routes } },
  });
}

/**
 * The `people` directory (`{"alice": ["U0ALICE", "alice@example.com"]}`) as identity → person. An identity may belong
 * to one person only; its shape was checked by the top-level schema, so only well-formed entries are read here.
 */
function peopleOf(raw: unknown, root: string, details: ErrorDetail[]): Record<string, string> {
  const byIdentity: Record<string, string> = {};
  if (!isPlainObject(raw)) return byIdentity;
  for (const [person, identities] of Object.entries(raw)) {
    if (!PERSON_PATTERN.test(person) || !Array.isArray(identities)) continue;
    identities.forEach((id, i) => {
      if (typeof id !== "string") return;
      const owner = byIdentity[id];
      if (owner !== undefined) {
        details.push({
          path: formatPath(root, ["people", person, i]),
          message: owner === person ? "is listed twice" : `already belongs to ${owner}: one identity, one person`,
        });
      } else byIdentity[id] = person;
    });
  }
  return byIdentity;
}

/** The action's policy, or undefined when the type is not in the policy (the proposal is refused). */
export function actionPolicy(policy: Policy, actionType: string): ActionPolicy | undefined {
  return Object.hasOwn(policy.actions, actionType) ? policy.actions[actionType] : undefined;
}

/**
 * The change freeze an approval of `actionType` created at `now` (ms) would fall in, or null. Verification prompts are
 * never frozen: they run nothing.
 */
export function freezeAt(policy: Policy, actionType: string, now: number): ActiveFreeze | null {
  const action = actionPolicy(policy, actionType);
  if (!action || action.verify) return null;
  return activeFreeze(policy.freezes ?? [], actionType, now);
}

/**
 * The rule a new proposal freezes: a fresh copy, so it never changes when the policy does. With the proposal's
 * contents (`input`), the first risk rule whose condition holds tightens it and is frozen with it.
 */
export function decisionRuleFor(policy: Policy, actionType: string, input?: RuleInput): DecisionRule | undefined {
  const action = actionPolicy(policy, actionType);
  if (!action) return undefined;
  const base = baseRuleOf(policy, action);
  const matched = input && action.rules ? matchRiskRule(action.rules, input) : null;
  if (!matched) return base;
  const { rule, index, unevaluable } = matched;
  // A narrowed rule is decided in Slack by the people it names: signed links (addressed to others) do not decide it.
  const { links: _links, ...withoutLinks } = base;
  return {
    ...(rule.approvers !== null ? withoutLinks : base),
    required_approvals: Math.max(base.required_approvals, rule.required_approvals ?? 0),
    confirm: base.confirm || rule.confirm,
    risk: {
      index,
      when: rule.when,
      label: rule.label,
      approvers: rule.approvers ? [...rule.approvers] : null,
      required_approvals: rule.required_approvals,
      ttl_seconds: rule.ttl_seconds,
      unevaluable,
    },
  };
}

function baseRuleOf(policy: Policy, action: ActionPolicy): DecisionRule {
  return {
    approvers: [...action.approvers],
    required_approvals: action.required_approvals,
    allow_self_approval: action.allow_self_approval,
    requester_only: action.requester_only,
    confirm: action.confirm,
    channel: action.channel,
    escalation: action.escalation
      ? {
          approvers: [...action.escalation.approvers],
          required_approvals: action.escalation.required_approvals,
          channel: action.escalation.channel,
          extend_ttl_seconds: action.escalation.extend_ttl_seconds,
          ...(action.escalation.after_seconds !== null ? { after_seconds: action.escalation.after_seconds } : {}),
        }
      : null,
    remind_at: [...action.remind_at],
    // Only when they apply, so an approval's rule reads as it always did.
    ...(action.links
      ? { links: { recipients: [...action.links.recipients], teams_recipient: action.links.teams_recipient } }
      : {}),
    ...(action.verify ? { verify_labels: { ...action.verify.labels } } : {}),
    ...(action.break_glass
      ? { break_glass: { approvers: [...action.break_glass.approvers], reason_required: true as const } }
      : {}),
    ...(action.edit && action.params_schema
      ? {
          edit: {
            params: [...action.edit.params],
            params_schema: structuredClone(action.params_schema),
            schema: action.edit.schema === null ? null : structuredClone(action.edit.schema),
            rules: (action.rules ?? []).map((r) => r.when),
          },
        }
      : {}),
    // The directory as it is now: frozen like the rest, so an edit to people never changes a waiting proposal.
    ...(Object.keys(policy.people).length > 0 ? { people: { ...policy.people } } : {}),
  };
}

function validatorFor(action: ActionPolicy): Validator | undefined {
  if (action.params_schema === null) return undefined;
  let validator = validators.get(action);
  if (!validator) {
    const compiled = compileParamsSchema(action.params_schema, "params_schema");
    if (!compiled.ok) throw new ConfigError("params_schema is not usable", compiled.details);
    validator = compiled.validator;
    validators.set(action, validator);
  }
  return validator;
}

/**
 * Problems with a proposal's `action.params` (empty when acceptable). Params are always a JSON object; with a
 * params_schema they must satisfy it, without one they must serialize to at most 4 KiB (SPEC 3).
 */
export function validateParams(action: ActionPolicy, params: unknown, root = "action.params"): ErrorDetail[] {
  if (!isPlainObject(params)) return [{ path: root, message: "must be a JSON object" }];
  const validator = validatorFor(action);
  if (validator) return schemaErrors(validator, params, root);
  let serialized: string;
  try {
    serialized = JSON.stringify(params);
  } catch {
    return [{ path: root, message: "could not be serialized as JSON (nested too deeply?)" }];
  }
  const bytes = new TextEncoder().encode(serialized).length;
  if (bytes > MAX_UNSCHEMED_PARAMS_BYTES) {
    return [
      {
        path: root,
        message: `is ${bytes} bytes as JSON; at most ${MAX_UNSCHEMED_PARAMS_BYTES} are allowed for an action without a params_schema`,
      },
    ];
  }
  return [];
}

/**
 * A proposal's time to decide: its `ttl_seconds`, else the action's; at most the action's max_ttl_seconds, and at most
 * what a matched risk rule allows (whose own ttl_seconds is then also the default).
 */
export function ttlBounds(action: ActionPolicy, rule: DecisionRule): { default: number; max: number } {
  const cap = rule.risk?.ttl_seconds ?? null;
  return cap === null
    ? { default: action.ttl_seconds, max: action.max_ttl_seconds }
    : { default: Math.min(action.ttl_seconds, cap), max: Math.min(action.max_ttl_seconds, cap) };
}

/** Whether a proposal may ask for `ttlSeconds` (SPEC 3: 1 to the action's max_ttl_seconds). */
export function ttlAllowed(action: ActionPolicy, ttlSeconds: number): boolean {
  return Number.isInteger(ttlSeconds) && ttlSeconds >= 1 && ttlSeconds <= action.max_ttl_seconds;
}
