//! The `/v1/save` routes: thin adapters from HTTP to [`Saves`].

use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective, HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, ResponseError as _, web};
use auth_skeleton::Problem;
use auth_skeleton::http::CurrentUser;
use serde_json::json;

use crate::digest;
use crate::error::SaveError;
use crate::idempotency;
use crate::precondition::{Condition, Preconditions};
use crate::saves::{Put, Read, Saves};
use crate::upload::read_capped;
use crate::version::Meta;

const OCTET_STREAM: &str = "application/octet-stream";
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("content-digest");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Mounts the save routes under `/v1/save`.
pub fn configure(cfg: &mut web::ServiceConfig, saves: web::Data<Saves>) {
    cfg.service(
        web::scope("/v1/save")
            .app_data(saves)
            // A save is private and changes under the client's feet: no cache may keep it.
            .wrap(DefaultHeaders::new().add(CacheControl(vec![CacheDirective::NoStore])))
            .service(
                web::resource("")
                    .route(web::get().to(get_save))
                    // HEAD answers like GET without the body (actix-web drops it), so a client
                    // can check the current ETag and size cheaply.
                    .route(web::head().to(get_save))
                    .route(web::put().to(put_save))
                    .route(web::delete().to(delete_save))
                    .default_service(web::to(|| method_not_allowed("GET, HEAD, PUT, DELETE"))),
            )
            .service(
                web::resource("/meta")
                    .route(web::get().to(get_meta))
                    .default_service(web::to(|| method_not_allowed("GET"))),
            )
            .service(
                web::resource("/limits")
                    .route(web::get().to(get_limits))
                    .default_service(web::to(|| method_not_allowed("GET"))),
            )
            .service(
                web::resource("/history")
                    .route(web::get().to(get_history))
                    .default_service(web::to(|| method_not_allowed("GET"))),
            )
            .service(
                web::resource("/history/{version}")
                    .route(web::get().to(get_history_version))
                    .default_service(web::to(|| method_not_allowed("GET"))),
            ),
    );
}

async fn get_limits(saves: web::Data<Saves>) -> HttpResponse {
    let config = saves.config();
    HttpResponse::Ok().json(json!({"max_bytes": config.max_bytes, "history": config.history}))
}

async fn get_save(
    req: HttpRequest,
    me: CurrentUser,
    saves: web::Data<Saves>,
) -> Result<HttpResponse, SaveError> {
    let pre = preconditions(&req)?;
    Ok(match saves.read(me.user_id(), &pre).await? {
        Read::Full(meta, bytes) => HttpResponse::Ok()
            .insert_header((header::ETAG, meta.version))
            .content_type(OCTET_STREAM)
            .body(bytes),
        Read::NotModified(meta) => HttpResponse::NotModified()
            .insert_header((header::ETAG, meta.version))
            .finish(),
    })
}

async fn get_meta(me: CurrentUser, saves: web::Data<Saves>) -> Result<HttpResponse, SaveError> {
    let meta = saves.meta(me.user_id()).await?;
    Ok(meta_response(StatusCode::OK, meta))
}

async fn put_save(
    req: HttpRequest,
    me: CurrentUser,
    saves: web::Data<Saves>,
    mut payload: web::Payload,
) -> Result<HttpResponse, SaveError> {
    // Everything that can be refused from the headers is, before a byte of the body is read.
    let pre = preconditions(&req)?;
    if !pre.guards_write() {
        return Err(SaveError::PreconditionRequired);
    }
    let claimed_digest = header_text(&req, &CONTENT_DIGEST)?
        .map(|v| digest::parse_sha256(&v))
        .transpose()
        .map_err(SaveError::InvalidRequest)?;
    let key = header_text(&req, &IDEMPOTENCY_KEY)?;
    let key = key
        .as_deref()
        .map(idempotency::validate_key)
        .transpose()
        .map_err(SaveError::InvalidRequest)?;
    let declared_len = header_text(&req, &header::CONTENT_LENGTH)?.and_then(|v| v.parse().ok());

    let upload = read_capped(&mut payload, declared_len, saves.config().max_bytes).await?;
    if claimed_digest.is_some_and(|d| d != upload.sha256) {
        return Err(SaveError::DigestMismatch);
    }
    let idempotency = key.map(|k| {
        let fingerprint = idempotency::fingerprint(
            &upload.sha256,
            &header_text(&req, &header::IF_MATCH)
                .ok()
                .flatten()
                .unwrap_or_default(),
            &header_text(&req, &header::IF_NONE_MATCH)
                .ok()
                .flatten()
                .unwrap_or_default(),
        );
        (k, fingerprint)
    });
    let response = saves
        .put(Put {
            user_id: me.user_id(),
            device_name: me.session.device_name.as_deref(),
            preconditions: &pre,
            upload,
            idempotency,
        })
        .await?;
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    Ok(meta_response(status, response.meta))
}

async fn delete_save(
    req: HttpRequest,
    me: CurrentUser,
    saves: web::Data<Saves>,
) -> Result<HttpResponse, SaveError> {
    let pre = preconditions(&req)?;
    if pre.if_match.is_none() {
        return Err(SaveError::PreconditionRequired);
    }
    saves.delete(me.user_id(), &pre).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn get_history(me: CurrentUser, saves: web::Data<Saves>) -> Result<HttpResponse, SaveError> {
    let versions = saves.history(me.user_id()).await?;
    Ok(HttpResponse::Ok().json(json!({ "versions": versions })))
}

/// `{version}` is the ETag without its quotes; the router has already percent-decoded it.
async fn get_history_version(
    me: CurrentUser,
    saves: web::Data<Saves>,
    version: web::Path<String>,
) -> Result<HttpResponse, SaveError> {
    let bytes = saves.history_bytes(me.user_id(), &version).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, crate::version::etag(&version)))
        .content_type(OCTET_STREAM)
        .body(bytes))
}

fn meta_response(status: StatusCode, meta: Meta) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, meta.version.clone()))
        .json(meta)
}

/// The request's `If-Match` and `If-None-Match`; a malformed one is `400`, naming the header.
fn preconditions(req: &HttpRequest) -> Result<Preconditions, SaveError> {
    let parse = |name: &HeaderName, label: &str| -> Result<Option<Condition>, SaveError> {
        header_text(req, name)?
            .map(|v| {
                Condition::parse(&v).map_err(|e| SaveError::InvalidRequest(format!("{label}: {e}")))
            })
            .transpose()
    };
    Ok(Preconditions {
        if_match: parse(&header::IF_MATCH, "If-Match")?,
        if_none_match: parse(&header::IF_NONE_MATCH, "If-None-Match")?,
    })
}

/// A header's field value, its lines joined with `, ` (RFC 9110 §5.3); `400` when it is not
/// visible ASCII.
fn header_text(req: &HttpRequest, name: &HeaderName) -> Result<Option<String>, SaveError> {
    let mut lines = req.headers().get_all(name).peekable();
    if lines.peek().is_none() {
        return Ok(None);
    }
    let parts: Result<Vec<&str>, _> = lines.map(HeaderValue::to_str).collect();
    let parts = parts.map_err(|_| {
        SaveError::InvalidRequest(format!("{name}: must be visible ASCII characters"))
    })?;
    Ok(Some(parts.join(", ")))
}

/// `405` as problem details, with the `Allow` header RFC 9110 requires.
async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut response = Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this route accepts {allow}"),
    )
    .error_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}
