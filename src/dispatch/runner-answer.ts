// What a runner's HTTP answer means for the proposal (SPEC 6): pure classification, and the one schema of a runner's
// result, whether it comes as the dispatch's answer or later on POST /v1/proposals/:id/result.
import { z } from "zod";
import { isRetryableStatus } from "../lib/retry.ts";

export type RunnerAnswer =
  | { kind: "final"; status: "succeeded" | "failed"; output: string }
  | { kind: "accepted" }
  | { kind: "retry"; error: string }
  | { kind: "refused"; error: string };

/**
 * The most output a proposal keeps, however its result arrived. Longer output is cut to this many characters, never
 * refused: a run's outcome matters more than the tail of its log, and the card shows far less anyway.
 */
export const MAX_OUTPUT_CHARS = 16_384;

/** Output as text: a string as it is, absent or null as "", any other JSON value as its JSON text; then cut. */
function outputText(value: unknown): string {
  const text = value === undefined || value === null ? "" : typeof value === "string" ? value : JSON.stringify(value);
  return text.slice(0, MAX_OUTPUT_CHARS);
}

/**
 * A runner's result `{status, output}`: one rule for a synchronous answer and an asynchronous report. Other fields
 * are ignored here; the result route's ResultBody adds proposal_id and refuses anything else.
 */
export const RunnerResult = z.object({
  status: z.enum(["succeeded", "failed"]),
  output: z
    .unknown()
    .optional()
    .transform(outputText)
    .describe(
      `text (any other JSON value is kept as its JSON text; absent or null is ""); ` +
        `only the first ${MAX_OUTPUT_CHARS} characters are kept, longer output is cut, not refused`,
    ),
});
export type RunnerResult = z.infer<typeof RunnerResult>;

export function classifyRunnerResponse(status: number, bodyText: string): RunnerAnswer {
  if (status === 202) return { kind: "accepted" };
  if (status >= 200 && status < 300) {
    const result = parseResult(bodyText);
    return result ? { kind: "final", ...result } : { kind: "accepted" };
  }
  // Upstream bodies are never copied into errors: they may hold anything.
  if (isRetryableStatus(status)) return { kind: "retry", error: `runner answered HTTP ${status}` };
  return { kind: "refused", error: `runner refused with HTTP ${status}` };
}

/** The result in a runner's answer body, or null when it holds none (then the result comes later). */
export function parseResult(bodyText: string): RunnerResult | null {
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    return null;
  }
  const result = RunnerResult.safeParse(body);
  return result.success ? result.data : null;
}

/** The SPEC 6 dispatch body for one attempt. */
export function dispatchBody(
  p: {
    id: string;
    action: { type: string; params: Record<string, unknown> };
    approvals: Array<{ user: string }>;
    requested_by: string | null;
    decision: { at: string } | null;
    plan_sha256: string;
  },
  attempt: number,
): string {
  return JSON.stringify({
    type: "proposal.approved",
    proposal_id: p.id,
    action: p.action,
    approvers: p.approvals.map((a) => a.user),
    requested_by: p.requested_by,
    approved_at: p.decision?.at ?? null,
    plan_sha256: p.plan_sha256,
    attempt,
  });
}
