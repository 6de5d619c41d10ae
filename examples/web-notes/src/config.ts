// Where the two services are. The page that serves this app may answer `/config.json`
// (`{"rowsUrl": ..., "blobUrl": ...}`); otherwise the defaults below (see README.md) apply.

export interface Config {
  /** app-rows: the notes. */
  rowsUrl: string;
  /** app-blob: the scratchpad. */
  blobUrl: string;
}

const DEFAULTS: Config = {
  rowsUrl: "http://rows.web-notes.localhost:8080",
  blobUrl: "http://blob.web-notes.localhost:8081",
};

export async function loadConfig(): Promise<Config> {
  try {
    const response = await fetch("/config.json", { cache: "no-store", credentials: "omit" });
    if (response.ok && (response.headers.get("Content-Type") ?? "").includes("json")) {
      const body = (await response.json()) as Partial<Config>;
      return {
        rowsUrl: typeof body.rowsUrl === "string" ? body.rowsUrl : DEFAULTS.rowsUrl,
        blobUrl: typeof body.blobUrl === "string" ? body.blobUrl : DEFAULTS.blobUrl,
      };
    }
  } catch {
    // No config: the defaults.
  }
  return DEFAULTS;
}
