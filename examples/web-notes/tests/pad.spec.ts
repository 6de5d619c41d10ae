// The scratchpad (app-blob): a save based on a version someone else replaced is refused by the
// server (412) and the page asks; whichever choice the person makes is what the server then holds.

import { expect, test, type Page } from "@playwright/test";
import { addNote, logIn, openApp, savedPad, screenshot, signUp, uniqueEmail } from "./fixtures.js";

async function typeAndSave(page: Page, text: string): Promise<void> {
  await page.getByTestId("pad").fill(text);
  await page.getByTestId("save-pad").click();
  await expect(page.getByTestId("pad-status")).toHaveAttribute("data-state", "saved");
}

const CHOICES = [
  { button: "conflict-keep-mine", expected: "groceries\nfrom laptop" },
  { button: "conflict-take-theirs", expected: "groceries\nfrom phone" },
  { button: "conflict-merge", expected: "groceries\nfrom phone\nfrom laptop" },
] as const;

for (const { button, expected } of CHOICES) {
  test(`a save conflict asks, and "${button}" is what the server then holds`, async ({ browser }) => {
    const email = uniqueEmail(button);
    const laptop = await openApp(browser);
    const phone = await openApp(browser);
    await signUp(laptop.page, email);
    await logIn(phone.page, email);

    await typeAndSave(laptop.page, "groceries");
    // The other device picks the new version up by itself (long-poll on the save's meta).
    await expect(phone.page.getByTestId("pad")).toHaveValue("groceries");
    await expect(phone.page.getByTestId("pad-status")).toHaveAttribute("data-state", "saved");

    // Both edit the same version; the phone saves first.
    await laptop.page.getByTestId("pad").fill("groceries\nfrom laptop");
    await typeAndSave(phone.page, "groceries\nfrom phone");
    await expect(laptop.page.getByTestId("pad-status")).toHaveAttribute("data-state", "stale");

    await laptop.page.getByTestId("save-pad").click();
    const conflict = laptop.page.getByTestId("conflict");
    await expect(conflict).toBeVisible();
    await expect(laptop.page.getByTestId("conflict-mine")).toHaveText("groceries\nfrom laptop");
    await expect(laptop.page.getByTestId("conflict-theirs")).toHaveText("groceries\nfrom phone");
    await expect(laptop.page.getByTestId("pad-status")).toHaveAttribute("data-state", "conflict");
    if (button === "conflict-merge") {
      await addNote(laptop.page, "Water the plants");
      await addNote(laptop.page, "Renew the library books");
      await expect(laptop.page.getByTestId("sync-status")).toHaveText("Synced");
      await screenshot(laptop.page, "scratchpad-conflict");
    }

    await laptop.page.getByTestId(button).click();
    await expect(conflict).toBeHidden();
    await expect(laptop.page.getByTestId("pad-status")).toHaveAttribute("data-state", "saved");
    await expect(laptop.page.getByTestId("pad")).toHaveValue(expected);
    const held = await savedPad(laptop.page);
    expect(held.status).toBe(200);
    expect(held.text).toBe(expected);
    // The other device converges on it too.
    await expect(phone.page.getByTestId("pad")).toHaveValue(expected);
    await laptop.context.close();
    await phone.context.close();
  });
}
