import type { ClockState } from "./hlc.js";
import type { RowStore, StoreCommit, StoreState } from "./store.js";
import type { Row } from "./types.js";

const ROWS = "rows";
const OUTBOX = "outbox";
const META = "meta";

function promised<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
  });
}

/**
 * The part of an `IDBFactory` this store's signatures name: `globalThis.indexedDB` or a
 * `fake-indexeddb` factory fits. Structural, so the declarations need no DOM lib (Node).
 */
export interface IndexedDbFactory {
  open(name: string, version?: number): object;
  deleteDatabase(name: string): object;
}

export interface IndexedDbRowStoreOptions {
  /** The database name; one per account is wise (e.g. `rows-${user.id}`). */
  name: string;
  /** The IndexedDB factory (default `globalThis.indexedDB`). */
  indexedDB?: IndexedDbFactory;
}

/**
 * A `RowStore` in IndexedDB (browsers, WebViews). Each `commit` is one transaction.
 * One store should be driven by one `RowsSync` at a time (one tab): the node id and clock are
 * per installation, and two tabs writing through one node could stamp equal versions.
 */
export class IndexedDbRowStore implements RowStore {
  private readonly db: IDBDatabase;

  private constructor(db: IDBDatabase) {
    this.db = db;
  }

  /** Opens (creating if needed) the store's database. */
  static async open(options: IndexedDbRowStoreOptions): Promise<IndexedDbRowStore> {
    const factory = (options.indexedDB ?? globalThis.indexedDB) as IDBFactory | undefined;
    if (!factory) throw new Error("IndexedDB is not available here");
    const request = factory.open(options.name, 1);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains(ROWS)) {
        db.createObjectStore(ROWS, { keyPath: ["collection", "id"] }).createIndex("collection", "collection");
      }
      if (!db.objectStoreNames.contains(OUTBOX)) db.createObjectStore(OUTBOX, { keyPath: ["collection", "id"] });
      if (!db.objectStoreNames.contains(META)) db.createObjectStore(META);
    };
    const db = await promised(request);
    return new IndexedDbRowStore(db);
  }

  /** Deletes a store's database (e.g. at sign-out). */
  static async destroy(name: string, factory: IndexedDbFactory = globalThis.indexedDB): Promise<void> {
    await promised((factory as IDBFactory).deleteDatabase(name));
  }

  close(): void {
    this.db.close();
  }

  async state(): Promise<StoreState> {
    const tx = this.db.transaction(META, "readonly");
    const meta = tx.objectStore(META);
    const [nodeId, cursor, clock] = await Promise.all([
      promised(meta.get("nodeId")) as Promise<string | undefined>,
      promised(meta.get("cursor")) as Promise<string | null | undefined>,
      promised(meta.get("clock")) as Promise<ClockState | undefined>,
    ]);
    return { nodeId: nodeId ?? null, cursor: cursor ?? null, clock: clock ?? { ts: 0, counter: 0 } };
  }

  async get(collection: string, id: string): Promise<Row | undefined> {
    const tx = this.db.transaction(ROWS, "readonly");
    return (await promised(tx.objectStore(ROWS).get([collection, id]))) as Row | undefined;
  }

  async list(collection?: string): Promise<Row[]> {
    const tx = this.db.transaction(ROWS, "readonly");
    const store = tx.objectStore(ROWS);
    const request = collection === undefined ? store.getAll() : store.index("collection").getAll(collection);
    const rows = (await promised(request)) as Row[];
    return rows.sort((a, b) =>
      a.collection !== b.collection ? (a.collection < b.collection ? -1 : 1) : a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
    );
  }

  async outbox(limit?: number): Promise<Row[]> {
    const tx = this.db.transaction([OUTBOX, ROWS], "readonly");
    const keys = (await promised(tx.objectStore(OUTBOX).getAllKeys(null, limit))) as IDBValidKey[];
    const rows = await Promise.all(keys.map((k) => promised(tx.objectStore(ROWS).get(k)) as Promise<Row | undefined>));
    return rows.filter((r): r is Row => r !== undefined);
  }

  async outboxSize(): Promise<number> {
    const tx = this.db.transaction(OUTBOX, "readonly");
    return promised(tx.objectStore(OUTBOX).count());
  }

  async commit(commit: StoreCommit): Promise<void> {
    const tx = this.db.transaction([ROWS, OUTBOX, META], "readwrite");
    const finished = done(tx);
    const rows = tx.objectStore(ROWS);
    const outbox = tx.objectStore(OUTBOX);
    const meta = tx.objectStore(META);
    // Requests of one transaction run in the order they are made.
    if (commit.replaceAll) {
      rows.clear();
      outbox.clear();
    }
    for (const key of commit.remove ?? []) rows.delete([key.collection, key.id]);
    for (const row of commit.put ?? []) rows.put(row);
    for (const key of commit.outboxRemove ?? []) outbox.delete([key.collection, key.id]);
    for (const key of commit.outboxAdd ?? []) outbox.put({ collection: key.collection, id: key.id });
    if (commit.cursor !== undefined) meta.put(commit.cursor, "cursor");
    if (commit.clock !== undefined) meta.put(commit.clock, "clock");
    if (commit.nodeId !== undefined) meta.put(commit.nodeId, "nodeId");
    await finished;
  }
}
