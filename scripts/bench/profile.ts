// A CPU profile of the Worker's isolate through workerd's DevTools protocol (the inspector
// Miniflare opens), summarised as self time per function: where a click's CPU goes.

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

export interface Hotspot {
  name: string;
  selfMs: number;
  share: number;
}

/** The isolates workerd's inspector offers (each Worker, D1's, Miniflare's own), by title. */
async function inspectorTargets(inspectorPort: number) {
  const list = await fetch(`http://127.0.0.1:${inspectorPort}/json/list`);
  return (await list.json()) as Array<{ title: string; webSocketDebuggerUrl: string }>;
}

/**
 * The JS heap in use of the inspector target whose title `match`es, MiB (V8's usedSize, garbage not yet collected
 * included: workerd's inspector does not answer HeapProfiler.collectGarbage); undefined when it does not answer in 10 s.
 */
export async function heapUsedMiB(
  inspectorPort: number,
  match: (title: string) => boolean,
): Promise<number | undefined> {
  const target = (await inspectorTargets(inspectorPort)).find((t) => match(t.title));
  if (!target) return undefined;
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  try {
    return await new Promise<number | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 10_000);
      ws.addEventListener("open", () => ws.send(JSON.stringify({ id: 1, method: "Runtime.getHeapUsage", params: {} })));
      ws.addEventListener("error", () => resolve(undefined));
      ws.addEventListener("message", (event: { data: unknown }) => {
        const message = JSON.parse(String(event.data)) as { id?: number; result?: { usedSize?: number } };
        if (message.id !== 1 || message.result?.usedSize === undefined) return;
        clearTimeout(timer);
        resolve(message.result.usedSize / 2 ** 20);
      });
    });
  } finally {
    ws.close();
  }
}

export class CpuProfiler {
  private ws: WebSocket | null = null;
  private nextId = 1;
  private pending = new Map<number, (result: unknown) => void>();

  static async connect(inspectorPort: number, match: (title: string) => boolean = () => true): Promise<CpuProfiler> {
    const targets = await inspectorTargets(inspectorPort);
    const target = targets.find((t) => match(t.title)) ?? targets[0];
    if (!target) throw new Error("no inspector target");
    const profiler = new CpuProfiler();
    const ws = new WebSocket(target.webSocketDebuggerUrl);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve());
      ws.addEventListener("error", () => reject(new Error("inspector connection failed")));
    });
    ws.addEventListener("message", (event: { data: unknown }) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
      if (message.id !== undefined) profiler.pending.get(message.id)?.(message.result);
    });
    profiler.ws = ws;
    await profiler.call("Profiler.enable");
    await profiler.call("Profiler.setSamplingInterval", { interval: 200 });
    return profiler;
  }

  private call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws!.send(JSON.stringify({ id, method, params }));
    });
  }

  start(): Promise<unknown> {
    return this.call("Profiler.start");
  }

  async stop(): Promise<Profile> {
    const result = (await this.call("Profiler.stop")) as { profile: Profile };
    return result.profile;
  }

  close(): void {
    this.ws?.close();
  }
}

/** Self time per function (named with its source module when `moduleOf` is given), largest first. */
export function hotspots(
  profile: Profile,
  top = 25,
  moduleOf?: (url: string, line: number) => string,
): { totalMs: number; spots: Hotspot[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const deltas = profile.timeDeltas ?? [];
  (profile.samples ?? []).forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (deltas[i + 1] ?? deltas[i] ?? 0));
  });
  const totals = new Map<string, number>();
  let total = 0;
  for (const [id, micros] of self) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = moduleOf ? moduleOf(url, lineNumber) : `${url.split("/").pop() || "(native)"}:${lineNumber + 1}`;
    const key = `${functionName || "(anonymous)"} · ${where}`;
    totals.set(key, (totals.get(key) ?? 0) + micros);
    total += micros;
  }
  const spots = [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, micros]) => ({ name, selfMs: micros / 1000, share: micros / total }));
  return { totalMs: total / 1000, spots };
}

/**
 * Which source module each line of an esbuild bundle came from (esbuild marks each module's
 * start with a `// path/to/module.ts` comment when it does not minify).
 */
export function moduleLines(bundleText: string): (line: number) => string {
  const starts: Array<{ line: number; module: string }> = [];
  bundleText.split("\n").forEach((text, i) => {
    const match = /^\/\/ ((?:src|node_modules|scripts)\/[^\s]+)$/.exec(text);
    if (match)
      starts.push({
        line: i,
        module: match[1]!.replace(/^node_modules\/([^/]+(?:\/[^/]+)?).*$/, (_, pkg: string) =>
          pkg.startsWith("@") ? pkg : pkg.split("/")[0]!,
        ),
      });
  });
  return (line) => {
    let found = "(runtime)";
    for (const start of starts) {
      if (start.line > line) break;
      found = start.module;
    }
    return found;
  };
}

/** Self time per source module, largest first. */
export function hotspotsByModule(
  profile: Profile,
  moduleOf: (line: number) => string,
  bundleName: string,
): { totalMs: number; spots: Hotspot[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const deltas = profile.timeDeltas ?? [];
  const totals = new Map<string, number>();
  let total = 0;
  (profile.samples ?? []).forEach((id, i) => {
    const micros = deltas[i + 1] ?? deltas[i] ?? 0;
    const frame = byId.get(id)!.callFrame;
    const key = frame.url.endsWith(bundleName)
      ? moduleOf(frame.lineNumber)
      : frame.functionName
        ? `(${frame.functionName})`
        : "(runtime/idle)";
    totals.set(key, (totals.get(key) ?? 0) + micros);
    total += micros;
  });
  const spots = [...totals]
    .sort((a, b) => b[1] - a[1])
    .map(([name, micros]) => ({ name, selfMs: micros / 1000, share: micros / total }));
  return { totalMs: total / 1000, spots };
}
