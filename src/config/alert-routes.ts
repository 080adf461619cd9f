// Policy `adapters.alertmanager.routes`: which Alertmanager alerts become which proposals, their texts and params as
// templates over the alert's labels and annotations. Parsed and checked when the policy loads (every template, every
// regex, the action each names), and the pure questions asked of them per alert: which route, and the rendered body.
import { z } from "zod";
import type { ErrorDetail } from "../errors.ts";
import { closest, formatPath, zodDetails } from "../lib/details.ts";
// Types only: policy.ts imports this module, and builds its vocabulary from ours when it loads.
import type { ActionPolicy } from "./policy.ts";
import { explainIssue, isPlainObject } from "./problems.ts";

/** Prometheus label (and annotation) names. */
const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The alert's own fields a template may name, besides `labels.<name>` and `annotations.<name>`. */
const ALERT_FIELDS = ["fingerprint", "startsAt", "generatorURL", "externalURL"] as const;
/** `{{ labels.deployment }}`: one field reference, spaces inside the braces optional. */
const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** What a route writes when it leaves a text out: the annotation of the same purpose. */
export const TEXT_DEFAULTS = {
  summary: "{{ annotations.summary }}",
  reason: "{{ annotations.description }}",
  blast_radius: "{{ annotations.blast_radius }}",
  rollback: "{{ annotations.rollback }}",
} as const;
type TextField = keyof typeof TEXT_DEFAULTS;
const TEXT_FIELDS = Object.keys(TEXT_DEFAULTS) as TextField[];

const labelName = z.string().regex(LABEL_NAME, "label names use A-Z, a-z, 0-9 and _, not starting with a digit");

const routeSchema = z.strictObject({
  match: z.record(labelName, z.string()).default({}),
  match_re: z.record(labelName, z.string().max(1000)).default({}),
  action: z.string(),
  params: z.record(z.string(), z.unknown()).default({}),
  summary: z.string().max(300).optional(),
  reason: z.string().max(3000).optional(),
  blast_radius: z.string().max(3000).optional(),
  rollback: z.string().max(3000).optional(),
  requested_by: z.string().max(200).optional(),
  ttl_seconds: z.int().min(1).optional(),
  group: z.boolean().optional(),
});

const adaptersSchema = z.strictObject({
  alertmanager: z.strictObject({ routes: z.array(z.unknown()) }).optional(),
});

/** Field names for "did you mean" under `adapters`. */
export const ADAPTER_VOCABULARY = ["alertmanager", "routes", ...Object.keys(routeSchema.shape)];

/** One route, defaults applied: the first route an alert matches decides what it proposes. */
export interface AlertRoute {
  /** Label name → the exact value it must have (`alertname` is a label). */
  match: Readonly<Record<string, string>>;
  /** Label name → a regular expression the whole value must match (anchored, as Alertmanager's `=~`). */
  match_re: Readonly<Record<string, string>>;
  action: string;
  /** Params as written; every string in them is a template. */
  params: Readonly<Record<string, unknown>>;
  summary: string;
  reason: string;
  blast_radius: string;
  rollback: string;
  /** A template for `requested_by` (a Slack user id, or a label holding one), or null. */
  requested_by: string | null;
  ttl_seconds: number | null;
  /** The alerts of one Alertmanager group share one grouped Slack card (docs/grouping.md); false: a card each. */
  group: boolean;
}

/** The alert as templates see it (a firing or resolved alert of Alertmanager's webhook, version 4). */
export interface AlertFields {
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  fingerprint: string;
  startsAt: string;
  generatorURL: string;
  externalURL: string;
}

/** What a template names that is not a known field, or null when every placeholder is one. */
function templateProblem(template: string): string | null {
  const stray = template.replace(PLACEHOLDER, "");
  if (stray.includes("{{") || stray.includes("}}")) return "has an unclosed {{ or a stray }}";
  for (const [, field] of template.matchAll(PLACEHOLDER)) {
    if (isField(field!)) continue;
    const vocabulary = [...ALERT_FIELDS, "labels.alertname", "annotations.summary", "annotations.description"];
    const dot = field!.indexOf(".");
    const guess =
      dot > 0 && LABEL_NAME.test(field!.slice(dot + 1))
        ? closest(field!.slice(0, dot), ["labels", "annotations"])?.concat(field!.slice(dot))
        : closest(field!, vocabulary);
    const hint = guess ? ` (did you mean "{{ ${guess} }}"?)` : "";
    return `{{ ${field} }} is not a field of the alert${hint}: use labels.<name>, annotations.<name>, ${ALERT_FIELDS.join(", ")}`;
  }
  return null;
}

function isField(field: string): boolean {
  if ((ALERT_FIELDS as readonly string[]).includes(field)) return true;
  const match = /^(labels|annotations)\.(.+)$/.exec(field);
  return match !== null && LABEL_NAME.test(match[2]!);
}

/** Every string in a JSON value, with its path below `at`. */
function* stringsOf(value: unknown, path: (string | number)[] = []): Generator<[(string | number)[], string]> {
  if (typeof value === "string") yield [path, value];
  else if (Array.isArray(value)) for (const [i, item] of value.entries()) yield* stringsOf(item, [...path, i]);
  else if (isPlainObject(value)) for (const [k, item] of Object.entries(value)) yield* stringsOf(item, [...path, k]);
}

/**
 * `adapters` of the policy: its routes with defaults applied, or every problem at its field's path. `actions` are the
 * policy's parsed actions: a route must name one of them, an approval (a verification prompt asks one person about
 * their own doing, which an alert cannot be), and never a requester_only one (its requester confirms alone, and an
 * alert cannot vouch for who asked).
 */
export function parseAdapters(
  raw: unknown,
  actions: Readonly<Record<string, ActionPolicy>>,
  root: string,
  details: ErrorDetail[],
): AlertRoute[] {
  if (raw === undefined) return [];
  const at = (...segments: (string | number)[]) => formatPath(root, ["adapters", ...segments]);
  const top = adaptersSchema.safeParse(raw, { error: explainIssue });
  if (!top.success) {
    details.push(...zodDetails(at(), top.error.issues, ADAPTER_VOCABULARY));
    return [];
  }
  const routes: AlertRoute[] = [];
  for (const [i, rawRoute] of (top.data.alertmanager?.routes ?? []).entries()) {
    const here = (...segments: (string | number)[]) => at("alertmanager", "routes", i, ...segments);
    const parsed = routeSchema.safeParse(rawRoute, { error: explainIssue });
    if (!parsed.success) {
      details.push(...zodDetails(here(), parsed.error.issues, ADAPTER_VOCABULARY));
      continue;
    }
    const r = parsed.data;
    const problems: ErrorDetail[] = [];
    if (r.match.alertname === undefined && r.match_re.alertname === undefined) {
      problems.push({ path: here("match"), message: "name the alert: match.alertname (or match_re.alertname)" });
    }
    for (const [label, pattern] of Object.entries(r.match_re)) {
      try {
        new RegExp(pattern);
      } catch {
        problems.push({ path: here("match_re", label), message: "is not a valid regular expression" });
      }
    }
    const action = Object.hasOwn(actions, r.action) ? actions[r.action] : undefined;
    if (!action) {
      const guess = closest(r.action, Object.keys(actions));
      problems.push({
        path: here("action"),
        message: `${r.action} is not in the policy's actions${guess ? ` (did you mean "${guess}"?)` : ""}`,
      });
    } else if (action.verify) {
      problems.push({
        path: here("action"),
        message: `${r.action} is a verification prompt: routes propose approvals`,
      });
    } else if (action.requester_only) {
      // A requester_only proposal is confirmed by the person it names alone; the proposer is the second party, vouching
      // that this person asked. An alert cannot vouch: whoever can write alerts (or their labels) would choose who
      // confirms, and could name themselves (contract §12).
      problems.push({
        path: here("action"),
        message:
          `${r.action} is requester_only (its requester confirms alone): ` +
          "an alert cannot say who asked; route to an action others approve",
      });
    }
    const route: AlertRoute = {
      match: r.match,
      match_re: r.match_re,
      action: r.action,
      params: r.params,
      summary: r.summary ?? TEXT_DEFAULTS.summary,
      reason: r.reason ?? TEXT_DEFAULTS.reason,
      blast_radius: r.blast_radius ?? TEXT_DEFAULTS.blast_radius,
      rollback: r.rollback ?? TEXT_DEFAULTS.rollback,
      requested_by: r.requested_by ?? null,
      ttl_seconds: r.ttl_seconds ?? null,
      group: r.group ?? false,
    };
    const templates: [(string | number)[], string][] = [
      ...[...stringsOf(r.params)].map(([path, text]): [(string | number)[], string] => [["params", ...path], text]),
      ...TEXT_FIELDS.map((field): [(string | number)[], string] => [[field], route[field]]),
      ...(route.requested_by === null ? [] : [[["requested_by"], route.requested_by] as [(string | number)[], string]]),
    ];
    for (const [path, text] of templates) {
      const problem = templateProblem(text);
      if (problem) problems.push({ path: here(...path), message: problem });
    }
    if (action && r.ttl_seconds !== undefined && r.ttl_seconds > action.max_ttl_seconds) {
      const message = `is more than ${r.action}'s max_ttl_seconds (${action.max_ttl_seconds})`;
      problems.push({ path: here("ttl_seconds"), message });
    }
    details.push(...problems);
    if (problems.length === 0) routes.push(route);
  }
  return routes;
}

/** The first route `labels` match, with its index, or null. */
export function routeFor(
  routes: readonly AlertRoute[],
  labels: Readonly<Record<string, string>>,
): { route: AlertRoute; index: number } | null {
  const index = routes.findIndex(
    (route) =>
      Object.entries(route.match).every(([label, value]) => (labels[label] ?? "") === value) &&
      Object.entries(route.match_re).every(([label, pattern]) =>
        new RegExp(`^(?:${pattern})$`).test(labels[label] ?? ""),
      ),
  );
  return index === -1 ? null : { route: routes[index]!, index };
}

function fieldOf(alert: AlertFields, field: string): string {
  if (field.startsWith("labels.")) return alert.labels[field.slice(7)] ?? "";
  if (field.startsWith("annotations.")) return alert.annotations[field.slice(12)] ?? "";
  return alert[field as (typeof ALERT_FIELDS)[number]] ?? "";
}

/** The route's body for `alert` as POST /v1/proposals takes it, or the fields its templates need and the alert lacks. */
export function renderRoute(
  route: AlertRoute,
  alert: AlertFields,
): { ok: true; body: Record<string, unknown> } | { ok: false; missing: string[] } {
  const missing = new Set<string>();
  // An empty label is an absent one in Prometheus: it is missing too, never rendered as "".
  const render = (template: string) =>
    template.replace(PLACEHOLDER, (_, field: string) => {
      const value = fieldOf(alert, field);
      if (value === "") missing.add(field);
      return value;
    });
  const renderAll = (value: unknown): unknown => {
    if (typeof value === "string") return render(value);
    if (Array.isArray(value)) return value.map(renderAll);
    if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderAll(v)]));
    return value;
  };
  const body: Record<string, unknown> = {
    action: { type: route.action, params: renderAll(route.params) },
    ...Object.fromEntries(TEXT_FIELDS.map((field) => [field, render(route[field])])),
    ...(route.requested_by === null ? {} : { requested_by: render(route.requested_by) }),
    ...(route.ttl_seconds === null ? {} : { ttl_seconds: route.ttl_seconds }),
  };
  if (missing.size > 0) return { ok: false, missing: [...missing].sort() };
  return { ok: true, body };
}
