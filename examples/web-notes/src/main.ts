// Web notes: notes synced through app-rows and a scratchpad kept in app-blob, with cookie sessions.
//
// The two services are separate: each has its own accounts and its own session cookie. The page
// signs up (and in, and out) on both with the same address and password, and shows each
// service's verification state.

import "./style.css";
import {
  ApiError,
  EmailTakenError,
  InvalidCredentialsError,
  createClient,
  type Client,
  type Me,
} from "./client.js";
import { loadConfig } from "./config.js";
import { byTestId, describe, say, show } from "./dom.js";
import { NotesView } from "./notes.js";
import { PadView } from "./pad.js";

interface Services {
  rows: Client;
  blob: Client;
}

interface SignedIn {
  rows: Me;
  blob: Me;
}

const SERVICE_NAMES: Record<keyof Services, string> = { rows: "notes (app-rows)", blob: "scratchpad (app-blob)" };

let services: Services;
let notes: NotesView | null = null;
let pad: PadView | null = null;
let current: SignedIn | null = null;
let verifyPoll: ReturnType<typeof setInterval> | undefined;

const authPanel = byTestId("auth-panel");
const authForm = byTestId<HTMLFormElement>("auth-form");
const authMessage = byTestId("auth-message");
const emailInput = byTestId<HTMLInputElement>("email");
const passwordInput = byTestId<HTMLInputElement>("password");
const accountBox = byTestId("account");
const workspace = byTestId("workspace");
const appError = byTestId("app-error");
const accountMessage = byTestId("account-message");

async function main(): Promise<void> {
  const config = await loadConfig();
  const deviceName = `web-notes on ${navigator.platform || "a browser"}`;
  services = {
    rows: createClient({ baseUrl: config.rowsUrl, session: { mode: "cookie" }, deviceName }),
    blob: createClient({ baseUrl: config.blobUrl, session: { mode: "cookie" }, deviceName }),
  };
  bindAuth();
  bindAccount();
  document.body.dataset["ready"] = "true";
  try {
    const [rows, blob] = await Promise.all([services.rows.auth.current(), services.blob.auth.current()]);
    if (rows && blob) {
      await enter({ rows, blob });
      return;
    }
    // Signed in on one service only (the other session ended): start over on both.
    if (rows) await services.rows.auth.logout().catch(() => undefined);
    if (blob) await services.blob.auth.logout().catch(() => undefined);
  } catch (err) {
    say(authMessage, `The services cannot be reached: ${describe(err)}`, "error");
  }
  showSignedOut();
}

// ---- signing in and out ----

function bindAuth(): void {
  authForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const action = (event.submitter as HTMLButtonElement | null)?.dataset["action"] ?? "login";
    void (action === "signup" ? signUp() : logIn());
  });
  byTestId("forgot-password").addEventListener("click", () => void forgotPassword());
  byTestId("sign-out").addEventListener("click", () => void signOut());
}

function credentials(): { email: string; password: string } | null {
  const email = emailInput.value.trim();
  const password = passwordInput.value;
  if (!email || !password) {
    say(authMessage, "Type your email address and password.", "error");
    return null;
  }
  return { email, password };
}

function busy(on: boolean): void {
  for (const button of authForm.querySelectorAll("button")) button.disabled = on;
}

async function signUp(): Promise<void> {
  const creds = credentials();
  if (!creds) return;
  busy(true);
  say(authMessage, "Creating your account…");
  try {
    // Each service keeps its own account. An address already taken on one of them (an earlier
    // sign-up that stopped halfway) is signed in there instead.
    const [rows, blob] = await Promise.all(
      (["rows", "blob"] as const).map(async (name) => {
        try {
          await services[name].auth.signup(creds);
        } catch (err) {
          if (!(err instanceof EmailTakenError)) throw named(name, err);
          try {
            await services[name].auth.login(creds);
          } catch (loginErr) {
            throw named(name, loginErr instanceof InvalidCredentialsError ? err : loginErr);
          }
        }
        return services[name].auth.me();
      }),
    );
    passwordInput.value = "";
    await enter({ rows: rows!, blob: blob! });
  } catch (err) {
    await Promise.all([services.rows.auth.logout(), services.blob.auth.logout()].map((p) => p.catch(() => undefined)));
    say(authMessage, describe(err), "error");
  } finally {
    busy(false);
  }
}

async function logIn(): Promise<void> {
  const creds = credentials();
  if (!creds) return;
  busy(true);
  say(authMessage, "Signing in…");
  const results = await Promise.allSettled(
    (["rows", "blob"] as const).map(async (name) => {
      try {
        await services[name].auth.login(creds);
        return await services[name].auth.me();
      } catch (err) {
        throw named(name, err);
      }
    }),
  );
  busy(false);
  const [rows, blob] = results;
  if (rows?.status === "fulfilled" && blob?.status === "fulfilled") {
    passwordInput.value = "";
    await enter({ rows: rows.value, blob: blob.value });
    return;
  }
  // Both or nothing: a half signed-in page would show notes without the scratchpad.
  await Promise.all([services.rows.auth.logout(), services.blob.auth.logout()].map((p) => p.catch(() => undefined)));
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason);
  const wrong = failures.every((err) => err instanceof NamedError && err.cause instanceof InvalidCredentialsError);
  say(authMessage, wrong ? "Wrong email address or password." : failures.map(describe).join(" "), "error");
}

async function forgotPassword(): Promise<void> {
  const email = emailInput.value.trim();
  if (!email) {
    say(authMessage, "Type your email address first.", "error");
    return;
  }
  try {
    await Promise.all([services.rows.auth.forgotPassword(email), services.blob.auth.forgotPassword(email)]);
    say(authMessage, "If an account uses this address, each service has mailed it a link to choose a new password.", "ok");
  } catch (err) {
    say(authMessage, describe(err), "error");
  }
}

async function signOut(): Promise<void> {
  await Promise.all([services.rows.auth.logout(), services.blob.auth.logout()].map((p) => p.catch(() => undefined)));
  await leave();
}

/** A session ended elsewhere (401): back to the sign-in form. */
function signedOutElsewhere(): void {
  if (!current) return;
  void Promise.all([services.rows.auth.logout(), services.blob.auth.logout()].map((p) => p.catch(() => undefined))).then(async () => {
    await leave();
    say(authMessage, "Your session ended. Sign in again.", "error");
  });
}

async function enter(me: SignedIn): Promise<void> {
  current = me;
  show(authPanel, false);
  show(accountBox, true);
  show(workspace, true);
  say(authMessage, "");
  showAccount();
  try {
    [notes, pad] = await Promise.all([
      NotesView.open(services.rows.http, me.rows.user.id, signedOutElsewhere),
      PadView.open(services.blob, signedOutElsewhere),
    ]);
  } catch (err) {
    say(appError, describe(err), "error");
    show(appError, true);
  }
}

async function leave(): Promise<void> {
  current = null;
  clearInterval(verifyPoll);
  const closing = notes?.close();
  pad?.close();
  notes = null;
  pad = null;
  await closing;
  showSignedOut();
}

function showSignedOut(): void {
  show(authPanel, true);
  show(accountBox, false);
  show(workspace, false);
  show(byTestId("verify-banner"), false);
  show(byTestId("verified"), false);
  show(appError, false);
  document.body.dataset["signedIn"] = "false";
}

// ---- the account: verification and email change ----

function showAccount(): void {
  if (!current) return;
  document.body.dataset["signedIn"] = "true";
  byTestId("account-email").textContent = current.rows.user.email;
  byTestId("verify-email-address").textContent = current.rows.user.email;
  const badge = (id: string, verified: boolean) => {
    const element = byTestId(id);
    element.textContent = verified ? "verified" : "not verified";
    element.className = `badge ${verified ? "ok" : "no"}`;
  };
  const rowsVerified = current.rows.user.email_verified;
  const blobVerified = current.blob.user.email_verified;
  badge("verified-rows", rowsVerified);
  badge("verified-blob", blobVerified);
  const verified = rowsVerified && blobVerified;
  show(byTestId("verify-banner"), !verified);
  show(byTestId("verified"), verified);
  clearInterval(verifyPoll);
  // While unverified, look again now and then: the link is opened in another tab.
  if (!verified) verifyPoll = setInterval(() => void refreshAccount(), 10_000);
}

async function refreshAccount(): Promise<void> {
  if (!current) return;
  try {
    const [rows, blob] = await Promise.all([services.rows.auth.current(), services.blob.auth.current()]);
    if (!rows || !blob) {
      signedOutElsewhere();
      return;
    }
    current = { rows, blob };
    showAccount();
  } catch (err) {
    say(accountMessage, describe(err), "error");
  }
}

function bindAccount(): void {
  byTestId("check-verification").addEventListener("click", () => void refreshAccount());
  byTestId("refresh-account").addEventListener("click", () => void refreshAccount().then(() => say(accountMessage, "")));
  window.addEventListener("focus", () => void refreshAccount());
  byTestId("resend-verification").addEventListener("click", async () => {
    if (!current) return;
    const unverified = (["rows", "blob"] as const).filter((name) => !current![name].user.email_verified);
    try {
      await Promise.all(unverified.map((name) => services[name].auth.requestEmailVerification()));
      say(accountMessage, "New links are on their way.", "ok");
    } catch (err) {
      say(accountMessage, describe(err), "error");
    }
  });
  byTestId<HTMLFormElement>("change-email-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const newEmail = byTestId<HTMLInputElement>("new-email").value.trim();
    const passwordField = byTestId<HTMLInputElement>("change-email-password");
    if (!newEmail || !passwordField.value) {
      say(accountMessage, "Type the new address and your password.", "error");
      return;
    }
    const results = await Promise.allSettled(
      (["rows", "blob"] as const).map((name) =>
        services[name].auth.requestEmailChange(newEmail, passwordField.value).catch((err: unknown) => {
          throw named(name, err);
        }),
      ),
    );
    passwordField.value = "";
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason);
    if (failures.length > 0) {
      say(accountMessage, failures.map(describe).join(" "), "error");
    } else {
      say(accountMessage, `Each service mailed a confirmation link to ${newEmail}. Nothing changes until you open them.`, "ok");
    }
  });
}

// ---- errors ----

/** An error of one of the two services, named in its message. */
class NamedError extends Error {
  override readonly cause: unknown;
  constructor(service: keyof Services, cause: unknown) {
    const detail = cause instanceof ApiError ? cause.detail || cause.title : describe(cause);
    super(`${SERVICE_NAMES[service]}: ${detail}`);
    this.name = "NamedError";
    this.cause = cause;
  }
}

function named(service: keyof Services, err: unknown): NamedError {
  return err instanceof NamedError ? err : new NamedError(service, err);
}

void main();
