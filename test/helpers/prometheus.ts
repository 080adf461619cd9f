// A strict reader of the Prometheus text exposition format (0.0.4), for test/stats.test.ts. The npm parser the test
// also uses (parse-prometheus-text-format) accepts any word as a value and folds every labelled histogram into one,
// so it cannot tell a broken histogram from a good one; this one follows the format's grammar to the letter and
// refuses anything else: `# HELP name text`, `# TYPE name type` once per family and before its samples, samples as
// `name{label="value",…} number`, a family's samples together, histogram buckets cumulative with `le`, and the
// `+Inf` bucket equal to `_count` for each label set.

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  name: string;
  type: string;
  help: string;
  samples: PromSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const VALUE = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/;

/** Parses `text`, throwing an Error naming the line at the first thing the format does not allow. */
export function parseStrict(text: string): PromFamily[] {
  if (!text.endsWith("\n")) throw new Error("the last line must end with a line feed");
  const families: PromFamily[] = [];
  const byName = new Map<string, PromFamily>();
  const closed = new Set<string>();
  let current: PromFamily | null = null;
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, i) => {
    const fail = (why: string): never => {
      throw new Error(`line ${i + 1} (${JSON.stringify(line)}): ${why}`);
    };
    if (line === "") return;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (!NAME.test(name)) fail("bad metric name");
      let family = byName.get(name);
      if (!family) {
        if (current) closed.add(current.name);
        family = { name, type: "untyped", help: "", samples: [] };
        byName.set(name, family);
        families.push(family);
        current = family;
      } else if (family !== current || family.samples.length > 0) fail("HELP/TYPE after the family's samples");
      if (kind === "TYPE") {
        if (!TYPES.has(rest)) fail(`unknown type ${rest}`);
        family.type = rest;
      } else family.help = rest;
      return;
    }
    if (line.startsWith("#")) return;
    const sample =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line) ?? fail("not a sample line");
    const [, name, labelText, valueText] = sample as unknown as [string, string, string | undefined, string];
    if (!VALUE.test(valueText)) fail(`bad value ${valueText}`);
    const family = current as PromFamily | null;
    const base = family && family.type === "histogram" ? name.replace(/_(bucket|sum|count)$/, "") : name;
    if (!family || family.name !== base)
      fail(closed.has(base) ? "the family's samples are not together" : "no TYPE first");
    family!.samples.push({ name, labels: parseLabels(labelText ?? "", fail), value: Number(valueText) });
  });
  for (const family of families) if (family.type === "histogram") checkHistogram(family);
  return families;
}

function parseLabels(text: string, fail: (why: string) => never): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest !== "") {
    const m = /^([^=]+)="((?:[^"\\\n]|\\[\\"n])*)"(,?)/.exec(rest) ?? fail("bad label");
    const [whole, name, raw, comma] = m as unknown as [string, string, string, string];
    if (!LABEL.test(name)) fail(`bad label name ${name}`);
    if (Object.hasOwn(labels, name)) fail(`label ${name} twice`);
    labels[name] = raw.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    rest = rest.slice(whole.length);
    if (comma === "" && rest !== "") fail("labels must be separated by commas");
  }
  return labels;
}

function checkHistogram(family: PromFamily): void {
  const sets = new Map<string, { buckets: Array<[number, number]>; count?: number; sum?: number }>();
  for (const s of family.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(rest);
    const set = sets.get(key) ?? { buckets: [] };
    sets.set(key, set);
    if (s.name.endsWith("_bucket")) {
      if (le === undefined) throw new Error(`${family.name}: a bucket without le`);
      set.buckets.push([le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), s.value]);
    } else if (s.name.endsWith("_count")) set.count = s.value;
    else if (s.name.endsWith("_sum")) set.sum = s.value;
  }
  for (const [key, set] of sets) {
    const where = `${family.name}${key}`;
    const bounds = set.buckets.map(([le]) => le);
    if (bounds.some((le, i) => i > 0 && le <= bounds[i - 1]!)) throw new Error(`${where}: le not ascending`);
    if (set.buckets.some(([, n], i) => i > 0 && n < set.buckets[i - 1]![1]))
      throw new Error(`${where}: not cumulative`);
    const inf = set.buckets.at(-1);
    if (!inf || inf[0] !== Number.POSITIVE_INFINITY) throw new Error(`${where}: no +Inf bucket`);
    if (set.count === undefined || set.sum === undefined) throw new Error(`${where}: no _count or _sum`);
    if (inf[1] !== set.count) throw new Error(`${where}: +Inf bucket ${inf[1]} is not _count ${set.count}`);
  }
}
