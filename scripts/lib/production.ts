// What a production deploy must not carry although the Worker would run with it: values that make sense only on
// one machine (a runner on loopback or a private network, local mode's demo Slack ids) and the all-zero D1
// placeholder. The Worker cannot tell (local mode runs the same code with exactly these values), so the check is
// made before deploying: `npm run check-config -- --production` refuses them (`npm run deploy` runs it), a plain
// check-config warns, and `npm run setup` lists what is left to change.
import { DEMO_CHANNELS, DEMO_GROUPS, DEMO_TEAM, DEMO_USERS } from "../../src/local/demo.ts";

export interface Finding {
  path: string;
  message: string;
}

/**
 * Ids that no real workspace has: local mode's demo workspace (src/local/demo.ts) and the other ids the README and
 * SPEC use in their examples. A policy still naming them was copied, not written, and would post into nowhere.
 */
export const DEMO_IDS: ReadonlySet<string> = new Set([
  ...DEMO_USERS.map((user) => user.id),
  ...Object.keys(DEMO_GROUPS),
  ...Object.keys(DEMO_CHANNELS),
  DEMO_TEAM.id,
  "S0SRELEADS",
  "U0ERIN",
]);

/** Why Cloudflare's network cannot reach `hostname` (a URL's, so IPv4 is dotted decimal), or null when it may. */
export function unreachableHost(hostname: string): string | null {
  const host = hostname
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1")
    .replace(/\.$/, "");
  if (host === "localhost" || host.endsWith(".localhost")) return "localhost";
  if (host.endsWith(".local")) return "a .local (mDNS) name, known only on its own network";
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    if (a === 127) return "a loopback address";
    if (a === 0) return "an unspecified address";
    if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) {
      return "a private address (RFC 1918)";
    }
    if (a === 169 && b === 254) return "a link-local address";
    if (a === 100 && b >= 64 && b <= 127) return "a shared (carrier-grade NAT) address (RFC 6598)";
    return null;
  }
  if (!host.includes(":")) return null;
  if (host === "::1") return "a loopback address";
  if (host === "::") return "an unspecified address";
  // URL writes an IPv4-mapped address in hex: [::ffff:127.0.0.1] becomes ::ffff:7f00:1.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (mapped) {
    const [high, low] = [Number.parseInt(mapped[1]!, 16), Number.parseInt(mapped[2]!, 16)];
    return unreachableHost(`${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`);
  }
  if (/^fe[89ab][0-9a-f]?:/.test(host)) return "a link-local address";
  if (/^f[cd][0-9a-f]{0,2}:/.test(host)) return "a unique local address (fc00::/7)";
  return null;
}

/** `.key` for identifier-like keys, `["key"]` otherwise, as the policy's own problems spell paths. */
function step(key: string | number): string {
  if (typeof key === "number") return `[${key}]`;
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

/** Every place in `value` (keys and strings, at any depth) that names a demo id. */
function demoIdsIn(value: unknown, path: string, out: Finding[]): void {
  const found = (text: string) => (text.match(/\b[A-Z]0[A-Z0-9]+\b/g) ?? []).filter((word) => DEMO_IDS.has(word));
  const report = (ids: string[], where: string) => {
    for (const id of new Set(ids)) {
      out.push({
        path: where,
        message: `${id} is a demo id of local mode, not one of your workspace: use your own Slack ids (docs/deploy.md)`,
      });
    }
  };
  if (typeof value === "string") report(found(value), path);
  else if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) demoIdsIn(item, path + step(i), out);
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      report(found(key), path + step(key));
      demoIdsIn(item, path + step(key), out);
    }
  }
}

interface D1Binding {
  binding?: unknown;
  database_name?: unknown;
  database_id?: unknown;
}

/**
 * What keeps `vars` (as the Worker would see them) and `d1` (the section's `d1_databases`) from working in
 * production. Malformed input is left to the Worker's own check (src/config/check.ts), which names it already.
 */
export function productionFindings(vars: Record<string, unknown>, d1: readonly D1Binding[] | undefined): Finding[] {
  const findings: Finding[] = [];
  let runnerUrl = vars.RUNNER_URL;
  if (typeof runnerUrl === "string" && runnerUrl.trimStart().startsWith('"')) {
    try {
      runnerUrl = JSON.parse(runnerUrl) as unknown;
    } catch {
      // Not JSON after all: the Worker's check says what is wrong with it.
    }
  }
  if (typeof runnerUrl === "string" && URL.canParse(runnerUrl)) {
    const host = new URL(runnerUrl).hostname;
    const reason = unreachableHost(host);
    if (reason !== null) {
      findings.push({
        path: "RUNNER_URL",
        message: `${host} is ${reason}: Cloudflare's network cannot reach it. Put the runner behind a Cloudflare Tunnel and use its https URL (docs/deploy.md)`,
      });
    }
  }
  for (const database of d1 ?? []) {
    if (typeof database.database_id === "string" && /^[0-]+$/.test(database.database_id)) {
      const name = typeof database.database_name === "string" ? database.database_name : "signoff-audit";
      findings.push({
        path: `d1_databases[${String(database.binding ?? "?")}].database_id`,
        message: `is the all-zero placeholder: \`npm run setup\` creates the database and writes its id here (or \`wrangler d1 create ${name}\` and copy the database_id it prints)`,
      });
    }
  }
  let policy = vars.POLICY;
  if (typeof policy === "string") {
    try {
      policy = JSON.parse(policy) as unknown;
    } catch {
      policy = undefined;
    }
  }
  if (policy !== undefined) demoIdsIn(policy, "POLICY", findings);
  return findings;
}
