// Times as people read them in signoff's own pages and mails: "2026-12-01 13:05:07 UTC" (no local time zone to
// guess at); anything that is not a time is shown as it is.
export function utcText(at: string): string {
  const ms = Date.parse(at);
  return Number.isNaN(ms)
    ? at
    : new Date(ms)
        .toISOString()
        .replace(/\.\d{3}Z$/, " UTC")
        .replace("T", " ");
}
