//! `405 method_not_allowed` with `Allow` for every documented path, not only for the resources
//! that remember to say so: a request whose path a service documents but whose method it does
//! not answer (`TRACE /v1/auth/me`, `PUT /healthz`) is refused as RFC 9110 says, and a path
//! nobody documents is `404`. The table comes from the service's own OpenAPI document, so it
//! cannot drift from what `/openapi.json` promises.

use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::openapi::OpenApi;

use crate::error::ApiError;

/// The methods each documented path answers.
#[derive(Debug, Clone, Default)]
pub struct AllowedMethods {
    routes: Vec<(Vec<Segment>, String)>,
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
        let mut routes: Vec<(Vec<Segment>, String)> = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("HEAD", item.head.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("OPTIONS", item.options.is_some()),
                    ("TRACE", item.trace.is_some()),
                ];
                let allow: Vec<&str> = methods
                    .iter()
                    .filter(|(_, documented)| *documented)
                    .map(|(name, _)| *name)
                    .collect();
                (segments(path), allow.join(", "))
            })
            .collect();
        routes.push((segments("/openapi.json"), "GET".to_owned()));
        Self { routes }
    }

    /// The `Allow` value of the documented path `path` matches, if any (a literal path wins
    /// over a templated one).
    pub fn allow(&self, path: &str) -> Option<&str> {
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
            .filter(|(pattern, _)| matches(pattern))
            .max_by_key(|(pattern, _)| literal(pattern))
            .map(|(_, allow)| allow.as_str())
    }
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
        assert_eq!(t.allow("/v1/auth/me"), Some("GET"));
        assert_eq!(t.allow("/v1/save"), Some("GET, HEAD, PUT, DELETE"));
        assert_eq!(t.allow("/v1/auth/sessions/abc"), Some("DELETE"));
        assert_eq!(t.allow("/v1/auth/sessions/revoke-others"), Some("POST"));
        assert_eq!(t.allow("/openapi.json"), Some("GET"));
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
