// A page on an origin that no service allows cannot use the cookie session: CORS keeps every
// answer from its scripts, preflighted requests are never sent, and an unsafe request that goes
// out anyway (a "simple" no-cors POST, cookie attached: the page is same-site) is refused by the
// Origin check with 403 csrf_rejected.

import { expect, test } from "@playwright/test";
import { addNote, expectNotes, openApp, savedPad, signUp, uniqueEmail } from "./fixtures.js";
import { world } from "./harness.js";

test("a foreign origin cannot read or change anything with the session cookie", async ({ browser }) => {
  const email = uniqueEmail("foreign");
  const { context, page } = await openApp(browser);
  await signUp(page, email);
  await addNote(page, "Private note");
  await expectNotes([page], ["Private note"]);
  expect((await context.cookies()).map((c) => `${c.domain} ${c.name}`).sort()).toEqual(
    expect.arrayContaining([`${new URL(world().rowsUrl).hostname} session`, `${new URL(world().blobUrl).hostname} session`]),
  );

  const evil = await context.newPage();
  await evil.goto(world().evilUrl);
  const { rowsUrl, blobUrl } = world();

  // Reads with credentials: the browser withholds the answers (no CORS grant for this origin).
  const reads = await evil.evaluate(
    async ({ rowsUrl, blobUrl }) => {
      const attempt = async (url: string, init: RequestInit = {}) => {
        try {
          const response = await fetch(url, { credentials: "include", ...init });
          return `answered ${response.status}`;
        } catch (err) {
          return `refused: ${(err as Error).name}`;
        }
      };
      return {
        me: await attempt(`${rowsUrl}/v1/auth/me`),
        pull: await attempt(`${rowsUrl}/v1/rows/pull`),
        save: await attempt(`${blobUrl}/v1/save`),
        // Preflighted (JSON body, If-None-Match): the preflight fails, the request never goes.
        push: await attempt(`${rowsUrl}/v1/rows/push`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ changes: [] }),
        }),
        put: await attempt(`${blobUrl}/v1/save`, { method: "PUT", headers: { "If-None-Match": "*" }, body: "pwned" }),
      };
    },
    { rowsUrl, blobUrl },
  );
  expect(reads).toEqual({
    me: "refused: TypeError",
    pull: "refused: TypeError",
    save: "refused: TypeError",
    push: "refused: TypeError",
    put: "refused: TypeError",
  });

  // The page is same-site, so the Lax cookie does go along with its requests: a no-cors read is
  // answered 200 on the wire (signed in), yet the script gets only an opaque, empty response.
  for (const url of [`${rowsUrl}/v1/auth/me`, `${blobUrl}/v1/auth/me`]) {
    const answered = evil.waitForResponse((response) => response.url() === url);
    const seen = await evil.evaluate(async (target) => {
      const response = await fetch(target, { mode: "no-cors", credentials: "include" });
      return { type: response.type, status: response.status, body: await response.text() };
    }, url);
    expect((await answered).status(), `${url} on the wire`).toBe(200);
    expect(seen).toEqual({ type: "opaque", status: 0, body: "" });
  }

  // An unsafe simple request goes out with the cookie too; the service refuses it by its Origin.
  for (const url of [`${rowsUrl}/v1/auth/logout`, `${blobUrl}/v1/auth/logout`]) {
    const answered = evil.waitForResponse((response) => response.url() === url);
    await evil.evaluate((target) => fetch(target, { method: "POST", mode: "no-cors", credentials: "include" }), url);
    const response = await answered;
    // 403 (not 401): the session is valid, the Origin is not (the opaque body is not kept).
    expect(response.status(), url).toBe(403);
  }

  // Nothing changed: still signed in on both services, the note is there, no save was made.
  await page.reload();
  await expect(page.getByTestId("workspace")).toBeVisible();
  await expectNotes([page], ["Private note"]);
  expect((await savedPad(page)).status).toBe(404);
  await context.close();
});

test("the example's own origin is allowed: its credentialed reads get CORS grants", async ({ browser }) => {
  const email = uniqueEmail("allowed");
  const { context, page } = await openApp(browser);
  await signUp(page, email);
  const statuses = await page.evaluate(
    async ({ rowsUrl, blobUrl }) => {
      const me = await fetch(`${rowsUrl}/v1/auth/me`, { credentials: "include" });
      const save = await fetch(`${blobUrl}/v1/save`, { credentials: "include" });
      return [me.status, save.status];
    },
    { rowsUrl: world().rowsUrl, blobUrl: world().blobUrl },
  );
  expect(statuses).toEqual([200, 404]);
  await context.close();
});
