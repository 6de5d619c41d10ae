import type { JsonValue, Problem, ProblemCode, Row, RejectReason, SaveMeta } from "./types.js";

/**
 * A problem+json answer of the service. `code` is the contract's stable name; each code has its
 * own subclass (e.g. `InvalidCredentialsError`), so `instanceof` and `err.code` both work.
 */
export class ApiError extends Error {
  /** HTTP status. */
  readonly status: number;
  /** The stable machine-readable name (`problem.code`), or `http_<status>` without a problem body. */
  readonly code: ProblemCode | (string & {});
  /** Seconds from `Retry-After` (429, 503), else undefined. */
  readonly retryAfter: number | undefined;
  /** Problem `type`. */
  readonly type: string;
  /** Problem `title`. */
  readonly title: string;
  /** Problem `detail`: for humans, never a secret. */
  readonly detail: string;
  /** The whole problem body, extension members included. */
  readonly problem: Problem;

  constructor(status: number, problem: Problem, retryAfter?: number) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = new.target.name;
    this.status = status;
    this.code = problem.code;
    this.retryAfter = retryAfter;
    this.type = problem.type;
    this.title = problem.title;
    this.detail = problem.detail;
    this.problem = problem;
  }
}

/** The request or its response was lost (fetch rejected): the server may or may not have acted. */
export class NetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NetworkError";
  }
}

/** The service answered something the contract does not describe. */
export class UnexpectedResponseError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "UnexpectedResponseError";
    this.status = status;
  }
}

export class InvalidRequestError extends ApiError {}
export class PayloadTooLargeError extends ApiError {}
export class NotFoundError extends ApiError {}
export class InternalError extends ApiError {}
export class UnauthenticatedError extends ApiError {}
export class CsrfRejectedError extends ApiError {}
export class InvalidEmailError extends ApiError {}
export class WeakPasswordError extends ApiError {}
export class EmailTakenError extends ApiError {}
export class InvalidCredentialsError extends ApiError {}
export class RateLimitedError extends ApiError {}
export class OverloadedError extends ApiError {}
export class AlreadyVerifiedError extends ApiError {}
export class InvalidTokenError extends ApiError {}
export class EmailNotVerifiedError extends ApiError {}
export class ResyncRequiredError extends ApiError {}
export class NoSaveError extends ApiError {}
export class PreconditionRequiredError extends ApiError {}
/** `412 version_conflict`; `current` is the save's meta as it stands (null: none). */
export class VersionConflictError extends ApiError {
  get current(): SaveMeta | null {
    const c = this.problem["current"];
    return isSaveMeta(c) ? c : null;
  }
}
export class DigestMismatchError extends ApiError {}
export class IdempotencyKeyReusedError extends ApiError {}
export class QuotaExceededError extends ApiError {}
/** `405 method_not_allowed`: the path exists, not with this method (`Allow` lists those it takes). */
export class MethodNotAllowedError extends ApiError {}
/** `416 range_not_satisfiable`: a `Range` beyond the save's size. */
export class RangeNotSatisfiableError extends ApiError {}

type ApiErrorClass = new (status: number, problem: Problem, retryAfter?: number) => ApiError;

const CLASSES: { [C in ProblemCode]: ApiErrorClass } = {
  invalid_request: InvalidRequestError,
  payload_too_large: PayloadTooLargeError,
  not_found: NotFoundError,
  internal: InternalError,
  unauthenticated: UnauthenticatedError,
  csrf_rejected: CsrfRejectedError,
  invalid_email: InvalidEmailError,
  weak_password: WeakPasswordError,
  email_taken: EmailTakenError,
  invalid_credentials: InvalidCredentialsError,
  rate_limited: RateLimitedError,
  overloaded: OverloadedError,
  already_verified: AlreadyVerifiedError,
  invalid_token: InvalidTokenError,
  email_not_verified: EmailNotVerifiedError,
  resync_required: ResyncRequiredError,
  no_save: NoSaveError,
  precondition_required: PreconditionRequiredError,
  version_conflict: VersionConflictError,
  digest_mismatch: DigestMismatchError,
  idempotency_key_reused: IdempotencyKeyReusedError,
  quota_exceeded: QuotaExceededError,
  method_not_allowed: MethodNotAllowedError,
  range_not_satisfiable: RangeNotSatisfiableError,
};

/** Every code this client knows. */
export const PROBLEM_CODES: readonly ProblemCode[] = Object.keys(CLASSES) as ProblemCode[];

function isKnownCode(code: string): code is ProblemCode {
  return Object.prototype.hasOwnProperty.call(CLASSES, code);
}

/** Parses `Retry-After`: delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - nowMs) / 1000));
}

function isObject(v: unknown): v is { [k: string]: unknown } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isSaveMeta(v: unknown): v is SaveMeta {
  return isObject(v) && typeof v["version"] === "string" && typeof v["size"] === "number";
}

/**
 * The error for a non-2xx answer: the subclass of its `code`, or a plain `ApiError` for a code
 * this client does not know (or a body that is not a problem).
 */
export function errorFromProblem(status: number, body: unknown, retryAfter?: number): ApiError {
  let problem: Problem;
  if (isObject(body) && typeof body["code"] === "string") {
    problem = {
      ...(body as { [k: string]: JsonValue }),
      type: typeof body["type"] === "string" ? body["type"] : "about:blank",
      title: typeof body["title"] === "string" ? body["title"] : "",
      status: typeof body["status"] === "number" ? body["status"] : status,
      detail: typeof body["detail"] === "string" ? body["detail"] : "",
      code: body["code"],
    };
  } else {
    problem = { type: "about:blank", title: `HTTP ${status}`, status, detail: "", code: `http_${status}` };
  }
  const Class = isKnownCode(problem.code) ? CLASSES[problem.code] : ApiError;
  return new Class(status, problem, retryAfter);
}

/** A local row write that the server refused (`rejected` push result). */
export interface Rejection {
  /** The local write that was refused. */
  row: Row;
  reason: RejectReason;
  /**
   * The server's row as it stands (null: none); the store now holds it. With `invalid_request`
   * (a change the server refused as malformed) it is null: the device dropped its row and its
   * next pull, from the start, brings back the server's row if there is one.
   */
  current: Row | null;
}

/** Raised to `onError` listeners when the server refused a write for a reason the app must show. */
export class RowRejectedError extends Error {
  readonly rejection: Rejection;
  constructor(rejection: Rejection) {
    super(`the server refused ${rejection.row.collection}/${rejection.row.id}: ${rejection.reason}`);
    this.name = "RowRejectedError";
    this.rejection = rejection;
  }
}
