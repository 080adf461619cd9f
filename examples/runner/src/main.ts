// Command-line entry of the reference runner: reads its configuration from the environment and starts it.
import { fileURLToPath } from "node:url";
import { startRunner } from "./server.ts";

function integer(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    console.error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}

const defaultActions = fileURLToPath(new URL("../actions.json", import.meta.url));

try {
  const runner = await startRunner({
    secret: process.env.RUNNER_SECRET ?? "",
    actions: process.env.RUNNER_ACTIONS || defaultActions,
    port: integer("PORT", 8788),
    host: process.env.HOST || "127.0.0.1",
    ...(process.env.SIGNOFF_URL ? { signoffUrl: process.env.SIGNOFF_URL } : {}),
    timeoutMs: integer("RUNNER_TIMEOUT_MS", 30_000),
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void runner.close().then(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
} catch (cause) {
  // Configuration errors: one clear line (or the allowlist's list of problems), no stack.
  console.error(`runner: ${(cause as Error).message}`);
  process.exit(1);
}
