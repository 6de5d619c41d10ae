// Property: several devices (memory stores) against one real app-rows converge, whatever the
// network does to their requests (lost, answered but lost, held and delivered later, out of
// order) and in whatever order their sync steps run.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";

import {
  MemoryRowStore,
  MemoryTokenStore,
  compareVersions,
  createClient,
  keyString,
  type FetchLike,
  type Row,
  type RowsSync,
} from "../src/index.js";
import { PASSWORD, freshEmail, startService, type Service } from "./support.js";

const KEYS: ReadonlyArray<readonly [string, string]> = [
  ["notes", "a"],
  ["notes", "b"],
  ["notes", "c"],
  ["tasks", "a"],
  ["tasks", "b"],
];
const DEVICES = 3;

type Fate = "deliver" | "loseRequest" | "loseResponse" | "hold";

interface Held {
  input: string;
  init: RequestInit;
}

/** The network between one device and the server. */
class Network {
  fate: Fate = "deliver";
  /** Requests answered before the network cuts off (a pull cut short after some pages). */
  budget = Infinity;
  constructor(private readonly held: Held[]) {}

  readonly fetch: FetchLike = async (input, init) => {
    if (this.budget <= 0) throw new TypeError("network down");
    this.budget--;
    switch (this.fate) {
      case "deliver":
        return fetch(input, init);
      case "loseRequest":
        throw new TypeError("request lost");
      case "loseResponse": {
        const response = await fetch(input, init);
        await response.arrayBuffer();
        throw new TypeError("response lost");
      }
      case "hold":
        if (init.method === "POST") {
          this.held.push({ input, init });
          throw new TypeError("request held");
        }
        return fetch(input, init);
    }
  };
}

type Op =
  | { kind: "write"; device: number; key: number; del: boolean; value: number }
  | { kind: "push"; device: number; fate: Fate }
  | { kind: "pull"; device: number; fate: Fate; pages: number }
  | { kind: "sync"; device: number; fate: Fate }
  | { kind: "writeDuringPush"; device: number; key: number; value: number }
  | { kind: "together"; first: number; second: number }
  | { kind: "deliverHeld"; pick: number };

const device = fc.integer({ min: 0, max: DEVICES - 1 });
const fate = fc.constantFrom<Fate>("deliver", "deliver", "loseRequest", "loseResponse", "hold");
const key = fc.integer({ min: 0, max: KEYS.length - 1 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("write" as const), device, key, del: fc.boolean(), value: fc.nat(1000) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("push" as const), device, fate }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("pull" as const), device, fate, pages: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("sync" as const), device, fate }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("writeDuringPush" as const), device, key, value: fc.nat(1000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("together" as const), first: device, second: device }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("deliverHeld" as const), pick: fc.nat() }) },
);

async function quietly(step: Promise<unknown>): Promise<void> {
  try {
    await step;
  } catch (err) {
    // Lost requests are the point; anything but a network failure is a bug.
    if (!(err instanceof Error) || err.name !== "NetworkError") throw err;
  }
}

async function deliver(held: Held): Promise<void> {
  const response = await fetch(held.input, held.init);
  await response.arrayBuffer();
  assert.equal(response.status, 200, "a held push is still valid when delivered late");
}

function byKey(rows: Row[]): Map<string, Row> {
  return new Map(rows.map((r) => [keyString(r), r]));
}

describe("convergence (property, real app-rows)", () => {
  let service: Service;
  before(async () => {
    service = await startService("rows");
  });
  after(async () => {
    await service?.stop();
  });

  it("devices and server converge to the greatest version of every key", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 5, maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: DEVICES, maxLength: DEVICES }),
        async (ops, pageSizes) => {
          const tokens = new MemoryTokenStore();
          const signup = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens } });
          await signup.auth.signup({ email: freshEmail(), password: PASSWORD });
          const held: Held[] = [];
          const nets: Network[] = [];
          const devices: RowsSync[] = [];
          for (let i = 0; i < DEVICES; i++) {
            const net = new Network(held);
            nets.push(net);
            const client = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens }, fetch: net.fetch });
            devices.push(client.rows(new MemoryRowStore(), { pageSize: pageSizes[i] ?? 2 }));
          }
          // Every write made anywhere: the greatest version of each key must win everywhere.
          const writes: Row[] = [];
          const write = async (d: number, k: number, del: boolean, value: number): Promise<void> => {
            const [collection, id] = KEYS[k]!;
            const dev = devices[d]!;
            writes.push(del ? await dev.delete(collection, id) : await dev.put(collection, id, { value, by: d }));
          };
          for (const o of ops) {
            switch (o.kind) {
              case "write":
                await write(o.device, o.key, o.del, o.value);
                break;
              case "push":
                nets[o.device]!.fate = o.fate;
                await quietly(devices[o.device]!.push());
                break;
              case "pull":
                nets[o.device]!.fate = o.fate;
                nets[o.device]!.budget = o.pages;
                await quietly(devices[o.device]!.pull());
                break;
              case "sync":
                nets[o.device]!.fate = o.fate;
                await quietly(devices[o.device]!.syncOnce());
                break;
              case "writeDuringPush": {
                const pushing = quietly(devices[o.device]!.push());
                await write(o.device, o.key, false, o.value);
                await pushing;
                break;
              }
              case "together":
                await Promise.all([quietly(devices[o.first]!.syncOnce()), quietly(devices[o.second]!.pull())]);
                break;
              case "deliverHeld":
                if (held.length > 0) await deliver(held.splice(o.pick % held.length, 1)[0]!);
                break;
            }
            for (const net of nets) {
              net.fate = "deliver";
              net.budget = Infinity;
            }
          }
          // Settle: late deliveries, then every device syncs until nothing is left to push.
          while (held.length > 0) await deliver(held.pop()!);
          for (let round = 0; round < 5; round++) {
            for (const dev of devices) await dev.syncOnce();
            let pending = 0;
            for (const dev of devices) pending += await dev.pendingCount();
            if (pending === 0) break;
          }
          for (const dev of devices) {
            await dev.pull();
            assert.equal(await dev.pendingCount(), 0);
          }

          const expected = new Map<string, Row>();
          for (const w of writes) {
            const seen = expected.get(keyString(w));
            if (!seen || compareVersions(w, seen) > 0) expected.set(keyString(w), w);
          }
          const fresh = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens } }).rows(new MemoryRowStore());
          await fresh.syncOnce();
          const server = byKey(await fresh.store.list());
          assert.deepEqual(server, expected, "the server holds the greatest version of every key");
          for (const dev of devices) {
            assert.deepEqual(byKey(await dev.store.list()), expected, "each device holds what the server holds");
          }
        },
      ),
      { numRuns: Number(process.env["CONVERGENCE_RUNS"] ?? 25), endOnFailure: true },
    );
  });

  it("devices running their sync loops over a lossy network converge", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ device, key, del: fc.boolean(), value: fc.nat(1000), pauseMs: fc.integer({ min: 0, max: 30 }) }), {
          minLength: 5,
          maxLength: 25,
        }),
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        async (writes, seed) => {
          const tokens = new MemoryTokenStore();
          const signup = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens } });
          await signup.auth.signup({ email: freshEmail(), password: PASSWORD });
          let state = seed;
          const random = (): number => {
            state = (state * 48271) % 2147483647;
            return state / 2147483647;
          };
          let lossy = true;
          const flaky: FetchLike = async (input, init) => {
            const roll = lossy ? random() : 1;
            if (roll < 0.15) throw new TypeError("request lost");
            const response = await fetch(input, init);
            if (roll < 0.3) {
              await response.arrayBuffer().catch(() => undefined);
              throw new TypeError("response lost");
            }
            return response;
          };
          const devices: RowsSync[] = [];
          for (let i = 0; i < DEVICES; i++) {
            const client = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens }, fetch: flaky });
            devices.push(
              client.rows(new MemoryRowStore(), {
                waitSeconds: 1,
                pageSize: 2,
                debounceMs: 5,
                backoff: { initialMs: 10, maxMs: 100 },
                random,
              }),
            );
          }
          for (const dev of devices) dev.start();
          const made: Row[] = [];
          for (const w of writes) {
            const [collection, id] = KEYS[w.key]!;
            const dev = devices[w.device]!;
            made.push(w.del ? await dev.delete(collection, id) : await dev.put(collection, id, { value: w.value }));
            await new Promise((r) => setTimeout(r, w.pauseMs));
          }
          lossy = false;
          const deadline = Date.now() + 60_000;
          for (;;) {
            let pending = 0;
            for (const dev of devices) pending += await dev.pendingCount();
            if (pending === 0) break;
            assert.ok(Date.now() < deadline, "the loops push everything once the network is back");
            await new Promise((r) => setTimeout(r, 20));
          }
          for (const dev of devices) await dev.stop();
          for (const dev of devices) await dev.syncOnce();

          const expected = new Map<string, Row>();
          for (const w of made) {
            const seen = expected.get(keyString(w));
            if (!seen || compareVersions(w, seen) > 0) expected.set(keyString(w), w);
          }
          const fresh = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens } }).rows(new MemoryRowStore());
          await fresh.syncOnce();
          assert.deepEqual(byKey(await fresh.store.list()), expected);
          for (const dev of devices) assert.deepEqual(byKey(await dev.store.list()), expected);
        },
      ),
      { numRuns: Number(process.env["LOOP_RUNS"] ?? 10), endOnFailure: true },
    );
  });
});
