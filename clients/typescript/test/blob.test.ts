import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";

import { NetworkError, VersionConflictError, createClient, type Conflict, type FetchLike } from "../src/index.js";
import { PASSWORD, browserFetch, freshEmail, signedUp, startService, type Service } from "./support.js";

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array | null | undefined): string | undefined => (b ? new TextDecoder().decode(b) : undefined);

describe("blob against app-blob", () => {
  let service: Service;
  before(async () => {
    service = await startService("blob", { ALLOWED_ORIGINS: "http://localhost:5173" });
  });
  after(async () => {
    await service?.stop();
  });

  it("creates, loads, replaces, lists history and fetches an old version", async () => {
    const { client } = await signedUp(service.url);
    const save = client.blob();
    assert.equal(await save.load(), null);
    assert.equal(await save.meta(), null);
    const first = await save.save(text("level 1"));
    assert.equal(first.outcome, "saved");
    assert.match(first.meta!.version, /^".+"$/);
    assert.equal(first.meta!.sha256, createHash("sha256").update("level 1").digest("hex"));
    const second = await save.save(text("level 2"));
    assert.notEqual(second.meta!.version, first.meta!.version);
    const loaded = await save.load();
    assert.equal(str(loaded?.bytes), "level 2");
    assert.equal(loaded?.version, second.meta!.version);
    assert.deepEqual(await save.meta(), second.meta);
    const history = await save.history();
    assert.equal(history[0]!.version, first.meta!.version);
    assert.equal(str(await save.loadVersion(history[0]!.version)), "level 1");
    assert.ok((await save.limits()).max_bytes > 0);
    await save.delete();
    assert.equal(await save.load(), null);
  });

  it("a conflict goes to the resolver: merged, kept mine, kept theirs", async () => {
    const { client } = await signedUp(service.url);
    const seen: Conflict[] = [];
    let answer: "merge" | "mine" | "theirs" = "merge";
    const a = client.blob();
    const b = client.blob({
      onConflict: ({ mine, theirs, base }) => {
        seen.push({ mine, theirs, base });
        if (answer === "mine") return { keep: "mine" };
        if (answer === "theirs") return { keep: "theirs" };
        return { merged: text(`${str(theirs?.bytes)}+${str(mine)}`) };
      },
    });
    await a.save(text("A1"));
    await b.load();
    await a.save(text("A2"));
    const merged = await b.save(text("B1"));
    assert.equal(merged.outcome, "merged");
    assert.equal(str(merged.bytes), "A2+B1");
    assert.equal(seen.length, 1);
    assert.equal(str(seen[0]!.theirs?.bytes), "A2");
    assert.equal(str((await a.load())?.bytes), "A2+B1");

    await a.save(text("A3"));
    answer = "mine";
    const mine = await b.save(text("B2"));
    assert.equal(mine.outcome, "kept_mine");
    assert.equal(str((await a.load())?.bytes), "B2");

    await a.save(text("A4"));
    answer = "theirs";
    const theirs = await b.save(text("B3"));
    assert.equal(theirs.outcome, "kept_theirs");
    assert.equal(str(theirs.bytes), "A4");
    assert.equal(b.version, theirs.meta!.version);
    assert.equal(str((await a.load())?.bytes), "A4");

    // Two devices that both think there is no save yet.
    const { client: other } = await signedUp(service.url);
    const c = other.blob();
    const d = other.blob({ onConflict: ({ theirs }) => ({ merged: text(`${str(theirs?.bytes)}|d`) }) });
    await c.save(text("c"), { base: null });
    const created = await d.save(text("d"), { base: null });
    assert.equal(str(created.bytes), "c|d");
  });

  it("a resolver that throws leaves the known version alone: the next save conflicts again", async () => {
    const { client } = await signedUp(service.url);
    let asked = 0;
    const a = client.blob({
      onConflict: () => {
        asked++;
        throw new Error("the user closed the merge dialog");
      },
    });
    const b = client.blob();
    const first = await a.save(text("v1 from a"));
    await b.load();
    await b.save(text("v2 from b"));
    await assert.rejects(a.save(text("a's edit")), /merge dialog/);
    assert.equal(a.version, first.meta!.version);
    await assert.rejects(a.save(text("a's edit")), /merge dialog/);
    assert.equal(asked, 2);
    assert.equal(str((await b.load())!.bytes), "v2 from b");
    // Taking theirs is what moves the known version.
    const taken = await a.save(text("a's edit"), { onConflict: () => ({ keep: "theirs" }) });
    assert.equal(taken.outcome, "kept_theirs");
    assert.equal(a.version, b.version);
  });

  it("a conflict whose server save cannot be read leaves the known version alone", async () => {
    const { tokens } = await signedUp(service.url);
    const b = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens } }).blob();
    // While `a` reads the server's save after its 412, `b` saves again, and the meta that would
    // tell which version `a` read cannot be fetched: reading the conflict fails.
    let interfere = false;
    const flaky: FetchLike = async (input, init) => {
      const path = new URL(input).pathname;
      if (interfere && init.method === "GET" && path === "/v1/save") {
        await b.load();
        await b.save(text("v3 from b"));
      }
      if (interfere && path === "/v1/save/meta") throw new TypeError("connection reset");
      return fetch(input, init);
    };
    const client = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens }, fetch: flaky });
    let asked = 0;
    const a = client.blob({
      maxAttempts: 1,
      onConflict: () => {
        asked++;
        return { keep: "theirs" };
      },
    });
    const first = await a.save(text("v1 from a"));
    await b.load();
    await b.save(text("v2 from b"));
    interfere = true;
    await assert.rejects(a.save(text("a's edit")), NetworkError);
    interfere = false;
    assert.equal(a.version, first.meta!.version);
    const second = await a.save(text("a's edit"));
    assert.equal(second.outcome, "kept_theirs");
    assert.equal(asked, 1);
    assert.equal(str((await b.load())!.bytes), "v3 from b");
  });

  it("without a resolver a conflict throws VersionConflictError with the current meta", async () => {
    const { client } = await signedUp(service.url);
    const a = client.blob();
    const b = client.blob();
    const first = await a.save(text("1"));
    await b.load();
    const second = await a.save(text("2"));
    await assert.rejects(b.save(text("x")), (err: unknown) => {
      assert.ok(err instanceof VersionConflictError);
      assert.equal(err.status, 412);
      assert.equal(err.current?.version, second.meta!.version);
      assert.notEqual(err.current?.version, first.meta!.version);
      return true;
    });
  });

  it("a lost response is retried with the same Idempotency-Key and Content-Digest, not a false conflict", async () => {
    const { tokens } = await signedUp(service.url);
    const puts: Headers[] = [];
    let lose = 1;
    const lossy: FetchLike = async (input, init) => {
      const response = await fetch(input, init);
      if (init.method === "PUT") {
        puts.push(new Headers(init.headers));
        if (lose-- > 0) {
          await response.arrayBuffer();
          throw new TypeError("response lost");
        }
      }
      return response;
    };
    const client = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens }, fetch: lossy });
    const save = client.blob({ backoff: { initialMs: 10 } });
    const result = await save.save(text("once"), { base: null });
    assert.equal(result.outcome, "saved");
    assert.equal(puts.length, 2);
    assert.ok(puts[0]!.get("Idempotency-Key"));
    assert.equal(puts[0]!.get("Idempotency-Key"), puts[1]!.get("Idempotency-Key"));
    assert.equal(puts[0]!.get("If-None-Match"), "*");
    const digest = createHash("sha256").update("once").digest("base64");
    assert.equal(puts[0]!.get("Content-Digest"), `sha-256=:${digest}:`);
    // The next logical write has a new key.
    await save.save(text("twice"));
    assert.notEqual(puts[2]!.get("Idempotency-Key"), puts[0]!.get("Idempotency-Key"));
    assert.equal(puts[2]!.get("If-Match"), result.meta!.version);
    assert.equal((await save.history()).length, 1, "the retried write made one version");

    // Every attempt lost: the write fails; saving the same bytes again later reuses its key.
    lose = 2;
    const flaky = client.blob({ backoff: { initialMs: 10 }, maxAttempts: 2 });
    await flaky.load();
    await assert.rejects(flaky.save(text("thrice")), (err: unknown) => err instanceof NetworkError);
    const again = await flaky.save(text("thrice"));
    assert.equal(again.outcome, "saved", "no false conflict");
    assert.equal(puts.at(-1)!.get("Idempotency-Key"), puts.at(-2)!.get("Idempotency-Key"));
    assert.equal((await save.history()).length, 2);
  });

  it("waitForChange: 304 when nothing changes, woken by another device's save", async () => {
    const { client } = await signedUp(service.url);
    const a = client.blob();
    const b = client.blob();
    await a.save(text("v1"));
    await b.load();
    assert.deepEqual(await b.waitForChange({ waitSeconds: 1 }), { changed: false });
    const started = Date.now();
    const waiting = b.waitForChange({ waitSeconds: 20 });
    await new Promise((r) => setTimeout(r, 300));
    const saved = await a.save(text("v2"));
    const change = await waiting;
    assert.ok(Date.now() - started < 15_000, "woken before the wait (20 s) ends");
    assert.deepEqual(change, { changed: true, meta: saved.meta });
  });

  it("cookie mode: a web page saves and loads with the session cookie", async () => {
    const browser = browserFetch("http://localhost:5173");
    const page = createClient({ baseUrl: service.url, session: { mode: "cookie" }, fetch: browser });
    await page.auth.signup({ email: freshEmail(), password: PASSWORD });
    const save = page.blob();
    await save.save(text("from the page"));
    assert.equal(str((await save.load())?.bytes), "from the page");
    await save.delete();
    assert.equal(await save.meta(), null);
  });
});
