//! The small HTML pages that mailed links open: `/verify-email`, `/reset-password` and
//! `/confirm-email`.
//!
//! A `GET` only serves the page: the token is spent when the person confirms (or types the new
//! password) and the page's script calls the JSON route, so mail scanners that fetch links spend
//! nothing. The pages load nothing from other origins, send no referrer (the token is in the
//! URL), and work with any browser that runs plain JavaScript.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::accounts::Auth;
use crate::mail::templates::escape;

const SCRIPT: &str = include_str!("assets/pages.js");
const STYLE: &str = include_str!("assets/pages.css");
const SCRIPT_PATH: &str = "/auth-assets/pages.js";
const STYLE_PATH: &str = "/auth-assets/pages.css";

/// Only this origin's script, style and requests; nothing framed, no forms elsewhere.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Mounts the pages and their two assets.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/verify-email", web::get().to(verify_email))
        .route("/reset-password", web::get().to(reset_password))
        .route("/confirm-email", web::get().to(confirm_email))
        .route(SCRIPT_PATH, web::get().to(pages_script))
        .route(STYLE_PATH, web::get().to(pages_style));
}

/// The pages' part of the document ([`crate::http::openapi::document`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(verify_email, reset_password, confirm_email, pages_script, pages_style))]
pub(crate) struct PagesApi;

/// The page of an email verification link.
#[utoipa::path(get, path = "/verify-email", tag = "pages", operation_id = "verify_email_page",
    params(("token" = Option<String>, Query, description = "The mailed token, spent only by the confirm call (without it, the page says the link is incomplete)")),
    responses((status = 200, description = "A page that asks the person to confirm", content_type = "text/html")))]
async fn verify_email(auth: web::Data<Auth>) -> HttpResponse {
    page(
        &auth,
        "Confirm your email address",
        "Confirm that this address belongs to your account.",
        "/v1/auth/verify-email/confirm",
        "",
        "Confirm my address",
        "Your email address is confirmed. You can close this page.",
    )
}

/// The page of a password reset link.
#[utoipa::path(get, path = "/reset-password", tag = "pages", operation_id = "reset_password_page",
    params(("token" = Option<String>, Query, description = "The mailed token (without it, the page says the link is incomplete)")),
    responses((status = 200, description = "A page to type a new password", content_type = "text/html")))]
async fn reset_password(auth: web::Data<Auth>) -> HttpResponse {
    let min = auth.config().password_policy.min_chars;
    let fields = format!(
        "<label for=\"new_password\">New password</label>\n\
         <input id=\"new_password\" name=\"new_password\" type=\"password\" autocomplete=\"new-password\" \
         minlength=\"{min}\" maxlength=\"256\" required>\n\
         <label for=\"repeat_password\">Repeat it</label>\n\
         <input id=\"repeat_password\" name=\"repeat_password\" type=\"password\" autocomplete=\"new-password\" \
         minlength=\"{min}\" maxlength=\"256\" required>\n"
    );
    page(
        &auth,
        "Choose a new password",
        "Type the new password for your account. Every device will be signed out.",
        "/v1/auth/password/reset",
        &fields,
        "Set the new password",
        "Your password is changed. Sign in again with the new one.",
    )
}

/// The page of an email change link.
#[utoipa::path(get, path = "/confirm-email", tag = "pages", operation_id = "confirm_email_page",
    params(("token" = Option<String>, Query, description = "The mailed token (without it, the page says the link is incomplete)")),
    responses((status = 200, description = "A page that confirms the new address", content_type = "text/html")))]
async fn confirm_email(auth: web::Data<Auth>) -> HttpResponse {
    page(
        &auth,
        "Confirm your new email address",
        "Confirm that your account should use this address from now on.",
        "/v1/auth/email/confirm",
        "",
        "Use this address",
        "Your account now uses this address. You can close this page.",
    )
}

fn page(
    auth: &Auth,
    title: &str,
    intro: &str,
    route: &str,
    fields: &str,
    button: &str,
    done: &str,
) -> HttpResponse {
    let app = escape(&auth.config().app_name);
    let body = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>{title} &middot; {app}</title>\n<link rel=\"stylesheet\" href=\"{STYLE_PATH}\">\n</head>\n<body>\n\
         <h1>{title}</h1>\n<p>{intro}</p>\n\
         <form data-route=\"{route}\" data-done=\"{done}\">\n{fields}<button type=\"submit\">{button}</button>\n</form>\n\
         <p id=\"status\" role=\"status\"></p>\n\
         <noscript><p class=\"error\">This page needs JavaScript to send your confirmation.</p></noscript>\n\
         <script src=\"{SCRIPT_PATH}\"></script>\n</body>\n</html>\n",
        title = escape(title),
        intro = escape(intro),
        route = escape(route),
        done = escape(done),
        button = escape(button),
    );
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        ))
        .insert_header((
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(body)
}

/// The pages' script.
#[utoipa::path(get, path = "/auth-assets/pages.js", tag = "pages",
    responses((status = 200, description = "The pages' script", content_type = "text/javascript")))]
async fn pages_script() -> HttpResponse {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// The pages' style sheet.
#[utoipa::path(get, path = "/auth-assets/pages.css", tag = "pages",
    responses((status = 200, description = "The pages' style sheet", content_type = "text/css")))]
async fn pages_style() -> HttpResponse {
    asset(STYLE, "text/css; charset=utf-8")
}

fn asset(content: &'static str, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ))
        .body(content)
}
