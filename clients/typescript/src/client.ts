import { Auth } from "./auth.js";
import { BlobSave, type BlobSaveOptions } from "./blob.js";
import { Http, type FetchLike, type SessionConfig } from "./http.js";
import { RowsSync, type RowsSyncOptions } from "./rows.js";
import type { RowStore } from "./store.js";
import type { Health } from "./types.js";

export interface ClientOptions {
  /** The service's origin (and path prefix, if any), e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  session: SessionConfig;
  /** A `fetch` to use instead of the global one (tests, native bridges). */
  fetch?: FetchLike;
  /** Default `device_name` for signup and login. */
  deviceName?: string;
}

/** One service (an app-rows or app-blob instance) as one signed-in (or not yet) user sees it. */
export interface Client {
  readonly baseUrl: string;
  readonly auth: Auth;
  /** The transport, for routes this client does not wrap. */
  readonly http: Http;
  /** Row sync with `app-rows` over `store`. */
  rows(store: RowStore, options?: RowsSyncOptions): RowsSync;
  /** The save blob of `app-blob`. */
  blob(options?: BlobSaveOptions): BlobSave;
  /** `GET /healthz`. */
  health(): Promise<Health>;
}

export function createClient(options: ClientOptions): Client {
  const http = new Http(options.baseUrl, options.session, options.fetch);
  const auth = new Auth(http, options.deviceName);
  return {
    baseUrl: http.baseUrl,
    auth,
    http,
    rows: (store, rowsOptions) => new RowsSync(http, store, rowsOptions),
    blob: (blobOptions) => new BlobSave(http, blobOptions),
    health: () => http.json<Health>("GET", "/healthz"),
  };
}
