// The browser tests' world: the real app-rows and app-blob binaries, the built example served by a
// tiny static server, a second static server on a foreign origin, and the mail directory.
//
// Hosts. Cookies are scoped by host, not by port: two services on 127.0.0.1 would overwrite each
// other's `session` cookie. So each party gets its own name under one site, all resolving to
// loopback (Chromium resolves `*.localhost` itself; the launch options map them too):
//   app.web-notes.localhost    the example page (ALLOWED_ORIGINS of both services)
//   rows.web-notes.localhost   app-rows (its PUBLIC_URL)
//   blob.web-notes.localhost   app-blob (its PUBLIC_URL)
//   evil.web-notes.localhost   a page on an origin no service allows
// They are one site (`web-notes.localhost`), so the `SameSite=Lax` session cookies go with the
// page's fetches.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize, resolve, sep } from "node:path";

export const SITE = "web-notes.localhost";
export const HOSTS = {
  app: `app.${SITE}`,
  rows: `rows.${SITE}`,
  blob: `blob.${SITE}`,
  evil: `evil.${SITE}`,
} as const;

/** What the workers read from the environment (set by global setup). */
export interface World {
  appUrl: string;
  evilUrl: string;
  rowsUrl: string;
  blobUrl: string;
  mailDir: string;
}

export function world(): World {
  const raw = process.env["WEB_NOTES_WORLD"];
  if (!raw) throw new Error("WEB_NOTES_WORLD is not set: run the tests through `npm test` (global setup)");
  return JSON.parse(raw) as World;
}

/** A free TCP port on loopback (the service's PUBLIC_URL must name its port before it starts). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

/**
 * Serves the files under `root` on 127.0.0.1:`port`; `extra` answers a few paths of its own
 * (the example's `/config.json`). Unknown paths fall back to `index.html` (a single-page app).
 */
export function staticServer(root: string, port: number, extra: Record<string, string> = {}): Promise<Server> {
  const base = resolve(root);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    if (path in extra) {
      res.writeHead(200, { "Content-Type": TYPES[extname(path)] ?? "text/plain", "Cache-Control": "no-store" });
      res.end(extra[path]);
      return;
    }
    let file = normalize(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) {
      res.writeHead(403).end();
      return;
    }
    if (!existsSync(file) || statSync(file).isDirectory()) file = join(base, "index.html");
    if (!existsSync(file)) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream", "Cache-Control": "no-store" });
    res.end(readFileSync(file));
  });
  return new Promise((resolveServer, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolveServer(server));
  });
}

/** A running service binary. */
export interface Service {
  name: string;
  url: string;
  process: ChildProcess;
  logs(): string;
  stop(): Promise<void>;
}

/**
 * Starts `bin` with `env` and waits for its `listening on` line (the contract's start-up line).
 * Its output is kept for `logs()` and, with `WEB_NOTES_SERVICE_LOGS=1`, echoed.
 */
export function startService(name: string, bin: string, url: string, env: Record<string, string>): Promise<Service> {
  if (!existsSync(bin)) throw new Error(`${name}: no binary at ${bin} (set ${name === "app-rows" ? "APP_ROWS_BIN" : "APP_BLOB_BIN"})`);
  const child = spawn(bin, ["serve"], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const echo = process.env["WEB_NOTES_SERVICE_LOGS"] === "1";
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
    if (echo) process.stderr.write(`[${name}] ${chunk.toString()}`);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const service: Service = {
    name,
    url,
    process: child,
    logs: () => output,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once("exit", () => done());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
      }),
  };
  return new Promise((resolveService, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s:\n${output}`)), 30_000);
    const onData = () => {
      if (output.includes("listening on http://")) {
        clearTimeout(timer);
        child.stdout.off("data", onData);
        resolveService(service);
      }
    };
    child.stdout.on("data", onData);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it listened:\n${output}`));
    });
  });
}

/** Everything global setup starts, and how to stop it. */
export interface Started {
  world: World;
  stop(): Promise<void>;
}

const ROOT = resolve(import.meta.dirname, "..");

/** Starts both services, the example's static server and the foreign page's. */
export async function startWorld(): Promise<Started> {
  const dist = join(ROOT, "dist");
  if (!existsSync(join(dist, "index.html"))) throw new Error(`${dist} has no build: run \`npm run build\` first`);
  const rowsBin = process.env["APP_ROWS_BIN"] || "/tmp/ts-bins/app-rows";
  const blobBin = process.env["APP_BLOB_BIN"] || "/tmp/ts-bins/app-blob";
  const dir = mkdtempSync(join(tmpdir(), "web-notes-"));
  const mailDir = join(dir, "mail");
  mkdirSync(mailDir, { mode: 0o700 });
  const [appPort, evilPort, rowsPort, blobPort] = (await distinctPorts(4)) as [number, number, number, number];
  const appUrl = `http://${HOSTS.app}:${appPort}`;
  const evilUrl = `http://${HOSTS.evil}:${evilPort}`;
  const rowsUrl = `http://${HOSTS.rows}:${rowsPort}`;
  const blobUrl = `http://${HOSTS.blob}:${blobPort}`;

  const common = (app: string, port: number, url: string): Record<string, string> => {
    const dataDir = join(dir, app);
    mkdirSync(dataDir, { mode: 0o700 });
    return {
      DATABASE_URL: `sqlite://${join(dataDir, `${app}.db`)}`,
      BIND: `127.0.0.1:${port}`,
      PUBLIC_URL: url,
      ALLOWED_ORIGINS: appUrl,
      COOKIE_SECURE: "false",
      MAIL_TRANSPORT: `file:${mailDir}`,
      // The public URL's host is not an IP literal, so the service asks for a key.
      SECRET_KEY: randomBytes(32).toString("base64"),
      // Every test signs up its own users from one address: the limits per IP and per user are
      // off. The per-email login limit stays (each test has its own addresses): lockout.spec.ts
      // shows that device cookies get their owner past it.
      RATE_LIMIT_SIGNUP_IP: "off",
      RATE_LIMIT_LOGIN_IP: "off",
      RATE_LIMIT_FORGOT_IP: "off",
      RATE_LIMIT_FORGOT_EMAIL: "off",
      RATE_LIMIT_VERIFY_USER: "off",
      RATE_LIMIT_EMAIL_CHANGE_USER: "off",
      RATE_LIMIT_PASSWORD_USER: "off",
      RATE_LIMIT_PUSH_USER: "off",
      RATE_LIMIT_SAVE_USER: "off",
      LOG_FORMAT: "text",
      RUST_LOG: process.env["RUST_LOG"] ?? "warn",
    };
  };

  const started: Array<{ stop(): Promise<void> }> = [];
  const stopAll = async () => {
    await Promise.all(started.map((s) => s.stop().catch(() => undefined)));
    if (process.env["WEB_NOTES_KEEP_TMP"] !== "1") rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [rows, blob] = await Promise.all([
      startService("app-rows", rowsBin, rowsUrl, common("app-rows", rowsPort, rowsUrl)),
      startService("app-blob", blobBin, blobUrl, common("app-blob", blobPort, blobUrl)),
    ]);
    started.push(rows, blob);
    const config = JSON.stringify({ rowsUrl, blobUrl });
    const app = await staticServer(dist, appPort, { "/config.json": config });
    started.push({ stop: () => closeServer(app) });
    const evil = await staticServer(join(ROOT, "tests", "foreign"), evilPort, { "/config.json": config });
    started.push({ stop: () => closeServer(evil) });
  } catch (err) {
    await stopAll();
    throw err;
  }
  return { world: { appUrl, evilUrl, rowsUrl, blobUrl, mailDir }, stop: stopAll };
}

async function distinctPorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

function closeServer(server: Server): Promise<void> {
  return new Promise((done) => {
    server.closeAllConnections();
    server.close(() => done());
  });
}

// ---- mail ----

/** One message of the mail directory, its text part decoded. */
export interface Mail {
  file: string;
  to: string;
  subject: string;
  text: string;
  /** Every http(s) link in the text. */
  links: string[];
}

/** Reads every `.eml` of `dir` (RFC 5322, MIME parts in quoted-printable or base64). */
export function readMails(dir: string): Mail[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith(".eml"))
    .map((name) => parseMail(join(dir, name), readFileSync(join(dir, name), "utf8")));
}

export function parseMail(file: string, raw: string): Mail {
  const source = raw.replace(/\r\n/g, "\n");
  const split = source.indexOf("\n\n");
  const headers = parseHeaders(split < 0 ? source : source.slice(0, split));
  const body = split < 0 ? "" : source.slice(split + 2);
  const text = decodeEntity(headers, body);
  const links = [...new Set(text.match(/https?:\/\/[^\s"<>]+/g) ?? [])];
  return { file, to: headers["to"] ?? "", subject: headers["subject"] ?? "", text, links };
}

function parseHeaders(block: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of block.replace(/\n[ \t]+/g, " ").split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

/** The text/plain content of a MIME entity (the first one found, depth first). */
function decodeEntity(headers: Record<string, string>, body: string): string {
  const type = headers["content-type"] ?? "text/plain";
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (/^multipart\//i.test(type) && boundary) {
    const parts = body.split(`--${boundary}`).slice(1);
    const decoded: string[] = [];
    for (const part of parts) {
      if (part.startsWith("--")) break;
      const trimmed = part.replace(/^\n/, "");
      const split = trimmed.indexOf("\n\n");
      const partHeaders = parseHeaders(split < 0 ? trimmed : trimmed.slice(0, split));
      decoded.push(decodeEntity(partHeaders, split < 0 ? "" : trimmed.slice(split + 2)));
    }
    const plain = parts.findIndex((p) => /content-type:\s*text\/plain/i.test(p));
    return plain >= 0 ? decoded[plain]! : decoded.join("\n");
  }
  const encoding = (headers["content-transfer-encoding"] ?? "").toLowerCase();
  if (encoding === "quoted-printable") return decodeQuotedPrintable(body);
  if (encoding === "base64") return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
  return body;
}

function decodeQuotedPrintable(text: string): string {
  const joined = text.replace(/=\n/g, "");
  const bytes: number[] = [];
  for (let i = 0; i < joined.length; i++) {
    const c = joined[i]!;
    if (c === "=" && /^[0-9A-Fa-f]{2}$/.test(joined.slice(i + 1, i + 3))) {
      bytes.push(parseInt(joined.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(c, "utf8"));
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/**
 * Waits until a message to `to` whose link starts with `linkPrefix` is in `dir`, and returns that
 * link (the newest such message's). The services write mail from a background worker.
 */
export async function waitForLink(dir: string, to: string, linkPrefix: string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const matching = readMails(dir)
      .filter((mail) => mail.to.toLowerCase().includes(to.toLowerCase()))
      .flatMap((mail) => mail.links.filter((link) => link.startsWith(linkPrefix)).map((link) => ({ link, file: mail.file })))
      .sort((a, b) => statSync(a.file).mtimeMs - statSync(b.file).mtimeMs);
    const newest = matching.at(-1);
    if (newest) return newest.link;
    if (Date.now() > deadline) {
      const seen = readMails(dir).map((m) => `${m.to}: ${m.subject}`).join("\n");
      throw new Error(`no mail to ${to} with a link ${linkPrefix}… within ${timeoutMs} ms; the directory holds:\n${seen}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
