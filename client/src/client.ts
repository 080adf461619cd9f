// The typed client for signoff's v1 API: openapi-fetch over the types generated from GET /openapi.json
// (api-types.ts), with the server's refusals turned into one SignoffError that names the problem. The CLI and the
// GitHub Action are thin over it; so can a proposer's own code be.
import createClient from "openapi-fetch";
import type { paths } from "./api-types.ts";

type Json<T> = T extends { content: { "application/json": infer B } } ? B : never;

export type ProposeBody = paths["/v1/proposals"]["post"]["requestBody"]["content"]["application/json"];
export type Proposal = Json<paths["/v1/proposals/{id}"]["get"]["responses"][200]>;
export type CreatedProposal = Json<paths["/v1/proposals"]["post"]["responses"][201]>;
export type ActionsList = Json<paths["/v1/actions"]["get"]["responses"][200]>;
export type ActionDescription = ActionsList["actions"][number];
export type AuditQuery = NonNullable<paths["/v1/audit"]["get"]["parameters"]["query"]>;
export type AuditPage = Json<paths["/v1/audit"]["get"]["responses"][200]>;
export type AuditEvent = AuditPage["events"][number];
export type PublicKeys = Json<paths["/v1/keys"]["get"]["responses"][200]>;
export type ErrorBody = Json<paths["/v1/actions"]["get"]["responses"][401]>;
export type Status = Proposal["status"];

/** The longest ?wait= the API takes, in seconds. */
export const MAX_WAIT_SECONDS = 60;

export interface ClientOptions {
  /** The deployment's base URL, e.g. https://signoff.example.com. */
  url: string;
  /** An API key's token (`Authorization: Bearer`). */
  token: string;
  /** Sent as User-Agent, e.g. signoff-cli/0.1.0. */
  userAgent?: string;
  fetch?: (input: Request) => Promise<Response>;
}

/** A refusal or failure: the HTTP status and the server's error code, message and details, as one line. */
export class SignoffError extends Error {
  override readonly name = "SignoffError";
  /** The HTTP status; 0 when the server could not be reached. */
  readonly status: number;
  readonly code: string;
  readonly serverMessage: string;
  readonly details: ReadonlyArray<{ path: string; message: string }>;

  constructor(status: number, code: string, serverMessage: string, details: SignoffError["details"] = []) {
    const named = details.map((d) => (d.path ? `${d.path}: ${d.message}` : d.message));
    super(`${status ? `HTTP ${status} ` : ""}${code}: ${[serverMessage, ...named].filter(Boolean).join("; ")}`);
    this.status = status;
    this.code = code;
    this.serverMessage = serverMessage;
    this.details = details;
  }
}

function isErrorBody(value: unknown): value is ErrorBody {
  const error = (value as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return typeof error?.code === "string" && typeof error.message === "string";
}

/** The SignoffError for a non-2xx answer whose body (if any) was parsed as `body`. */
export function errorOf(response: Response, body: unknown): SignoffError {
  if (isErrorBody(body)) {
    return new SignoffError(response.status, body.error.code, body.error.message, body.error.details ?? []);
  }
  return new SignoffError(response.status, "http_error", response.statusText || "no error body");
}

async function answer<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>, base: string): Promise<T> {
  let result: Awaited<typeof call>;
  try {
    result = await call;
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    throw new SignoffError(0, "unreachable", `cannot reach ${base}${cause ? ` (${cause})` : ""}`);
  }
  if (!result.response.ok || result.data === undefined) throw errorOf(result.response, result.error);
  return result.data;
}

export type SignoffClient = ReturnType<typeof signoffClient>;

/** A client for one deployment and one API key. Every method throws SignoffError on a refusal. */
export function signoffClient(options: ClientOptions) {
  const base = options.url.replace(/\/+$/, "");
  const headers: Record<string, string> = { authorization: `Bearer ${options.token}` };
  if (options.userAgent) headers["user-agent"] = options.userAgent;
  const api = createClient<paths>({ baseUrl: base, headers, ...(options.fetch ? { fetch: options.fetch } : {}) });

  return {
    /** The underlying openapi-fetch client, typed from /openapi.json, for anything not wrapped here. */
    api,
    url: base,

    /** POST /v1/proposals. The same idempotency key and body again answer the first proposal. */
    propose(body: ProposeBody, idempotencyKey?: string): Promise<CreatedProposal> {
      const params = idempotencyKey ? { header: { "Idempotency-Key": idempotencyKey } } : {};
      return answer(api.POST("/v1/proposals", { body, params }), base);
    },

    /** GET /v1/proposals/{id}; `wait` (0–60 s) long-polls for a change of status. */
    get(id: string, wait = 0): Promise<Proposal> {
      const query = wait > 0 ? { wait: Math.min(Math.ceil(wait), MAX_WAIT_SECONDS) } : {};
      return answer(api.GET("/v1/proposals/{id}", { params: { path: { id }, query } }), base);
    },

    /** POST /v1/proposals/{id}/cancel (the creating key only, while pending). */
    cancel(id: string): Promise<Proposal> {
      return answer(api.POST("/v1/proposals/{id}/cancel", { params: { path: { id } } }), base);
    },

    /** GET /v1/actions: what this key may propose. */
    actions(): Promise<ActionsList> {
      return answer(api.GET("/v1/actions"), base);
    },

    /** GET /v1/audit as JSON pages (format json). */
    async audit(query: Omit<AuditQuery, "format"> = {}): Promise<AuditPage> {
      const page = await answer(api.GET("/v1/audit", { params: { query: { ...query, format: "json" } } }), base);
      return page as AuditPage;
    },

    /** GET /v1/audit as an NDJSON or CSV export, as text. */
    async auditExport(format: "ndjson" | "csv", query: Omit<AuditQuery, "format"> = {}): Promise<string> {
      return answer(
        api.GET("/v1/audit", { params: { query: { ...query, format } }, parseAs: "text" }),
        base,
      ) as Promise<string>;
    },

    /** GET /v1/keys: the Ed25519 public keys that sign v1a outcome events and dispatches. */
    keys(): Promise<PublicKeys> {
      return answer(api.GET("/v1/keys"), base);
    },

    /**
     * Waits for `id` to reach a final status, with ?wait= long-polls, for at most `timeoutSeconds` (default: until it
     * is decided, however long). `onUpdate` sees every answer (to show progress). Returns the last answer.
     */
    async waitFor(
      id: string,
      opts: { timeoutSeconds?: number; onUpdate?: (p: Proposal) => void; first?: Proposal } = {},
    ): Promise<Proposal> {
      const deadline =
        opts.timeoutSeconds === undefined ? Number.POSITIVE_INFINITY : Date.now() + opts.timeoutSeconds * 1000;
      let p = opts.first ?? (await this.get(id));
      opts.onUpdate?.(p);
      while (!isFinal(p.status)) {
        const left = (deadline - Date.now()) / 1000;
        if (left <= 0) break;
        p = await this.get(id, Math.max(1, Math.min(left, MAX_WAIT_SECONDS)));
        opts.onUpdate?.(p);
      }
      return p;
    },
  };
}

const FINAL: ReadonlySet<Status> = new Set([
  "succeeded",
  "failed",
  "dispatch_failed",
  "denied",
  "expired",
  "cancelled",
  "acknowledged",
  "escalated",
]);

/** A status nothing follows: the proposal is decided and, when it was dispatched, the runner has answered. */
export function isFinal(status: Status): boolean {
  return FINAL.has(status);
}
