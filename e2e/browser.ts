// Headless Chromium for the browser tests: Debian's chromium (never a downloaded browser),
// started with the flags this sandboxed, offline machine needs, and where screenshots go.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { ROOT } from "../scripts/local/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  // Without these Chromium keeps calling out to Google, which a closed network refuses.
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** test-results/screenshots, or SCREENSHOTS_DIR (docs/screenshots to refresh the docs). */
export const SCREENSHOTS = resolve(ROOT, process.env.SCREENSHOTS_DIR ?? join("test-results", "screenshots"));

export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}
