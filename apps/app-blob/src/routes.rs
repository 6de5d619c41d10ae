//! The `/v1/save` routes: thin adapters from HTTP to [`Saves`].

use std::convert::Infallible;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective, HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, web};
use auth_skeleton::Auth;
use auth_skeleton::changes::Woken;
use auth_skeleton::http::openapi::schemas::Problem as ProblemSchema;
use auth_skeleton::http::{CurrentUser, prefer};
use auth_skeleton::rate_limit::Limit;
use serde::Serialize;
use std::time::Instant;
use utoipa::ToSchema;

use crate::digest;
use crate::error::SaveError;
use crate::files;
use crate::idempotency;
use crate::idempotency::Write;
use crate::precondition::{Condition, Preconditions};
use crate::range::{self, Part};
use crate::saves::{Content, Delete, Head, Put, Read, Saves};
use crate::upload::read_capped;
use crate::version::Meta;

const OCTET_STREAM: &str = "application/octet-stream";
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("content-digest");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The routes and schemas of the save blob, for `/openapi.json` (see [`auth_skeleton::http::openapi`]).
///
/// The 405 answers to other methods are not operations of their own: the resources are what
/// the document lists.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        get_save,
        head_save,
        put_save,
        delete_save,
        get_meta,
        get_limits,
        get_history,
        get_history_version,
    ),
    components(schemas(Meta, Limits, History, VersionConflict)),
    tags((name = "save", description = "One opaque save blob per user, with whole-object conflict detection"))
)]
pub struct ApiDoc;

/// `GET /v1/save/limits`.
#[derive(Serialize, ToSchema)]
struct Limits {
    /// `MAX_SAVE_BYTES`: the largest save accepted, in bytes.
    max_bytes: usize,
    /// `SAVE_HISTORY`: how many replaced or deleted versions are kept.
    history: u32,
}

/// `GET /v1/save/history`.
#[derive(Serialize, ToSchema)]
struct History {
    /// Newest first: the versions that writes replaced or deleted.
    versions: Vec<Meta>,
}

/// `412 version_conflict`: problem details plus the save as it is now.
// Only for the document: the answer itself is built by `SaveError`, whose shape the tests
// compare with this one.
#[derive(ToSchema)]
#[allow(dead_code)]
struct VersionConflict {
    /// Always `about:blank`.
    #[schema(rename = "type")]
    kind: String,
    /// The status's reason phrase.
    title: String,
    /// 412.
    status: u16,
    /// For humans.
    detail: String,
    /// `version_conflict`.
    code: String,
    /// The current save's meta; null when there is no save.
    #[schema(required = true)]
    current: Option<Meta>,
}

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
                    // HEAD answers like GET without the body, from the meta alone, so a client
                    // can check the current ETag and size cheaply.
                    .route(web::head().to(head_save))
                    .route(web::put().to(put_save))
                    .route(web::delete().to(delete_save)),
            )
            .service(web::resource("/meta").route(web::get().to(get_meta)))
            .service(web::resource("/limits").route(web::get().to(get_limits)))
            .service(web::resource("/history").route(web::get().to(get_history)))
            .service(web::resource("/history/{version}").route(web::get().to(get_history_version))),
    );
}

/// The limits a save is held to, so that a client can refuse an oversize save before uploading.
#[utoipa::path(get, path = "/v1/save/limits", tag = "save", operation_id = "save_limits",
    responses((status = 200, description = "The limits; no sign-in needed", body = Limits)))]
async fn get_limits(saves: web::Data<Saves>) -> HttpResponse {
    let config = saves.config();
    HttpResponse::Ok().json(Limits {
        max_bytes: config.max_bytes,
        history: config.history,
    })
}

/// Download the save.
#[utoipa::path(get, path = "/v1/save", tag = "save", operation_id = "save_get",
    params(
        ("If-None-Match" = Option<String>, Header, pattern = "^(\\*|[ \\t,]*(W/)?\"[!#-~]*\"([ \\t]*,[ \\t,]*(W/)?\"[!#-~]*\")*[ \\t,]*)$", nullable = false, description = "ETags the client holds (or `*`); a match answers 304"),
        ("If-Match" = Option<String>, Header, pattern = "^(\\*|[ \\t,]*(W/)?\"[!#-~]*\"([ \\t]*,[ \\t,]*(W/)?\"[!#-~]*\")*[ \\t,]*)$", nullable = false, description = "Answer only while the save is at one of these versions (RFC 9110 §13.1.1); otherwise 412"),
        ("Range" = Option<String>, Header, nullable = false, description = "`bytes=FIRST-LAST`, `bytes=FIRST-` or `bytes=-SUFFIX` (RFC 9110 §14.2): one range is sent as 206; several, or a malformed one, get the whole save"),
        ("If-Range" = Option<String>, Header, nullable = false, description = "The ETag the client's part came from: the range is sent only while the save is still at that version, otherwise the whole save"),
    ),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The save's bytes", body = inline(SaveBytes), content_type = "application/octet-stream",
            headers(("ETag" = String, description = "The save's version"), ("Accept-Ranges" = String, description = "`bytes`"))),
        (status = 206, description = "One range of the save's bytes", body = inline(SaveBytes), content_type = "application/octet-stream",
            headers(("ETag" = String, description = "The save's version"), ("Content-Range" = String, description = "`bytes FIRST-LAST/SIZE`"))),
        (status = 416, description = "range_not_satisfiable: the range starts past the end; `Content-Range: bytes */SIZE`", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 304, description = "If-None-Match matches the current version",
            headers(("ETag" = String, description = "The save's version"))),
        (status = 400, description = "invalid_request: a malformed If-None-Match or If-Match", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 404, description = "no_save", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 412, description = "version_conflict: If-Match names none of the current version; the body has `current`", body = VersionConflict, content_type = "application/problem+json"),
    ))]
async fn get_save(
    req: HttpRequest,
    me: CurrentUser,
    saves: web::Data<Saves>,
) -> Result<HttpResponse, SaveError> {
    let pre = preconditions(&req)?;
    Ok(match saves.read(me.user_id(), &pre).await? {
        Read::Full(meta, content) => send(&req, &meta.version, content)?,
        Read::NotModified(meta) => HttpResponse::NotModified()
            .insert_header((header::ETAG, meta.version))
            .finish(),
    })
}

/// The save's ETag and size without its bytes: a GET's status and headers, from the meta alone.
#[utoipa::path(head, path = "/v1/save", tag = "save", operation_id = "save_head",
    params(
        ("If-None-Match" = Option<String>, Header, pattern = "^(\\*|[ \\t,]*(W/)?\"[!#-~]*\"([ \\t]*,[ \\t,]*(W/)?\"[!#-~]*\")*[ \\t,]*)$", nullable = false, description = "ETags the client holds (or `*`); a match answers 304"),
        ("If-Match" = Option<String>, Header, pattern = "^(\\*|[ \\t,]*(W/)?\"[!#-~]*\"([ \\t]*,[ \\t,]*(W/)?\"[!#-~]*\")*[ \\t,]*)$", nullable = false, description = "Answer only while the save is at one of these versions (RFC 9110 §13.1.1); otherwise 412"),
    ),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "There is a save; none of its bytes is read or sent",
            headers(
                ("ETag" = String, description = "The save's version"),
                ("Content-Length" = u64, description = "The save's size in bytes"),
                ("Content-Type" = String, description = "`application/octet-stream`"),
            )),
        (status = 304, description = "If-None-Match matches the current version",
            headers(("ETag" = String, description = "The save's version"))),
        (status = 400, description = "invalid_request: a malformed If-None-Match or If-Match"),
        (status = 401, description = "unauthenticated"),
        (status = 404, description = "no_save"),
        (status = 412, description = "version_conflict: If-Match names none of the current version"),
    ))]
async fn head_save(
    req: HttpRequest,
    me: CurrentUser,
    saves: web::Data<Saves>,
) -> Result<HttpResponse, SaveError> {
    let pre = preconditions(&req)?;
    Ok(match saves.head(me.user_id(), &pre).await? {
        Head::Full(meta) => {
            let size = u64::try_from(meta.size).map_err(auth_skeleton::ApiError::internal)?;
            // The length is the save's, announced without a body: HTTP/1.1 sends no body
            // for HEAD, and a stream whose length is set keeps the header as given.
            HttpResponse::Ok()
                .insert_header((header::ETAG, meta.version))
                .insert_header((header::ACCEPT_RANGES, "bytes"))
                .content_type(OCTET_STREAM)
                .no_chunking(size)
                .streaming(futures_util::stream::empty::<Result<web::Bytes, Infallible>>())
        }
        Head::NotModified(meta) => HttpResponse::NotModified()
            .insert_header((header::ETAG, meta.version))
            .finish(),
    })
}

/// The current save's meta object, under the same conditions as a read of the save.
#[utoipa::path(get, path = "/v1/save/meta", tag = "save", operation_id = "save_meta",
    params(
        ("If-None-Match" = Option<String>, Header, pattern = "^(\\*|[ \\t,]*(W/)?\"[!#-~]*\"([ \\t]*,[ \\t,]*(W/)?\"[!#-~]*\")*[ \\t,]*)$", nullable = false, description = "ETags the client holds (or `*`); a match answers 304"),
        ("If-Match" = Option<String>, Header, pattern = "^(\\*|[ \\t,]*(W/)?\"[!#-~]*\"([ \\t]*,[ \\t,]*(W/)?\"[!#-~]*\")*[ \\t,]*)$", nullable = false, description = "Answer only while the save is at one of these versions (RFC 9110 §13.1.1); otherwise 412"),
        ("Prefer" = Option<String>, Header, description = "`wait=S` (RFC 7240, S at most 60): while If-None-Match still matches, hold the request until the save changes through any instance or S seconds pass; the answer then carries `Preference-Applied: wait=S`"),
    ),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The save's meta", body = Meta,
            headers(("ETag" = String, description = "The save's version, as `version`"),
                    ("Preference-Applied" = String, description = "`wait=S` when the request waited (or would have) for a change"))),
        (status = 304, description = "If-None-Match matches the current version (after waiting up to S seconds with `Prefer: wait=S`)",
            headers(("ETag" = String, description = "The save's version"),
                    ("Preference-Applied" = String, description = "`wait=S` when the request waited"))),
        (status = 400, description = "invalid_request: a malformed If-None-Match or If-Match", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 404, description = "no_save", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 412, description = "version_conflict: If-Match names none of the current version; the body has `current`", body = VersionConflict, content_type = "application/problem+json"),
    ))]
async fn get_meta(
    req: HttpRequest,
    me: CurrentUser,
    auth: web::Data<Auth>,
    saves: web::Data<Saves>,
) -> Result<HttpResponse, SaveError> {
    let pre = preconditions(&req)?;
    // A long-poll subscribes before it reads, so that a write committed between the read and
    // the wait still wakes it. There is none while the service stops: answer at once then.
    let wait = prefer::wait(&req);
    let mut subscription = wait.and_then(|_| auth.changes().subscribe(me.user_id()));
    let deadline = Instant::now() + wait.unwrap_or_default();
    // After a wait that no announced change ended, one more read: a change may have committed
    // unannounced (an instance killed before announcing it, a pooler that drops NOTIFY).
    let mut last_read = false;
    let head = loop {
        let head = saves.head(me.user_id(), &pre).await?;
        let (Head::NotModified(_), Some(waiting)) = (&head, subscription.as_mut()) else {
            break head;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if last_read || left.is_zero() {
            break head;
        }
        let woken = waiting.wait(left).await;
        // The session may have ended while the request waited.
        CurrentUser::recheck(&req).await?;
        last_read = woken != Woken::Changed;
    };
    let mut response = match head {
        Head::Full(meta) => meta_response(StatusCode::OK, meta),
        Head::NotModified(meta) => HttpResponse::NotModified()
            .insert_header((header::ETAG, meta.version))
            .finish(),
    };
    if let (Some(waited), Some(_)) = (wait, &subscription) {
        let (name, value) = prefer::applied(waited);
        response.headers_mut().insert(name, value);
    }
    Ok(response)
}

/// Create or replace the save. Exactly one of the concurrent writers holding one ETag succeeds.
#[utoipa::path(put, path = "/v1/save", tag = "save", operation_id = "save_put",
    request_body(content = inline(SaveBytes), content_type = "application/octet-stream", description = "The save's bytes, at most `MAX_SAVE_BYTES`"),
    params(
        ("If-Match" = Option<String>, Header, pattern = "^(\\*|[ \\t,]*(W/)?\"[!#-~]*\"([ \\t]*,[ \\t,]*(W/)?\"[!#-~]*\")*[ \\t,]*)$", nullable = false, description = "The current ETag, to replace the save"),
        ("If-None-Match" = Option<String>, Header, pattern = "^(\\*|[ \\t,]*(W/)?\"[!#-~]*\"([ \\t]*,[ \\t,]*(W/)?\"[!#-~]*\")*[ \\t,]*)$", nullable = false, description = "`*`, to create the save"),
        ("Content-Digest" = Option<String>, Header, nullable = false, description = "`sha-256=:<base64>:` (RFC 9530); the bytes must hash to it"),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[ -~]*[!-~][ -~]*$", max_length = 255, nullable = false, description = "Repeating the same PUT with this key within 24 hours returns the original success"),
    ),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Replaced; the bytes are durable", body = Meta,
            headers(("ETag" = String, description = "The new version"))),
        (status = 201, description = "Created; the bytes are durable", body = Meta,
            headers(("ETag" = String, description = "The new version"))),
        (status = 400, description = "digest_mismatch, or invalid_request for a malformed header", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 412, description = "version_conflict: the save is not at the version the request assumed", body = VersionConflict, content_type = "application/problem+json"),
        (status = 413, description = "payload_too_large: over `MAX_SAVE_BYTES`; or quota_exceeded: over `BLOB_BYTES_QUOTA` on its own, even with the whole history dropped (nothing is stored)", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 422, description = "idempotency_key_reused: the key was used for a different request", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 428, description = "precondition_required: neither If-Match nor If-None-Match: *", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited: the user's save writes (RATE_LIMIT_SAVE_USER); Retry-After says when", body = ProblemSchema, content_type = "application/problem+json"),
    ))]
async fn put_save(
    req: HttpRequest,
    me: CurrentUser,
    auth: web::Data<Auth>,
    saves: web::Data<Saves>,
    mut payload: web::Payload,
) -> Result<HttpResponse, SaveError> {
    // Everything that can be refused from the headers is, before a byte of the body is read.
    auth.limit(Limit::SaveUser, me.user_id()).await?;
    let pre = preconditions(&req)?;
    if !pre.guards_write() {
        return Err(SaveError::PreconditionRequired);
    }
    let claimed_digest = header_text(&req, &CONTENT_DIGEST)?
        .map(|v| digest::parse_sha256(&v))
        .transpose()
        .map_err(SaveError::InvalidRequest)?;
    let key = idempotency_key(&req)?;
    let declared_len = header_text(&req, &header::CONTENT_LENGTH)?.and_then(|v| v.parse().ok());

    let upload = read_capped(
        &mut payload,
        declared_len,
        saves.config().max_bytes,
        saves.spill(),
    )
    .await?;
    if claimed_digest.is_some_and(|d| d != upload.sha256) {
        return Err(SaveError::DigestMismatch);
    }
    let idempotency = key.as_deref().map(|k| {
        let write = Write::Put {
            body_sha256: &upload.sha256,
        };
        (k, idempotency::fingerprint(write, &pre.write_meaning()))
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
    // Committed: wake the user's waiting meta reads, here and on the other instances.
    auth.changes().announce(me.user_id()).await;
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    Ok(meta_response(status, response.meta))
}

/// Delete the save; its last version stays in the history.
#[utoipa::path(delete, path = "/v1/save", tag = "save", operation_id = "save_delete",
    params(
        ("If-Match" = String, Header, pattern = "^(\\*|[ \\t,]*(W/)?\"[!#-~]*\"([ \\t]*,[ \\t,]*(W/)?\"[!#-~]*\")*[ \\t,]*)$", description = "The current ETag"),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[ -~]*[!-~][ -~]*$", max_length = 255, nullable = false, description = "Repeating the same DELETE with this key within 24 hours returns the original 204"),
    ),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "invalid_request: a malformed If-Match or Idempotency-Key", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 404, description = "no_save", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 412, description = "version_conflict: the save is not at the version the request assumed", body = VersionConflict, content_type = "application/problem+json"),
        (status = 422, description = "idempotency_key_reused: the key was used for a different request", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 428, description = "precondition_required: no If-Match", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited: the user's save writes (RATE_LIMIT_SAVE_USER); Retry-After says when", body = ProblemSchema, content_type = "application/problem+json"),
    ))]
async fn delete_save(
    req: HttpRequest,
    me: CurrentUser,
    auth: web::Data<Auth>,
    saves: web::Data<Saves>,
) -> Result<HttpResponse, SaveError> {
    auth.limit(Limit::SaveUser, me.user_id()).await?;
    let pre = preconditions(&req)?;
    if pre.if_match.is_none() {
        return Err(SaveError::PreconditionRequired);
    }
    let key = idempotency_key(&req)?;
    let idempotency = key.as_deref().map(|k| {
        (
            k,
            idempotency::fingerprint(Write::Delete, &pre.write_meaning()),
        )
    });
    saves
        .delete(Delete {
            user_id: me.user_id(),
            preconditions: &pre,
            idempotency,
        })
        .await?;
    auth.changes().announce(me.user_id()).await;
    Ok(HttpResponse::NoContent().finish())
}

/// The versions that writes replaced or deleted, the last `SAVE_HISTORY`.
#[utoipa::path(get, path = "/v1/save/history", tag = "save", operation_id = "save_history",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Newest first", body = History),
        (status = 401, description = "unauthenticated", body = ProblemSchema, content_type = "application/problem+json"),
    ))]
async fn get_history(me: CurrentUser, saves: web::Data<Saves>) -> Result<HttpResponse, SaveError> {
    let versions = saves.history(me.user_id()).await?;
    Ok(HttpResponse::Ok().json(History { versions }))
}

/// The bytes of a version in the history.
#[utoipa::path(get, path = "/v1/save/history/{version}", tag = "save", operation_id = "save_history_version",
    params(("version" = String, Path, description = "The version's ETag without its quotes, percent-encoded"),
        ("Range" = Option<String>, Header, nullable = false, description = "`bytes=FIRST-LAST`, `bytes=FIRST-` or `bytes=-SUFFIX` (RFC 9110 §14.2): one range is sent as 206; several, or a malformed one, get the whole save"),
        ("If-Range" = Option<String>, Header, nullable = false, description = "The ETag the client's part came from: the range is sent only while the save is still at that version, otherwise the whole save"),
    ),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "That version's bytes", body = inline(SaveBytes), content_type = "application/octet-stream",
            headers(("ETag" = String, description = "That version"), ("Accept-Ranges" = String, description = "`bytes`"))),
        (status = 206, description = "One range of that version's bytes", body = inline(SaveBytes), content_type = "application/octet-stream",
            headers(("ETag" = String, description = "That version"), ("Content-Range" = String, description = "`bytes FIRST-LAST/SIZE`"))),
        (status = 416, description = "range_not_satisfiable: the range starts past the end", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such version in the history", body = ProblemSchema, content_type = "application/problem+json"),
    ))]
// `{version}` is the ETag without its quotes; the router has already percent-decoded it.
async fn get_history_version(
    req: HttpRequest,
    me: CurrentUser,
    saves: web::Data<Saves>,
    version: web::Path<String>,
) -> Result<HttpResponse, SaveError> {
    let content = saves.history_bytes(me.user_id(), &version).await?;
    send(&req, &crate::version::etag(&version), content)
}

/// A `200` with a version's bytes, or the `206` of one range of them (or `416`), per the
/// request's `Range` and `If-Range` ([`range`]). A file streams from disk, a block at a time.
fn send(req: &HttpRequest, etag: &str, content: Content) -> Result<HttpResponse, SaveError> {
    let size = content.len();
    // Two `Range` lines are two ranges (`header_text` joins them). One that is not visible
    // ASCII is a range this service does not know: the whole save, as for any other.
    let range = header_text(req, &header::RANGE).ok().flatten();
    let if_range = header_text(req, &header::IF_RANGE).ok().flatten();
    let part = range::select(range.as_deref(), if_range.as_deref(), etag, size);
    let (first, len) = part.span(size);
    let mut response = match part {
        Part::Unsatisfiable => return Err(SaveError::RangeNotSatisfiable { size }),
        Part::Whole => HttpResponse::Ok(),
        Part::Range { first, last } => {
            let mut response = HttpResponse::PartialContent();
            response.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {first}-{last}/{size}"),
            ));
            response
        }
    };
    response
        .insert_header((header::ETAG, etag.to_owned()))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .content_type(OCTET_STREAM);
    Ok(match content {
        Content::Memory(bytes) => {
            let bytes = web::Bytes::from(bytes);
            let end = usize::try_from(first + len).map_err(auth_skeleton::ApiError::internal)?;
            let start = usize::try_from(first).map_err(auth_skeleton::ApiError::internal)?;
            response.body(bytes.slice(start..end))
        }
        Content::File(file, _) => response
            .no_chunking(len)
            .streaming(files::read_range(file, first, len)),
    })
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

/// The request's `Idempotency-Key`, trimmed; a malformed one is `400`.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, SaveError> {
    header_text(req, &IDEMPOTENCY_KEY)?
        .map(|v| {
            idempotency::validate_key(&v)
                .map(str::to_owned)
                .map_err(SaveError::InvalidRequest)
        })
        .transpose()
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

/// The bytes of a save in the document: a string of any octets. Without a schema, client
/// generators leave the upload and the downloads out.
struct SaveBytes;

impl utoipa::PartialSchema for SaveBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        // `format: binary` is what generators read (OpenAPI 3.0); `contentMediaType` says the
        // same in 3.1's JSON Schema.
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .content_media_type(OCTET_STREAM)
            .into()
    }
}

impl ToSchema for SaveBytes {}
