// What a runner's HTTP answer means for the proposal (SPEC 6): pure classification.
import { isRetryableStatus } from "../lib/retry.ts";

export type RunnerAnswer =
  | { kind: "final"; status: "succeeded" | "failed"; output: string }
  | { kind: "accepted" }
  | { kind: "retry"; error: string }
  | { kind: "refused"; error: string };

/** Longest runner output kept with the proposal; the card shows far less. */
export const MAX_OUTPUT_CHARS = 16_384;

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

/** A `{status, output}` result body, from a runner answer or an async result report. */
export function parseResult(bodyText: string): { status: "succeeded" | "failed"; output: string } | null {
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    return null;
  }
  if (typeof body !== "object" || body === null) return null;
  const { status, output } = body as { status?: unknown; output?: unknown };
  if (status !== "succeeded" && status !== "failed") return null;
  const text =
    output === undefined || output === null ? "" : typeof output === "string" ? output : JSON.stringify(output);
  return { status, output: text.slice(0, MAX_OUTPUT_CHARS) };
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
