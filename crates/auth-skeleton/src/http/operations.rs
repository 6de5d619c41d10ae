//! The operations routes: `/healthz`, `/readyz`, `/metrics` and `/openapi.json`.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::accounts::Auth;

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

async fn healthz(info: web::Data<AppInfo>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "app": info.name,
        "version": info.version,
        "auth_skeleton": crate::AUTH_SKELETON_VERSION,
    }))
}

async fn readyz(auth: web::Data<Auth>) -> HttpResponse {
    match auth.db().ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Err(e) => {
            tracing::warn!(error = %e, "database not ready");
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"}))
        }
    }
}

async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render())
}

/// The document registered at start, or the library's alone when embedded without it.
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
