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

/**
 * A time in a reader's own time zone (an IANA name, e.g. from Slack's users.info `tz`): "1 Dec 2026, 15:05 (Europe/Berlin)".
 * An unknown or missing zone falls back to utcText.
 */
export function zonedText(at: string, timeZone: string | null): string {
  const ms = Date.parse(at);
  if (Number.isNaN(ms) || !timeZone) return utcText(at);
  try {
    const text = new Intl.DateTimeFormat("en-GB", { timeZone, dateStyle: "medium", timeStyle: "short" }).format(ms);
    return `${text} (${timeZone})`;
  } catch {
    return utcText(at);
  }
}

/** A duration as people say it, rounded down to its two largest units: "1 h 5 min", "4 min 30 s", "12 s". */
export function durationText(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const parts: [number, string][] = [
    [Math.floor(total / 86_400), "d"],
    [Math.floor((total % 86_400) / 3600), "h"],
    [Math.floor((total % 3600) / 60), "min"],
    [total % 60, "s"],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  if (first === -1) return "0 s";
  return parts
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, unit]) => `${n} ${unit}`)
    .join(" ");
}
