import { defineConfig } from "@playwright/test";
import { HOSTS } from "./tests/harness.js";

// Chromium comes from the system (Debian's `chromium`); Playwright downloads no browser.
const executablePath = process.env["CHROMIUM_PATH"] || "/usr/bin/chromium";
const runningAsRoot = typeof process.getuid === "function" && process.getuid() === 0;

export default defineConfig({
  testDir: "./tests",
  testMatch: "*.spec.ts",
  globalSetup: "./tests/global-setup.ts",
  outputDir: "./test-results/artifacts",
  // Two cores: the services, the browser and the runner share them.
  workers: 2,
  fullyParallel: true,
  forbidOnly: !!process.env["CI"],
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [["list"]],
  use: {
    headless: true,
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
    launchOptions: {
      executablePath,
      args: [
        ...(runningAsRoot ? ["--no-sandbox"] : []),
        // Every party's name resolves to loopback (Chromium does so for *.localhost anyway).
        `--host-resolver-rules=${Object.values(HOSTS)
          .map((host) => `MAP ${host} 127.0.0.1`)
          .join(", ")}`,
      ],
    },
  },
});
