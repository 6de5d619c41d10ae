import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import "fake-indexeddb/auto";
import {
  IndexedDbRowStore,
  EmailNotVerifiedError,
  MemoryRowStore,
  MemoryTokenStore,
  RateLimitedError,
  createClient,
  type Client,
  type FetchLike,
  type Rejection,
  type RowsChange,
  type SyncStatus,
} from "../src/index.js";
import { PASSWORD, browserFetch, freshEmail, mailedToken, signedUp, startService, type Service } from "./support.js";

function until(check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = async (): Promise<void> => {
      if (await check()) return resolve();
      if (Date.now() > deadline) return reject(new Error("timed out"));
      setTimeout(tick, 25);
    };
    void tick();
  });
}

describe("rows against app-rows", () => {
  let service: Service;
  before(async () => {
    service = await startService("rows", { ROWS_QUOTA: "50", ALLOWED_ORIGINS: "http://localhost:5173" });
  });
  after(async () => {
    await service?.stop();
  });

  it("two devices converge through syncOnce; deletes travel as tombstones", async () => {
    const { client } = await signedUp(service.url);
    const a = client.rows(new MemoryRowStore());
    const b = client.rows(new MemoryRowStore());
    await a.whenReady();
    await b.whenReady();
    assert.notEqual(a.nodeId, b.nodeId);
    await a.put("notes", "n1", { title: "one", n: 12345678901234567890 });
    await a.put("notes", "n2", { title: "two" });
    assert.equal(await a.pendingCount(), 2);
    await a.syncOnce();
    assert.equal(await a.pendingCount(), 0);
    await b.syncOnce();
    assert.deepEqual((await b.list("notes")).map((r) => r.id), ["n1", "n2"]);
    await b.delete("notes", "n1");
    await b.put("notes", "n2", { title: "two, edited" });
    await b.syncOnce();
    await a.syncOnce();
    assert.equal(await a.get("notes", "n1"), undefined);
    assert.equal((await a.getRow("notes", "n1"))?.deleted, true);
    assert.deepEqual(await a.get("notes", "n2"), { title: "two, edited" });
  });

  it("an IndexedDB store syncs and keeps its node id, rows and cursor across opens", async () => {
    const { client } = await signedUp(service.url);
    const name = `rows-it-${Date.now()}`;
    const first = await IndexedDbRowStore.open({ name });
    const a = client.rows(first);
    await a.whenReady();
    const node = a.nodeId;
    await a.put("notes", "idb", { v: 1 });
    first.close();
    const reopened = await IndexedDbRowStore.open({ name });
    const again = client.rows(reopened);
    await again.whenReady();
    assert.equal(again.nodeId, node);
    assert.equal(await again.pendingCount(), 1);
    await again.syncOnce();
    assert.equal(await again.pendingCount(), 0);
    assert.ok((await reopened.state()).cursor);
    const other = client.rows(new MemoryRowStore());
    await other.syncOnce();
    assert.deepEqual(await other.get("notes", "idb"), { v: 1 });
    assert.equal((await other.getRow("notes", "idb"))?.node, node);
    reopened.close();
    await IndexedDbRowStore.destroy(name);
  });

  it("cookie mode: a web page's device syncs with the session cookie", async () => {
    const browser = browserFetch("http://localhost:5173");
    const page = createClient({ baseUrl: service.url, session: { mode: "cookie" }, fetch: browser });
    const email = freshEmail();
    await page.auth.signup({ email, password: PASSWORD });
    const rows = page.rows(new MemoryRowStore());
    await rows.put("notes", "web", { from: "browser" });
    await rows.syncOnce();
    const native = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens: new MemoryTokenStore() } });
    await native.auth.login({ email, password: PASSWORD });
    const phone = native.rows(new MemoryRowStore());
    await phone.syncOnce();
    assert.deepEqual(await phone.get("notes", "web"), { from: "browser" });
  });

  it("wake() ends a back-off at once (a browser coming back online)", async () => {
    const { tokens } = await signedUp(service.url);
    let down = true;
    const offline: FetchLike = async (input, init) => {
      if (down) throw new TypeError("offline");
      return fetch(input, init);
    };
    const client = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens }, fetch: offline });
    const errors: unknown[] = [];
    const rows = client.rows(new MemoryRowStore(), { backoff: { initialMs: 60_000 }, onError: (e) => errors.push(e) });
    await rows.put("notes", "offline", { v: 1 });
    rows.start();
    await until(() => rows.status.state === "backoff");
    assert.equal((errors[0] as Error).name, "NetworkError");
    down = false;
    rows.wake();
    await until(async () => (await rows.pendingCount()) === 0, 10_000);
    await rows.stop();
  });

  it("the later write wins; the loser adopts the server's row (stale with current)", async () => {
    const { client } = await signedUp(service.url);
    const a = client.rows(new MemoryRowStore());
    const b = client.rows(new MemoryRowStore());
    await b.put("notes", "x", { by: "b" }); // earlier
    await new Promise((r) => setTimeout(r, 5));
    await a.put("notes", "x", { by: "a" }); // later
    await a.syncOnce();
    const changes: RowsChange[] = [];
    b.subscribe((c) => changes.push(c));
    await b.syncOnce();
    assert.deepEqual(await b.get("notes", "x"), { by: "a" });
    assert.equal(await b.pendingCount(), 0);
    assert.ok(changes.some((c) => c.source === "remote"));
  });

  it("the loop wakes on another device's push (long-poll) and pushes local writes at once", async () => {
    const { client } = await signedUp(service.url);
    const a = client.rows(new MemoryRowStore());
    const statuses: SyncStatus[] = [];
    const b = client.rows(new MemoryRowStore(), { waitSeconds: 20, onStatus: (s) => statuses.push(s) });
    b.start();
    await until(() => b.status.state === "idle");
    const started = Date.now();
    await a.put("notes", "live", { v: 1 });
    await a.syncOnce();
    await until(async () => (await b.get("notes", "live")) !== undefined, 15_000);
    assert.ok(Date.now() - started < 12_000, "woken well before the long-poll's end (20 s)");
    // A local write ends b's long-poll and goes out.
    await b.put("notes", "from-b", { v: 2 });
    await until(async () => (await b.pendingCount()) === 0, 15_000);
    await a.syncOnce();
    assert.deepEqual(await a.get("notes", "from-b"), { v: 2 });
    await b.stop();
    assert.equal(b.status.state, "stopped");
    assert.ok(statuses.some((s) => s.state === "syncing"));
  });

  it("surfaces clock_skew and quota_exceeded rejections and adopts the server's row", async () => {
    const { client } = await signedUp(service.url);
    const rejections: Rejection[] = [];
    let skew = 60 * 60 * 1000;
    const ahead = client.rows(new MemoryRowStore(), {
      now: () => Date.now() + skew,
      onRejected: (r) => rejections.push(r),
    });
    await ahead.put("notes", "future", { v: 1 });
    await ahead.syncOnce();
    assert.equal(rejections.length, 1);
    assert.equal(rejections[0]!.reason, "clock_skew");
    assert.equal(rejections[0]!.current, null);
    assert.equal(await ahead.getRow("notes", "future"), undefined, "a refused new row goes");
    assert.equal(await ahead.pendingCount(), 0);
    // Once the device's clock is right again, its writes go through at once.
    skew = 0;
    await ahead.put("notes", "now", { v: 2 });
    await ahead.syncOnce();
    assert.equal(rejections.length, 1);
    assert.deepEqual(await ahead.get("notes", "now"), { v: 2 });

    const errors: unknown[] = [];
    const filler = client.rows(new MemoryRowStore(), { onRejected: (r) => rejections.push(r), onError: (e) => errors.push(e) });
    for (let i = 0; i < 55; i++) await filler.put("bulk", `r${i}`, { i });
    await filler.syncOnce();
    const quota = rejections.filter((r) => r.reason === "quota_exceeded");
    // The quota is 50 rows per user, "now" included.
    assert.equal(quota.length, 6);
    assert.equal(errors.length, 6);
    assert.equal((await filler.list("bulk")).length, 49);
  });

  it("rejects what the server would refuse before it leaves the device", async () => {
    const { client } = await signedUp(service.url);
    const rows = client.rows(new MemoryRowStore());
    await assert.rejects(rows.put("Bad-Collection", "x", {}), RangeError);
    await assert.rejects(rows.put("notes", "", {}), RangeError);
    await assert.rejects(rows.put("notes", "x", { big: "x".repeat(70_000) }), RangeError);
  });
});

describe("rows: rate limits, resync and too_old", () => {
  it("a 429 on push carries retryAfter and the loop backs off at least that long", async () => {
    const service = await startService("rows", { RATE_LIMIT_PUSH_USER: "1/minute" });
    try {
      const { client } = await signedUp(service.url);
      const rows = client.rows(new MemoryRowStore());
      await rows.put("notes", "a", {});
      await rows.syncOnce();
      await rows.put("notes", "b", {});
      await assert.rejects(rows.syncOnce(), (err: unknown) => {
        assert.ok(err instanceof RateLimitedError);
        assert.ok((err.retryAfter ?? 0) >= 1, `Retry-After ${err.retryAfter}`);
        return true;
      });
      const statuses: SyncStatus[] = [];
      const looping = client.rows(new MemoryRowStore(), { onStatus: (s) => statuses.push(s) });
      await looping.put("notes", "c", {});
      looping.start();
      await until(() => statuses.some((s) => s.state === "backoff"));
      const backoff = statuses.find((s) => s.state === "backoff");
      assert.ok(backoff && backoff.state === "backoff" && backoff.delayMs >= 1000 * ((backoff.error as RateLimitedError).retryAfter ?? 0));
      await looping.stop();
    } finally {
      await service.stop();
    }
  });

  it("pushes in batches of at most 1000 rows and under the 2 MiB body limit", async () => {
    const service = await startService("rows");
    try {
      const { tokens } = await signedUp(service.url);
      const bodies: number[] = [];
      const counting: FetchLike = async (input, init) => {
        if (init.method === "POST" && input.endsWith("/v1/rows/push")) bodies.push(String(init.body).length);
        return fetch(input, init);
      };
      const client = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens }, fetch: counting });
      const rows = client.rows(new MemoryRowStore());
      for (let i = 0; i < 1500; i++) await rows.put("many", `r${i}`, { i });
      await rows.syncOnce();
      assert.equal(bodies.length, 2, "1500 rows: two pushes");
      bodies.length = 0;
      const big = "x".repeat(60_000);
      for (let i = 0; i < 40; i++) await rows.put("big", `b${i}`, { big });
      await rows.syncOnce();
      assert.equal(await rows.pendingCount(), 0);
      assert.ok(bodies.length >= 2, "2.4 MB of rows: more than one push");
      assert.ok(bodies.every((n) => n < 2 * 1024 * 1024), `bodies ${bodies}`);
      const check = client.rows(new MemoryRowStore(), { pageSize: 1000 });
      await check.syncOnce();
      assert.equal((await check.list()).length, 1540);
    } finally {
      await service.stop();
    }
  });

  it("REQUIRE_VERIFIED_EMAIL: sync answers email_not_verified until the address is verified", async () => {
    const service = await startService("rows", { REQUIRE_VERIFIED_EMAIL: "true" });
    try {
      const { client, email } = await signedUp(service.url);
      const rows = client.rows(new MemoryRowStore());
      await rows.put("notes", "a", { v: 1 });
      await assert.rejects(rows.syncOnce(), EmailNotVerifiedError);
      assert.equal(await rows.pendingCount(), 1, "the write waits");
      await client.auth.confirmEmailVerification(await mailedToken(service.mailDir, email, "verify-email"));
      await rows.syncOnce();
      assert.equal(await rows.pendingCount(), 0);
    } finally {
      await service.stop();
    }
  });

  it("410 resync_required: pulls from the beginning, replaces state, keeps unpushed writes", async () => {
    let service = await startService("rows", { TOMBSTONE_RETENTION: "1s" });
    try {
      const { client, tokens } = await signedUp(service.url);
      const a = client.rows(new MemoryRowStore());
      const bStore = new MemoryRowStore();
      const b = client.rows(bStore);
      await a.put("notes", "gone", { v: 1 });
      await a.put("notes", "kept", { v: 1 });
      await a.syncOnce();
      await b.syncOnce();
      await a.delete("notes", "gone");
      await a.syncOnce();
      await b.put("notes", "local", { unpushed: true });
      // A stale row b holds that the server no longer has (as if a tombstone b never saw was purged).
      await bStore.commit({ put: [{ collection: "notes", id: "ghost", ts: 1, counter: 0, node: "old", deleted: false, data: {} }] });
      await new Promise((r) => setTimeout(r, 2500));
      service = await service.restart(); // the purge runs at start, in the background
      await new Promise((r) => setTimeout(r, 1000));
      const again = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens } });
      // With a 1 s retention the unpushed write is too_old by now: write it again when pushing.
      const b2 = again.rows(bStore, { tooOld: "rewrite" });
      const changes: RowsChange[] = [];
      b2.subscribe((c) => changes.push(c));
      await b2.pull();
      assert.ok(changes.some((c) => c.source === "resync"), "a resync happened");
      assert.equal(await b2.getRow("notes", "ghost"), undefined);
      assert.equal(await b2.get("notes", "gone"), undefined);
      assert.deepEqual(await b2.get("notes", "kept"), { v: 1 });
      assert.deepEqual(await b2.get("notes", "local"), { unpushed: true });
      assert.equal(await b2.pendingCount(), 1);
      await b2.syncOnce();
      const a2 = again.rows(new MemoryRowStore());
      await a2.syncOnce();
      assert.deepEqual(await a2.get("notes", "local"), { unpushed: true });
    } finally {
      await service.stop();
    }
  });

  it("too_old: adopted by default, written again with a fresh version on request", async () => {
    const service = await startService("rows", { TOMBSTONE_RETENTION: "1m" });
    try {
      const { client } = await signedUp(service.url);
      const rejections: Rejection[] = [];
      const past = () => Date.now() - 10 * 60 * 1000;
      const adopt = client.rows(new MemoryRowStore(), { now: past, onRejected: (r) => rejections.push(r) });
      await adopt.put("notes", "old", { v: 1 });
      await adopt.syncOnce();
      assert.deepEqual(rejections.map((r) => r.reason), ["too_old"]);
      assert.equal(await adopt.getRow("notes", "old"), undefined);

      const rewrite = client.rows(new MemoryRowStore(), { now: past, tooOld: "rewrite", onRejected: (r) => rejections.push(r) });
      await rewrite.put("notes", "old", { v: 2 });
      await rewrite.syncOnce();
      assert.equal(rejections.length, 1, "no new rejection");
      assert.deepEqual(await rewrite.get("notes", "old"), { v: 2 });
      assert.equal(await rewrite.pendingCount(), 0);
      const check = client.rows(new MemoryRowStore());
      await check.syncOnce();
      assert.deepEqual(await check.get("notes", "old"), { v: 2 });
    } finally {
      await service.stop();
    }
  });
});

export type { Client };
