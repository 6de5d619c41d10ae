// Mailed links, clicked through in the browser: the services' own /verify-email,
// /reset-password and /confirm-email pages, opened from the .eml files of MAIL_TRANSPORT=file:DIR.
// Each service keeps its own account, so each mails its own link.

import { expect, test, type BrowserContext, type Page } from "@playwright/test";
import { logIn, openApp, screenshot, signUp, uniqueEmail, PASSWORD } from "./fixtures.js";
import { waitForLink, world } from "./harness.js";

const SERVICES = ["rowsUrl", "blobUrl"] as const;

/** Opens a mailed link in a new tab of `context`, as a person clicking it in their mail reader would. */
async function openLink(context: BrowserContext, link: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(link);
  return page;
}

test("sign-up, then the mailed verification links, and the app shows the address verified", async ({ browser }) => {
  const email = uniqueEmail("verify");
  const { context, page } = await openApp(browser);
  await signUp(page, email);
  await expect(page.getByTestId("verify-banner")).toBeVisible();
  await expect(page.getByTestId("verified-rows")).toHaveText("not verified");
  await expect(page.getByTestId("verified-blob")).toHaveText("not verified");

  for (const service of SERVICES) {
    const link = await waitForLink(world().mailDir, email, `${world()[service]}/verify-email?token=`);
    const tab = await context.newPage();
    const response = await tab.goto(link);
    // The token is in the address: the page sends no referrer and loads nothing from elsewhere.
    const headers = response?.headers() ?? {};
    expect(headers["referrer-policy"]).toBe("no-referrer");
    expect(headers["content-security-policy"]).toContain("default-src 'none'");
    // Loading the page spends nothing; the button does.
    await expect(tab.getByRole("heading", { name: "Confirm your email address" })).toBeVisible();
    await tab.getByRole("button", { name: "Confirm my address" }).click();
    await expect(tab.locator("#status")).toHaveText("Your email address is confirmed. You can close this page.");
    await expect(tab).toHaveURL(/\/verify-email$/); // the token is dropped from the address bar
    if (service === "rowsUrl") await screenshot(tab, "verify-email-page");
    await tab.close();
  }

  await page.getByTestId("check-verification").click();
  await expect(page.getByTestId("verified")).toBeVisible();
  await expect(page.getByTestId("verify-banner")).toBeHidden();
  await screenshot(page, "verified");

  // A spent link does not work twice.
  const link = await waitForLink(world().mailDir, email, `${world().rowsUrl}/verify-email?token=`);
  const again = await openLink(context, link);
  await again.getByRole("button", { name: "Confirm my address" }).click();
  await expect(again.locator("#status")).toHaveClass("error");
  await context.close();
});

test("forgot password: the reset pages set a new password and the app signs in with it", async ({ browser }) => {
  const email = uniqueEmail("reset");
  const newPassword = "a brand new passphrase 77";
  const { context, page } = await openApp(browser);
  await signUp(page, email);
  await page.getByTestId("sign-out").click();
  await expect(page.getByTestId("auth-panel")).toBeVisible();
  // Another browser stays signed in meanwhile.
  const other = await openApp(browser);
  await logIn(other.page, email);

  await page.getByTestId("email").fill(email);
  await page.getByTestId("forgot-password").click();
  await expect(page.getByTestId("auth-message")).toContainText("mailed it a link");

  for (const service of SERVICES) {
    const link = await waitForLink(world().mailDir, email, `${world()[service]}/reset-password?token=`);
    const tab = await openLink(context, link);
    await expect(tab.getByRole("heading", { name: "Choose a new password" })).toBeVisible();
    await tab.getByLabel("New password").fill(newPassword);
    await tab.getByLabel("Repeat it").fill(newPassword);
    await tab.getByRole("button", { name: "Set the new password" }).click();
    await expect(tab.locator("#status")).toHaveText("Your password is changed. Sign in again with the new one.");
    if (service === "rowsUrl") await screenshot(tab, "reset-password-page");
    await tab.close();
  }

  // A reset ends every session: the other browser's page notices by itself (its sync requests
  // are answered 401) and asks to sign in again.
  await expect(other.page.getByTestId("auth-panel")).toBeVisible({ timeout: 30_000 });
  await expect(other.page.getByTestId("auth-message")).toHaveText("Your session ended. Sign in again.");
  await other.context.close();

  // The old password is refused by both services, the new one works.
  await page.getByTestId("email").fill(email);
  await page.getByTestId("password").fill(PASSWORD);
  await page.getByTestId("log-in").click();
  await expect(page.getByTestId("auth-message")).toHaveText("Wrong email address or password.");
  await logIn(page, email, newPassword);
  // A reset proves the inbox: the address counts as verified.
  await expect(page.getByTestId("verified")).toBeVisible();
  await context.close();
});

test("email change: the confirm-email pages move the account to the new address", async ({ browser }) => {
  const email = uniqueEmail("before");
  const newEmail = uniqueEmail("after");
  const { context, page } = await openApp(browser);
  await signUp(page, email);

  await page.getByTestId("new-email").fill(newEmail);
  await page.getByTestId("change-email-password").fill(PASSWORD);
  await page.getByTestId("change-email").click();
  await expect(page.getByTestId("account-message")).toContainText(`confirmation link to ${newEmail}`);
  // Nothing changes until the link is opened.
  await page.getByTestId("refresh-account").click();
  await expect(page.getByTestId("account-email")).toHaveText(email);

  for (const service of SERVICES) {
    const link = await waitForLink(world().mailDir, newEmail, `${world()[service]}/confirm-email?token=`);
    const tab = await openLink(context, link);
    await expect(tab.getByRole("heading", { name: "Confirm your new email address" })).toBeVisible();
    await tab.getByRole("button", { name: "Use this address" }).click();
    await expect(tab.locator("#status")).toHaveText("Your account now uses this address. You can close this page.");
    await tab.close();
  }

  await page.getByTestId("refresh-account").click();
  await expect(page.getByTestId("account-email")).toHaveText(newEmail);
  await expect(page.getByTestId("verified")).toBeVisible();

  // The new address signs in from a fresh browser.
  const other = await openApp(browser);
  await logIn(other.page, newEmail);
  await expect(other.page.getByTestId("account-email")).toHaveText(newEmail);
  await other.context.close();
  await context.close();
});
