// wrangler's API for the operator commands. Its package is one CommonJS file of about 15 MB: required rather than
// imported, Node neither lexes all of it for named exports nor guesses its module format first, which is a second
// of every command's start. Same file, same exports ("default" of its package exports either way).
import { createRequire } from "node:module";

export type Wrangler = typeof import("wrangler");

/** Loads wrangler (seconds): call it once the arguments are known to be usable, so --help answers at once. */
export function loadWrangler(): Wrangler {
  return createRequire(import.meta.url)("wrangler") as Wrangler;
}
