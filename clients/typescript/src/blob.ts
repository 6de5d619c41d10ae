import { backoffDelay, sleep, type BackoffOptions } from "./backoff.js";
import { ApiError, NetworkError, PayloadTooLargeError, VersionConflictError, errorFromProblem } from "./errors.js";
import type { Http } from "./http.js";
import { plainBytes, readJson } from "./http.js";
import type { SaveLimits, SaveMeta } from "./types.js";

/** The current save as `load` returns it. */
export interface LoadedSave {
  bytes: Uint8Array;
  /** The ETag (quotes included), to echo in `If-Match`. */
  version: string;
}

/** What a conflict resolver is given. */
export interface Conflict {
  /** The bytes this device tried to save. */
  mine: Uint8Array;
  /** The version this device based its write on (null: it thought there was no save). */
  base: string | null;
  /** The save as it stands on the server, or null when there is none (deleted meanwhile). */
  theirs: { bytes: Uint8Array; meta: SaveMeta } | null;
}

/**
 * What to do about a conflict: write these bytes over the current version (`mine`), give up the
 * write and take the server's save (`theirs`), or write merged bytes.
 */
export type ConflictResolution = { keep: "mine" } | { keep: "theirs" } | { merged: Uint8Array };

export type ConflictResolver = (conflict: Conflict) => ConflictResolution | Promise<ConflictResolution>;

/** What `save` did. */
export interface SaveResult {
  /** `saved`: the bytes given were written; `merged`/`kept_mine`: written after a conflict; `kept_theirs`: nothing written. */
  outcome: "saved" | "kept_mine" | "merged" | "kept_theirs";
  /** The save as it now stands (null: there is none, after `kept_theirs` of a deleted save). */
  meta: SaveMeta | null;
  /** Its bytes (null with `meta` null). */
  bytes: Uint8Array | null;
}

/** What `waitForChange` saw. */
export type MetaChange = { changed: false } | { changed: true; meta: SaveMeta | null };

export interface BlobSaveOptions {
  /** Called on `412 version_conflict`; without one, `save` throws `VersionConflictError`. */
  onConflict?: ConflictResolver;
  /** Attempts of one request on network errors, 5xx and 429 (default 5). */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  /** How many conflicts one `save` resolves before it gives up (default 5). */
  maxConflictRounds?: number;
  random?: () => number;
}

function randomKey(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** `sha-256=:<base64>:` (RFC 9530), or undefined where `crypto.subtle` is missing (insecure context). */
export async function contentDigest(bytes: Uint8Array): Promise<string | undefined> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return undefined;
  const digest = new Uint8Array(await subtle.digest("SHA-256", plainBytes(bytes)));
  return `sha-256=:${base64(digest)}:`;
}

function retryable(err: unknown): boolean {
  if (err instanceof NetworkError) return true;
  if (err instanceof ApiError) return err.status === 429 || err.status === 503 || err.status >= 500;
  return false;
}

type Precondition = { ifMatch: string } | { ifNoneMatch: "*" };

/**
 * The save blob of `app-blob`: one opaque byte string per user, written only over the version it
 * was based on. The object remembers the version it last loaded or wrote (`version`).
 */
export class BlobSave {
  private readonly http: Http;
  private readonly options: BlobSaveOptions;
  private limitsValue: SaveLimits | undefined;
  private unsettled: { key: string; condition: string; size: number; digest: string | undefined } | undefined;
  /** The version this device last loaded or wrote; null: none exists; undefined: unknown yet. */
  version: string | null | undefined = undefined;

  constructor(http: Http, options: BlobSaveOptions = {}) {
    this.http = http;
    this.options = options;
  }

  /** `GET /v1/save/limits` (cached). */
  async limits(): Promise<SaveLimits> {
    if (!this.limitsValue) this.limitsValue = await this.http.json<SaveLimits>("GET", "/v1/save/limits");
    return this.limitsValue;
  }

  /** `GET /v1/save`: the current bytes and version, or null when there is no save. */
  async load(signal?: AbortSignal): Promise<LoadedSave | null> {
    const loaded = await this.fetchCurrent(signal);
    this.version = loaded === null ? null : loaded.version;
    return loaded;
  }

  /** `GET /v1/save` without moving `version`: only what the app takes moves it. */
  private async fetchCurrent(signal?: AbortSignal): Promise<LoadedSave | null> {
    const response = await this.retrying(() =>
      this.http.send("GET", "/v1/save", { signal, headers: { Accept: "application/octet-stream, application/problem+json" } }),
    );
    if (response.status === 404) {
      const err = await this.http.toError(response);
      if (err instanceof ApiError && err.code === "no_save") return null;
      throw err;
    }
    if (!response.ok) throw await this.http.toError(response);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const version = response.headers.get("ETag");
    if (version === null) throw new Error("GET /v1/save: no ETag (is it exposed by CORS?)");
    return { bytes, version };
  }

  /** `GET /v1/save/meta`, or null when there is no save. */
  async meta(signal?: AbortSignal): Promise<SaveMeta | null> {
    const response = await this.retrying(() => this.http.send("GET", "/v1/save/meta", { signal }));
    return this.metaAnswer(response);
  }

  /**
   * Long-poll: waits up to `waitSeconds` (at most 60) for the save to move away from `version`
   * (default: the version this object knows). With no save known there is nothing to wait on:
   * the server answers at once, and this waits `min(waitSeconds, 5)` s itself before returning
   * `{changed: false}`.
   */
  async waitForChange(
    options: { version?: string | null; waitSeconds?: number; signal?: AbortSignal } = {},
  ): Promise<MetaChange> {
    const version = options.version !== undefined ? options.version : (this.version ?? null);
    const wait = Math.max(0, Math.min(60, Math.floor(options.waitSeconds ?? 30)));
    const headers: Record<string, string> = {};
    if (version !== null) {
      headers["If-None-Match"] = version;
      if (wait > 0) headers["Prefer"] = `wait=${wait}`;
    }
    const response = await this.http.send("GET", "/v1/save/meta", { headers, signal: options.signal });
    if (response.status === 304) {
      await response.body?.cancel();
      return { changed: false };
    }
    const meta = await this.metaAnswer(response);
    if (version === null && meta === null) {
      await sleep(Math.min(wait, 5) * 1000, options.signal);
      return { changed: false };
    }
    return { changed: true, meta };
  }

  /**
   * Writes `bytes` over the version this object knows (or `options.base`: an ETag, or null to
   * create). Retries of one logical write reuse its `Idempotency-Key`, so a lost response never
   * turns into a false conflict. On `412` the resolver (`options.onConflict` or the object's)
   * decides and the write is made again over the current version. The known version moves only
   * when a write succeeds or the resolver keeps theirs: if the resolver (or reading the server's
   * save) throws, the next `save` meets the same conflict again.
   */
  async save(
    bytes: Uint8Array,
    options: { base?: string | null; onConflict?: ConflictResolver; signal?: AbortSignal } = {},
  ): Promise<SaveResult> {
    const limits = this.limitsValue;
    if (limits && bytes.length > limits.max_bytes) {
      throw errorFromProblem(413, {
        type: "about:blank",
        title: "Payload Too Large",
        status: 413,
        detail: `the save is ${bytes.length} bytes, over the limit of ${limits.max_bytes}`,
        code: "payload_too_large",
      }) as PayloadTooLargeError;
    }
    const resolver = options.onConflict ?? this.options.onConflict;
    let base = options.base !== undefined ? options.base : (this.version ?? null);
    let toWrite = bytes;
    let outcome: SaveResult["outcome"] = "saved";
    const rounds = this.options.maxConflictRounds ?? 5;
    for (let round = 0; ; round++) {
      const precondition: Precondition = base === null ? { ifNoneMatch: "*" } : { ifMatch: base };
      try {
        const meta = await this.put(toWrite, precondition, options.signal);
        this.version = meta.version;
        return { outcome, meta, bytes: toWrite };
      } catch (err) {
        if (!(err instanceof VersionConflictError) || !resolver || round >= rounds) throw err;
        const theirs = err.current === null ? null : await this.current(err.current, options.signal);
        const decision = await resolver({ mine: bytes, base, theirs });
        if ("merged" in decision) {
          toWrite = decision.merged;
          outcome = "merged";
        } else if (decision.keep === "theirs") {
          this.version = theirs ? theirs.meta.version : null;
          return { outcome: "kept_theirs", meta: theirs ? theirs.meta : null, bytes: theirs ? theirs.bytes : null };
        } else {
          toWrite = bytes;
          outcome = "kept_mine";
        }
        base = theirs ? theirs.meta.version : null;
      }
    }
  }

  /** `DELETE /v1/save` over the known version (or `base`); `412` throws `VersionConflictError`. */
  async delete(options: { base?: string; signal?: AbortSignal } = {}): Promise<void> {
    const base = options.base ?? this.version;
    if (!base) throw new Error("delete: no known version (load first)");
    const key = randomKey();
    const response = await this.retrying(async () => {
      const r = await this.http.send("DELETE", "/v1/save", {
        headers: { "If-Match": base, "Idempotency-Key": key },
        signal: options.signal,
      });
      if (!r.ok) throw await this.http.toError(r);
      return r;
    });
    await response.body?.cancel();
    this.version = null;
  }

  /** `GET /v1/save/history`: replaced or deleted versions, newest first. */
  async history(signal?: AbortSignal): Promise<SaveMeta[]> {
    const answer = await this.http.json<{ versions: SaveMeta[] }>("GET", "/v1/save/history", { signal });
    return answer.versions;
  }

  /** `GET /v1/save/history/{version}`: the bytes of an old version (`version` as in its meta). */
  async loadVersion(version: string, signal?: AbortSignal): Promise<Uint8Array> {
    const bare = version.replace(/^W\//, "").replace(/^"|"$/g, "");
    const response = await this.http.request("GET", `/v1/save/history/${encodeURIComponent(bare)}`, {
      signal,
      headers: { Accept: "application/octet-stream, application/problem+json" },
    });
    return new Uint8Array(await response.arrayBuffer());
  }

  /**
   * The current save's bytes with their meta. The save may move again between the `412` and
   * these reads: the bytes and the meta must be of one version.
   */
  private async current(known: SaveMeta, signal?: AbortSignal): Promise<Conflict["theirs"]> {
    let meta: SaveMeta | null = known;
    for (let attempt = 0; attempt < 5; attempt++) {
      const loaded = await this.fetchCurrent(signal);
      if (loaded === null) return null;
      if (meta && meta.version === loaded.version) return { bytes: loaded.bytes, meta };
      meta = await this.meta(signal);
      if (meta === null) return null;
      if (meta.version === loaded.version) return { bytes: loaded.bytes, meta };
    }
    throw new Error("the save keeps changing; try again");
  }

  private async metaAnswer(response: Response): Promise<SaveMeta | null> {
    if (response.status === 404) {
      const err = await this.http.toError(response);
      if (err instanceof ApiError && err.code === "no_save") return null;
      throw err;
    }
    if (!response.ok) throw await this.http.toError(response);
    return (await readJson(response)) as SaveMeta;
  }

  private async put(bytes: Uint8Array, precondition: Precondition, signal?: AbortSignal): Promise<SaveMeta> {
    const digest = await contentDigest(bytes);
    const condition = "ifMatch" in precondition ? `M${precondition.ifMatch}` : "N*";
    // One key per logical write: the same bytes over the same precondition. A write whose
    // retries all failed keeps its key, so saving it again later is not a false conflict.
    const last = this.unsettled;
    const key =
      last && last.condition === condition && last.size === bytes.length && last.digest === digest && digest !== undefined
        ? last.key
        : randomKey();
    this.unsettled = { key, condition, size: bytes.length, digest };
    const headers: Record<string, string> = { "Idempotency-Key": key };
    if ("ifMatch" in precondition) headers["If-Match"] = precondition.ifMatch;
    else headers["If-None-Match"] = "*";
    if (digest) headers["Content-Digest"] = digest;
    try {
      const response = await this.retrying(async () => {
        const r = await this.http.send("PUT", "/v1/save", { bytes, headers, signal });
        if (!r.ok) throw await this.http.toError(r);
        return r;
      });
      this.unsettled = undefined;
      return (await readJson(response)) as SaveMeta;
    } catch (err) {
      // Only a write whose outcome is unknown keeps its key.
      if (!retryable(err)) this.unsettled = undefined;
      throw err;
    }
  }

  /** Runs `attempt` again on network errors, 5xx and 429 (honouring `Retry-After`). */
  private async retrying(attempt: () => Promise<Response>): Promise<Response> {
    const max = this.options.maxAttempts ?? 5;
    for (let i = 0; ; i++) {
      try {
        const response = await attempt();
        if ((response.status >= 500 || response.status === 429) && i + 1 < max) {
          const err = await this.http.toError(response);
          const retryAfter = err instanceof ApiError ? err.retryAfter : undefined;
          await sleep(backoffDelay(i, this.options.backoff, retryAfter, this.options.random));
          continue;
        }
        return response;
      } catch (err) {
        if (!retryable(err) || i + 1 >= max) throw err;
        const retryAfter = err instanceof ApiError ? err.retryAfter : undefined;
        await sleep(backoffDelay(i, this.options.backoff, retryAfter, this.options.random));
      }
    }
  }
}
