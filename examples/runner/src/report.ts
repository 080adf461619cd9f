// Reports a finished job to signoff (POST /v1/proposals/:id/result), signed with Standard Webhooks, with retries.
import type { Webhook } from "standardwebhooks";

export interface ReportPolicy {
  /** Deliveries tried in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Per attempt. */
  requestTimeoutMs: number;
}

export const DEFAULT_REPORT_POLICY: ReportPolicy = {
  attempts: 8,
  baseDelayMs: 2000,
  maxDelayMs: 5 * 60_000,
  requestTimeoutMs: 10_000,
};

export interface ReportInput {
  signoffUrl: string;
  webhook: Webhook;
  proposalId: string;
  /** Stable across retries, so signoff can tell a retry from a second report. */
  msgId: string;
  result: { status: "succeeded" | "failed"; output: string };
  policy: ReportPolicy;
  signal: AbortSignal;
  log: (event: Record<string, unknown>) => void;
}

export function resultUrl(signoffUrl: string, proposalId: string): string {
  return `${signoffUrl.replace(/\/+$/, "")}/v1/proposals/${encodeURIComponent(proposalId)}/result`;
}

/** Whether a failed delivery is worth repeating: the same rule signoff applies to dispatches (SPEC 6). */
function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Resolves true once signoff accepted the result, false when it refused or retries ran out. */
export async function reportResult(input: ReportInput): Promise<boolean> {
  const url = resultUrl(input.signoffUrl, input.proposalId);
  // proposal_id inside the signed body binds the result to its proposal (signoff refuses it elsewhere).
  const body = JSON.stringify({ ...input.result, proposal_id: input.proposalId });
  for (let attempt = 1; attempt <= input.policy.attempts && !input.signal.aborted; attempt++) {
    // A fresh timestamp each attempt: a retry hours later must not be refused as stale.
    // One clock reading for both the header and the signature, or they may straddle a second.
    const seconds = Math.floor(Date.now() / 1000);
    const headers = {
      "content-type": "application/json",
      "webhook-id": input.msgId,
      "webhook-timestamp": String(seconds),
      "webhook-signature": input.webhook.sign(input.msgId, new Date(seconds * 1000), body),
    };
    let status = 0;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.any([input.signal, AbortSignal.timeout(input.policy.requestTimeoutMs)]),
      });
      status = response.status;
      await response.body?.cancel();
    } catch (error) {
      input.log({ event: "report_error", proposal_id: input.proposalId, attempt, error: (error as Error).name });
    }
    if (status >= 200 && status < 300) {
      input.log({ event: "reported", proposal_id: input.proposalId, attempt, http_status: status });
      return true;
    }
    if (status !== 0 && !retryable(status)) {
      input.log({ event: "report_refused", proposal_id: input.proposalId, attempt, http_status: status });
      return false;
    }
    if (attempt < input.policy.attempts) {
      const delay = Math.min(input.policy.maxDelayMs, input.policy.baseDelayMs * 2 ** (attempt - 1));
      input.log({
        event: "report_retry",
        proposal_id: input.proposalId,
        attempt,
        http_status: status,
        delay_ms: delay,
      });
      await sleep(delay, input.signal);
    }
  }
  input.log({ event: "report_gave_up", proposal_id: input.proposalId });
  return false;
}
