import type { FullConfig } from "@playwright/test";
import { startWorld } from "./harness.js";

// Starts the services and the static servers once for every test; the returned function stops
// them. Workers read the addresses from WEB_NOTES_WORLD.
export default async function globalSetup(_config: FullConfig): Promise<() => Promise<void>> {
  const started = await startWorld();
  process.env["WEB_NOTES_WORLD"] = JSON.stringify(started.world);
  return () => started.stop();
}
