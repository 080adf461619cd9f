// The bench's meter, bundled around the Worker only by `npm run bench` (never deployed): counts what Cloudflare
// bills an approval for — Worker requests, Durable Object requests (RPC calls and alarm runs) and the time an
// object is active, SQLite rows read and written (each cursor's rowsRead/rowsWritten), D1 rows read and written
// (each batch's meta) — and answers GET /__bench/meter with the totals so far.
//
// Used as `wrap(await import("<some src>/index.ts"))` by an entry module the bench writes (scripts/bench/worker.ts),
// so the same meter measures the current code and an older commit's.

export interface MeterTotals {
  workerRequests: number;
  doRequests: number;
  doRpc: Record<string, number>;
  alarms: number;
  /** Wall time objects were active (union of their overlapping invocations per object), ms. */
  doActiveMs: number;
  sqlStatements: number;
  sqlRowsRead: number;
  sqlRowsWritten: number;
  d1Batches: number;
  d1Statements: number;
  d1RowsRead: number;
  d1RowsWritten: number;
  /** SQLite statements by their text (whitespace folded, first 90 characters): count, rows read, rows written. */
  bySql: Record<string, [number, number, number]>;
}

const totals: MeterTotals = {
  workerRequests: 0,
  doRequests: 0,
  doRpc: {},
  alarms: 0,
  doActiveMs: 0,
  sqlStatements: 0,
  sqlRowsRead: 0,
  sqlRowsWritten: 0,
  d1Batches: 0,
  d1Statements: 0,
  d1RowsRead: 0,
  d1RowsWritten: 0,
  bySql: {},
};

/**
 * Cursors not yet counted. The object reads every cursor to its end in the synchronous step that made it, so at
 * the end of each call (and when the meter is read) their counts are final.
 */
let cursors: Array<[string, SqlStorageCursor<Record<string, SqlStorageValue>>]> = [];

function settle(): MeterTotals {
  for (const [text, cursor] of cursors) {
    totals.sqlRowsRead += cursor.rowsRead;
    totals.sqlRowsWritten += cursor.rowsWritten;
    const entry = totals.bySql[text] ?? [0, 0, 0];
    totals.bySql[text] = entry;
    entry[0] += 1;
    entry[1] += cursor.rowsRead;
    entry[2] += cursor.rowsWritten;
  }
  cursors = [];
  return totals;
}

/** Each statement's text as the meter files it, folded once per text: folding on every call was the meter's own cost. */
const foldedSql = new Map<string, string>();

function fold(query: string): string {
  let text = foldedSql.get(query);
  if (text === undefined) {
    text = query.replace(/\s+/g, " ").slice(0, 90);
    foldedSql.set(query, text);
  }
  return text;
}

function meteredSql(sql: SqlStorage): void {
  const exec = sql.exec.bind(sql);
  Object.defineProperty(sql, "exec", {
    configurable: true,
    value: (query: string, ...bindings: unknown[]) => {
      const cursor = exec(query, ...bindings);
      totals.sqlStatements += 1;
      cursors.push([fold(query), cursor]);
      return cursor;
    },
  });
}

function meteredD1(db: D1Database): D1Database {
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "batch")
        return async (statements: D1PreparedStatement[]) => {
          const results = await target.batch(statements);
          totals.d1Batches += 1;
          totals.d1Statements += statements.length;
          for (const r of results) {
            totals.d1RowsRead += r.meta?.rows_read ?? 0;
            totals.d1RowsWritten += r.meta?.rows_written ?? 0;
          }
          return results;
        };
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function meteredEnv<E>(env: E): E {
  const record = env as Record<string, unknown>;
  return record.AUDIT_DB ? ({ ...record, AUDIT_DB: meteredD1(record.AUDIT_DB as D1Database) } as E) : env;
}

type Constructor = new (ctx: DurableObjectState, env: unknown) => object;

/** The object class with every method (RPC and alarm) counted and timed; time is counted once while calls overlap. */
function meteredObject(Base: Constructor): Constructor {
  const active = new WeakMap<object, { calls: number; since: number }>();
  const begin = (object: object) => {
    const state = active.get(object) ?? { calls: 0, since: 0 };
    if (state.calls === 0) state.since = Date.now();
    state.calls += 1;
    active.set(object, state);
    return state;
  };
  class Metered extends Base {
    constructor(ctx: DurableObjectState, env: unknown) {
      meteredSql(ctx.storage.sql);
      super(ctx, meteredEnv(env));
      // Work an object keeps doing after a call has answered (ctx.waitUntil: a dispatch sent from the approving
      // click) keeps it active, and is billed as duration like the call itself.
      const waitUntil = ctx.waitUntil.bind(ctx);
      Object.defineProperty(ctx, "waitUntil", {
        configurable: true,
        value: (work: Promise<unknown>) => {
          const state = begin(this);
          waitUntil(
            work.finally(() => {
              state.calls -= 1;
              if (state.calls === 0) totals.doActiveMs += Date.now() - state.since;
              settle();
            }),
          );
        },
      });
    }
  }
  for (const name of Object.getOwnPropertyNames(Base.prototype)) {
    const method = (Base.prototype as Record<string, unknown>)[name];
    if (name === "constructor" || typeof method !== "function") continue;
    Object.defineProperty(Metered.prototype, name, {
      configurable: true,
      writable: true,
      value: async function (this: object, ...args: unknown[]) {
        totals.doRequests += 1;
        if (name === "alarm") totals.alarms += 1;
        else totals.doRpc[name] = (totals.doRpc[name] ?? 0) + 1;
        const state = begin(this);
        try {
          return await (method as (...a: unknown[]) => Promise<unknown>).apply(this, args);
        } finally {
          state.calls -= 1;
          if (state.calls === 0) totals.doActiveMs += Date.now() - state.since;
          settle();
        }
      },
    });
  }
  return Metered;
}

interface WorkerModule {
  default: ExportedHandler<Env>;
  ProposalObject: Constructor;
}

export function wrap(mod: WorkerModule): { default: ExportedHandler<Env>; ProposalObject: Constructor } {
  const handler = mod.default;
  return {
    default: {
      fetch(request, env, ctx) {
        if (new URL(request.url).pathname === "/__bench/meter")
          return Response.json(JSON.parse(JSON.stringify(settle())) as MeterTotals);
        totals.workerRequests += 1;
        return (handler.fetch as NonNullable<ExportedHandler<Env>["fetch"]>).call(
          handler,
          request,
          meteredEnv(env),
          ctx,
        );
      },
    },
    ProposalObject: meteredObject(mod.ProposalObject),
  };
}
