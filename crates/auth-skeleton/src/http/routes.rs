//! The `/v1/auth` routes: thin adapters from HTTP to the services in [`crate::accounts`].

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accounts::Auth;
use crate::accounts::email::Email;
use crate::accounts::model::{Session, User};
use crate::accounts::password::Password;
use crate::http::client_ip::{client_ip, limit_key};
use crate::http::cookie::{
    clearing_cookie, device_cookie, presented_device_cookie, session_cookie,
};
use crate::http::csrf;
use crate::http::current_user::AccountHolder;
use crate::http::json::{Json, reply};
use crate::http::openapi::{
    AlreadyVerified, CsrfRejected, EmailTaken, InvalidCredentials, InvalidEmail, InvalidToken,
    NotFound, Overloaded, Problems, RateLimited, WeakPassword,
};
use crate::http::problem::ApiError;
use crate::rate_limit::Limit;

/// Mounts the auth routes under `/v1/auth`. `Auth` must be registered as `web::Data<Auth>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1/auth")
            .wrap(DefaultHeaders::new().add(CacheControl(vec![CacheDirective::NoStore])))
            .route("/signup", web::post().to(signup))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
            .route("/me", web::get().to(me))
            .route("/sessions", web::get().to(sessions))
            // A resource, not `.route()`: a route's method guard would let `DELETE` of this
            // path fall through to `/sessions/{id}` (id "revoke-others") instead of `405`.
            .service(web::resource("/sessions/revoke-others").route(web::post().to(revoke_others)))
            .route("/sessions/{id}", web::delete().to(revoke_session))
            .route("/password/change", web::post().to(change_password))
            .route("/account", web::delete().to(delete_account))
            .route(
                "/verify-email/request",
                web::post().to(request_verification),
            )
            .route(
                "/verify-email/confirm",
                web::post().to(confirm_verification),
            )
            .route("/password/forgot", web::post().to(forgot_password))
            .route("/password/reset", web::post().to(reset_password))
            .service(
                web::resource("/email/change")
                    .route(web::post().to(request_email_change))
                    .route(web::delete().to(cancel_email_change)),
            )
            .route("/email/confirm", web::post().to(confirm_email_change)),
    )
    .configure(crate::http::pages::configure);
}

/// The auth routes' part of the document ([`crate::http::openapi::document`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    signup,
    login,
    logout,
    me,
    sessions,
    revoke_session,
    revoke_others,
    request_verification,
    confirm_verification,
    forgot_password,
    reset_password,
    change_password,
    request_email_change,
    cancel_email_change,
    confirm_email_change,
    delete_account,
))]
pub(crate) struct AuthApi;

/// Where the client wants its session token.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
enum SessionTransport {
    /// In an httpOnly cookie (web).
    #[default]
    Cookie,
    /// In the response body, for an `Authorization: Bearer` header (native).
    Bearer,
}

/// Sign-up and login.
#[derive(Deserialize, ToSchema)]
struct Credentials {
    email: String,
    password: Password,
    /// Where the session token goes: a cookie (the default) or the body.
    #[serde(default)]
    session: SessionTransport,
    /// A label for the session, shown in the session list: trimmed, then at most 128 characters
    /// and no control characters; a blank one is none.
    // No `maxLength`: the server trims first, so one would be both stricter and looser than it.
    device_name: Option<String>,
    /// Login only: the device token this client was given at its last sign-in (cookie clients
    /// send the device cookie instead).
    device_token: Option<String>,
}

/// The per-IP rate-limit key of a request.
fn ip_key(req: &HttpRequest, auth: &Auth) -> String {
    limit_key(client_ip(req, &auth.config().trusted_proxies))
}

/// Sign up, and sign in.
///
/// A verification email is sent to the address.
#[utoipa::path(post, path = "/v1/auth/signup", tag = "auth", request_body = Credentials,
    responses(
        (status = 201, description = "Signed up and signed in; a verification email is sent", body = SignedIn),
        Problems<(InvalidEmail, WeakPassword, CsrfRejected, EmailTaken, RateLimited, Overloaded)>,
    ))]
async fn signup(
    req: HttpRequest,
    auth: web::Data<Auth>,
    Json(body): Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    csrf::reject_foreign_origin(&req, auth.config())?;
    auth.limit(Limit::SignupIp, &ip_key(&req, &auth)).await?;
    let signed_in = auth
        .signup(&body.email, &body.password, body.device_name.as_deref())
        .await?;
    Ok(signed_in_response(
        &auth,
        HttpResponse::Created(),
        signed_in,
        body.session,
    ))
}

/// Sign in.
///
/// An unknown email and a wrong password get the same answer, in similar time.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = Credentials,
    responses(
        (status = 200, description = "Signed in", body = SignedIn),
        Problems<(InvalidCredentials, CsrfRejected, RateLimited, Overloaded)>,
    ))]
async fn login(
    req: HttpRequest,
    auth: web::Data<Auth>,
    Json(body): Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    csrf::reject_foreign_origin(&req, auth.config())?;
    auth.limit(Limit::LoginIp, &ip_key(&req, &auth)).await?;
    let cookie = presented_device_cookie(&req);
    let device_token = body.device_token.as_deref().or(cookie.as_deref());
    let signed_in = auth
        .login(
            &body.email,
            &body.password,
            body.device_name.as_deref(),
            device_token,
        )
        .await?;
    Ok(signed_in_response(
        &auth,
        HttpResponse::Ok(),
        signed_in,
        body.session,
    ))
}

/// The answer to a sign-in.
#[derive(Serialize, ToSchema)]
struct SignedIn {
    user: User,
    session: Session,
    /// Only for `"session": "bearer"`; shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    token: Option<String>,
    /// Only for `"session": "bearer"`: present it as `device_token` at this device's next
    /// login (cookie clients get the `__Secure-device` cookie instead). Absent when the
    /// account keeps as many device tokens as it may.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    device_token: Option<String>,
}

/// `{user, session, token?, device_token?}`: the session and device tokens go in the body for
/// bearer sessions, in cookies otherwise, never both.
fn signed_in_response(
    auth: &Auth,
    mut builder: actix_web::HttpResponseBuilder,
    signed_in: crate::accounts::SignedIn,
    transport: SessionTransport,
) -> HttpResponse {
    let mut body = SignedIn {
        user: signed_in.user,
        session: signed_in.session,
        token: None,
        device_token: None,
    };
    match transport {
        SessionTransport::Bearer => {
            body.token = Some(signed_in.token);
            body.device_token = signed_in.device_token;
        }
        SessionTransport::Cookie => {
            builder.cookie(session_cookie(auth.config(), &signed_in.token));
            if let Some(device_token) = &signed_in.device_token {
                builder.cookie(device_cookie(auth.config(), device_token));
            }
        }
    }
    reply(builder, &body)
}

/// Sign out: revoke this session.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "The session is revoked and the cookie cleared")))]
async fn logout(
    auth: web::Data<Auth>,
    AccountHolder(me): AccountHolder,
) -> Result<HttpResponse, ApiError> {
    auth.logout(&me.authenticated()).await?;
    Ok(HttpResponse::NoContent()
        .cookie(clearing_cookie(auth.config()))
        .finish())
}

/// The signed-in user and session.
#[derive(Serialize, ToSchema)]
struct Me {
    user: User,
    session: Session,
}

/// The signed-in user and session.
#[utoipa::path(get, path = "/v1/auth/me", tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The signed-in user and session", body = Me)))]
async fn me(AccountHolder(me): AccountHolder) -> HttpResponse {
    let body = Me {
        user: me.user,
        session: me.session,
    };
    reply(HttpResponse::Ok(), &body)
}

/// The caller's live sessions.
#[derive(Serialize, ToSchema)]
struct SessionList {
    sessions: Vec<Session>,
}

/// The caller's live sessions.
#[utoipa::path(get, path = "/v1/auth/sessions", tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The caller's live sessions", body = SessionList)))]
async fn sessions(
    auth: web::Data<Auth>,
    AccountHolder(me): AccountHolder,
) -> Result<HttpResponse, ApiError> {
    let sessions = auth.sessions(&me.authenticated()).await?;
    Ok(reply(HttpResponse::Ok(), &SessionList { sessions }))
}

/// Revoke one of the caller's sessions.
#[utoipa::path(delete, path = "/v1/auth/sessions/{id}", tag = "auth",
    params(("id" = String, Path, description = "A session id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Revoked"),
        Problems<NotFound>,
    ))]
async fn revoke_session(
    auth: web::Data<Auth>,
    AccountHolder(me): AccountHolder,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.revoke_session(&me.authenticated(), &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Revoke every session of the caller but this one.
#[utoipa::path(post, path = "/v1/auth/sessions/revoke-others", tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Every other session is revoked")))]
async fn revoke_others(
    auth: web::Data<Auth>,
    AccountHolder(me): AccountHolder,
) -> Result<HttpResponse, ApiError> {
    auth.revoke_other_sessions(&me.authenticated()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A password change.
#[derive(Deserialize, ToSchema)]
struct PasswordChange {
    current_password: Password,
    new_password: Password,
}

/// Change the password.
///
/// Every other session is revoked.
#[utoipa::path(post, path = "/v1/auth/password/change", tag = "auth", request_body = PasswordChange,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Changed; every other session is revoked"),
        Problems<(WeakPassword, InvalidCredentials, RateLimited, Overloaded)>,
    ))]
async fn change_password(
    auth: web::Data<Auth>,
    AccountHolder(me): AccountHolder,
    Json(body): Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    auth.change_password(
        &me.authenticated(),
        &body.current_password,
        &body.new_password,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A password, to confirm a sensitive operation.
#[derive(Deserialize, ToSchema)]
struct PasswordBody {
    password: Password,
}

/// Delete the account.
///
/// The user, its sessions and all its app data are deleted.
#[utoipa::path(delete, path = "/v1/auth/account", tag = "auth", request_body = PasswordBody,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "The user, its sessions and all its app data are gone"),
        Problems<(InvalidCredentials, RateLimited, Overloaded)>,
    ))]
async fn delete_account(
    auth: web::Data<Auth>,
    AccountHolder(me): AccountHolder,
    Json(body): Json<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    auth.delete_account(&me.authenticated(), &body.password)
        .await?;
    let mut response = HttpResponse::NoContent();
    if me.via == crate::http::current_user::CredentialKind::Cookie {
        response.cookie(clearing_cookie(auth.config()));
    }
    Ok(response.finish())
}

/// A mailed token.
#[derive(Deserialize, ToSchema)]
struct TokenBody {
    token: String,
}

/// A user, after a change.
#[derive(Serialize, ToSchema)]
struct UserBody {
    user: User,
}

/// Send a fresh verification email.
#[utoipa::path(post, path = "/v1/auth/verify-email/request", tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 202, description = "A fresh verification email is on its way"),
        Problems<(AlreadyVerified, RateLimited)>,
    ))]
async fn request_verification(
    auth: web::Data<Auth>,
    AccountHolder(me): AccountHolder,
) -> Result<HttpResponse, ApiError> {
    // An already verified address is answered without spending the user's mail allowance.
    if me.user.email_verified {
        return Err(ApiError::AlreadyVerified);
    }
    auth.limit(Limit::VerifyUser, me.user_id()).await?;
    auth.request_verification(&me.authenticated()).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Verify the address with the mailed token.
#[utoipa::path(post, path = "/v1/auth/verify-email/confirm", tag = "auth", request_body = TokenBody,
    responses(
        (status = 200, description = "The address is verified", body = UserBody),
        Problems<InvalidToken>,
    ))]
async fn confirm_verification(
    auth: web::Data<Auth>,
    Json(body): Json<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let user = auth.confirm_verification(&body.token).await?;
    Ok(reply(HttpResponse::Ok(), &UserBody { user }))
}

/// An address.
#[derive(Deserialize, ToSchema)]
struct EmailBody {
    email: String,
}

/// Mail a password reset link.
///
/// The answer is the same whether or not the account exists. Past the address's own limit it
/// is still `202` (and no mail goes): only the per-IP limit answers `429`.
#[utoipa::path(post, path = "/v1/auth/password/forgot", tag = "auth", request_body = EmailBody,
    responses(
        (status = 202, description = "Always, whether or not the account exists, and also past the address's own limit (then no mail is sent)"),
        Problems<(InvalidEmail, RateLimited)>,
    ))]
async fn forgot_password(
    req: HttpRequest,
    auth: web::Data<Auth>,
    Json(body): Json<EmailBody>,
) -> Result<HttpResponse, ApiError> {
    auth.limit(Limit::ForgotIp, &ip_key(&req, &auth)).await?;
    let email = Email::parse(&body.email).map_err(|e| ApiError::InvalidEmail(e.to_string()))?;
    // Past the address's own limit the answer is the same `202`, and no mail goes: a `429`
    // here would let anyone make the owner's own request fail by asking first.
    if auth.limit(Limit::ForgotEmail, email.as_str()).await.is_ok() {
        auth.forgot_password(&body.email).await?;
    }
    Ok(HttpResponse::Accepted().finish())
}

/// A password reset.
#[derive(Deserialize, ToSchema)]
struct PasswordReset {
    token: String,
    new_password: Password,
}

/// Set a new password with the mailed token.
///
/// Every session of the user is revoked.
#[utoipa::path(post, path = "/v1/auth/password/reset", tag = "auth", request_body = PasswordReset,
    responses(
        (status = 204, description = "The password is set and every session revoked"),
        Problems<(InvalidToken, WeakPassword, Overloaded)>,
    ))]
async fn reset_password(
    auth: web::Data<Auth>,
    Json(body): Json<PasswordReset>,
) -> Result<HttpResponse, ApiError> {
    auth.reset_password(&body.token, &body.new_password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An email change.
#[derive(Deserialize, ToSchema)]
struct EmailChange {
    new_email: String,
    password: Password,
}

/// Ask to move the account to a new address.
///
/// A confirmation mail goes to the new address and a notice to the old one; nothing changes
/// until the new address is confirmed.
#[utoipa::path(post, path = "/v1/auth/email/change", tag = "auth", request_body = EmailChange,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 202, description = "A confirmation mail goes to the new address"),
        Problems<(InvalidEmail, InvalidCredentials, EmailTaken, RateLimited, Overloaded)>,
    ))]
async fn request_email_change(
    auth: web::Data<Auth>,
    AccountHolder(me): AccountHolder,
    Json(body): Json<EmailChange>,
) -> Result<HttpResponse, ApiError> {
    auth.limit(Limit::EmailChangeUser, me.user_id()).await?;
    auth.request_email_change(&me.authenticated(), &body.new_email, &body.password)
        .await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Cancel every pending email change.
#[utoipa::path(delete, path = "/v1/auth/email/change", tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Every pending email change is cancelled; its links stop working")))]
async fn cancel_email_change(
    auth: web::Data<Auth>,
    AccountHolder(me): AccountHolder,
) -> Result<HttpResponse, ApiError> {
    auth.cancel_email_change(&me.authenticated()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Confirm the new address with the mailed token.
#[utoipa::path(post, path = "/v1/auth/email/confirm", tag = "auth", request_body = TokenBody,
    responses(
        (status = 200, description = "The new address, verified", body = UserBody),
        Problems<(InvalidToken, EmailTaken)>,
    ))]
async fn confirm_email_change(
    auth: web::Data<Auth>,
    Json(body): Json<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let user = auth.confirm_email_change(&body.token).await?;
    Ok(reply(HttpResponse::Ok(), &UserBody { user }))
}

/// The answer to any route that does not exist: `404 not_found` as problem details.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such route"))
}

/// `405 method_not_allowed` as problem details with an `Allow` header, for the default service
/// of an app's resource: without it actix-web answers a wrong method with an empty body, unlike
/// every other error a client sees.
///
/// ```
/// use actix_web::{HttpResponse, web};
/// use auth_skeleton::http::method_not_allowed;
///
/// let note = web::resource("/v1/note")
///     .route(web::get().to(HttpResponse::Ok))
///     .route(web::put().to(HttpResponse::Ok))
///     .default_service(web::to(|| method_not_allowed("GET, PUT")));
/// # let _ = note;
/// ```
pub async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    method_not_allowed_with(allow)
}

/// [`method_not_allowed`] for an `Allow` value known only at run time.
pub(crate) fn method_not_allowed_with(allow: &str) -> HttpResponse {
    use actix_web::ResponseError as _;
    use actix_web::http::{StatusCode, header};

    let mut response = crate::http::problem::Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this route accepts {allow}"),
    )
    .error_response();
    // `allow` is a list such as "GET, PUT"; a malformed one loses only the header.
    if let Ok(value) = header::HeaderValue::from_str(allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}
