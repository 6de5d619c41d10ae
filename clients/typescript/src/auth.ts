import type { Http } from "./http.js";
import { readJson } from "./http.js";
import type { Me, Session, SignedIn, User } from "./types.js";

export interface Credentials {
  email: string;
  password: string;
  /** Shown in the sessions list (e.g. "Firefox on laptop"). */
  deviceName?: string;
}

interface SignInBody {
  user: User;
  session: Session;
  token?: string;
  device_token?: string;
}

/** The `/v1/auth` routes. Methods throw `ApiError` subclasses for problem answers. */
export class Auth {
  private readonly http: Http;
  private readonly defaultDeviceName: string | undefined;

  constructor(http: Http, defaultDeviceName?: string) {
    this.http = http;
    this.defaultDeviceName = defaultDeviceName;
  }

  /** `POST /v1/auth/signup`: creates the account and signs in (a verification mail is sent). */
  async signup(credentials: Credentials): Promise<SignedIn> {
    const body = await this.signInBody(credentials);
    const answer = await this.http.json<SignInBody>("POST", "/v1/auth/signup", { json: body });
    return this.keep(answer);
  }

  /**
   * `POST /v1/auth/login`. In bearer mode the device token kept from an earlier sign-in is sent
   * along (cookie mode: the browser sends its device cookie), and the new one is kept.
   */
  async login(credentials: Credentials): Promise<SignedIn> {
    const body = await this.signInBody(credentials);
    const session = this.http.session;
    if (session.mode === "bearer" && session.deviceTokens) {
      const deviceToken = await session.deviceTokens.get();
      if (deviceToken) body["device_token"] = deviceToken;
    }
    const answer = await this.http.json<SignInBody>("POST", "/v1/auth/login", { json: body });
    return this.keep(answer);
  }

  /** `POST /v1/auth/logout`: ends this session (the local token is cleared even if the call fails). */
  async logout(): Promise<void> {
    try {
      await this.http.request("POST", "/v1/auth/logout");
    } finally {
      if (this.http.session.mode === "bearer") await this.http.session.tokens.clear();
    }
  }

  /** `GET /v1/auth/me`. */
  me(): Promise<Me> {
    return this.http.json<Me>("GET", "/v1/auth/me");
  }

  /** `GET /v1/auth/me`, null instead of `UnauthenticatedError`. */
  async current(): Promise<Me | null> {
    const response = await this.http.send("GET", "/v1/auth/me");
    if (response.status === 401) return null;
    if (!response.ok) throw await this.http.toError(response);
    return (await readJson(response)) as Me;
  }

  /** `GET /v1/auth/sessions`: the caller's live sessions. */
  async sessions(): Promise<Session[]> {
    const answer = await this.http.json<{ sessions: Session[] }>("GET", "/v1/auth/sessions");
    return answer.sessions;
  }

  /** `DELETE /v1/auth/sessions/{id}`. */
  async revokeSession(id: string): Promise<void> {
    await this.http.request("DELETE", `/v1/auth/sessions/${encodeURIComponent(id)}`);
  }

  /** `POST /v1/auth/sessions/revoke-others`. */
  async revokeOtherSessions(): Promise<void> {
    await this.http.request("POST", "/v1/auth/sessions/revoke-others");
  }

  /** `POST /v1/auth/verify-email/request`: sends a fresh verification mail. */
  async requestEmailVerification(): Promise<void> {
    await this.http.request("POST", "/v1/auth/verify-email/request");
  }

  /** `POST /v1/auth/verify-email/confirm` with the token from the mailed link. */
  async confirmEmailVerification(token: string): Promise<User> {
    const answer = await this.http.json<{ user: User }>("POST", "/v1/auth/verify-email/confirm", { json: { token } });
    return answer.user;
  }

  /** `POST /v1/auth/password/forgot`: always succeeds (202) unless rate limited or malformed. */
  async forgotPassword(email: string): Promise<void> {
    await this.http.request("POST", "/v1/auth/password/forgot", { json: { email } });
  }

  /** `POST /v1/auth/password/reset`: every session of the user ends, this one included. */
  async resetPassword(token: string, newPassword: string): Promise<void> {
    await this.http.request("POST", "/v1/auth/password/reset", { json: { token, new_password: newPassword } });
  }

  /** `POST /v1/auth/password/change`: every other session ends. */
  async changePassword(currentPassword: string, newPassword: string): Promise<void> {
    await this.http.request("POST", "/v1/auth/password/change", {
      json: { current_password: currentPassword, new_password: newPassword },
    });
  }

  /** `POST /v1/auth/email/change`: mails a confirmation link to the new address. */
  async requestEmailChange(newEmail: string, password: string): Promise<void> {
    await this.http.request("POST", "/v1/auth/email/change", { json: { new_email: newEmail, password } });
  }

  /** `POST /v1/auth/email/confirm` with the token from the mailed link. */
  async confirmEmailChange(token: string): Promise<User> {
    const answer = await this.http.json<{ user: User }>("POST", "/v1/auth/email/confirm", { json: { token } });
    return answer.user;
  }

  /** `DELETE /v1/auth/email/change`: cancels every pending email change. */
  async cancelEmailChange(): Promise<void> {
    await this.http.request("DELETE", "/v1/auth/email/change");
  }

  /** `DELETE /v1/auth/account`: the user and all its data are gone; the local token is cleared. */
  async deleteAccount(password: string): Promise<void> {
    await this.http.request("DELETE", "/v1/auth/account", { json: { password } });
    const session = this.http.session;
    if (session.mode === "bearer") {
      await session.tokens.clear();
      await session.deviceTokens?.clear();
    }
  }

  private async signInBody(credentials: Credentials): Promise<Record<string, string>> {
    const body: Record<string, string> = {
      email: credentials.email,
      password: credentials.password,
      session: this.http.session.mode,
    };
    const deviceName = credentials.deviceName ?? this.defaultDeviceName;
    if (deviceName !== undefined) body["device_name"] = deviceName;
    return body;
  }

  private async keep(answer: SignInBody): Promise<SignedIn> {
    const session = this.http.session;
    if (session.mode === "bearer") {
      if (typeof answer.token === "string") await session.tokens.set(answer.token);
      if (typeof answer.device_token === "string") await session.deviceTokens?.set(answer.device_token);
    }
    return { user: answer.user, session: answer.session };
  }
}
