// Shared steps of the browser tests.

import { expect, type Browser, type BrowserContext, type Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { world } from "./harness.js";

export const PASSWORD = "correct horse battery staple 42";
const SCREENSHOTS = resolve(import.meta.dirname, "..", "test-results", "screenshots");

let counter = 0;

/** A fresh address per call (the services outlive a single test). */
export function uniqueEmail(tag: string): string {
  counter += 1;
  // Each run starts on fresh databases: the worker's pid and a counter keep addresses apart.
  return `${tag}-${process.pid.toString(36)}${counter}@example.com`;
}

/** A context with the example app open, sized for legible screenshots. */
export async function openApp(browser: Browser): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 } });
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`[page error] ${err.message}`));
  await page.goto(world().appUrl);
  await expect(page.locator("body[data-ready=true]")).toBeAttached();
  return { context, page };
}

async function submitAuth(page: Page, email: string, password: string, button: "sign-up" | "log-in"): Promise<void> {
  await expect(page.getByTestId("auth-panel")).toBeVisible();
  await page.getByTestId("email").fill(email);
  await page.getByTestId("password").fill(password);
  await page.getByTestId(button).click();
}

export async function signUp(page: Page, email: string, password = PASSWORD): Promise<void> {
  await submitAuth(page, email, password, "sign-up");
  await expect(page.getByTestId("workspace")).toBeVisible();
  await expect(page.getByTestId("account-email")).toHaveText(email);
}

export async function logIn(page: Page, email: string, password = PASSWORD): Promise<void> {
  await submitAuth(page, email, password, "log-in");
  await expect(page.getByTestId("workspace")).toBeVisible();
}

export async function addNote(page: Page, text: string): Promise<void> {
  await page.getByTestId("new-note").fill(text);
  await page.getByTestId("add-note").click();
  await expect(note(page, text)).toBeVisible();
}

/** The list item of the note whose text is `text`. */
export function note(page: Page, text: string) {
  return page.locator(`[data-testid=note][data-text="${text.replace(/"/g, '\\"')}"]`);
}

/** The notes' texts as the page shows them, sorted. */
export async function noteTexts(page: Page): Promise<string[]> {
  const texts = await page.getByTestId("note").evaluateAll((items) => items.map((li) => (li as HTMLElement).dataset["text"] ?? ""));
  return texts.sort();
}

/** Both pages show exactly `texts` (in any order). */
export async function expectNotes(pages: Page[], texts: string[], timeout = 15_000): Promise<void> {
  const want = [...texts].sort();
  for (const page of pages) await expect.poll(() => noteTexts(page), { timeout }).toEqual(want);
}

/** The scratchpad as app-blob holds it, read with the page's own cookie session. */
export async function savedPad(page: Page): Promise<{ status: number; text: string; etag: string | null }> {
  return page.evaluate(async (blobUrl) => {
    const response = await fetch(`${blobUrl}/v1/save`, { credentials: "include", cache: "no-store" });
    return { status: response.status, text: await response.text(), etag: response.headers.get("ETag") };
  }, world().blobUrl);
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}
