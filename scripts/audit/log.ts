// Where `npm run audit:verify` and `npm run audit:checkpoint` read the audit log from: D1 through wrangler (local
// or --remote), or the deployed Worker's API (GET /v1/audit, GET /v1/audit/checkpoint); and local mode's key.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseEnv } from "node:util";
import type { StoredAuditEvent } from "../../src/audit/store.ts";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
const PAGE = 1000;

/** A refusal the operator can act on: printed without a stack, exit code 2. */
export class UsageError extends Error {}

export interface D1Target {
  remote: boolean;
  database: string;
  config: string;
  persistTo?: string | undefined;
}

/** Every event, oldest first, read from D1 through `wrangler d1 execute` (pages of 1,000). */
export function readLogFromD1(target: D1Target): StoredAuditEvent[] {
  const events: StoredAuditEvent[] = [];
  for (let after = 0; ; ) {
    const sql = `SELECT seq, proposal_id, idx, at_ms, type, actor, details, prev_hash, hash, head_sig FROM audit_events WHERE seq > ${after} ORDER BY seq LIMIT ${PAGE}`;
    const args = [WRANGLER, "d1", "execute", target.database, target.remote ? "--remote" : "--local"];
    args.push("--json", "--config", target.config, "--command", sql);
    if (target.persistTo) args.push("--persist-to", target.persistTo);
    let out: string;
    try {
      out = execFileSync(process.execPath, args, {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        maxBuffer: 256 * 1024 * 1024,
        env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
      });
    } catch (error) {
      const stderr = String((error as { stderr?: unknown }).stderr ?? "");
      const hint = /no such column: head_sig/.test(stderr)
        ? " (apply the migrations first: npm run db:migrate:local, or db:migrate:remote)"
        : "";
      throw new UsageError(`wrangler d1 execute failed${hint}:\n${stderr.trim().split("\n").slice(-8).join("\n")}`);
    }
    const rows = (JSON.parse(out) as Array<{ results: Array<Record<string, unknown>> }>)[0]?.results ?? [];
    events.push(
      ...rows.map((row) => ({
        seq: Number(row.seq),
        proposal_id: String(row.proposal_id),
        idx: Number(row.idx),
        at: new Date(Number(row.at_ms)).toISOString(),
        type: String(row.type),
        actor: String(row.actor),
        details: JSON.parse(String(row.details)) as Record<string, unknown>,
        prev_hash: String(row.prev_hash),
        hash: String(row.hash),
        head_sig: row.head_sig === null || row.head_sig === undefined ? null : String(row.head_sig),
      })),
    );
    if (rows.length < PAGE) return events;
    after = Number(rows.at(-1)!.seq);
  }
}

function apiToken(): string {
  const token = process.env.SIGNOFF_AUDIT_TOKEN;
  if (!token) throw new UsageError("set SIGNOFF_AUDIT_TOKEN to an API token with the audit:read scope");
  return token;
}

async function get(base: string, path: string, params: Record<string, string> = {}): Promise<Response> {
  const url = new URL(path, base);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  try {
    return await fetch(url, { headers: { authorization: `Bearer ${apiToken()}` } });
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`GET ${url.pathname} failed: ${(error as Error).message}`);
  }
}

/** Every event, oldest first, through GET /v1/audit. */
export async function readLogFromApi(base: string): Promise<StoredAuditEvent[]> {
  const events: StoredAuditEvent[] = [];
  let cursor: string | null = null;
  do {
    const res = await get(base, "/v1/audit", { limit: String(PAGE), ...(cursor ? { cursor } : {}) });
    if (!res.ok) throw new UsageError(`GET /v1/audit answered HTTP ${res.status}`);
    const page = (await res.json()) as { events: StoredAuditEvent[]; next_cursor: string | null };
    // A Worker older than signed heads sends no head_sig: the same as an unsigned head.
    events.push(...page.events.map((e) => ({ ...e, head_sig: e.head_sig ?? null })));
    cursor = page.next_cursor;
  } while (cursor);
  return events;
}

export type FetchedCheckpoint =
  | { ok: true; checkpoint: unknown }
  | { ok: false; status: number; code: string; message: string; details: Array<{ path: string; message: string }> };

/** GET /v1/audit/checkpoint: the signed checkpoint, or the Worker's refusal (409 audit_mismatch names chains). */
export async function fetchCheckpoint(base: string): Promise<FetchedCheckpoint> {
  const res = await get(base, "/v1/audit/checkpoint");
  const body = (await res.json().catch(() => null)) as {
    error?: { code?: string; message?: string; details?: Array<{ path: string; message: string }> };
  } | null;
  if (res.ok) return { ok: true, checkpoint: body };
  return {
    ok: false,
    status: res.status,
    code: body?.error?.code ?? "?",
    message: body?.error?.message ?? `HTTP ${res.status}`,
    details: body?.error?.details ?? [],
  };
}

/** Local mode's dev secrets (`npm start` writes them), or {} when there is no such file. */
export function readDevVars(path: string): NodeJS.Dict<string> {
  return existsSync(path) ? parseEnv(readFileSync(path, "utf8")) : {};
}

export function readJsonFile(path: string): unknown {
  if (!existsSync(path)) throw new UsageError(`no file at ${path}`);
  try {
    return JSON.parse(readFileSync(path, "utf8")) as unknown;
  } catch (error) {
    throw new UsageError(`${path} is not JSON: ${(error as Error).message}`);
  }
}
