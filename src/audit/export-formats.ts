// Audit export encodings for `GET /v1/audit?format=ndjson|csv`.
import type { StoredAuditEvent } from "./store.ts";

const CSV_COLUMNS = [
  "seq",
  "at",
  "proposal_id",
  "idx",
  "type",
  "actor",
  "details",
  "prev_hash",
  "hash",
  "head_sig",
] as const;

export function toNdjson(events: readonly StoredAuditEvent[]): string {
  return events.map((event) => `${JSON.stringify(event)}\n`).join("");
}

/** RFC 4180 CSV: a header line, then one row per event; `details` as its JSON text. */
export function toCsv(events: readonly StoredAuditEvent[]): string {
  const lines = [CSV_COLUMNS.join(",")];
  for (const event of events) {
    lines.push(
      CSV_COLUMNS.map((column) => {
        const value =
          column === "details"
            ? JSON.stringify(event.details)
            : column === "head_sig"
              ? (event.head_sig ?? "")
              : String(event[column]);
        return csvField(value);
      }).join(","),
    );
  }
  return `${lines.join("\r\n")}\r\n`;
}

function csvField(value: string): string {
  // A leading =, +, - or @ would make spreadsheets evaluate the cell: prefix a quote (CSV injection).
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
