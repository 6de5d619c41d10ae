import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import {
  CsrfRejectedError,
  EmailTakenError,
  InvalidCredentialsError,
  InvalidTokenError,
  MemoryTokenStore,
  UnauthenticatedError,
  WeakPasswordError,
  createClient,
} from "../src/index.js";
import { PASSWORD, browserFetch, freshEmail, mailedToken, signedUp, startService, type Service } from "./support.js";

const WEB_ORIGIN = "http://localhost:5173";

describe("auth against app-rows", () => {
  let service: Service;
  before(async () => {
    // A web app on another origin (a dev server), as `ALLOWED_ORIGINS` lists it.
    service = await startService("rows", { ALLOWED_ORIGINS: WEB_ORIGIN });
  });
  after(async () => {
    await service?.stop();
  });

  it("bearer: signup, me, sessions, login with the device token, logout", async () => {
    const { client, email, tokens, deviceTokens } = await signedUp(service.url);
    assert.ok(tokens.get(), "the session token is kept");
    const deviceToken = deviceTokens.get();
    assert.ok(deviceToken, "sign-up hands out a device token");
    const me = await client.auth.me();
    assert.equal(me.user.email, email);
    assert.equal(me.session.current, true);
    assert.equal(me.session.device_name, "test");

    // A second device of the same user, then a login on the first one that sends its device token.
    const other = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens: new MemoryTokenStore() } });
    await other.auth.login({ email, password: PASSWORD, deviceName: "other" });
    let sent: unknown;
    const spying = createClient({
      baseUrl: service.url,
      session: { mode: "bearer", tokens, deviceTokens },
      fetch: async (input, init) => {
        if (input.endsWith("/v1/auth/login")) sent = JSON.parse(String(init.body));
        return fetch(input, init);
      },
    });
    await spying.auth.login({ email, password: PASSWORD });
    assert.equal((sent as { device_token?: string }).device_token, deviceToken);
    assert.equal((sent as { session?: string }).session, "bearer");

    const sessions = await client.auth.sessions();
    assert.equal(sessions.length, 3);
    assert.equal(sessions.filter((s) => s.current).length, 1);

    const otherSession = sessions.find((s) => s.device_name === "other");
    assert.ok(otherSession);
    await client.auth.revokeSession(otherSession.id);
    await assert.rejects(other.auth.me(), UnauthenticatedError);

    await client.auth.logout();
    assert.equal(tokens.get(), null);
    assert.ok(deviceTokens.get(), "logout keeps the device token");
    await assert.rejects(client.auth.me(), UnauthenticatedError);
    assert.equal(await client.auth.current(), null);
  });

  it("maps the contract's errors to their classes", async () => {
    const { email } = await signedUp(service.url);
    const client = createClient({ baseUrl: service.url, session: { mode: "bearer", tokens: new MemoryTokenStore() } });
    await assert.rejects(client.auth.signup({ email, password: PASSWORD }), (err: unknown) => {
      assert.ok(err instanceof EmailTakenError);
      assert.equal(err.status, 409);
      assert.equal(err.code, "email_taken");
      return true;
    });
    await assert.rejects(client.auth.signup({ email: freshEmail(), password: "password" }), WeakPasswordError);
    await assert.rejects(client.auth.login({ email, password: "wrong password here" }), (err: unknown) => {
      assert.ok(err instanceof InvalidCredentialsError);
      assert.equal(err.status, 401);
      assert.ok(err.detail.length > 0);
      return true;
    });
    await assert.rejects(client.auth.me(), UnauthenticatedError);
    await assert.rejects(client.auth.confirmEmailVerification("nonsense"), InvalidTokenError);
  });

  it("mail flows: verify email, password change, forgot and reset, email change", async () => {
    const { client, email, tokens } = await signedUp(service.url);
    const verifyToken = await mailedToken(service.mailDir, email, "verify-email");
    const verified = await client.auth.confirmEmailVerification(verifyToken);
    assert.equal(verified.email_verified, true);

    const next = "another long passphrase";
    await client.auth.changePassword(PASSWORD, next);
    await assert.rejects(client.auth.changePassword(PASSWORD, next), InvalidCredentialsError);

    const newEmail = freshEmail();
    await client.auth.requestEmailChange(newEmail, next);
    const changeToken = await mailedToken(service.mailDir, newEmail, "confirm-email");
    const changed = await client.auth.confirmEmailChange(changeToken);
    assert.equal(changed.email, newEmail);

    await client.auth.forgotPassword(newEmail);
    const resetToken = await mailedToken(service.mailDir, newEmail, "reset-password");
    const third = "a third long passphrase";
    await client.auth.resetPassword(resetToken, third);
    await assert.rejects(client.auth.me(), UnauthenticatedError, "a reset ends every session");
    await client.auth.login({ email: newEmail, password: third });
    assert.ok(tokens.get());
    await client.auth.cancelEmailChange();
    await client.auth.revokeOtherSessions();
    await client.auth.deleteAccount(third);
    assert.equal(tokens.get(), null);
    await assert.rejects(client.auth.login({ email: newEmail, password: third }), InvalidCredentialsError);
  });

  it("cookie mode: the cookie carries the session; unsafe requests need an allowed Origin", async () => {
    const browser = browserFetch(WEB_ORIGIN);
    const client = createClient({ baseUrl: service.url, session: { mode: "cookie" }, fetch: browser });
    const email = freshEmail();
    const signed = await client.auth.signup({ email, password: PASSWORD });
    assert.equal(signed.user.email, email);
    assert.ok(browser.cookies.has("session"), "a session cookie is set");
    assert.equal((await client.auth.me()).user.email, email);
    await client.auth.logout();
    assert.equal(await client.auth.current(), null);
    await client.auth.login({ email, password: PASSWORD });
    assert.ok(browser.cookies.has("device"), "login hands out a device cookie");
    assert.equal((await client.auth.me()).user.email, email);

    const elsewhere = browserFetch("http://evil.example");
    const jar = elsewhere.cookies;
    for (const [k, v] of browser.cookies) jar.set(k, v);
    const forged = createClient({ baseUrl: service.url, session: { mode: "cookie" }, fetch: elsewhere });
    await assert.rejects(forged.auth.revokeOtherSessions(), CsrfRejectedError);
  });
});
