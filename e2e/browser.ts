// Headless Chromium for the browser tests, from a package or a system install, never a tool's own browser
// download: CHROMIUM_PATH, else Debian's /usr/bin/chromium, else the binary @sparticuz/chromium ships inside its
// npm package (so `npm ci && npm test` passes on a machine with no system browser).
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { ROOT } from "../scripts/local/stack.ts";

const SYSTEM_CHROMIUM = "/usr/bin/chromium";
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
// What the packaged build needs to start in a container without a GPU or a zygote. Taken from the package's own
// `args` by name, not wholesale: those also switch off web security (CORS, site isolation), which the link
// tests rely on to show that a cross-site post is refused.
const PACKAGED_ARGS = [
  "--single-process",
  "--no-zygote",
  "--use-gl=angle",
  "--use-angle=swiftshader",
  "--enable-unsafe-swiftshader",
];

/** test-results/screenshots, or SCREENSHOTS_DIR (docs/screenshots to refresh the docs). */
export const SCREENSHOTS = resolve(ROOT, process.env.SCREENSHOTS_DIR ?? join("test-results", "screenshots"));

/** Where the browser comes from, and the flags it needs. */
async function findChromium(): Promise<{ executablePath: string; args: string[] }> {
  const configured = process.env.CHROMIUM_PATH;
  if (configured) {
    if (!existsSync(configured)) throw new Error(`CHROMIUM_PATH=${configured} does not exist`);
    return { executablePath: configured, args: CHROMIUM_ARGS };
  }
  if (existsSync(SYSTEM_CHROMIUM)) return { executablePath: SYSTEM_CHROMIUM, args: CHROMIUM_ARGS };
  const packaged = (await import("@sparticuz/chromium")).default;
  return { executablePath: await packaged.executablePath(), args: [...CHROMIUM_ARGS, ...PACKAGED_ARGS] };
}

export async function launchChromium(): Promise<Browser> {
  const { executablePath, args } = await findChromium();
  return chromium.launch({ executablePath, headless: true, args });
}
