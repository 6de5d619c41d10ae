import { backoffDelay, sleep, type BackoffOptions } from "./backoff.js";
import { ApiError, InvalidRequestError, RowRejectedError, UnauthenticatedError, UnexpectedResponseError, type Rejection } from "./errors.js";
import { Hlc, compareVersions, randomNodeId, sameVersion } from "./hlc.js";
import type { Http } from "./http.js";
import { readJson } from "./http.js";
import { keyString, type RowKey, type RowStore, type StoreCommit } from "./store.js";
import type { JsonCompatible, JsonObject, PullResponse, PushResponse, PushResult, Row } from "./types.js";

/** At most this many changes per push (the server's limit). */
export const PUSH_BATCH = 1000;
/** A push body stays under this many bytes (the server's limit is 2 MiB). */
const PUSH_BODY_BUDGET = 2 * 1024 * 1024 - 16 * 1024;
/** `data` may be at most this many bytes serialized. */
export const MAX_DATA_BYTES = 64 * 1024;
/** After this many long-polls in a row failed, the loop polls plainly for a while. */
const LONG_POLL_FAILURES = 3;
/** How long the loop polls plainly (every `pollIntervalMs`) before it tries a long-poll again. */
const PLAIN_POLL_MS = 5 * 60 * 1000;
/** How many times a resync starts again after a `410` in its own walk. */
const RESYNC_RESTARTS = 3;

/** A row that is not deleted. */
export type LiveRow = Row & { deleted: false; data: JsonObject };

/** What changed in the store, for listeners. */
export interface RowsChange {
  /** `local`: `put`/`delete`; `remote`: pulled or adopted from the server; `resync`: state replaced. */
  source: "local" | "remote" | "resync";
  /** The rows as they now stand (tombstones included); for `resync`, every row. */
  rows: Row[];
}

/** The sync loop's state. */
export type SyncStatus =
  | { state: "stopped" }
  | { state: "syncing" }
  /** Up to date, waiting for a change (long-poll) or a local write. */
  | { state: "idle" }
  /** Retrying after `error` in `delayMs`. */
  | { state: "backoff"; error: unknown; delayMs: number }
  /** The session is gone (401): the loop stopped; sign in and call `start()` again. */
  | { state: "unauthenticated" };

/** What `too_old` (a write older than the server's tombstone retention) does. */
export type TooOldPolicy = "adopt" | "rewrite" | ((rejection: Rejection) => boolean | Promise<boolean>);

export interface RowsSyncOptions {
  /**
   * `Prefer: wait=S` on idle pulls, seconds, at most 60 (default 30); 0 polls every `pollIntervalMs`.
   * Failing long-polls back off exponentially; after 3 in a row the loop polls plainly for 5
   * minutes, then tries a long-poll again.
   */
  waitSeconds?: number;
  /** With `waitSeconds: 0` (or while long-polls fail), the pause between idle pulls (default 30000). */
  pollIntervalMs?: number;
  /** Pull page size (default 500, max 1000). */
  pageSize?: number;
  /** Changes per push (default and max 1000). */
  pushBatch?: number;
  /** How long local writes gather before the loop pushes them (default 50 ms). */
  debounceMs?: number;
  backoff?: BackoffOptions;
  /**
   * `too_old`: `"adopt"` (default) takes the server's row and reports the rejection, as for every
   * other reason; `"rewrite"` stamps the write again with a fresh version and pushes it; a
   * function decides per rejection (true: rewrite). Only a write that would have won by
   * last-write-wins is rewritten: the server holds no row of that key (`current` null or
   * absent) or an older one. A write older than the server's row is adopted away and reported,
   * whatever the policy, so an old offline write never beats a newer one of another device.
   */
  tooOld?: TooOldPolicy;
  /** The physical clock, ms (default `Date.now`). */
  now?: () => number;
  /** For jitter (default `Math.random`). */
  random?: () => number;
  onChange?: (change: RowsChange) => void;
  onRejected?: (rejection: Rejection) => void;
  onError?: (error: unknown) => void;
  onStatus?: (status: SyncStatus) => void;
}

/** Events of a `RowsSync`. */
export interface RowsEvents {
  change: RowsChange;
  /**
   * A local write the server refused (`clock_skew`, `row_too_large`, `quota_exceeded`, `too_old`),
   * or refused as malformed (`invalid_request`: taken out of the outbox, so the rest still syncs).
   */
  rejected: Rejection;
  /**
   * A failed sync step (the loop retries it); rejections come as `RowRejectedError` too. What
   * another listener throws comes here as well.
   */
  error: unknown;
  status: SyncStatus;
}

type Listener<T> = (event: T) => void;

/** A promise chain: one holder at a time. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

const COLLECTION = /^[a-z0-9_]{1,64}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function isRecord(v: unknown): v is { [k: string]: unknown } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isRow(v: unknown): v is Row {
  return (
    isRecord(v) &&
    typeof v["collection"] === "string" &&
    typeof v["id"] === "string" &&
    Number.isSafeInteger(v["ts"]) &&
    Number.isSafeInteger(v["counter"]) &&
    typeof v["node"] === "string" &&
    typeof v["deleted"] === "boolean" &&
    (v["data"] === null || isRecord(v["data"]))
  );
}

/** Checks a pull answer's shape (a page applied half-read would corrupt the store). */
function asPullResponse(status: number, body: unknown): PullResponse {
  if (
    isRecord(body) &&
    Array.isArray(body["changes"]) &&
    body["changes"].every(isRow) &&
    typeof body["cursor"] === "string" &&
    typeof body["has_more"] === "boolean"
  ) {
    return body as unknown as PullResponse;
  }
  throw new UnexpectedResponseError(status, "pull: not a page of rows");
}

/** Checks a push answer's shape. */
function asPushResponse(status: number, body: unknown, sent: number): PushResponse {
  if (
    isRecord(body) &&
    Array.isArray(body["results"]) &&
    body["results"].length === sent &&
    body["results"].every(
      (r) =>
        isRecord(r) &&
        (r["status"] === "applied" || r["status"] === "stale" || r["status"] === "rejected") &&
        (r["current"] === undefined || r["current"] === null || isRow(r["current"])),
    )
  ) {
    return body as unknown as PushResponse;
  }
  throw new UnexpectedResponseError(status, "push: not one result per change");
}

/** A UTF-16 surrogate without its pair: JSON would carry it as an escape the server refuses. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The id rule of the contract: 1-128 characters (code points), no control character. */
function idProblem(id: string): string | undefined {
  if (typeof id !== "string") return "must be a string";
  if (LONE_SURROGATE.test(id)) return "has a lone UTF-16 surrogate";
  const length = [...id].length;
  if (length < 1 || length > 128) return `must be 1-128 characters, not ${length}`;
  if (CONTROL.test(id)) return "has a control character";
  return undefined;
}

/** Where `value` holds a string (key or value) the server would refuse, or undefined. */
function dataProblem(value: unknown, path: string): string | undefined {
  if (typeof value === "string") return LONE_SURROGATE.test(value) ? `${path} has a lone UTF-16 surrogate` : undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = dataProblem(value[i], `${path}[${i}]`);
      if (problem) return problem;
    }
    return undefined;
  }
  if (typeof value === "object" && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (LONE_SURROGATE.test(key)) return `a key in ${path} has a lone UTF-16 surrogate`;
      const problem = dataProblem(item, `${path}.${key}`);
      if (problem) return problem;
    }
    return undefined;
  }
  return undefined;
}

function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

function isAbort(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { name?: unknown }).name === "AbortError";
}

function abortError(): Error {
  const err = new Error("aborted");
  err.name = "AbortError";
  return err;
}

/**
 * Row sync with `app-rows`: a local store, a hybrid logical clock and a sync loop.
 *
 * Local writes go to the store and its outbox at once; `syncOnce` pushes the outbox and pulls to
 * quiescence; `start()` runs that in a loop with long-polls, back-off and `Retry-After`.
 */
export class RowsSync {
  private readonly http: Http;
  readonly store: RowStore;
  private readonly options: RowsSyncOptions;
  private readonly lock = new Mutex();
  private readonly syncLock = new Mutex();
  private readonly listeners: { [K in keyof RowsEvents]: Set<Listener<RowsEvents[K]>> } = {
    change: new Set(),
    rejected: new Set(),
    error: new Set(),
    status: new Set(),
  };
  private clock = new Hlc();
  private node = "";
  private readonly ready: Promise<void>;
  private running = false;
  private loopDone: Promise<void> | null = null;
  private stopController: AbortController | null = null;
  private waitController: AbortController | null = null;
  private backoffController: AbortController | null = null;
  private dirty = false;
  private statusValue: SyncStatus = { state: "stopped" };

  constructor(http: Http, store: RowStore, options: RowsSyncOptions = {}) {
    this.http = http;
    this.store = store;
    this.options = options;
    this.ready = this.lock.run(async () => {
      const state = await store.state();
      this.clock = new Hlc(state.clock);
      if (state.nodeId) {
        this.node = state.nodeId;
      } else {
        this.node = randomNodeId();
        await store.commit({ nodeId: this.node });
      }
    });
  }

  /** Resolves once the store's node id and clock are loaded. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** This installation's node id (after `whenReady()`). */
  get nodeId(): string {
    return this.node;
  }

  get status(): SyncStatus {
    return this.statusValue;
  }

  // ---- events ----

  /** Listens to an event; returns the unsubscribe function. */
  on<K extends keyof RowsEvents>(type: K, listener: Listener<RowsEvents[K]>): () => void {
    this.listeners[type].add(listener);
    return () => {
      this.listeners[type].delete(listener);
    };
  }

  /** Listens to row changes (local writes, pulled rows, resyncs). */
  subscribe(listener: (change: RowsChange) => void): () => void {
    return this.on("change", listener);
  }

  private emit<K extends keyof RowsEvents>(type: K, event: RowsEvents[K]): void {
    const callback = {
      change: this.options.onChange,
      rejected: this.options.onRejected,
      error: this.options.onError,
      status: this.options.onStatus,
    }[type] as Listener<RowsEvents[K]> | undefined;
    for (const listener of [...(callback ? [callback] : []), ...this.listeners[type]]) {
      try {
        listener(event);
      } catch (err) {
        // A listener's fault must neither break the sync nor become an uncaught exception: it
        // goes to the error listeners (an error listener's own fault is dropped).
        if (type !== "error") this.emit("error", err);
      }
    }
  }

  private setStatus(status: SyncStatus): void {
    this.statusValue = status;
    this.emit("status", status);
  }

  // ---- local reads and writes ----

  /** The data of a live row, or undefined (absent or deleted). */
  async get(collection: string, id: string): Promise<JsonObject | undefined> {
    await this.ready;
    const row = await this.store.get(collection, id);
    return row && !row.deleted && row.data ? row.data : undefined;
  }

  /** The stored row, tombstones included. */
  async getRow(collection: string, id: string): Promise<Row | undefined> {
    await this.ready;
    return this.store.get(collection, id);
  }

  /** The live rows of a collection (or of all), ordered by collection then id. */
  async list(collection?: string): Promise<LiveRow[]> {
    await this.ready;
    const rows = await this.store.list(collection);
    return rows.filter((r): r is LiveRow => !r.deleted && r.data !== null);
  }

  /** Writes a row locally (and queues it for the server). Throws `RangeError` on what the server would refuse. */
  put<T extends JsonCompatible<T> & object = JsonObject>(collection: string, id: string, data: T): Promise<Row> {
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      return Promise.reject(new TypeError("data must be a JSON object"));
    }
    const problem = dataProblem(data, "data");
    if (problem) return Promise.reject(new RangeError(problem));
    const size = utf8Length(JSON.stringify(data));
    if (size > MAX_DATA_BYTES) {
      return Promise.reject(new RangeError(`data is ${size} bytes serialized, over ${MAX_DATA_BYTES}`));
    }
    return this.write(collection, id, structuredClone(data) as unknown as JsonObject);
  }

  /** Deletes a row locally (a tombstone, which syncs like any write). */
  delete(collection: string, id: string): Promise<Row> {
    return this.write(collection, id, null);
  }

  /** How many rows wait to be pushed. */
  async pendingCount(): Promise<number> {
    await this.ready;
    return this.store.outboxSize();
  }

  private async write(collection: string, id: string, data: JsonObject | null): Promise<Row> {
    if (!COLLECTION.test(collection)) return Promise.reject(new RangeError(`bad collection ${JSON.stringify(collection)}`));
    const problem = idProblem(id);
    if (problem) return Promise.reject(new RangeError(`bad id ${JSON.stringify(id)}: ${problem}`));
    await this.ready;
    const row = await this.lock.run(async () => {
      const { ts, counter } = this.clock.tick(this.now());
      const row: Row = { collection, id, ts, counter, node: this.node, deleted: data === null, data };
      await this.store.commit({ put: [row], outboxAdd: [row], clock: this.clock.current });
      return row;
    });
    this.emit("change", { source: "local", rows: [row] });
    this.kick();
    return row;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  // ---- sync steps ----

  /** Pushes the outbox, then pulls until nothing more is new. Throws on failure (state stays consistent). */
  syncOnce(signal?: AbortSignal): Promise<void> {
    return this.syncLock.run(async () => {
      await this.ready;
      await this.pushNow(signal);
      await this.pullNow(undefined, signal);
    });
  }

  /** Pushes the outbox in batches until it is empty. */
  push(signal?: AbortSignal): Promise<void> {
    return this.syncLock.run(async () => {
      await this.ready;
      await this.pushNow(signal);
    });
  }

  /** Pulls pages until `has_more` is false (a `410`, or a `400` on the cursor, resyncs from the start). */
  pull(signal?: AbortSignal): Promise<void> {
    return this.syncLock.run(async () => {
      await this.ready;
      await this.pullNow(undefined, signal);
    });
  }

  /** Waits up to `waitSeconds` for a change made elsewhere (long-poll), then pulls to quiescence. */
  async waitForChanges(waitSeconds: number, signal?: AbortSignal): Promise<void> {
    await this.ready;
    await this.pullNow(Math.max(0, Math.min(60, Math.floor(waitSeconds))), signal);
  }

  private async pushNow(signal?: AbortSignal): Promise<void> {
    const limit = Math.max(1, Math.min(PUSH_BATCH, this.options.pushBatch ?? PUSH_BATCH));
    // Each round settles at least the rows sent unless a newer local write replaced them.
    for (let round = 0; round < 1000; round++) {
      const candidates = await this.store.outbox(limit);
      if (candidates.length === 0) return;
      const batch: Row[] = [];
      let bytes = 16;
      for (const row of candidates) {
        const size = utf8Length(JSON.stringify(row)) + 1;
        if (batch.length > 0 && bytes + size > PUSH_BODY_BUDGET) break;
        batch.push(row);
        bytes += size;
      }
      const malformed: Row[] = [];
      await this.pushBatch(batch, malformed, signal);
      if (malformed.length > 0) await this.dropMalformed(malformed);
    }
  }

  /**
   * Pushes `batch` and settles its results. A malformed change makes the server refuse the
   * whole push (`400`): the batch is then split in halves, recursively, to find the changes it
   * refuses (into `malformed`) while the others go through.
   */
  private async pushBatch(batch: Row[], malformed: Row[], signal?: AbortSignal): Promise<void> {
    let response: Response;
    try {
      response = await this.http.request("POST", "/v1/rows/push", { json: { changes: batch }, signal });
    } catch (err) {
      if (!(err instanceof InvalidRequestError)) throw err;
      if (batch.length === 1) {
        malformed.push(batch[0] as Row);
        return;
      }
      const half = Math.ceil(batch.length / 2);
      await this.pushBatch(batch.slice(0, half), malformed, signal);
      await this.pushBatch(batch.slice(half), malformed, signal);
      return;
    }
    const body = asPushResponse(response.status, await readJson(response), batch.length);
    await this.settle(batch, body);
  }

  /**
   * Takes changes the server refuses as malformed out of the outbox, so they never block the
   * others again. The device no longer knows how the server holds those rows: it drops them
   * locally and pulls from the start next time, which brings back the server's rows.
   */
  private async dropMalformed(malformed: Row[]): Promise<void> {
    const dropped: Row[] = [];
    await this.lock.run(async () => {
      for (const sent of malformed) {
        const local = await this.store.get(sent.collection, sent.id);
        // A newer local write of that key replaced it: that one is sent next.
        if (local && sameVersion(local, sent)) dropped.push(sent);
      }
      if (dropped.length === 0) return;
      await this.store.commit({ remove: dropped, outboxRemove: dropped, cursor: null });
    });
    if (dropped.length === 0) return;
    this.emit("change", { source: "remote", rows: dropped.map((r) => ({ ...r, deleted: true, data: null })) });
    for (const row of dropped) {
      const rejection: Rejection = { row, reason: "invalid_request", current: null };
      this.emit("rejected", rejection);
      this.emit("error", new RowRejectedError(rejection));
    }
  }

  private async settle(batch: Row[], body: PushResponse): Promise<void> {
    const rejections: Rejection[] = [];
    const changed: Row[] = [];
    // The app's too_old policy runs before the lock: it may read or write rows.
    const rewrite = new Set<number>();
    for (let i = 0; i < batch.length; i++) {
      const result = body.results[i] as PushResult;
      if (result.status !== "rejected" || result.reason !== "too_old") continue;
      const sent = batch[i] as Row;
      const rejection: Rejection = { row: sent, reason: "too_old", current: result.current ?? null };
      // Rewritten only if it would have won by last-write-wins: over no row, or an older one.
      // A newer row of another device stands; this write is adopted away like any loser.
      const current = result.current;
      if (current && compareVersions(sent, current) <= 0) continue;
      if (await this.rewriteTooOld(rejection)) rewrite.add(i);
    }
    await this.lock.run(async () => {
      if (typeof body.server_time === "number") this.clock.observe(body.server_time, 0);
      const commit: Required<Pick<StoreCommit, "put" | "remove" | "outboxRemove">> = {
        put: [],
        remove: [],
        outboxRemove: [],
      };
      for (let i = 0; i < batch.length; i++) {
        const sent = batch[i] as Row;
        const result = body.results[i] as PushResult;
        const local = await this.store.get(sent.collection, sent.id);
        // Only the write that was sent is settled; a newer local one stays queued.
        if (!local || !sameVersion(local, sent)) continue;
        if (result.status === "applied") {
          commit.outboxRemove.push(sent);
          continue;
        }
        const current = result.current;
        if (result.status === "rejected") {
          const rejection: Rejection = { row: sent, reason: result.reason ?? "unknown", current: current ?? null };
          if (rewrite.has(i)) {
            const { ts, counter } = this.clock.tick(this.now());
            const again: Row = { ...sent, ts, counter, node: this.node };
            commit.put.push(again);
            changed.push(again);
            continue;
          }
          rejections.push(rejection);
        }
        // The server says how the row stands: take that, so this device shows what every other
        // device will (a refused new row goes).
        if (current === null) {
          commit.remove.push(sent);
          changed.push({ ...sent, deleted: true, data: null });
        } else if (current !== undefined) {
          this.clock.observe(current.ts, current.counter);
          commit.put.push(current);
          changed.push(current);
        }
        commit.outboxRemove.push(sent);
      }
      await this.store.commit({ ...commit, clock: this.clock.current });
      // A second step: a crash between the two leaves the clock ahead, which is safe.
      if (rejections.some((r) => r.reason === "clock_skew")) {
        await this.rewindClock(typeof body.server_time === "number" ? body.server_time : 0);
        await this.store.commit({ clock: this.clock.current });
      }
    });
    if (changed.length > 0) this.emit("change", { source: "remote", rows: changed });
    for (const rejection of rejections) {
      this.emit("rejected", rejection);
      this.emit("error", new RowRejectedError(rejection));
    }
  }

  /**
   * After `clock_skew` the clock ran ahead of the server's (the device's clock was wrong). Left
   * there, it would stamp every write in that future until real time caught up. It goes back to
   * the latest of the server's time and every version this device holds that is not an unpushed
   * write, so a new write still beats everything the device has seen. (An unpushed row is
   * replaced by the next write of its key, whatever their versions.)
   */
  private async rewindClock(serverTime: number): Promise<void> {
    const unpushed = new Set((await this.store.outbox()).map((r) => keyString(r)));
    let floor = { ts: serverTime, counter: 0, node: "" };
    for (const row of await this.store.list()) {
      if (!unpushed.has(keyString(row)) && compareVersions(row, floor) > 0) floor = row;
    }
    this.clock = new Hlc({ ts: floor.ts, counter: floor.counter });
  }

  private async rewriteTooOld(rejection: Rejection): Promise<boolean> {
    const policy = this.options.tooOld ?? "adopt";
    if (policy === "adopt") return false;
    if (policy === "rewrite") return true;
    return policy(rejection);
  }

  private pullPath(cursor: string | null): string {
    const pageSize = Math.max(1, Math.min(1000, this.options.pageSize ?? 500));
    const since = cursor === null ? "" : `since=${encodeURIComponent(cursor)}&`;
    return `/v1/rows/pull?${since}limit=${pageSize}`;
  }

  /** Pulls to quiescence; returns how many changes came (a resync counts as one at least). */
  private async pullNow(waitSeconds: number | undefined, signal?: AbortSignal): Promise<number> {
    let wait = waitSeconds;
    let received = 0;
    for (;;) {
      const { cursor } = await this.store.state();
      const headers: Record<string, string> = {};
      // Only the first page waits: the others exist already.
      if (wait !== undefined && wait > 0) headers["Prefer"] = `wait=${wait}`;
      wait = undefined;
      const response = await this.http.send("GET", this.pullPath(cursor), { headers, signal });
      // `410`: a purge may have removed tombstones this device has not seen. `400` on a cursor:
      // the server no longer takes it (its SECRET_KEY changed, or the cursor is not this user's).
      // Either way the device pulls from the start; its unpushed writes stay.
      if (response.status === 410 || (response.status === 400 && cursor !== null)) {
        await response.body?.cancel();
        await this.resync(signal);
        return received + 1;
      }
      if (!response.ok) throw await this.http.toError(response);
      const page = asPullResponse(response.status, await readJson(response));
      await this.applyPage(page);
      received += page.changes.length;
      if (!page.has_more) return received;
    }
  }

  private async applyPage(page: PullResponse): Promise<void> {
    const taken: Row[] = [];
    await this.lock.run(async () => {
      if (typeof page.server_time === "number") this.clock.observe(page.server_time, 0);
      for (const row of page.changes) {
        this.clock.observe(row.ts, row.counter);
        const local = await this.store.get(row.collection, row.id);
        // Take the pulled row if it is at least as new as the local one; an unpushed local write
        // older than it has lost: stop sending it.
        if (!local || compareVersions(row, local) >= 0) taken.push(row);
      }
      // The cursor moves only once the page is applied, so a lost page is pulled again.
      await this.store.commit({ put: taken, outboxRemove: taken, cursor: page.cursor, clock: this.clock.current });
    });
    if (taken.length > 0) this.emit("change", { source: "remote", rows: taken });
  }

  /** Replaces the rows with the server's, keeping unpushed local writes that are newer. */
  private async resync(signal?: AbortSignal): Promise<void> {
    let restarts = 0;
    let fresh = new Map<string, Row>();
    let cursor: string | null = null;
    walk: for (;;) {
      fresh = new Map();
      cursor = null;
      for (;;) {
        const response = await this.http.send("GET", this.pullPath(cursor), { signal });
        if (response.status === 410 && restarts < RESYNC_RESTARTS) {
          await response.body?.cancel();
          restarts++;
          continue walk;
        }
        if (!response.ok) throw await this.http.toError(response);
        const page = asPullResponse(response.status, await readJson(response));
        for (const row of page.changes) fresh.set(keyString(row), row);
        cursor = page.cursor;
        if (!page.has_more) break walk;
      }
    }
    // Nothing changes locally until the whole state has arrived.
    let all: Row[] = [];
    await this.lock.run(async () => {
      for (const row of fresh.values()) this.clock.observe(row.ts, row.counter);
      const keep: RowKey[] = [];
      for (const local of await this.store.outbox()) {
        const server = fresh.get(keyString(local));
        if (!server || compareVersions(local, server) > 0) {
          fresh.set(keyString(local), local);
          keep.push(local);
        }
      }
      all = [...fresh.values()];
      await this.store.commit({
        replaceAll: true,
        put: all,
        outboxAdd: keep,
        cursor,
        clock: this.clock.current,
      });
    });
    this.emit("change", { source: "resync", rows: all });
  }

  // ---- the loop ----

  /** Starts the sync loop (no-op when running). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopController = new AbortController();
    this.loopDone = this.loop(this.stopController.signal);
  }

  /** Stops the loop and waits for it to end; a request in flight is aborted. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopController?.abort(abortError());
    await this.loopDone;
    this.loopDone = null;
    this.setStatus({ state: "stopped" });
  }

  /**
   * Syncs now: ends the loop's long-poll, poll pause or back-off (not a wait the server asked
   * for with `Retry-After`). For a browser's `online` and `visibilitychange` events.
   */
  wake(): void {
    this.kick();
    this.backoffController?.abort(abortError());
  }

  /** Wakes the loop: ends a long-poll or a poll pause so that local writes go out now. */
  private kick(): void {
    this.dirty = true;
    this.waitController?.abort(abortError());
  }

  private async loop(stop: AbortSignal): Promise<void> {
    let attempt = 0;
    // Long-polls that failed in a row (e.g. a proxy that refuses held requests while plain ones
    // pass): their back-off grows on its own, since the plain sync between them succeeds.
    let waitFailures = 0;
    let plainPollUntil = 0;
    let needFull = true;
    while (this.running && !stop.aborted) {
      let waiting = false;
      try {
        if (needFull || this.dirty || (await this.store.outboxSize()) > 0) {
          this.dirty = false;
          this.setStatus({ state: "syncing" });
          await this.syncOnce(stop);
          needFull = false;
          attempt = 0;
          if (this.dirty) {
            await sleep(this.options.debounceMs ?? 50, stop);
            continue;
          }
        }
        this.setStatus({ state: "idle" });
        const waitController = new AbortController();
        this.waitController = waitController;
        const onStop = (): void => waitController.abort(abortError());
        stop.addEventListener("abort", onStop, { once: true });
        try {
          if (this.dirty) throw abortError();
          const waitSeconds = Math.min(60, this.options.waitSeconds ?? 30);
          if (waitSeconds > 0 && Date.now() >= plainPollUntil) {
            // Not under the sync lock: a long-poll must not hold up an explicit `syncOnce`.
            const started = Date.now();
            waiting = true;
            const received = await this.pullNow(waitSeconds, waitController.signal);
            waiting = false;
            waitFailures = 0;
            // Answered early with nothing: the service gave this waiter's place to a newer one
            // (it holds a bounded number per user) or is stopping. Pause before waiting again,
            // so that many devices of one user do not take turns evicting each other.
            if (received === 0 && Date.now() - started < waitSeconds * 500) {
              const random = this.options.random ?? Math.random;
              await sleep(1000 + random() * 4000, waitController.signal);
            }
          } else {
            await sleep(this.options.pollIntervalMs ?? 30_000, waitController.signal);
            await this.pullNow(undefined, waitController.signal);
          }
          attempt = 0;
        } catch (err) {
          if (!(isAbort(err) && !stop.aborted)) throw err;
          // A local write woke the loop: let writes of the same moment gather.
          await sleep(this.options.debounceMs ?? 50, stop);
        } finally {
          stop.removeEventListener("abort", onStop);
          this.waitController = null;
        }
      } catch (err) {
        if (stop.aborted) break;
        if (isAbort(err)) continue;
        this.emit("error", err);
        if (err instanceof UnauthenticatedError) {
          this.running = false;
          this.setStatus({ state: "unauthenticated" });
          return;
        }
        needFull = true;
        let delayAttempt = attempt++;
        if (waiting) {
          waitFailures++;
          delayAttempt = Math.max(delayAttempt, waitFailures - 1);
          if (waitFailures >= LONG_POLL_FAILURES) plainPollUntil = Date.now() + PLAIN_POLL_MS;
        }
        const retryAfter = err instanceof ApiError ? err.retryAfter : undefined;
        const delayMs = backoffDelay(delayAttempt, this.options.backoff, retryAfter, this.options.random);
        this.setStatus({ state: "backoff", error: err, delayMs });
        const backoffController = new AbortController();
        const onStop = (): void => backoffController.abort(abortError());
        stop.addEventListener("abort", onStop, { once: true });
        // `wake()` may cut a back-off short, but not a server's Retry-After.
        this.backoffController = retryAfter === undefined ? backoffController : null;
        try {
          await sleep(delayMs, backoffController.signal);
        } catch {
          if (stop.aborted) break;
        } finally {
          stop.removeEventListener("abort", onStop);
          this.backoffController = null;
        }
      }
    }
  }
}
