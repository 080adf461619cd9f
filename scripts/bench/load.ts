// Closed-loop load: `concurrency` workers each send the next prepared request as soon as their
// last one is answered, over keep-alive connections to loopback. Requests are built (and Slack
// requests signed) before the clock starts, so the generator's own work stays small.
import { Agent, request as httpRequest } from "node:http";

export interface PreparedRequest {
  method: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Any label the caller wants back with the result (e.g. a proposal id). */
  tag?: string;
}

export interface Sample {
  tag?: string;
  status: number;
  /** Latency, ms (request written → response fully read). */
  ms: number;
  /** When the response was fully read, ms since the epoch. */
  doneAt: number;
  body: string;
}

export interface LoadResult {
  samples: Sample[];
  wallMs: number;
  /** Requests per second over the whole run. */
  rps: number;
  errors: number;
}

export function send(base: URL, req: PreparedRequest, agent: Agent, timeoutMs = 30_000): Promise<Sample> {
  return new Promise((resolve) => {
    const started = performance.now();
    const r = httpRequest(
      {
        host: base.hostname,
        port: base.port,
        method: req.method,
        path: req.path,
        headers: req.body ? { ...req.headers, "content-length": String(req.body.length) } : req.headers,
        agent,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({
            tag: req.tag,
            status: res.statusCode ?? 0,
            ms: performance.now() - started,
            doneAt: Date.now(),
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", () =>
          resolve({ tag: req.tag, status: 0, ms: performance.now() - started, doneAt: Date.now(), body: "" }),
        );
      },
    );
    r.on("timeout", () => r.destroy(new Error("timeout")));
    r.on("error", () =>
      resolve({ tag: req.tag, status: 0, ms: performance.now() - started, doneAt: Date.now(), body: "" }),
    );
    r.end(req.body);
  });
}

/** Sends every request, `concurrency` at a time, and measures each and the whole. */
export async function closedLoop(
  base: URL,
  requests: readonly PreparedRequest[],
  concurrency: number,
): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  const samples: Sample[] = new Array(requests.length);
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= requests.length) return;
      samples[i] = await send(base, requests[i]!, agent);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, requests.length) }, worker));
  const wallMs = performance.now() - started;
  agent.destroy();
  const errors = samples.filter((s) => s.status < 200 || s.status >= 300).length;
  return { samples, wallMs, rps: (requests.length / wallMs) * 1000, errors };
}

export interface Quantiles {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank quantiles. */
export function quantiles(values: readonly number[]): Quantiles {
  if (values.length === 0) return { n: 0, p50: NaN, p95: NaN, p99: NaN, max: NaN, mean: NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return {
    n: sorted.length,
    p50: at(0.5),
    p95: at(0.95),
    p99: at(0.99),
    max: sorted.at(-1)!,
    mean: sorted.reduce((sum, v) => sum + v, 0) / sorted.length,
  };
}
