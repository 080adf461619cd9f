// JSON in printable ASCII only: how a value that will be dispatched is shown to a person (issue 11 item 4).

/**
 * `JSON.stringify(value, null, indent)`, with every character outside printable ASCII (U+0020–U+007E), and the
 * backtick, written as a `\uXXXX` escape. The result is still JSON and parses to exactly the same value as what is
 * dispatched, but nothing in it can be invisible (zero-width characters, bidi overrides, controls), pass for
 * another character (a Cyrillic а for a Latin a) or close a Slack code span or fence (the backtick).
 */
export function asciiJson(value: unknown, indent?: number): string {
  const json = JSON.stringify(value, null, indent) ?? "null";
  // Outside strings JSON.stringify writes only printable ASCII and, when indenting, the line feeds kept here;
  // a line feed inside a string is already written as \n. Without the u flag each UTF-16 unit is escaped alone,
  // so a surrogate pair becomes two escapes, as JSON writes it.
  return json.replace(/[^\x20-\x5f\x61-\x7e\n]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
