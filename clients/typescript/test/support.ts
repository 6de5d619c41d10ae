// Test support: the real service binaries as child processes on SQLite in a temp dir.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

import { createClient, MemoryTokenStore, type Client, type FetchLike } from "../src/index.js";

export const BINS = {
  rows: process.env["APP_ROWS_BIN"] ?? "/tmp/ts-bins/app-rows",
  blob: process.env["APP_BLOB_BIN"] ?? "/tmp/ts-bins/app-blob",
};

/** Rate limits that would get in the way of many tests from one IP. */
const RELAXED: Record<string, string> = {
  RATE_LIMIT_SIGNUP_IP: "off",
  RATE_LIMIT_LOGIN_IP: "off",
  RATE_LIMIT_LOGIN_EMAIL: "off",
  RATE_LIMIT_PUSH_USER: "off",
  RATE_LIMIT_SAVE_USER: "off",
  RATE_LIMIT_FORGOT_IP: "off",
  RATE_LIMIT_VERIFY_USER: "off",
  RATE_LIMIT_PASSWORD_USER: "off",
  RATE_LIMIT_EMAIL_CHANGE_USER: "off",
  PASSWORD_MIN_LENGTH: "8",
};

export interface Service {
  url: string;
  dir: string;
  mailDir: string;
  env: Record<string, string>;
  stop(): Promise<void>;
  /** Stops the process and starts it again on the same database (a new port), with `extraEnv` over its environment. */
  restart(extraEnv?: Record<string, string>): Promise<Service>;
}

async function launch(bin: string, dir: string, env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(bin, [], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${bin} did not start in 60 s:\n${stderr}`)), 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${bin} exited with ${code}:\n${stderr}`));
    });
    lines.on("line", (line) => {
      const m = /^listening on (http:\/\/\S+)/.exec(line);
      if (m && m[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  void dir;
  return { url, child };
}

/** Starts `app-rows` or `app-blob` on a fresh SQLite database. */
export async function startService(app: "rows" | "blob", extraEnv: Record<string, string> = {}): Promise<Service> {
  const bin = BINS[app];
  if (!existsSync(bin)) throw new Error(`no binary at ${bin} (set APP_ROWS_BIN / APP_BLOB_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), `ts-client-${app}-`));
  const mailDir = join(dir, "mail");
  const env: Record<string, string> = {
    DATABASE_URL: `sqlite://${join(dir, `app-${app}.db`)}`,
    BIND: "127.0.0.1:0",
    COOKIE_SECURE: "false",
    MAIL_TRANSPORT: `file:${mailDir}`,
    LOG_FORMAT: "text",
    RUST_LOG: "warn",
    ...RELAXED,
    ...extraEnv,
  };
  return wrap(bin, dir, mailDir, env, await launch(bin, dir, env), true);
}

function wrap(
  bin: string,
  dir: string,
  mailDir: string,
  env: Record<string, string>,
  started: { url: string; child: ChildProcess },
  owner: boolean,
): Service {
  const stopChild = async (): Promise<void> => {
    const { child } = started;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
    });
  };
  return {
    url: started.url,
    dir,
    mailDir,
    env,
    async stop() {
      await stopChild();
      if (owner) rmSync(dir, { recursive: true, force: true });
    },
    async restart(extraEnv: Record<string, string> = {}) {
      await stopChild();
      const nextEnv = { ...env, ...extraEnv };
      const again = await launch(bin, dir, nextEnv);
      return wrap(bin, dir, mailDir, nextEnv, again, owner);
    },
  };
}

let counter = 0;
export function freshEmail(): string {
  counter++;
  return `u${Date.now().toString(36)}${counter}${Math.floor(Math.random() * 1e6)}@example.com`;
}

export const PASSWORD = "correct horse battery staple";

/** A bearer client signed up as a fresh user; its token store is returned too. */
export async function signedUp(
  url: string,
  fetchFn?: FetchLike,
): Promise<{ client: Client; email: string; tokens: MemoryTokenStore; deviceTokens: MemoryTokenStore }> {
  const tokens = new MemoryTokenStore();
  const deviceTokens = new MemoryTokenStore();
  const client = createClient({
    baseUrl: url,
    session: { mode: "bearer", tokens, deviceTokens },
    ...(fetchFn ? { fetch: fetchFn } : {}),
  });
  const email = freshEmail();
  await client.auth.signup({ email, password: PASSWORD, deviceName: "test" });
  return { client, email, tokens, deviceTokens };
}

/** A fetch with a cookie jar that also sends `Origin` (what a browser on `origin` does). */
export function browserFetch(origin: string): FetchLike & { cookies: Map<string, string> } {
  const cookies = new Map<string, string>();
  const f = async (input: string, init: RequestInit): Promise<Response> => {
    const headers = new Headers(init.headers);
    const url = new URL(input);
    const method = (init.method ?? "GET").toUpperCase();
    if (method !== "GET" && method !== "HEAD") headers.set("Origin", origin);
    const jar = [...cookies.entries()]
      .filter(([name]) => name !== "device" || url.pathname === "/v1/auth/login")
      .map(([k, v]) => `${k}=${v}`)
      .join("; ");
    if (jar && init.credentials === "include") headers.set("Cookie", jar);
    const response = await fetch(input, { ...init, headers });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /max-age=0\b/i.test(a.trim())) || value === "";
      if (expired) cookies.delete(name);
      else cookies.set(name, value);
    }
    return response;
  };
  return Object.assign(f, { cookies });
}

/** Waits for a mail to `to` whose body contains `marker` and returns the token of its link. */
export async function mailedToken(mailDir: string, to: string, path: string, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(mailDir)) {
      for (const name of readdirSync(mailDir)) {
        const text = readFileSync(join(mailDir, name), "utf8").replace(/=\r?\n/g, "").replace(/=3D/g, "=");
        if (!text.toLowerCase().includes(to.toLowerCase())) continue;
        const m = new RegExp(`/${path}\\?token=([A-Za-z0-9_.~-]+)`).exec(text);
        if (m && m[1]) return m[1];
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no ${path} mail to ${to} in ${mailDir}`);
}
