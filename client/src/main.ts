// The process around the CLI: real standard streams and environment, and the exit code main() answers.
import { main } from "./cli.ts";

export async function run(): Promise<void> {
  try {
    process.exitCode = await main(process.argv.slice(2), {
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
    });
  } catch (error) {
    // Not a refusal or a mistake of the caller's: still one line, and the HTTP/auth class of failure.
    process.stderr.write(`signoff: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 3;
  }
}
