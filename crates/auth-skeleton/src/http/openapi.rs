//! The OpenAPI 3.1 document served at `/openapi.json`: the library's routes (auth, the pages
//! of mailed links, health, metrics) merged with the engine's ([`crate::service::Engine::openapi`]).
//!
//! The document is built with [utoipa](https://docs.rs/utoipa) from the declarations below and
//! the app's own; the test helper [`check_document`](crate::testing::check_document) (feature `testing`) lists every route
//! the service really mounts that the document lacks, and every documented path the service
//! does not serve, so neither can drift from the other unnoticed.
//!
//! An engine contributes its part like this:
//!
//! ```
//! use utoipa::OpenApi;
//!
//! /// Pull the caller's changed rows.
//! #[utoipa::path(get, path = "/v1/notes", tag = "notes",
//!     responses((status = 200, description = "The notes")))]
//! async fn list_notes() {}
//!
//! #[derive(OpenApi)]
//! #[openapi(paths(list_notes))]
//! struct NotesApi;
//!
//! // In `impl auth_skeleton::service::Engine for Notes`:
//! // fn openapi(&self) -> utoipa::openapi::OpenApi { NotesApi::openapi() }
//! let doc = auth_skeleton::http::openapi::document("app-notes", "1.0.0", NotesApi::openapi());
//! assert!(doc.paths.paths.contains_key("/v1/notes"));
//! assert!(doc.paths.paths.contains_key("/v1/auth/login"));
//! ```

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The whole service's document: the library's routes plus `engine`'s, titled with the app.
pub fn document(
    app_name: &str,
    app_version: &str,
    engine: utoipa::openapi::OpenApi,
) -> utoipa::openapi::OpenApi {
    let mut doc = LibraryApi::openapi();
    doc.info.title = app_name.to_owned();
    doc.info.version = app_version.to_owned();
    doc.info.description = Some(format!(
        "{app_name}: accounts and sessions from auth-skeleton {}, plus the app's sync routes. \
         Errors are RFC 9457 problem details with a stable `code`.",
        crate::AUTH_SKELETON_VERSION
    ));
    doc.merge(engine);
    add_common_problems(&mut doc);
    doc
}

/// Documents, on every operation that lacks them, the problems any such operation can answer:
/// `400 invalid_request` where a body is read (malformed JSON, a wrong type, a missing field) and
/// `401 unauthenticated` where a session is required. One rule instead of a line per handler,
/// so a new route cannot forget them.
fn add_common_problems(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            if operation.request_body.is_some() && !responses.contains_key("400") {
                responses.insert(
                    "400".to_owned(),
                    problem("invalid_request: a malformed body, a wrong type or a missing field")
                        .into(),
                );
            }
            let signed_in = operation
                .security
                .as_ref()
                .is_some_and(|requirements| !requirements.is_empty());
            if signed_in && !responses.contains_key("401") {
                responses.insert(
                    "401".to_owned(),
                    problem("unauthenticated: no live session").into(),
                );
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(
        paths::signup,
        paths::login,
        paths::logout,
        paths::me,
        paths::sessions,
        paths::revoke_session,
        paths::revoke_others,
        paths::request_verification,
        paths::confirm_verification,
        paths::forgot_password,
        paths::reset_password,
        paths::change_password,
        paths::request_email_change,
        paths::cancel_email_change,
        paths::confirm_email_change,
        paths::delete_account,
        paths::verify_email_page,
        paths::reset_password_page,
        paths::confirm_email_page,
        paths::pages_script,
        paths::pages_style,
        paths::healthz,
        paths::readyz,
        paths::metrics,
        paths::openapi_json,
    ),
    components(schemas(
        schemas::Problem,
        schemas::User,
        schemas::Session,
        schemas::SignedIn,
        schemas::Me,
        schemas::SessionList,
        schemas::UserBody,
        schemas::Credentials,
        schemas::SessionTransport,
        schemas::TokenBody,
        schemas::EmailBody,
        schemas::PasswordReset,
        schemas::PasswordChange,
        schemas::EmailChange,
        schemas::PasswordBody,
        schemas::Health,
    )),
    modifiers(&Credentials),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "pages", description = "The pages that mailed links open"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
struct LibraryApi;

/// Adds the two ways a request authenticates: a bearer token or the session cookie.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The token from a sign-in with \"session\": \"bearer\"",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "__Host-session",
                "The session cookie (named `session` when COOKIE_SECURE=false); unsafe \
                 methods also need an allowed Origin",
            ))),
        );
    }
}

/// The shapes of the contract's bodies, for the document.
pub mod schemas {
    use super::ToSchema;

    /// RFC 9457 problem details, `application/problem+json`.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct Problem {
        /// Always `about:blank`.
        #[schema(rename = "type")]
        kind: String,
        /// The status's reason phrase.
        title: String,
        /// The HTTP status.
        status: u16,
        /// For humans; never echoes secrets.
        detail: String,
        /// The stable machine-readable name, e.g. `invalid_credentials`.
        code: String,
    }

    /// A user.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct User {
        id: String,
        email: String,
        email_verified: bool,
        /// RFC 3339 UTC.
        created_at: String,
    }

    /// A session.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct Session {
        id: String,
        created_at: String,
        last_seen_at: String,
        expires_at: String,
        device_name: Option<String>,
        /// Whether this is the session making the request.
        current: bool,
    }

    /// The answer to a sign-in.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct SignedIn {
        user: User,
        session: Session,
        /// Only for `"session": "bearer"`; shown once.
        token: Option<String>,
        /// Only for `"session": "bearer"`: present it as `device_token` at this device's next
        /// login (cookie clients get the `__Secure-device` cookie instead).
        device_token: Option<String>,
    }

    /// The signed-in user and session.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct Me {
        user: User,
        session: Session,
    }

    /// The caller's live sessions.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct SessionList {
        sessions: Vec<Session>,
    }

    /// A user, after a change.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct UserBody {
        user: User,
    }

    /// Where the session token goes.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    #[schema(rename_all = "lowercase")]
    pub enum SessionTransport {
        /// An httpOnly cookie (web).
        Cookie,
        /// The body's `token`, for an `Authorization: Bearer` header (native).
        Bearer,
    }

    /// Sign-up and login.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct Credentials {
        email: String,
        password: String,
        /// Where the session token goes: a cookie (the default) or the body.
        session: Option<SessionTransport>,
        device_name: Option<String>,
        /// Login only: the device token this client was given at its last sign-in.
        device_token: Option<String>,
    }

    /// A mailed token.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct TokenBody {
        token: String,
    }

    /// An address.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct EmailBody {
        email: String,
    }

    /// A password reset.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct PasswordReset {
        token: String,
        new_password: String,
    }

    /// A password change.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct PasswordChange {
        current_password: String,
        new_password: String,
    }

    /// An email change.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct EmailChange {
        new_email: String,
        password: String,
    }

    /// A password, to confirm a sensitive operation.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct PasswordBody {
        password: String,
    }

    /// `/healthz`.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct Health {
        status: String,
        app: String,
        version: String,
        auth_skeleton: String,
    }
}

/// The library's routes, declared for the document (the handlers live in [`crate::http`] and
/// [`crate::service::server`]; the completeness check keeps the two in step).
#[allow(dead_code)]
mod paths {
    use super::schemas::*;

    #[utoipa::path(post, path = "/v1/auth/signup", tag = "auth", request_body = Credentials,
        responses(
            (status = 201, description = "Signed up and signed in; a verification email is sent", body = SignedIn),
            (status = 400, description = "invalid_email, weak_password or invalid_request", body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "email_taken", body = Problem, content_type = "application/problem+json"),
            (status = 429, description = "rate_limited", body = Problem, content_type = "application/problem+json"),
        ))]
    fn signup() {}

    #[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = Credentials,
        responses(
            (status = 200, description = "Signed in", body = SignedIn),
            (status = 400, description = "invalid_request: a malformed body or device_name", body = Problem, content_type = "application/problem+json"),
            (status = 401, description = "invalid_credentials", body = Problem, content_type = "application/problem+json"),
            (status = 429, description = "rate_limited", body = Problem, content_type = "application/problem+json"),
        ))]
    fn login() {}

    #[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
        security(("bearer" = []), ("cookie" = [])),
        responses(
            (status = 204, description = "The session is revoked and the cookie cleared"),
            (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        ))]
    fn logout() {}

    #[utoipa::path(get, path = "/v1/auth/me", tag = "auth",
        security(("bearer" = []), ("cookie" = [])),
        responses(
            (status = 200, description = "The signed-in user and session", body = Me),
            (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        ))]
    fn me() {}

    #[utoipa::path(get, path = "/v1/auth/sessions", tag = "auth",
        security(("bearer" = []), ("cookie" = [])),
        responses(
            (status = 200, description = "The caller's live sessions", body = SessionList),
            (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        ))]
    fn sessions() {}

    #[utoipa::path(delete, path = "/v1/auth/sessions/{id}", tag = "auth",
        params(("id" = String, Path, description = "A session id")),
        security(("bearer" = []), ("cookie" = [])),
        responses(
            (status = 204, description = "Revoked"),
            (status = 404, description = "not_found (also another user's session)", body = Problem, content_type = "application/problem+json"),
        ))]
    fn revoke_session() {}

    #[utoipa::path(post, path = "/v1/auth/sessions/revoke-others", tag = "auth",
        security(("bearer" = []), ("cookie" = [])),
        responses(
            (status = 204, description = "Every other session is revoked"),
            (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        ))]
    fn revoke_others() {}

    #[utoipa::path(post, path = "/v1/auth/verify-email/request", tag = "auth",
        security(("bearer" = []), ("cookie" = [])),
        responses(
            (status = 202, description = "A fresh verification email is on its way"),
            (status = 409, description = "already_verified", body = Problem, content_type = "application/problem+json"),
            (status = 429, description = "rate_limited", body = Problem, content_type = "application/problem+json"),
        ))]
    fn request_verification() {}

    #[utoipa::path(post, path = "/v1/auth/verify-email/confirm", tag = "auth", request_body = TokenBody,
        responses(
            (status = 200, description = "The address is verified", body = UserBody),
            (status = 400, description = "invalid_token", body = Problem, content_type = "application/problem+json"),
        ))]
    fn confirm_verification() {}

    #[utoipa::path(post, path = "/v1/auth/password/forgot", tag = "auth", request_body = EmailBody,
        responses(
            (status = 202, description = "Always, whether or not the account exists, and also past the address's own limit (then no mail is sent)"),
            (status = 400, description = "invalid_email", body = Problem, content_type = "application/problem+json"),
            (status = 429, description = "rate_limited (the per-IP limit only)", body = Problem, content_type = "application/problem+json"),
        ))]
    fn forgot_password() {}

    #[utoipa::path(post, path = "/v1/auth/password/reset", tag = "auth", request_body = PasswordReset,
        responses(
            (status = 204, description = "The password is set and every session revoked"),
            (status = 400, description = "invalid_token or weak_password", body = Problem, content_type = "application/problem+json"),
        ))]
    fn reset_password() {}

    #[utoipa::path(post, path = "/v1/auth/password/change", tag = "auth", request_body = PasswordChange,
        security(("bearer" = []), ("cookie" = [])),
        responses(
            (status = 204, description = "Changed; every other session is revoked"),
            (status = 400, description = "weak_password", body = Problem, content_type = "application/problem+json"),
            (status = 401, description = "invalid_credentials", body = Problem, content_type = "application/problem+json"),
        ))]
    fn change_password() {}

    #[utoipa::path(post, path = "/v1/auth/email/change", tag = "auth", request_body = EmailChange,
        security(("bearer" = []), ("cookie" = [])),
        responses(
            (status = 202, description = "A confirmation mail goes to the new address"),
            (status = 400, description = "invalid_email", body = Problem, content_type = "application/problem+json"),
            (status = 401, description = "invalid_credentials", body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "email_taken", body = Problem, content_type = "application/problem+json"),
            (status = 429, description = "rate_limited", body = Problem, content_type = "application/problem+json"),
        ))]
    fn request_email_change() {}

    #[utoipa::path(delete, path = "/v1/auth/email/change", tag = "auth",
        security(("bearer" = []), ("cookie" = [])),
        responses(
            (status = 204, description = "Every pending email change is cancelled; its links stop working"),
            (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        ))]
    fn cancel_email_change() {}

    #[utoipa::path(post, path = "/v1/auth/email/confirm", tag = "auth", request_body = TokenBody,
        responses(
            (status = 200, description = "The new address, verified", body = UserBody),
            (status = 400, description = "invalid_token", body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "email_taken", body = Problem, content_type = "application/problem+json"),
        ))]
    fn confirm_email_change() {}

    #[utoipa::path(delete, path = "/v1/auth/account", tag = "auth", request_body = PasswordBody,
        security(("bearer" = []), ("cookie" = [])),
        responses(
            (status = 204, description = "The user, its sessions and all its app data are gone"),
            (status = 401, description = "invalid_credentials", body = Problem, content_type = "application/problem+json"),
        ))]
    fn delete_account() {}

    #[utoipa::path(get, path = "/verify-email", tag = "pages",
        params(("token" = Option<String>, Query, description = "The mailed token, spent only by the confirm call (without it, the page says the link is incomplete)")),
        responses((status = 200, description = "A page that asks the person to confirm", content_type = "text/html")))]
    fn verify_email_page() {}

    #[utoipa::path(get, path = "/reset-password", tag = "pages",
        params(("token" = Option<String>, Query, description = "The mailed token (without it, the page says the link is incomplete)")),
        responses((status = 200, description = "A page to type a new password", content_type = "text/html")))]
    fn reset_password_page() {}

    #[utoipa::path(get, path = "/confirm-email", tag = "pages",
        params(("token" = Option<String>, Query, description = "The mailed token (without it, the page says the link is incomplete)")),
        responses((status = 200, description = "A page that confirms the new address", content_type = "text/html")))]
    fn confirm_email_page() {}

    #[utoipa::path(get, path = "/auth-assets/pages.js", tag = "pages",
        responses((status = 200, description = "The pages' script", content_type = "text/javascript")))]
    fn pages_script() {}

    #[utoipa::path(get, path = "/auth-assets/pages.css", tag = "pages",
        responses((status = 200, description = "The pages' style sheet", content_type = "text/css")))]
    fn pages_style() {}

    #[utoipa::path(get, path = "/healthz", tag = "operations",
        responses((status = 200, description = "The service runs", body = Health)))]
    fn healthz() {}

    #[utoipa::path(get, path = "/readyz", tag = "operations",
        responses(
            (status = 200, description = "The database answers"),
            (status = 503, description = "The database does not answer"),
        ))]
    fn readyz() {}

    #[utoipa::path(get, path = "/metrics", tag = "operations",
        responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
    fn metrics() {}

    #[utoipa::path(get, path = "/openapi.json", tag = "operations",
        responses((status = 200, description = "This document", content_type = "application/json")))]
    fn openapi_json() {}
}
