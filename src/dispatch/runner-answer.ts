// What a runner's HTTP answer means for the proposal (SPEC 6): pure classification, and the one schema of a runner's
// result, whether it comes as the dispatch's answer or later on POST /v1/proposals/:id/result.
import { z } from "zod";
import { isRetryableStatus } from "../lib/retry.ts";

export type RunnerAnswer =
  | { kind: "final"; status: "succeeded" | "failed"; output: string }
  | { kind: "accepted" }
  | { kind: "retry"; error: string }
  | {
      kind: "refused";
      error: string;
      /** The runner's HTTP status. */
      httpStatus: number;
      /** Its 4xx body as data (`refusalReason`), or null: what people are shown as the runner's reason. */
      reason: string | null;
    };

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

/** The most of a runner's refusal that is kept: enough for "params_rejected: argument 1 may not start with '-'". */
export const MAX_REFUSAL_REASON_CHARS = 300;

// Characters that would hide or reorder text (controls, bidi and other format characters, private use, lone
// surrogates): shown as U+FFFD, so the reason people read is the reason the runner sent.
const INVISIBLE = /(?![\n\t])[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/gu;

/**
 * A runner's refusal (its 4xx body) as data (issue 13): never parsed or acted on, never an error message; line
 * breaks normalised, invisible characters replaced, cut to MAX_REFUSAL_REASON_CHARS code points (with … when cut).
 * Null when it says nothing. Whoever shows it escapes it (the card puts it in a code block).
 */
export function refusalReason(bodyText: string): string | null {
  const text = bodyText.replace(/\r\n?/g, "\n").replace(INVISIBLE, "\uFFFD").trim();
  if (text === "") return null;
  const points = [...text];
  return points.length <= MAX_REFUSAL_REASON_CHARS
    ? text
    : `${points.slice(0, MAX_REFUSAL_REASON_CHARS - 1).join("")}…`;
}

export function classifyRunnerResponse(status: number, bodyText: string): RunnerAnswer {
  if (status === 202) return { kind: "accepted" };
  if (status >= 200 && status < 300) {
    const result = parseResult(bodyText);
    return result ? { kind: "final", ...result } : { kind: "accepted" };
  }
  // Upstream bodies are never copied into errors: they may hold anything.
  if (isRetryableStatus(status)) return { kind: "retry", error: `runner answered HTTP ${status}` };
  // Only a refusal (4xx) keeps its body, as data apart from the error: the runner is trusted to run the action, and
  // saying why it would not is part of that. A redirect's or a server error's body is never kept.
  const reason = status >= 400 && status < 500 ? refusalReason(bodyText) : null;
  return { kind: "refused", error: `runner refused with HTTP ${status}`, httpStatus: status, reason };
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
