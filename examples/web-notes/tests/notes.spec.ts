// Notes (app-rows): two browser contexts of one user, each with its own IndexedDB store and sync
// loop, converge; edits made offline go out when the network comes back.

import { expect, test } from "@playwright/test";
import { addNote, expectNotes, logIn, note, openApp, screenshot, signUp, uniqueEmail } from "./fixtures.js";

test("two contexts of one user converge on notes: add, edit, delete", async ({ browser }) => {
  const email = uniqueEmail("converge");
  const a = await openApp(browser);
  const b = await openApp(browser);
  await signUp(a.page, email);
  await logIn(b.page, email);

  await addNote(a.page, "Buy oat milk");
  await addNote(a.page, "Call the plumber");
  await expectNotes([a.page, b.page], ["Buy oat milk", "Call the plumber"]);

  // B edits one of A's notes and adds its own; A deletes the other.
  const field = note(b.page, "Buy oat milk").getByTestId("note-text");
  await field.fill("Buy oat milk and bread");
  await field.press("Enter");
  await addNote(b.page, "Book train tickets");
  await note(a.page, "Call the plumber").getByTestId("delete-note").click();

  await expectNotes([a.page, b.page], ["Buy oat milk and bread", "Book train tickets"]);
  await expect(a.page.getByTestId("sync-status")).toHaveText("Synced");
  await expect(b.page.getByTestId("note-count")).toHaveText("2 notes");
  await screenshot(b.page, "notes-second-device");

  // A reload starts from the local store and the server agrees with it.
  await a.page.reload();
  await expectNotes([a.page], ["Buy oat milk and bread", "Book train tickets"]);
  await a.context.close();
  await b.context.close();
});

test("a context that goes offline keeps editing and converges when back online", async ({ browser }) => {
  const email = uniqueEmail("offline");
  const a = await openApp(browser);
  const b = await openApp(browser);
  await signUp(a.page, email);
  await logIn(b.page, email);
  await addNote(a.page, "Shared list");
  await expectNotes([a.page, b.page], ["Shared list"]);
  await expect(b.page.getByTestId("sync-status")).toHaveText("Synced");

  await b.context.setOffline(true);
  await addNote(b.page, "Written on the train");
  const field = note(b.page, "Shared list").getByTestId("note-text");
  await field.fill("Shared list (edited offline)");
  await field.press("Enter");
  await expect(b.page.getByTestId("sync-status")).toContainText("Offline");
  await expect(b.page.getByTestId("sync-status")).toContainText("2 unsent");
  // Meanwhile the online device writes too; the offline one cannot see it yet.
  await addNote(a.page, "Written at home");
  await expectNotes([a.page], ["Shared list", "Written at home"]);
  await expectNotes([b.page], ["Shared list (edited offline)", "Written on the train"]);
  await screenshot(b.page, "notes-offline");

  await b.context.setOffline(false);
  const all = ["Shared list (edited offline)", "Written on the train", "Written at home"];
  await expectNotes([a.page, b.page], all, 20_000);
  await expect(b.page.getByTestId("sync-status")).toHaveText("Synced");
  await a.context.close();
  await b.context.close();
});
