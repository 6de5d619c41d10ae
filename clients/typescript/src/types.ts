// Types of the HTTP contract (docs/api.md). Field names are the wire's (snake_case).

/** A JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
/** A JSON object. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/**
 * An object type as far as JSON can carry it, for generic bounds (`T extends JsonCompatible<T>`):
 * unlike `JsonObject` it takes interfaces, which have no index signature, e.g.
 * `interface Note { title: string; tags?: string[] }`. Functions, symbols and bigints are not JSON.
 */
export type JsonCompatible<T> = { [K in keyof T]: K extends string ? JsonCompatibleValue<T[K]> : never };

/** A value of a `JsonCompatible` object. */
export type JsonCompatibleValue<V> = V extends null | boolean | number | string
  ? V
  : V extends (...args: never[]) => unknown
    ? never
    : V extends readonly (infer U)[]
      ? readonly JsonCompatibleValue<U>[]
      : V extends object
        ? JsonCompatible<V>
        : never;

/** A user object. */
export interface User {
  id: string;
  email: string;
  email_verified: boolean;
  /** RFC 3339 UTC. */
  created_at: string;
}

/** A session object. */
export interface Session {
  id: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  device_name: string | null;
  /** True for the session that made the request. */
  current: boolean;
}

/** What signup and login answer (the token, if any, is kept by the client, not returned here). */
export interface SignedIn {
  user: User;
  session: Session;
}

/** `GET /v1/auth/me`. */
export interface Me {
  user: User;
  session: Session;
}

/** Every problem `code` the contract lists. */
export type ProblemCode =
  | "invalid_request"
  | "payload_too_large"
  | "not_found"
  | "internal"
  | "unauthenticated"
  | "csrf_rejected"
  | "invalid_email"
  | "weak_password"
  | "email_taken"
  | "invalid_credentials"
  | "rate_limited"
  | "overloaded"
  | "already_verified"
  | "invalid_token"
  | "email_not_verified"
  | "resync_required"
  | "no_save"
  | "precondition_required"
  | "version_conflict"
  | "digest_mismatch"
  | "idempotency_key_reused"
  | "quota_exceeded"
  | "method_not_allowed"
  | "range_not_satisfiable";

/** An RFC 9457 problem details body as the services send it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** The stable machine-readable name; a code this client does not know stays a string. */
  code: ProblemCode | (string & {});
  /** Extension members, e.g. `current` on `version_conflict`. */
  [extension: string]: JsonValue | undefined;
}

/** `GET /healthz`. */
export interface Health {
  status: string;
  app: string;
  version: string;
  auth_skeleton: string;
}

// ---- rows ----

/** A row as `/v1/rows` carries it. `data` is null exactly when `deleted`. */
export interface Row {
  collection: string;
  id: string;
  /** Hybrid logical clock: milliseconds. */
  ts: number;
  /** Hybrid logical clock: counter within the millisecond. */
  counter: number;
  /** The writing device's node id. */
  node: string;
  deleted: boolean;
  data: JsonObject | null;
}

/** Why the server refused a change. */
export type RejectReason =
  | "clock_skew"
  | "row_too_large"
  | "quota_exceeded"
  | "too_old"
  /** Not a push result: the client's name for a change the server refused as malformed (`400`). */
  | "invalid_request"
  | (string & {});

/** One result of `POST /v1/rows/push`, in the order of the changes sent. */
export interface PushResult {
  collection: string;
  id: string;
  status: "applied" | "stale" | "rejected";
  reason?: RejectReason;
  /** With `stale` and `rejected`: the server's row as it now stands, or null when it holds none. */
  current?: Row | null;
}

/** `POST /v1/rows/push` answer. */
export interface PushResponse {
  results: PushResult[];
  /** ms */
  server_time: number;
}

/** `GET /v1/rows/pull` answer. */
export interface PullResponse {
  changes: Row[];
  cursor: string;
  has_more: boolean;
  /** ms */
  server_time: number;
}

// ---- blob ----

/** The meta object of a save version. */
export interface SaveMeta {
  /** Exactly the `ETag` header's value, quotes included. */
  version: string;
  size: number;
  /** Lower-case hex SHA-256 of the bytes. */
  sha256: string;
  updated_at: string;
  device_name: string | null;
}

/** `GET /v1/save/limits`. */
export interface SaveLimits {
  max_bytes: number;
  history: number;
}
