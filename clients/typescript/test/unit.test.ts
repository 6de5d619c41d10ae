import assert from "node:assert/strict";
import { describe, it } from "node:test";
import "fake-indexeddb/auto";
import fc from "fast-check";
import { inspect } from "node:util";

import {
  ApiError,
  EmailTakenError,
  Hlc,
  IndexedDbRowStore,
  InvalidCredentialsError,
  MAX_COUNTER,
  MemoryTokenStore,
  MethodNotAllowedError,
  RangeNotSatisfiableError,
  MemoryRowStore,
  PROBLEM_CODES,
  RateLimitedError,
  VersionConflictError,
  backoffDelay,
  compareVersions,
  contentDigest,
  createClient,
  errorFromProblem,
  parseRetryAfter,
  type Row,
  type RowStore,
} from "../src/index.js";

describe("Hlc", () => {
  it("follows the physical clock and never goes back", () => {
    const clock = new Hlc();
    assert.deepEqual(clock.tick(1000), { ts: 1000, counter: 0 });
    assert.deepEqual(clock.tick(1000), { ts: 1000, counter: 1 });
    assert.deepEqual(clock.tick(900), { ts: 1000, counter: 2 });
    assert.deepEqual(clock.tick(1001), { ts: 1001, counter: 0 });
  });

  it("moves past what it observes", () => {
    const clock = new Hlc();
    clock.tick(1000);
    clock.observe(5000, 7);
    assert.deepEqual(clock.tick(1200), { ts: 5000, counter: 8 });
    clock.observe(10, 0);
    assert.deepEqual(clock.current, { ts: 5000, counter: 8 });
  });

  it("carries into the next millisecond at the counter ceiling", () => {
    const clock = new Hlc();
    clock.observe(1000, MAX_COUNTER);
    assert.deepEqual(clock.tick(500), { ts: 1001, counter: 0 });
  });

  it("every reading is later than every earlier reading and observation (property)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 10_000 }) }),
            fc.record({
              kind: fc.constant("observe" as const),
              ms: fc.integer({ min: 0, max: 10_000 }),
              counter: fc.integer({ min: 0, max: MAX_COUNTER }),
            }),
          ),
        ),
        (ops) => {
          const clock = new Hlc();
          let last: { ts: number; counter: number; node: string } | null = null;
          for (const op of ops) {
            if (op.kind === "tick") {
              const r = { ...clock.tick(op.ms), node: "n" };
              if (last) assert.ok(compareVersions(r, last) > 0);
              assert.ok(r.counter <= MAX_COUNTER);
              last = r;
            } else {
              clock.observe(op.ms, op.counter);
              const seen = { ts: op.ms, counter: op.counter, node: "n" };
              if (!last || compareVersions(seen, last) > 0) last = seen;
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("compares versions by ts, counter, then node bytes", () => {
    assert.ok(compareVersions({ ts: 2, counter: 0, node: "a" }, { ts: 1, counter: 9, node: "z" }) > 0);
    assert.ok(compareVersions({ ts: 1, counter: 1, node: "a" }, { ts: 1, counter: 0, node: "z" }) > 0);
    assert.ok(compareVersions({ ts: 1, counter: 0, node: "B" }, { ts: 1, counter: 0, node: "a" }) < 0);
    assert.equal(compareVersions({ ts: 1, counter: 0, node: "a" }, { ts: 1, counter: 0, node: "a" }), 0);
  });
});

function row(collection: string, id: string, ts: number, data: Row["data"] = { v: ts }): Row {
  return { collection, id, ts, counter: 0, node: "n", deleted: data === null, data };
}

async function storeContract(make: () => Promise<RowStore>): Promise<void> {
  const store = await make();
  assert.deepEqual(await store.state(), { nodeId: null, cursor: null, clock: { ts: 0, counter: 0 } });
  await store.commit({ nodeId: "node-1", cursor: "c1", clock: { ts: 5, counter: 2 } });
  assert.deepEqual(await store.state(), { nodeId: "node-1", cursor: "c1", clock: { ts: 5, counter: 2 } });
  await store.commit({ put: [row("b", "2", 1), row("a", "1", 2), row("a", "0", 3, null)], outboxAdd: [row("a", "1", 2)] });
  assert.deepEqual((await store.list()).map((r) => `${r.collection}/${r.id}`), ["a/0", "a/1", "b/2"]);
  assert.deepEqual((await store.list("b")).map((r) => r.id), ["2"]);
  assert.equal(await store.outboxSize(), 1);
  assert.deepEqual(await store.outbox(), [row("a", "1", 2)]);
  assert.deepEqual(await store.get("a", "0"), row("a", "0", 3, null));
  assert.equal(await store.get("a", "9"), undefined);
  await store.commit({ remove: [{ collection: "b", id: "2" }], outboxRemove: [{ collection: "a", id: "1" }], cursor: null });
  assert.equal(await store.outboxSize(), 0);
  assert.equal((await store.state()).cursor, null);
  assert.equal(await store.get("b", "2"), undefined);
  await store.commit({ outboxAdd: [row("a", "1", 2)] });
  await store.commit({ replaceAll: true, put: [row("z", "z", 9)], outboxAdd: [row("z", "z", 9)] });
  assert.deepEqual((await store.list()).map((r) => r.collection), ["z"]);
  assert.deepEqual((await store.outbox(10)).map((r) => r.id), ["z"]);
  assert.equal((await store.state()).nodeId, "node-1");
  // Stored rows are copies: changing a returned row changes nothing stored.
  const got = (await store.get("z", "z"))!;
  (got.data as { v: number }).v = 100;
  assert.deepEqual((await store.get("z", "z"))!.data, { v: 9 });
}

describe("stores", () => {
  it("MemoryRowStore keeps the contract", () => storeContract(async () => new MemoryRowStore()));
  let n = 0;
  it("IndexedDbRowStore keeps the contract", () =>
    storeContract(async () => IndexedDbRowStore.open({ name: `test-${++n}-${Date.now()}` })));
  it("IndexedDbRowStore persists across opens", async () => {
    const name = `persist-${Date.now()}`;
    const a = await IndexedDbRowStore.open({ name });
    await a.commit({ nodeId: "x", put: [row("c", "1", 1)], outboxAdd: [row("c", "1", 1)] });
    a.close();
    const b = await IndexedDbRowStore.open({ name });
    assert.equal((await b.state()).nodeId, "x");
    assert.equal(await b.outboxSize(), 1);
    b.close();
    await IndexedDbRowStore.destroy(name);
  });
});

describe("errors", () => {
  it("maps every code to its own class with status, code and retryAfter", () => {
    const seen = new Set<string>();
    for (const code of PROBLEM_CODES) {
      const err = errorFromProblem(400, { type: "about:blank", title: "T", status: 400, detail: "d", code }, 3);
      assert.ok(err instanceof ApiError);
      assert.notEqual(err.constructor, ApiError, code);
      assert.equal(err.code, code);
      assert.equal(err.retryAfter, 3);
      assert.equal(err.detail, "d");
      seen.add(err.constructor.name);
    }
    assert.equal(seen.size, PROBLEM_CODES.length);
    assert.ok(errorFromProblem(401, { code: "invalid_credentials" }) instanceof InvalidCredentialsError);
    assert.ok(errorFromProblem(409, { code: "email_taken" }) instanceof EmailTakenError);
  });

  it("knows 405 method_not_allowed and 416 range_not_satisfiable", () => {
    assert.ok(errorFromProblem(405, { code: "method_not_allowed" }) instanceof MethodNotAllowedError);
    assert.ok(errorFromProblem(416, { code: "range_not_satisfiable" }) instanceof RangeNotSatisfiableError);
    assert.ok(PROBLEM_CODES.includes("method_not_allowed"));
    assert.ok(PROBLEM_CODES.includes("range_not_satisfiable"));
  });

  it("keeps unknown codes and non-problem bodies as ApiError", () => {
    const unknown = errorFromProblem(418, { code: "teapot", detail: "x" });
    assert.equal(unknown.constructor, ApiError);
    assert.equal(unknown.code, "teapot");
    const none = errorFromProblem(502, "<html>");
    assert.equal(none.code, "http_502");
    assert.equal(none.status, 502);
  });

  it("exposes extension members (current on version_conflict)", () => {
    const meta = { version: '"v1"', size: 3, sha256: "ab", updated_at: "t", device_name: null };
    const err = errorFromProblem(412, { code: "version_conflict", detail: "", current: meta });
    assert.ok(err instanceof VersionConflictError);
    assert.deepEqual(err.current, meta);
  });

  it("parses Retry-After seconds and dates", () => {
    assert.equal(parseRetryAfter("7"), 7);
    assert.equal(parseRetryAfter(null), undefined);
    assert.equal(parseRetryAfter("garbage"), undefined);
    assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 0), 10);
  });

  it("turns a problem response into its error through the client", async () => {
    const client = createClient({
      baseUrl: "http://service.test/",
      session: { mode: "cookie" },
      fetch: async (input, init) => {
        assert.equal(input, "http://service.test/v1/auth/login");
        assert.equal(init.credentials, "include");
        return new Response(JSON.stringify({ type: "about:blank", title: "Too Many Requests", status: 429, detail: "slow down", code: "rate_limited" }), {
          status: 429,
          headers: { "Content-Type": "application/problem+json", "Retry-After": "12" },
        });
      },
    });
    await assert.rejects(client.auth.login({ email: "a@b.c", password: "x" }), (err: unknown) => {
      assert.ok(err instanceof RateLimitedError);
      assert.equal(err.retryAfter, 12);
      assert.equal(err.status, 429);
      return true;
    });
  });
});

describe("backoff", () => {
  it("grows, is capped, jitters and honours Retry-After", () => {
    assert.equal(backoffDelay(0, { initialMs: 1000 }, undefined, () => 1), 1000);
    assert.equal(backoffDelay(0, { initialMs: 1000 }, undefined, () => 0), 500);
    assert.equal(backoffDelay(3, { initialMs: 1000 }, undefined, () => 1), 8000);
    assert.equal(backoffDelay(30, { initialMs: 1000, maxMs: 60_000 }, undefined, () => 1), 60_000);
    assert.equal(backoffDelay(0, { initialMs: 1000 }, 30, () => 1), 30_000);
  });
});

describe("digest", () => {
  it("is RFC 9530 sha-256 in base64", async () => {
    assert.equal(await contentDigest(new TextEncoder().encode("hello")), "sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:");
  });
});

describe("inspection and listeners", () => {
  it("printing a client, a rows sync or a token store does not show the tokens", async () => {
    const secret = "s3cr3t-session-token";
    const device = "d3v1ce-token";
    const tokens = new MemoryTokenStore(secret);
    const client = createClient({
      baseUrl: "http://service.test",
      session: { mode: "bearer", tokens, deviceTokens: new MemoryTokenStore(device) },
      fetch: async () => new Response("{}"),
    });
    const rows = client.rows(new MemoryRowStore());
    for (const shown of [inspect(client, { depth: 20 }), inspect(rows, { depth: 20 }), inspect(tokens), JSON.stringify(tokens)]) {
      assert.ok(!shown.includes(secret), shown);
      assert.ok(!shown.includes(device), shown);
    }
    assert.equal(tokens.get(), secret);
  });

  it("a listener that throws is reported through the error event, not thrown", async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => {
      uncaught.push(err);
    };
    process.on("uncaughtException", onUncaught);
    try {
      const client = createClient({ baseUrl: "http://service.test", session: { mode: "cookie" }, fetch: async () => { throw new Error("offline"); } });
      const errors: unknown[] = [];
      const rows = client.rows(new MemoryRowStore(), { onError: (e) => errors.push(e) });
      const boom = new Error("listener bug");
      rows.subscribe(() => {
        throw boom;
      });
      rows.on("error", () => {
        throw new Error("an error listener's own bug");
      });
      await rows.put("notes", "n", { t: 1 });
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(errors, [boom]);
      assert.deepEqual(uncaught, []);
    } finally {
      process.off("uncaughtException", onUncaught);
    }
  });

  it("put takes an ordinary interface as data", async () => {
    interface Note {
      title: string;
      tags?: string[];
      meta: { pinned: boolean; order: number | null };
    }
    const note: Note = { title: "hello", meta: { pinned: true, order: null } };
    const client = createClient({ baseUrl: "http://service.test", session: { mode: "cookie" }, fetch: async () => { throw new Error("offline"); } });
    const rows = client.rows(new MemoryRowStore());
    const row = await rows.put("notes", "n", note);
    assert.deepEqual(row.data, note);
    // @ts-expect-error a function is not JSON
    await assert.rejects(async () => rows.put("notes", "f", { f: () => 1 }));
  });
});
