import { NetworkError, UnexpectedResponseError, errorFromProblem, parseRetryAfter } from "./errors.js";

/** Where a bearer client keeps a secret (the session token, or the device token). */
export interface TokenStore {
  get(): string | null | Promise<string | null>;
  set(token: string): void | Promise<void>;
  clear(): void | Promise<void>;
}

/**
 * How requests are authenticated.
 * - `cookie`: a web page on `PUBLIC_URL`'s origin or one of `ALLOWED_ORIGINS`; the browser keeps
 *   the session (and device) cookies, requests go with `credentials: "include"`.
 * - `bearer`: the session token goes in `Authorization: Bearer`; `tokens` keeps it.
 *   `deviceTokens` (optional but recommended) keeps the device token that login hands out, so a
 *   lockout of the account by someone else does not lock out this device.
 */
export type SessionConfig =
  | { mode: "cookie" }
  | { mode: "bearer"; tokens: TokenStore; deviceTokens?: TokenStore };

/** The subset of `fetch` the client uses. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/**
 * A `TokenStore` in memory (tests, or a native app that signs in each launch). The token is in
 * a private field: printing the store (or a client) does not show it.
 */
export class MemoryTokenStore implements TokenStore {
  #token: string | null;
  constructor(initial: string | null = null) {
    this.#token = initial;
  }
  get(): string | null {
    return this.#token;
  }
  set(token: string): void {
    this.#token = token;
  }
  clear(): void {
    this.#token = null;
  }
}

export interface RequestOptions {
  /** A JSON body (sets `Content-Type: application/json`). */
  json?: unknown;
  /** Raw bytes (sets `Content-Type: application/octet-stream`). */
  bytes?: Uint8Array;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
}

/** The transport: base URL, credentials, problem+json errors. */
export class Http {
  readonly baseUrl: string;
  readonly #session: SessionConfig;
  private readonly fetchFn: FetchLike;

  constructor(baseUrl: string, session: SessionConfig, fetchFn?: FetchLike) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#session = session;
    if (fetchFn) {
      this.fetchFn = fetchFn;
    } else {
      const f = globalThis.fetch;
      if (typeof f !== "function") throw new Error("no global fetch: pass options.fetch");
      this.fetchFn = (input, init) => f(input, init);
    }
  }

  /** How requests are authenticated (an accessor: printing the transport does not show its token stores). */
  get session(): SessionConfig {
    return this.#session;
  }

  /**
   * Sends a request and returns the response whatever its status.
   * Throws `NetworkError` when no response came (or the abort signal's reason when aborted).
   */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json, application/problem+json", ...options.headers };
    let body: BodyInit | undefined;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    } else if (options.bytes !== undefined) {
      headers["Content-Type"] = "application/octet-stream";
      body = plainBytes(options.bytes);
    }
    const init: RequestInit = { method, headers, cache: "no-store" };
    if (body !== undefined) init.body = body;
    if (options.signal) init.signal = options.signal;
    if (this.session.mode === "cookie") {
      init.credentials = "include";
    } else {
      init.credentials = "omit";
      const token = await this.session.tokens.get();
      if (token) headers["Authorization"] = `Bearer ${token}`;
    }
    try {
      return await this.fetchFn(this.baseUrl + path, init);
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason ?? err;
      throw new NetworkError(`${method} ${path}: no response (${describe(err)})`, { cause: err });
    }
  }

  /** Sends a request; a non-2xx answer throws its `ApiError`. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const response = await this.send(method, path, options);
    if (!response.ok && response.status !== 304) throw await this.toError(response);
    return response;
  }

  /** Sends a request and parses a JSON answer. */
  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.request(method, path, options);
    return (await readJson(response)) as T;
  }

  /** The `ApiError` for a non-2xx response (reads the body). */
  async toError(response: Response): Promise<Error> {
    let body: unknown = null;
    const text = await response.text().catch(() => "");
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
    }
    return errorFromProblem(response.status, body, parseRetryAfter(response.headers.get("Retry-After")));
  }
}

/** Parses a JSON body; a body that is not JSON is an `UnexpectedResponseError`. */
export async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new UnexpectedResponseError(response.status, `expected JSON, got ${text.slice(0, 80)}`);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The bytes over a plain `ArrayBuffer` (what `fetch` and `crypto.subtle` take), copied only if shared. */
export function plainBytes(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}
