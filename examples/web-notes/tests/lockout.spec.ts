// Login lockout cannot be turned against the account's owner: a browser that signed in before
// holds a device cookie (`device`, Path=/v1/auth/login, SameSite=Strict, on each service's host),
// and its logins are not subject to the per-email limit that someone else's guesses exhausted.

import { expect, test } from "@playwright/test";
import { PASSWORD, logIn, openApp, signUp, uniqueEmail } from "./fixtures.js";
import { world } from "./harness.js";

test("someone else's failed logins lock the address, but not the owner's browser", async ({ browser }) => {
  const email = uniqueEmail("lockout");
  const owner = await openApp(browser);
  await signUp(owner.page, email);
  const deviceCookies = (await owner.context.cookies()).filter((c) => c.name === "device");
  expect(deviceCookies.map((c) => c.domain).sort()).toEqual(
    [new URL(world().blobUrl).hostname, new URL(world().rowsUrl).hostname].sort(),
  );
  await owner.page.getByTestId("sign-out").click();
  await expect(owner.page.getByTestId("auth-panel")).toBeVisible();

  // Another browser guesses until both services refuse the address (429 past the limit).
  const guesser = await openApp(browser);
  const message = guesser.page.getByTestId("auth-message");
  let attempts = 0;
  for (; attempts < 20; attempts++) {
    await guesser.page.getByTestId("email").fill(email);
    await guesser.page.getByTestId("password").fill(`wrong guess ${attempts}`);
    await guesser.page.getByTestId("log-in").click();
    await expect(message).not.toHaveText("Signing in…");
    const text = (await message.textContent()) ?? "";
    if (/notes \(app-rows\).*(too many|rate|later)/i.test(text) && /scratchpad \(app-blob\).*(too many|rate|later)/i.test(text)) break;
  }
  expect(attempts, "the per-email limit refuses within 20 guesses").toBeLessThan(20);
  // Now even the right password is refused there.
  await guesser.page.getByTestId("password").fill(PASSWORD);
  await guesser.page.getByTestId("log-in").click();
  await expect(message).not.toHaveText("Signing in…");
  await expect(guesser.page.getByTestId("workspace")).toBeHidden();

  // The owner's browser presents its device cookie and gets in.
  await logIn(owner.page, email);
  await expect(owner.page.getByTestId("account-email")).toHaveText(email);
  await owner.context.close();
  await guesser.context.close();
});
