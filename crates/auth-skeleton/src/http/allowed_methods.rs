//! `405 method_not_allowed` with `Allow` for every documented path, not only for the resources
//! that remember to say so: a request whose path a service documents but whose method it does
//! not answer (`TRACE /v1/auth/me`, `PUT /healthz`) is refused as RFC 9110 says, and a path
//! nobody documents is `404`. The table comes from the service's own OpenAPI document, so it
//! cannot drift from what `/openapi.json` promises.
//!
//! `HEAD` is answered wherever `GET` is (RFC 9110 §9.3.2: the same headers, no content), by
//! [`head_as_get`], unless the document has an operation of its own for it.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, web};
use utoipa::openapi::OpenApi;

use crate::http::openapi::HEAD_AS_GET;
use crate::http::problem::ApiError;

/// The methods each documented path answers.
#[derive(Debug, Clone, Default)]
pub struct AllowedMethods {
    routes: Vec<Route>,
}

#[derive(Debug, Clone)]
struct Route {
    pattern: Vec<Segment>,
    /// The `Allow` value.
    allow: String,
    /// Whether `HEAD` is answered as `GET` (the document has `GET` and no `HEAD` of its own, or
    /// one marked [`HEAD_AS_GET`]).
    head_as_get: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: any one non-empty segment.
    Parameter,
}

impl AllowedMethods {
    /// The table of `doc`, plus `/openapi.json` itself.
    pub fn from_document(doc: &OpenApi) -> Self {
        let mut routes: Vec<Route> = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let get = item.get.is_some();
                let methods = [
                    ("GET", get),
                    // Answered for every GET by `head_as_get`.
                    ("HEAD", item.head.is_some() || get),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("OPTIONS", item.options.is_some()),
                    ("TRACE", item.trace.is_some()),
                ];
                let allow: Vec<&str> = methods
                    .iter()
                    .filter(|(_, answered)| *answered)
                    .map(|(name, _)| *name)
                    .collect();
                Route {
                    pattern: segments(path),
                    allow: allow.join(", "),
                    head_as_get: get
                        && item.head.as_ref().is_none_or(|head| {
                            head.extensions
                                .as_ref()
                                .is_some_and(|e| e.contains_key(HEAD_AS_GET))
                        }),
                }
            })
            .collect();
        routes.push(Route {
            pattern: segments("/openapi.json"),
            allow: "GET, HEAD".to_owned(),
            head_as_get: true,
        });
        Self { routes }
    }

    /// The documented route `path` matches, if any (a literal path wins over a templated one).
    fn route(&self, path: &str) -> Option<&Route> {
        let parts: Vec<&str> = path.split('/').collect();
        let matches = |pattern: &[Segment]| {
            pattern.len() == parts.len()
                && pattern.iter().zip(&parts).all(|(s, p)| match s {
                    Segment::Literal(l) => l == p,
                    Segment::Parameter => !p.is_empty(),
                })
        };
        let literal = |pattern: &[Segment]| pattern.iter().all(|s| *s != Segment::Parameter);
        self.routes
            .iter()
            .filter(|r| matches(&r.pattern))
            .max_by_key(|r| literal(&r.pattern))
    }

    /// The `Allow` value of the documented path `path` matches, if any.
    pub fn allow(&self, path: &str) -> Option<&str> {
        self.route(path).map(|r| r.allow.as_str())
    }
}

/// Answers `HEAD` as `GET` on the paths that document `GET` and no `HEAD` of their own. The
/// response goes out with the `GET`'s status and headers (`Content-Length` included) and no
/// content: the HTTP/1 codec knows the request was `HEAD` and never writes the body.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if req.method() == Method::HEAD
        && req
            .app_data::<web::Data<AllowedMethods>>()
            .and_then(|t| t.route(req.path()))
            .is_some_and(|r| r.head_as_get)
    {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// Gives actix-web's own `405` (a resource that has no route for the method answers it with an
/// empty body) the problem body and the `Allow` of every other `405`, from the document: no
/// resource needs a default service of its own, and none can list other methods than it
/// documents.
pub async fn problem_for_bare_405(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let res = next.call(req).await?;
    if res.status() != StatusCode::METHOD_NOT_ALLOWED || res.headers().contains_key(CONTENT_TYPE) {
        return Ok(res.map_into_left_body());
    }
    let allow = res
        .request()
        .app_data::<web::Data<AllowedMethods>>()
        .and_then(|t| t.allow(res.request().path()))
        .unwrap_or_default()
        .to_owned();
    let (req, _) = res.into_parts();
    let problem = super::routes::method_not_allowed_with(&allow);
    Ok(ServiceResponse::new(req, problem).map_into_right_body())
}

fn segments(path: &str) -> Vec<Segment> {
    path.split('/')
        .map(|s| match s.starts_with('{') && s.ends_with('}') {
            true => Segment::Parameter,
            false => Segment::Literal(s.to_owned()),
        })
        .collect()
}

/// The service's default handler: `405` with `Allow` for a documented path, else `404`.
pub async fn fallback(
    req: HttpRequest,
    table: Option<web::Data<AllowedMethods>>,
) -> Result<HttpResponse, ApiError> {
    match table.as_deref().and_then(|t| t.allow(req.path())) {
        Some(allow) if !allow.is_empty() => Ok(super::routes::method_not_allowed_with(allow)),
        _ => Err(ApiError::NotFound("no such route")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> AllowedMethods {
        let doc: OpenApi = serde_json::from_value(serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {
                "/v1/auth/me": {"get": {"responses": {}}},
                "/v1/auth/sessions/{id}": {"delete": {"responses": {}}},
                "/v1/auth/sessions/revoke-others": {"post": {"responses": {}}},
                "/v1/save": {"get": {"responses": {}}, "head": {"responses": {}},
                             "put": {"responses": {}}, "delete": {"responses": {}}},
            }
        }))
        .unwrap();
        AllowedMethods::from_document(&doc)
    }

    #[test]
    fn documented_paths_name_their_methods_and_others_are_unknown() {
        let t = table();
        assert_eq!(t.allow("/v1/auth/me"), Some("GET, HEAD"));
        assert_eq!(t.allow("/v1/save"), Some("GET, HEAD, PUT, DELETE"));
        assert_eq!(t.allow("/v1/auth/sessions/abc"), Some("DELETE"));
        assert_eq!(t.allow("/v1/auth/sessions/revoke-others"), Some("POST"));
        assert_eq!(t.allow("/openapi.json"), Some("GET, HEAD"));
        for unknown in [
            "/v1/auth/sessions/",
            "/v1/auth/me/x",
            "/nope",
            "/v1/auth",
            "",
        ] {
            assert_eq!(t.allow(unknown), None, "{unknown:?}");
        }
    }
}
