// GET /metrics (issue 16): the audit log's aggregates in the Prometheus text exposition format (version 0.0.4):
// counters of proposals, statuses, decisions, approvals, escalations and reminders by action, and a histogram of the
// time to decision. Pure: src/stats/store.ts reads the numbers.
import { type CounterRow, DECISION_BUCKETS, type HistogramRow } from "./store.ts";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Record<string, string>;
interface Sample {
  name: string;
  labels: Labels;
  value: number;
}
interface Family {
  name: string;
  type: "counter" | "histogram";
  help: string;
  samples: Sample[];
}

/** A label value as the format writes it: backslash, double quote and line feed escaped. */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function line(s: Sample): string {
  const labels = Object.entries(s.labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(",");
  return `${s.name}${labels ? `{${labels}}` : ""} ${Number.isFinite(s.value) ? s.value : 0}`;
}

/** The statuses a `proposal.<status>` event records (an escalation that moves the decision is not one). */
function statusOf(row: CounterRow): string | null {
  if (!row.type.startsWith("proposal.") || row.type === "proposal.created") return null;
  if (row.type === "proposal.escalated" && !row.answered) return null;
  return row.type.slice("proposal.".length);
}

const DECIDED = new Set(["approved", "denied", "acknowledged", "escalated"]);

/** The metrics page for these aggregates. */
export function renderMetrics(counters: readonly CounterRow[], histogram: readonly HistogramRow[]): string {
  const family = (name: string, type: Family["type"], help: string): Family => ({ name, type, help, samples: [] });
  const created = family("signoff_proposals_created_total", "counter", "Proposals created, by action.");
  const statuses = family(
    "signoff_proposals_status_total",
    "counter",
    "Proposals that reached each status, by action (a proposal counts once for every status it passed through).",
  );
  const decisions = family(
    "signoff_decisions_total",
    "counter",
    "Decisions by a person (approved, denied, or a verification prompt answered), by action and outcome.",
  );
  const approvals = family("signoff_approvals_total", "counter", "Approvals recorded (each person's vote), by action.");
  const escalations = family(
    "signoff_escalations_total",
    "counter",
    "Escalations, by action and trigger (click, or automatic after escalation.after_seconds).",
  );
  const reminders = family("signoff_reminders_sent_total", "counter", "Reminders posted in Slack, by action.");
  const add = (f: Family, labels: Labels, n: number) => {
    const same = f.samples.find((s) => JSON.stringify(s.labels) === JSON.stringify(labels));
    if (same) same.value += n;
    else f.samples.push({ name: f.name, labels, value: n });
  };
  for (const row of counters) {
    const action = String(row.action);
    const n = Number(row.n);
    if (row.type === "proposal.created") add(created, { action }, n);
    else if (row.type === "approval.recorded") add(approvals, { action }, n);
    else if (row.type === "reminder.sent") add(reminders, { action }, n);
    else if (row.type === "proposal.escalated" && !row.answered)
      add(escalations, { action, trigger: row.automatic ? "automatic" : "click" }, n);
    const status = statusOf(row);
    if (status === null) continue;
    add(statuses, { action, status }, n);
    if (DECIDED.has(status)) add(decisions, { action, outcome: status }, n);
  }
  const time = family(
    "signoff_decision_seconds",
    "histogram",
    "Seconds from a proposal's creation to a person's decision, by action.",
  );
  for (const h of histogram) {
    const labels = { action: h.action };
    DECISION_BUCKETS.forEach((le, i) => {
      time.samples.push({ name: `${time.name}_bucket`, labels: { ...labels, le: String(le) }, value: h.buckets[i]! });
    });
    time.samples.push({ name: `${time.name}_bucket`, labels: { ...labels, le: "+Inf" }, value: h.count });
    time.samples.push({ name: `${time.name}_sum`, labels, value: h.sum });
    time.samples.push({ name: `${time.name}_count`, labels, value: h.count });
  }
  return [created, statuses, decisions, approvals, escalations, reminders, time]
    .flatMap((f) => [`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`, ...f.samples.map(line)])
    .join("\n")
    .concat("\n");
}
