import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";

import {
  MemoryRowStore,
  MemoryTokenStore,
  RowRejectedError,
  createClient,
  type FetchLike,
  type Rejection,
  type Row,
} from "../src/index.js";
import { signedUp, startService, type Service } from "./support.js";

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("rows: what the server would refuse never reaches the outbox", () => {
  const offline: FetchLike = async () => {
    throw new Error("offline");
  };
  const rows = () => createClient({ baseUrl: "http://service.test", session: { mode: "cookie" }, fetch: offline }).rows(new MemoryRowStore());

  it("refuses lone surrogates in ids, data keys and data values, anywhere in data", async () => {
    const sync = rows();
    const cut = "note 😀".slice(0, 6);
    await assert.rejects(sync.put("notes", "n", { t: cut }), RangeError);
    await assert.rejects(sync.put("notes", "n", { [cut]: 1 }), RangeError);
    await assert.rejects(sync.put("notes", "n", { deep: { list: ["ok", { t: "\udc00x" }] } }), RangeError);
    await assert.rejects(sync.put("notes", "a\ud800", { t: 1 }), RangeError);
    await assert.rejects(sync.delete("notes", "a\ud800"), RangeError);
    assert.equal(await sync.pendingCount(), 0);
  });

  it("counts id length in characters (code points), as the server does", async () => {
    const sync = rows();
    await sync.put("notes", "😀".repeat(100), { t: 1 });
    await sync.put("notes", "😀".repeat(128), { t: 1 });
    await sync.put("notes", "é".repeat(128), { t: 1 });
    await assert.rejects(sync.put("notes", "😀".repeat(129), { t: 1 }), RangeError);
    await assert.rejects(sync.put("notes", "a".repeat(129), { t: 1 }), RangeError);
    await assert.rejects(sync.put("notes", "a\u0085", { t: 1 }), RangeError);
    assert.equal(await sync.pendingCount(), 3);
  });
});

describe("rows against app-rows: faults that must not wedge the loop", () => {
  let service: Service;
  before(async () => {
    service = await startService("rows");
  });
  after(async () => {
    await service?.stop();
  });

  it("a malformed change in the outbox is found, dropped and reported; the rest syncs", async () => {
    const { client } = await signedUp(service.url);
    const store = new MemoryRowStore();
    const rejected: Rejection[] = [];
    const errors: unknown[] = [];
    const sync = client.rows(store, { onRejected: (r) => rejected.push(r), onError: (e) => errors.push(e) });
    await sync.whenReady();
    await sync.put("notes", "good1", { t: "hello" });
    // What an older version of this client let through: a lone surrogate, cut from an emoji.
    const bad: Row = { collection: "notes", id: "cut", ts: Date.now(), counter: 0, node: sync.nodeId, deleted: false, data: { t: "note 😀".slice(0, 6) } };
    await store.commit({ put: [bad], outboxAdd: [bad] });
    for (let i = 0; i < 5; i++) await sync.put("notes", `good${i + 2}`, { t: "world" });
    await sync.syncOnce();
    assert.equal(await sync.pendingCount(), 0);
    assert.deepEqual(rejected.map((r) => [r.row.id, r.reason]), [["cut", "invalid_request"]]);
    assert.ok(errors.some((e) => e instanceof RowRejectedError));
    const check = client.rows(new MemoryRowStore());
    await check.syncOnce();
    assert.deepEqual((await check.list("notes")).map((r) => r.id), ["good1", "good2", "good3", "good4", "good5", "good6"]);
    // The device shows what the server holds: the refused row is gone.
    assert.equal(await sync.getRow("notes", "cut"), undefined);
    // The loop goes on with later writes.
    sync.start();
    await sync.put("notes", "later", { t: "!" });
    const deadline = Date.now() + 10_000;
    while ((await sync.pendingCount()) > 0 && Date.now() < deadline) await pause(25);
    await sync.stop();
    assert.equal(await sync.pendingCount(), 0);
  });

  it("too_old with tooOld: \"rewrite\" does not beat a newer write of another device", async () => {
    const service = await startService("rows", { TOMBSTONE_RETENTION: "1m" });
    try {
      const { client } = await signedUp(service.url);
      const rejected: Rejection[] = [];
      // A device whose write is ten minutes old (made offline long ago), then a newer one elsewhere.
      const old = client.rows(new MemoryRowStore(), { now: () => Date.now() - 10 * 60 * 1000, tooOld: "rewrite", onRejected: (r) => rejected.push(r) });
      await old.put("notes", "x", { text: "old, typed offline" });
      const laptop = client.rows(new MemoryRowStore());
      await laptop.put("notes", "x", { text: "newer, typed on the laptop" });
      await laptop.syncOnce();
      await old.syncOnce();
      await laptop.syncOnce();
      assert.deepEqual(await laptop.get("notes", "x"), { text: "newer, typed on the laptop" });
      assert.deepEqual(await old.get("notes", "x"), { text: "newer, typed on the laptop" });
      assert.deepEqual(rejected.map((r) => r.reason), ["too_old"]);
      assert.equal(await old.pendingCount(), 0);
    } finally {
      await service.stop();
    }
  });

  it("a cursor the server no longer accepts (SECRET_KEY rotated) resyncs from the start", async () => {
    const key = (): string => randomBytes(32).toString("base64");
    let rotated = await startService("rows", { SECRET_KEY: key() });
    try {
      const { tokens } = await signedUp(rotated.url);
      const store = new MemoryRowStore();
      const bearer = (url: string) => createClient({ baseUrl: url, session: { mode: "bearer", tokens: new MemoryTokenStore(tokens.get()) } });
      const before = bearer(rotated.url).rows(store);
      await before.put("notes", "a", { t: 1 });
      await before.syncOnce();
      const cursor = (await store.state()).cursor;
      assert.ok(cursor);
      rotated = await rotated.restart({ SECRET_KEY: key() });
      const after = bearer(rotated.url).rows(store);
      await after.put("notes", "b", { t: 2 });
      await after.syncOnce();
      assert.notEqual((await store.state()).cursor, cursor);
      assert.equal(await after.pendingCount(), 0);
      assert.deepEqual((await after.list("notes")).map((r) => r.id), ["a", "b"]);
    } finally {
      await rotated.stop();
    }
  });

  it("failing long-polls back off exponentially, then the loop falls back to plain polls", async () => {
    const { tokens } = await signedUp(service.url);
    let held = 0;
    let plain = 0;
    // A proxy that answers 502 to every held request.
    const proxy: FetchLike = async (input, init) => {
      const headers = (init.headers ?? {}) as Record<string, string>;
      if (headers["Prefer"]) {
        held++;
        return new Response("bad gateway", { status: 502 });
      }
      if (input.includes("/v1/rows/pull")) plain++;
      return fetch(input, init);
    };
    const client = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens: new MemoryTokenStore(tokens.get()) }, fetch: proxy });
    const delays: number[] = [];
    const sync = client.rows(new MemoryRowStore(), {
      backoff: { initialMs: 100, maxMs: 10_000 },
      random: () => 1,
      pollIntervalMs: 200,
      onStatus: (s) => {
        if (s.state === "backoff") delays.push(s.delayMs);
      },
    });
    sync.start();
    await pause(3000);
    await sync.stop();
    assert.deepEqual(delays.slice(0, 3), [100, 200, 400]);
    assert.equal(held, 3, "long-polls given up after three failures in a row");
    assert.ok(plain >= 5, `plain polls go on (${plain})`);
  });
});
