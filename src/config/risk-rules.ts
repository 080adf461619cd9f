// Risk rules (an action's `rules`): CEL conditions over a proposal that tighten its decision rule. Compiled and
// checked when the policy loads (syntax, unknown names with a "did you mean", tighten-only); the first rule whose
// condition holds is frozen into the proposal. CEL through @marcbachmann/cel-js: a parser and tree walker, no eval.

import { type ASTNode, Environment, type ParseResult } from "@marcbachmann/cel-js";
import type { ErrorDetail } from "../errors.ts";
import { closest } from "../lib/details.ts";
import { isPlainObject } from "./problems.ts";

/** What a condition may read: the proposal as the proposer sent it (absent texts are ""). */
export const RULE_VARIABLES = ["params", "summary", "reason", "blast_radius", "rollback", "requested_by"] as const;
/** A condition's length in characters, and the most rules an action may have. */
export const RULE_WHEN_MAX = 500;
export const RULES_MAX = 20;

const environment = new Environment({
  // A condition is one short line; these bound what a policy can make each proposal cost.
  limits: { maxAstNodes: 200, maxDepth: 32, maxListElements: 100, maxMapEntries: 100, maxCallArguments: 8 },
})
  .registerVariable("params", "map")
  .registerVariable("summary", "string")
  .registerVariable("reason", "string")
  .registerVariable("blast_radius", "string")
  .registerVariable("rollback", "string")
  .registerVariable("requested_by", "string");

/** One rule as the policy gives it (after the field shapes were checked). */
export interface RawRiskRule {
  when: string;
  label?: string | undefined;
  required_approvals?: number | undefined;
  approvers?: string[] | undefined;
  ttl_seconds?: number | undefined;
  confirm?: boolean | undefined;
  allow_self_approval?: boolean | undefined;
}

/** One rule with what it tightens; fields it leaves out keep the action's value. */
export interface RiskRule {
  when: string;
  /** What the card shows: the policy's `label`, else the condition itself. */
  label: string;
  required_approvals: number | null;
  /** Narrows who decides: only people listed both here and in the action's approvers. */
  approvers: string[] | null;
  ttl_seconds: number | null;
  confirm: boolean;
}

/** The parts of the action a rule is measured against. */
export interface RuleBase {
  approvers: readonly string[];
  required_approvals: number;
  allow_self_approval: boolean;
  requester_only: boolean;
  ttl_seconds: number;
  confirm: boolean;
  params_schema: unknown;
  /** Distinct people among these ids (the `people` directory joins identities). */
  distinctPeople: (ids: readonly string[]) => number;
  /** How many distinct people can approve under the action (link deciders included); null when a group is listed. */
  available: number | null;
  /** The action's escalation: a rule's tightening carries into the escalated decision too. */
  escalation: { approvers: readonly string[]; required_approvals: number } | null;
}

// Parsed once per condition text per isolate; the policy is parsed once per isolate too.
const compiled = new Map<string, ParseResult>();

function compile(when: string): ParseResult {
  let program = compiled.get(when);
  if (!program) {
    program = environment.parse(when);
    compiled.set(when, program);
  }
  return program;
}

/** A CEL error's first line and where it points ("Unexpected token: EOF at character 17"). */
function celMessage(error: unknown): string {
  const e = error as { message?: unknown; summary?: unknown; range?: { start?: unknown } } | null;
  const text = typeof e?.summary === "string" ? e.summary : String(e?.message ?? error).split("\n")[0];
  const start = typeof e?.range?.start === "number" ? ` (at character ${e.range.start + 1})` : "";
  return `${text}${start}`;
}

/** Problems of one rule's condition: syntax, names it uses that do not exist, a result that is not true/false. */
function conditionProblems(when: string, paramsSchema: unknown, path: string): ErrorDetail[] {
  let program: ParseResult;
  try {
    program = compile(when);
  } catch (error) {
    return [{ path, message: `is not a valid CEL condition: ${celMessage(error)}` }];
  }
  const checked = program.check();
  if (!checked.valid) {
    const message = celMessage(checked.error);
    const unknown = /^Unknown variable: ([A-Za-z_][A-Za-z0-9_]*)/.exec(message)?.[1];
    if (unknown !== undefined) {
      const guess = closest(unknown, RULE_VARIABLES);
      return [
        {
          path,
          message:
            `uses ${unknown}, which is not defined${guess ? ` (did you mean "${guess}"?)` : ""}; ` +
            `a condition reads ${RULE_VARIABLES.join(", ")}`,
        },
      ];
    }
    return [{ path, message: `is not a valid CEL condition: ${message}` }];
  }
  if (checked.type !== "bool" && checked.type !== "dyn") {
    return [{ path, message: `must be a condition (true or false), not a ${checked.type}` }];
  }
  return paramsFieldProblems(program.ast, paramsSchema, path);
}

/**
 * `params.replcas` in a condition for an action whose params_schema lists its properties and allows no others: a
 * typo that would never match, reported with the closest property.
 */
function paramsFieldProblems(ast: ASTNode, paramsSchema: unknown, path: string): ErrorDetail[] {
  if (!isPlainObject(paramsSchema) || paramsSchema.additionalProperties !== false) return [];
  if (!isPlainObject(paramsSchema.properties)) return [];
  const known = Object.keys(paramsSchema.properties);
  const details: ErrorDetail[] = [];
  for (const field of new Set(paramsFields(ast))) {
    if (known.includes(field)) continue;
    const guess = closest(field, known);
    details.push({
      path,
      message: `reads params.${field}, which params_schema does not allow${guess ? ` (did you mean "${guess}"?)` : ""}`,
    });
  }
  return details;
}

/** The names read directly off `params` (`params.x`, `params["x"]`, `has(params.x)`) anywhere in a condition. */
function paramsFields(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(paramsFields);
  if (!isPlainObject(node) && !(typeof node === "object" && node !== null && "op" in node)) return [];
  const { op, args } = node as { op?: unknown; args?: unknown };
  if (typeof op !== "string") return [];
  if (Array.isArray(args) && (op === "." || op === ".?" || op === "[]" || op === "[?]")) {
    const [target, key] = args as [unknown, unknown];
    const onParams = isIdParams(target);
    const name =
      typeof key === "string" ? key : isValueNode(key) && typeof key.args === "string" ? key.args : undefined;
    return [...(onParams && name !== undefined ? [name] : []), ...paramsFields(target), ...paramsFields(key)];
  }
  return paramsFields(args);
}

function isIdParams(node: unknown): boolean {
  return (
    typeof node === "object" && node !== null && (node as ASTNode).op === "id" && (node as ASTNode).args === "params"
  );
}

function isValueNode(node: unknown): node is { op: "value"; args: unknown } {
  return typeof node === "object" && node !== null && (node as { op?: unknown }).op === "value";
}

/**
 * Problems of an action's `rules` and, when there are none, the rules. "Tighter" means, field by field:
 * required_approvals ≥ the action's; approvers narrow (a person decides only if listed both here and in the action's
 * approvers, directly or through a group), so a user listed here must be among the action's approvers unless the
 * action names a group; ttl_seconds ≤ the action's ttl_seconds; confirm only turned on; allow_self_approval only
 * turned off (a rule that turns it off makes the requester's own approval not count). A requester_only action's rules
 * may only shorten the time and turn confirm on.
 */
export function parseRiskRules(
  raw: readonly RawRiskRule[],
  base: RuleBase,
  at: (...segments: (string | number)[]) => string,
): { rules: RiskRule[]; details: ErrorDetail[] } {
  const details: ErrorDetail[] = [];
  const rules: RiskRule[] = [];
  raw.forEach((r, i) => {
    const here = (...segments: (string | number)[]) => at("rules", i, ...segments);
    const problems = [
      ...conditionProblems(r.when, base.params_schema, here("when")),
      ...tightenProblems(r, base, here),
    ];
    details.push(...problems);
    if (problems.length > 0) return;
    rules.push({
      when: r.when,
      label: r.label ?? r.when,
      required_approvals: r.required_approvals ?? null,
      approvers: r.approvers ? [...r.approvers] : null,
      ttl_seconds: r.ttl_seconds ?? null,
      confirm: r.confirm === true,
    });
  });
  return { rules, details };
}

const TIGHTEN = "a rule can only tighten what the action says";

function tightenProblems(r: RawRiskRule, base: RuleBase, here: (...s: (string | number)[]) => string): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  const add = (field: string, message: string) => details.push({ path: here(field), message });
  if (base.requester_only) {
    if (r.approvers !== undefined) add("approvers", "only the requester decides a requester_only action");
    if (r.required_approvals !== undefined && r.required_approvals !== 1)
      add("required_approvals", "must be 1 (or left out) for a requester_only action: only the requester decides");
  }
  if (r.required_approvals !== undefined && r.required_approvals < base.required_approvals) {
    add(
      "required_approvals",
      `${r.required_approvals} is fewer than the action's ${base.required_approvals}: ${TIGHTEN}`,
    );
  }
  if (r.ttl_seconds !== undefined && r.ttl_seconds > base.ttl_seconds) {
    add("ttl_seconds", `${r.ttl_seconds} is longer than the action's ttl_seconds (${base.ttl_seconds}): ${TIGHTEN}`);
  }
  if (r.confirm === false) add("confirm", `can only turn the confirm dialog on (true): ${TIGHTEN}`);
  if (r.allow_self_approval === true) add("allow_self_approval", `can never turn self-approval on: ${TIGHTEN}`);
  if (r.allow_self_approval === false && base.allow_self_approval) {
    add("allow_self_approval", "a rule cannot change self-approval: set allow_self_approval on the action");
  }
  const actionHasGroups = base.approvers.some((id) => id.startsWith("S"));
  (r.approvers ?? []).forEach((id, j) => {
    if (r.approvers!.indexOf(id) < j) add("approvers", `lists ${id} twice`);
    else if (!base.approvers.includes(id) && !(actionHasGroups || id.startsWith("S"))) {
      details.push({
        path: here("approvers", j),
        message: `is not among the action's approvers: a rule can only narrow who decides, never add someone`,
      });
    }
  });
  // How many people could decide at most, when every list involved names users only (groups are resolved in Slack).
  const required = r.required_approvals ?? base.required_approvals;
  let available: number | null = base.available;
  if (r.approvers !== undefined) {
    const usersOnly = !actionHasGroups && r.approvers.every((id) => !id.startsWith("S"));
    available = usersOnly ? base.distinctPeople(r.approvers.filter((id) => base.approvers.includes(id))) : null;
  }
  if (!base.requester_only && details.length === 0 && available !== null && required > available) {
    add("required_approvals", `asks for ${required} approvals but only ${available} people could give one`);
  }
  if (details.length === 0) details.push(...escalatedProblems(r, base, here));
  return details;
}

/**
 * The rule carries into the escalated decision (rules only tighten): its approvers narrow the escalation's, and its
 * required_approvals is the least that decision needs. When the lists involved name users only, a rule that would
 * leave an escalated proposal with too few people to decide it is an error (escalating it would strand it).
 */
function escalatedProblems(r: RawRiskRule, base: RuleBase, here: (...s: (string | number)[]) => string): ErrorDetail[] {
  const escalation = base.escalation;
  if (escalation === null || (r.approvers === undefined && r.required_approvals === undefined)) return [];
  const listed = r.approvers ? escalation.approvers.filter((id) => r.approvers!.includes(id)) : escalation.approvers;
  const groups = [...escalation.approvers, ...(r.approvers ?? [])].some((id) => id.startsWith("S"));
  const needed = Math.max(escalation.required_approvals, r.required_approvals ?? 0);
  const people = base.distinctPeople(listed);
  if (groups || people >= needed) return [];
  const field = r.approvers ? "approvers" : "required_approvals";
  const who = r.approvers ? "listed both here and in escalation.approvers" : "among escalation.approvers";
  return [
    {
      path: here(field),
      message:
        `once escalated, ${needed} approval${needed === 1 ? " is" : "s are"} needed (the rule carries into the ` +
        `escalated decision) but only ${people} ${people === 1 ? "person is" : "people are"} ${who}`,
    },
  ];
}

/** The rule applied to a proposal: its index in the action's `rules`, and whether its condition held or failed. */
export interface MatchedRule {
  index: number;
  rule: RiskRule;
  /** The condition could not be evaluated (a missing param, a wrong type): doubt tightens, so the rule applies. */
  unevaluable: boolean;
}

/** What a condition reads, from a proposal draft. */
export interface RuleInput {
  params: Record<string, unknown>;
  summary: string;
  reason: string;
  blast_radius?: string | undefined;
  rollback?: string | undefined;
  requested_by?: string | undefined;
}

/** The first rule whose condition holds for the proposal (a condition that errors counts as holding), else null. */
export function matchRiskRule(rules: readonly RiskRule[], input: RuleInput): MatchedRule | null {
  const context = {
    params: input.params,
    summary: input.summary,
    reason: input.reason,
    blast_radius: input.blast_radius ?? "",
    rollback: input.rollback ?? "",
    requested_by: input.requested_by ?? "",
  };
  for (const [index, rule] of rules.entries()) {
    try {
      if (compile(rule.when)(context) === true) return { index, rule, unevaluable: false };
    } catch {
      return { index, rule, unevaluable: true };
    }
  }
  return null;
}
