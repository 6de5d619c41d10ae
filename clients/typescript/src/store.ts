import type { ClockState } from "./hlc.js";
import type { Row } from "./types.js";

/** A row's key. */
export interface RowKey {
  collection: string;
  id: string;
}

/** The sync state a store keeps beside the rows. */
export interface StoreState {
  /** This installation's HLC node id, made once and kept. */
  nodeId: string | null;
  /** The pull cursor; null: pull from the beginning. */
  cursor: string | null;
  /** The last HLC reading, so the clock never goes back across restarts. */
  clock: ClockState;
}

/**
 * One atomic change of a store. Applied in this order: `replaceAll` (drops every row and the
 * outbox), `remove`, `put`, `outboxRemove`, `outboxAdd`, then `cursor`, `clock`, `nodeId`.
 */
export interface StoreCommit {
  replaceAll?: boolean;
  put?: Row[];
  remove?: RowKey[];
  outboxAdd?: RowKey[];
  outboxRemove?: RowKey[];
  cursor?: string | null;
  clock?: ClockState;
  nodeId?: string;
}

/**
 * Where a device keeps its rows (tombstones included), its outbox (keys written locally and not
 * yet acknowledged), its cursor and its clock. `commit` must be atomic: a crash leaves either
 * all of a commit or none of it.
 */
export interface RowStore {
  state(): Promise<StoreState>;
  get(collection: string, id: string): Promise<Row | undefined>;
  /** Every row (tombstones included), of one collection or all, ordered by collection then id. */
  list(collection?: string): Promise<Row[]>;
  /** The rows whose keys are in the outbox, at most `limit`. */
  outbox(limit?: number): Promise<Row[]>;
  outboxSize(): Promise<number>;
  commit(commit: StoreCommit): Promise<void>;
}

/** `collection` is `[a-z0-9_]`, so `/` separates it from the id unambiguously. */
export function keyString(key: RowKey): string {
  return `${key.collection}/${key.id}`;
}

function compareRows(a: RowKey, b: RowKey): number {
  if (a.collection !== b.collection) return a.collection < b.collection ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function copyRow(row: Row): Row {
  return structuredClone(row);
}

/** A `RowStore` in memory: tests, or a page that syncs without keeping anything offline. */
export class MemoryRowStore implements RowStore {
  private rows = new Map<string, Row>();
  private pending = new Map<string, RowKey>();
  private meta: StoreState = { nodeId: null, cursor: null, clock: { ts: 0, counter: 0 } };

  async state(): Promise<StoreState> {
    return { nodeId: this.meta.nodeId, cursor: this.meta.cursor, clock: { ...this.meta.clock } };
  }

  async get(collection: string, id: string): Promise<Row | undefined> {
    const row = this.rows.get(keyString({ collection, id }));
    return row ? copyRow(row) : undefined;
  }

  async list(collection?: string): Promise<Row[]> {
    const rows = [...this.rows.values()].filter((r) => collection === undefined || r.collection === collection);
    return rows.sort(compareRows).map(copyRow);
  }

  async outbox(limit: number = Number.MAX_SAFE_INTEGER): Promise<Row[]> {
    const out: Row[] = [];
    for (const key of this.pending.keys()) {
      if (out.length >= limit) break;
      const row = this.rows.get(key);
      if (row) out.push(copyRow(row));
    }
    return out;
  }

  async outboxSize(): Promise<number> {
    return this.pending.size;
  }

  async commit(commit: StoreCommit): Promise<void> {
    if (commit.replaceAll) {
      this.rows.clear();
      this.pending.clear();
    }
    for (const key of commit.remove ?? []) this.rows.delete(keyString(key));
    for (const row of commit.put ?? []) this.rows.set(keyString(row), copyRow(row));
    for (const key of commit.outboxRemove ?? []) this.pending.delete(keyString(key));
    for (const key of commit.outboxAdd ?? []) {
      this.pending.set(keyString(key), { collection: key.collection, id: key.id });
    }
    if (commit.cursor !== undefined) this.meta.cursor = commit.cursor;
    if (commit.clock !== undefined) this.meta.clock = { ...commit.clock };
    if (commit.nodeId !== undefined) this.meta.nodeId = commit.nodeId;
  }
}
