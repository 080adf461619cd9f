// Change freezes (policy `freezes`): fixed ranges and recurring windows (cron in a time zone, through croner) during
// which the actions they name take no new proposals. Checked when the policy loads; asked per proposal at creation.

import { Cron } from "croner";
import { z } from "zod";
import type { ErrorDetail } from "../errors.ts";
import { closest, formatPath, zodDetails } from "../lib/details.ts";
import { isActionPattern, patternCovers } from "./action-patterns.ts";
import { explainIssue } from "./problems.ts";

/** An instant with its offset (`2026-12-24T00:00:00Z`, `…+01:00`): a freeze never depends on the Worker's zone. */
const INSTANT = /^\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d{1,3})?)?(?:Z|[+-]\d\d:\d\d)$/;
/** The longest a recurring window may last: a week (a longer freeze is a fixed range). */
const MAX_WINDOW_SECONDS = 7 * 24 * 3600;
export const FREEZES_MAX = 50;

const instant = z.string().regex(INSTANT, "must be an ISO 8601 instant with its offset, e.g. 2026-12-24T00:00:00Z");

const freezeShape = {
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,63}$/, "1–64 of A-Z a-z 0-9 space _ . : -"),
  actions: z.array(z.string().refine(isActionPattern, "must be an action type, `prefix.*` or `*`")).min(1),
  start: instant.optional(),
  end: instant.optional(),
  cron: z.string().max(100).optional(),
  duration_seconds: z.int().min(60).max(MAX_WINDOW_SECONDS).optional(),
  timezone: z.string().max(64).optional(),
};
const freezeSchema = z.strictObject(freezeShape);
export const FREEZE_FIELDS = Object.keys(freezeShape);

/** One freeze as parsed: a fixed range, or a recurring window of `duration_seconds` from each cron time. */
export type Freeze =
  | { name: string; actions: string[]; kind: "fixed"; start: string; end: string }
  | { name: string; actions: string[]; kind: "recurring"; cron: string; timezone: string; duration_seconds: number };

/** The freeze a proposal would be created in: which one, and when it ends (ISO, UTC). */
export interface ActiveFreeze {
  name: string;
  ends_at: string;
}

/** Problems of the policy's `freezes` and, when there are none, the freezes. `actionTypes` are the policy's actions. */
export function parseFreezes(
  raw: unknown,
  actionTypes: readonly string[],
  root: string,
): { freezes: Freeze[]; details: ErrorDetail[] } {
  const list = z.array(z.unknown()).max(FREEZES_MAX).safeParse(raw, { error: explainIssue });
  if (!list.success) return { freezes: [], details: zodDetails(formatPath(root, ["freezes"]), list.error.issues) };
  const details: ErrorDetail[] = [];
  const freezes: Freeze[] = [];
  const names = new Set<string>();
  list.data.forEach((entry, i) => {
    const at = (...segments: (string | number)[]) => formatPath(root, ["freezes", i, ...segments]);
    const parsed = freezeSchema.safeParse(entry, { error: explainIssue });
    if (!parsed.success) {
      details.push(...zodDetails(at(), parsed.error.issues, FREEZE_FIELDS));
      return;
    }
    const f = parsed.data;
    const problems: ErrorDetail[] = [];
    if (names.has(f.name)) problems.push({ path: at("name"), message: `"${f.name}" names another freeze too` });
    names.add(f.name);
    f.actions.forEach((pattern, j) => {
      if (actionTypes.some((type) => patternCovers(pattern, type))) return;
      const guess = closest(pattern, actionTypes);
      problems.push({
        path: at("actions", j),
        message: `covers no action in the policy${guess ? ` (did you mean "${guess}"?)` : ""}`,
      });
    });
    const fixed = f.start !== undefined || f.end !== undefined;
    const recurring = f.cron !== undefined || f.duration_seconds !== undefined || f.timezone !== undefined;
    if (fixed === recurring) {
      problems.push({
        path: at(),
        message: "give either start and end (a fixed range) or cron and duration_seconds (a recurring window)",
      });
    } else if (fixed) {
      if (f.start === undefined) problems.push({ path: at("start"), message: "is required with end" });
      else if (f.end === undefined) problems.push({ path: at("end"), message: "is required with start" });
      else if (Date.parse(f.end) <= Date.parse(f.start))
        problems.push({ path: at("end"), message: "must be after start" });
      if (problems.length === 0) {
        freezes.push({
          name: f.name,
          actions: f.actions,
          kind: "fixed",
          start: new Date(Date.parse(f.start!)).toISOString(),
          end: new Date(Date.parse(f.end!)).toISOString(),
        });
      }
    } else {
      const timezone = f.timezone ?? "UTC";
      if (!validTimeZone(timezone)) {
        problems.push({ path: at("timezone"), message: "is not an IANA time zone such as Europe/Berlin" });
      }
      if (f.cron === undefined) problems.push({ path: at("cron"), message: "is required for a recurring window" });
      else {
        const cronProblem = cronPatternProblem(f.cron);
        if (cronProblem) problems.push({ path: at("cron"), message: cronProblem });
      }
      if (f.duration_seconds === undefined) {
        problems.push({ path: at("duration_seconds"), message: "is required: how long each window lasts" });
      }
      if (problems.length === 0) {
        freezes.push({
          name: f.name,
          actions: f.actions,
          kind: "recurring",
          cron: f.cron!,
          timezone,
          duration_seconds: f.duration_seconds!,
        });
      }
    }
    details.push(...problems);
  });
  return { freezes, details };
}

function validTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function cronPatternProblem(pattern: string): string | null {
  try {
    new Cron(pattern, { paused: true });
    return null;
  } catch (error) {
    // croner's messages name the field and value ("Invalid value for minute: 61"); the pattern is the policy's own.
    const message = error instanceof Error ? error.message.replace(/^CronPattern:\s*/, "") : "";
    return `is not a cron pattern (minute hour day month weekday): ${message || "unreadable"}`;
  }
}

/** Windows that touch or overlap run on: how many later starts are followed at most, to find where a freeze ends. */
const MAX_CHAINED_WINDOWS = 100;

/** The end (ms) of the recurring window `now` falls in, or null when it falls in none. */
function recurringEnd(f: Extract<Freeze, { kind: "recurring" }>, now: number): number | null {
  const cron = new Cron(f.cron, { timezone: f.timezone, paused: true });
  const length = f.duration_seconds * 1000;
  // The first start after (now − length) that is not after now is a window holding now.
  const start = cron.nextRun(new Date(now - length));
  if (!start || start.getTime() > now) return null;
  let end = start.getTime() + length;
  for (let i = 0; i < MAX_CHAINED_WINDOWS; i++) {
    const next = cron.nextRun(new Date(end - 1));
    if (!next || next.getTime() > end) break;
    end = next.getTime() + length;
  }
  return end;
}

/**
 * The freeze covering `actionType` at `now` (ms), or null. When several do, the one that ends last: the proposal is
 * refused until all of them are over.
 */
export function activeFreeze(freezes: readonly Freeze[], actionType: string, now: number): ActiveFreeze | null {
  let found: { name: string; end: number } | null = null;
  for (const f of freezes) {
    if (!f.actions.some((pattern) => patternCovers(pattern, actionType))) continue;
    const end =
      f.kind === "fixed"
        ? Date.parse(f.start) <= now && now < Date.parse(f.end)
          ? Date.parse(f.end)
          : null
        : recurringEnd(f, now);
    if (end !== null && (found === null || end > found.end)) found = { name: f.name, end };
  }
  return found && { name: found.name, ends_at: new Date(found.end).toISOString() };
}
