// Runs one argv without a shell, in a narrow environment, with a timeout and a cap on captured output.
import { spawn } from "node:child_process";

export interface RunOptions {
  timeoutMs: number;
  /** The complete environment of the command (see narrowEnv). */
  env: Record<string, string>;
  /** Most bytes of output reported, notes included. */
  outputLimitBytes: number;
  /** Time between SIGTERM and SIGKILL once the timeout fires. */
  killGraceMs?: number;
  /** Aborting kills the command at once (the runner is shutting down). */
  signal?: AbortSignal;
}

export interface RunResult {
  status: "succeeded" | "failed";
  output: string;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
}

/** PATH plus the listed variables that are set in `source`; nothing else reaches the command. */
export function narrowEnv(
  source: Record<string, string | undefined>,
  names: readonly string[],
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", ...names]) {
    const value = source[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** Cuts UTF-8 text to at most `limit` bytes without splitting a character. */
export function truncateUtf8(text: string, limit: number): string {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= limit) return text;
  let end = Math.max(0, limit);
  // Back off continuation bytes (10xxxxxx) so the cut lands on a character boundary.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString("utf8");
}

/** Keeps the first bytes of stdout and stderr as they arrive, and counts the rest. */
class OutputCapture {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  total = 0;
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  push(chunk: Buffer): void {
    this.total += chunk.length;
    const room = this.limit - this.kept;
    if (room <= 0) return;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(part);
    this.kept += part.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

function render(capture: OutputCapture, notes: string[], limit: number): string {
  const note = notes.length > 0 ? `\n[runner] ${notes.join("; ")}` : "";
  const room = Math.max(0, limit - Buffer.byteLength(note));
  let body = capture.text();
  if (capture.total > Buffer.byteLength(body) || Buffer.byteLength(body) > room) {
    const marker = `\n[runner] output truncated (${capture.total} bytes)`;
    body = truncateUtf8(body, Math.max(0, room - Buffer.byteLength(marker))) + marker;
  }
  return truncateUtf8(body + note, limit);
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    // The child leads its own process group (detached), so a shell script's children die too
    // instead of holding our pipes open after the timeout.
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export function runCommand(argv: readonly string[], options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const capture = new OutputCapture(options.outputLimitBytes);
  const grace = options.killGraceMs ?? 2000;
  const [program, ...args] = argv;

  return new Promise((resolve) => {
    let settled = false;
    let timedOut = false;
    let aborted = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (exitCode: number | null, signal: string | null, notes: string[]) => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      if (timedOut) notes.unshift(`timed out after ${options.timeoutMs} ms, killed`);
      if (aborted) notes.unshift("runner shut down, killed");
      resolve({
        status: exitCode === 0 && !timedOut && !aborted ? "succeeded" : "failed",
        output: render(capture, notes, options.outputLimitBytes),
        exitCode,
        signal,
        timedOut,
        durationMs: Date.now() - started,
      });
    };

    if (program === undefined) {
      finish(null, null, ["empty argv"]);
      return;
    }

    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(program, args, {
        shell: false,
        env: options.env,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
        windowsHide: true,
      });
    } catch (error) {
      finish(null, null, [`could not start ${program}: ${(error as Error).message}`]);
      return;
    }

    const stopStreams = () => {
      child.stdout?.destroy();
      child.stderr?.destroy();
    };
    const kill = () => {
      killGroup(child.pid, "SIGTERM");
      timers.push(
        setTimeout(() => {
          killGroup(child.pid, "SIGKILL");
          // If something escaped the group and still holds the pipes, stop waiting for it.
          timers.push(
            setTimeout(() => {
              stopStreams();
              finish(null, "SIGKILL", []);
            }, 1000),
          );
        }, grace),
      );
    };
    function onAbort() {
      aborted = true;
      killGroup(child.pid, "SIGKILL");
      timers.push(
        setTimeout(() => {
          stopStreams();
          finish(null, "SIGKILL", []);
        }, 1000),
      );
    }

    child.stdout?.on("data", (chunk: Buffer) => capture.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => capture.push(chunk));
    child.on("error", (error: NodeJS.ErrnoException) => {
      finish(null, null, [`could not start ${program}: ${error.code ?? error.message}`]);
    });
    child.on("close", (code: number | null, signal: NodeJS.Signals | null) => {
      const notes: string[] = [];
      if (!timedOut && !aborted) {
        if (signal) notes.push(`killed by ${signal}`);
        else if (code !== 0) notes.push(`exit code ${code}`);
      }
      finish(code, signal, notes);
    });

    timers.push(
      setTimeout(() => {
        timedOut = true;
        kill();
      }, options.timeoutMs),
    );
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
  });
}
