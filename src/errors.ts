// The one typed error for everything a caller can fix, rendered as SPEC 4's error shape.

export interface ErrorDetail {
  /** Dotted path of the offending field (`action.params.deployment`, `POLICY.actions.x.ttl_seconds`). */
  path: string;
  message: string;
}

export interface ErrorBody {
  error: { code: string; message: string; details: ErrorDetail[] };
}

export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 422 | 429 | 503;

/**
 * A refusal the caller can act on. Messages and details name the problem but never echo
 * credentials, secrets or upstream response bodies.
 */
export class ApiError extends Error {
  // Plain fields, not constructor parameter properties: Node's type stripping (the
  // operator scripts import this module) accepts only erasable TypeScript.
  readonly status: ErrorStatus;
  readonly code: string;
  readonly details: ErrorDetail[];
  /** Response headers the refusal needs (a 503's `Retry-After`). */
  readonly headers: Record<string, string>;

  constructor(
    status: ErrorStatus,
    code: string,
    message: string,
    details: ErrorDetail[] = [],
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.headers = headers;
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

/** A plain-data refusal, for crossing the Durable Object RPC boundary (class identity does not survive it). */
export interface Refusal {
  status: ErrorStatus;
  code: string;
  message: string;
  details?: ErrorDetail[];
}

export function toApiError(refusal: Refusal): ApiError {
  return new ApiError(refusal.status, refusal.code, refusal.message, refusal.details ?? []);
}
