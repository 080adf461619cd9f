// What a proposal's state means to a pipeline: the CLI's exit code for it and the words for it (progress while it
// waits, then who decided, why, and what the runner said). Pure: the CLI and the GitHub Action print these.
import type { Proposal, Status } from "./client.ts";

/** The CLI's exit codes (docs/cli.md); part of the contract. */
export const EXIT = {
  ok: 0,
  /** The signature of `verify-event` does not hold. */
  notVerified: 1,
  usage: 2,
  http: 3,
  /** --wait=SECONDS ran out before the proposal was decided. */
  stillWaiting: 4,
  denied: 10,
  expired: 11,
  cancelled: 12,
  failed: 13,
} as const;

const BY_STATUS: Record<Status, number> = {
  pending: EXIT.ok,
  approved: EXIT.ok,
  dispatched: EXIT.ok,
  succeeded: EXIT.ok,
  acknowledged: EXIT.ok,
  denied: EXIT.denied,
  // A verification prompt's "not sure": not a yes.
  escalated: EXIT.denied,
  expired: EXIT.expired,
  cancelled: EXIT.cancelled,
  failed: EXIT.failed,
  dispatch_failed: EXIT.failed,
};

/** The exit code for a proposal's status: 0 approved (and, when dispatched, succeeded), 10–13 otherwise. */
export function exitCodeOf(status: Status): number {
  return BY_STATUS[status];
}

/** Whether the status stops a pipeline: denied, expired, cancelled, failed, dispatch_failed (or a prompt's unsure). */
export function isRefusal(status: Status): boolean {
  return exitCodeOf(status) !== EXIT.ok;
}

/** "4m 05s", "1h 02m", "12s". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

/** The people who approved, as the API names them (slack:U…, link:<e-mail>). */
export function approversOf(p: Proposal): string[] {
  return p.approvals.map((a) => a.user);
}

/** The live line while waiting: `prp_… pending · 1 of 2 approvals · 12m 30s left`. */
export function progressLine(p: Proposal, now = Date.now()): string {
  const parts = [`${p.id} ${p.status}`, `${p.approvals.length} of ${p.rule.required_approvals} approvals`];
  if (p.status === "pending") parts.push(`${duration(Date.parse(p.expires_at) - now)} left`);
  if (p.status === "approved" || p.status === "dispatched") parts.push("waiting for the runner");
  return parts.join(" · ");
}

/** Who decided and why, then the runner's result: the lines shown once a proposal is final. */
export function outcomeLines(p: Proposal): string[] {
  const lines: string[] = [];
  const d = p.decision;
  const verb: Record<string, string> = {
    approved: "Approved",
    denied: "Denied",
    expired: "Expired",
    cancelled: "Cancelled",
    acknowledged: "Acknowledged",
    escalated: "Escalated",
  };
  if (d) {
    const who = d.outcome === "expired" ? "" : ` by ${d.by}`;
    lines.push(`${verb[d.outcome] ?? d.outcome}${who} at ${d.at}${d.reason ? `: ${d.reason}` : ""}`);
  }
  if (p.approvals.length > 0 && d?.outcome !== "approved") {
    lines.push(`Approvals: ${approversOf(p).join(", ")} (${p.approvals.length} of ${p.rule.required_approvals})`);
  } else if (d?.outcome === "approved") {
    lines.push(`Approved by: ${approversOf(p).join(", ")}`);
  }
  if (p.result) lines.push(`Runner: ${p.result.status} at ${p.result.at}`, ...indent(p.result.output));
  if (p.status === "dispatch_failed") {
    const refusal = p.dispatch.refusal;
    lines.push(
      refusal
        ? `Dispatch failed: the runner refused (HTTP ${refusal.http_status})${refusal.reason ? `: ${refusal.reason}` : ""}`
        : `Dispatch failed after ${p.dispatch.attempts} attempts${p.dispatch.last_error ? `: ${p.dispatch.last_error}` : ""}`,
    );
  }
  lines.push(`Status: ${p.status}`);
  return lines;
}

function indent(text: string): string[] {
  return text === ""
    ? []
    : text
        .replace(/\n$/, "")
        .split("\n")
        .map((line) => `  ${line}`);
}

/** One line for a decision that stops a pipeline: who decided and why (for an error annotation). */
export function refusalSentence(p: Proposal): string {
  const d = p.decision;
  switch (p.status) {
    case "denied":
    case "escalated":
      return `${p.action.type} was ${p.status} by ${d?.by ?? "someone"}${d?.reason ? `: ${d.reason}` : " (no reason given)"}`;
    case "expired":
      return `${p.action.type} expired at ${p.expires_at} with ${p.approvals.length} of ${p.rule.required_approvals} approvals`;
    case "cancelled":
      return `${p.action.type} was cancelled by ${d?.by ?? "its proposer"}${d?.reason ? `: ${d.reason}` : ""}`;
    case "failed":
      return `${p.action.type} was approved by ${approversOf(p).join(", ")} but the runner failed: ${firstLine(p.result?.output)}`;
    case "dispatch_failed":
      return `${p.action.type} was approved by ${approversOf(p).join(", ")} but could not be dispatched: ${
        p.dispatch.refusal?.reason ?? p.dispatch.last_error ?? "the runner did not answer"
      }`;
    default:
      return `${p.action.type} is ${p.status}`;
  }
}

function firstLine(text: string | undefined): string {
  return (text ?? "").split("\n")[0]?.slice(0, 300) || "(no output)";
}
