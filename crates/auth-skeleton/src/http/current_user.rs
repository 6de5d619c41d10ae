//! `CurrentUser`: the extractor that authenticates a request, for the library's routes and the
//! app's own.
//!
//! A request authenticates with `Authorization: Bearer TOKEN` (native clients) or the session
//! cookie (web). A cookie-authenticated unsafe request must also pass the `Origin` check.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use crate::accounts::{Auth, Authenticated};
use crate::http::csrf;
use crate::http::problem::ApiError;

/// How the request carried its session token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// `Authorization: Bearer`.
    Bearer,
    /// The session cookie.
    Cookie,
}

/// The signed-in user and session of a request, or `401 unauthenticated`.
///
/// ```
/// use actix_web::{get, HttpResponse};
/// use auth_skeleton::http::CurrentUser;
///
/// #[get("/v1/whoami")]
/// async fn whoami(me: CurrentUser) -> HttpResponse {
///     HttpResponse::Ok().body(me.user.email.clone())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// Who.
    pub user: crate::accounts::model::User,
    /// With which session.
    pub session: crate::accounts::model::Session,
    /// How the token arrived.
    pub via: CredentialKind,
}

impl CurrentUser {
    /// The user's id (the key for the app's own data).
    pub fn user_id(&self) -> &crate::accounts::UserId {
        &self.user.id
    }

    /// Authenticates `req` again, as its extraction did: for a request that waited (a
    /// long-poll) before it answers with data, so that a session ended during the wait gets
    /// `401`, not what changed meanwhile.
    pub async fn recheck(req: &HttpRequest) -> Result<CurrentUser, ApiError> {
        let (me, auth) = signed_in(req).await?;
        if auth.config().require_verified_email && !me.user.email_verified {
            return Err(ApiError::EmailNotVerified);
        }
        Ok(me)
    }

    pub(crate) fn authenticated(&self) -> Authenticated {
        Authenticated {
            user: self.user.clone(),
            session: self.session.clone(),
        }
    }
}

/// The signed-in user on the app's routes: also refuses, with `403 email_not_verified`, an
/// unverified account when the service stores data only for verified ones
/// (`REQUIRE_VERIFIED_EMAIL`). Every route an app mounts with it keeps that rule.
impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { CurrentUser::recheck(&req).await })
    }
}

/// The signed-in user on the account's own routes (`/v1/auth/*`): verified or not, an account
/// can read itself, ask for a verification mail, sign out and so on.
pub(crate) struct AccountHolder(pub CurrentUser);

impl FromRequest for AccountHolder {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(AccountHolder(signed_in(&req).await?.0)) })
    }
}

/// Authenticates `req` (and checks its origin when a cookie carries an unsafe request).
async fn signed_in(req: &HttpRequest) -> Result<(CurrentUser, web::Data<Auth>), ApiError> {
    let auth = req
        .app_data::<web::Data<Auth>>()
        .ok_or_else(|| ApiError::internal("auth_skeleton::Auth is not registered as app data"))?
        .clone();
    let (token, via) = credential(req, &auth)?.ok_or(ApiError::Unauthenticated)?;
    if via == CredentialKind::Cookie && csrf::is_unsafe(req.method()) {
        csrf::require_allowed_origin(req, auth.config())?;
    }
    // A request that changes nothing may be answered from the session cache; one that
    // changes something always sees the database, so a session ended anywhere can
    // no longer write the moment its revocation commits.
    let who = if csrf::is_unsafe(req.method()) {
        auth.authenticate(&token).await?
    } else {
        auth.authenticate_for_reading(&token).await?
    };
    let me = CurrentUser {
        user: who.user,
        session: who.session,
        via,
    };
    Ok((me, auth))
}

/// The request's session token and how it came; a malformed `Authorization` header is refused.
fn credential(
    req: &HttpRequest,
    auth: &Auth,
) -> Result<Option<(String, CredentialKind)>, ApiError> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ApiError::Unauthenticated)?;
        let (scheme, token) = value.split_once(' ').ok_or(ApiError::Unauthenticated)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthenticated);
        }
        return Ok(Some((token.trim().to_owned(), CredentialKind::Bearer)));
    }
    Ok(req
        .cookie(auth.config().cookie_name())
        .map(|c| (c.value().to_owned(), CredentialKind::Cookie)))
}
