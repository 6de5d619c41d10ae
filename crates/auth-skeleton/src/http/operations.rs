//! The operations routes: `/healthz`, `/readyz`, `/metrics` and `/openapi.json`.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::accounts::Auth;
use crate::http::json::reply;

/// The app's identity as `/healthz` reports it.
#[derive(Debug, Clone, Copy)]
pub struct AppInfo {
    /// The app's name.
    pub name: &'static str,
    /// The app's version.
    pub version: &'static str,
}

/// The serialized OpenAPI document that `/openapi.json` serves.
#[derive(Debug, Clone)]
pub struct ApiDocument(String);

impl ApiDocument {
    /// Serializes `doc` once, at start.
    pub fn new(doc: &utoipa::openapi::OpenApi) -> Self {
        Self(doc.to_json().unwrap_or_else(|_| "{}".to_owned()))
    }
}

/// Mounts the four routes; [`AppInfo`] must be registered as `web::Data<AppInfo>`, and `Auth`
/// as `web::Data<Auth>`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/openapi.json", web::get().to(openapi_json));
}

/// The operations routes' part of the document ([`crate::http::openapi::document`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz, metrics, openapi_json))]
pub(crate) struct OperationsApi;

/// `/healthz`.
#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`.
    status: &'static str,
    /// The app's name.
    app: &'static str,
    /// The app's version.
    version: &'static str,
    /// The version of auth-skeleton it runs on.
    auth_skeleton: &'static str,
}

/// Whether the service runs.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The service runs", body = Health)))]
async fn healthz(info: web::Data<AppInfo>) -> HttpResponse {
    let body = Health {
        status: "ok",
        app: info.name,
        version: info.version,
        auth_skeleton: crate::AUTH_SKELETON_VERSION,
    };
    reply(HttpResponse::Ok(), &body)
}

/// `/readyz`.
#[derive(Serialize, ToSchema)]
struct Readiness {
    /// Whether the database answers.
    status: ReadyStatus,
}

/// Whether the database answers: `ready` or `unavailable`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum ReadyStatus {
    /// It does.
    Ready,
    /// It does not.
    Unavailable,
}

/// Whether the service can answer: its database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "The database answers", body = Readiness),
        (status = 503, description = "The database does not answer", body = Readiness),
    ))]
async fn readyz(auth: web::Data<Auth>) -> HttpResponse {
    match auth.db().ping().await {
        Ok(()) => reply(
            HttpResponse::Ok(),
            &Readiness {
                status: ReadyStatus::Ready,
            },
        ),
        Err(e) => {
            tracing::warn!(error = %e, "database not ready");
            reply(
                HttpResponse::ServiceUnavailable(),
                &Readiness {
                    status: ReadyStatus::Unavailable,
                },
            )
        }
    }
}

/// The metrics, for Prometheus.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render())
}

/// This document.
///
/// The one registered at start, or the library's alone when embedded without it.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", content_type = "application/json")))]
async fn openapi_json(
    doc: Option<web::Data<ApiDocument>>,
    info: web::Data<AppInfo>,
) -> HttpResponse {
    let body = match doc {
        Some(doc) => doc.0.clone(),
        None => {
            ApiDocument::new(&crate::http::openapi::document(
                info.name,
                info.version,
                utoipa::openapi::OpenApi::default(),
            ))
            .0
        }
    };
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}
