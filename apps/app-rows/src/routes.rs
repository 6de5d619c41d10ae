//! The `/v1/rows` routes: thin adapters from HTTP to [`crate::sync::RowSync`].

use crate::metrics::{RowsDirection, record_rows};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, web};
use auth_skeleton::changes::Woken;
use auth_skeleton::http::json::{parse, read_limited};
use auth_skeleton::http::openapi::schemas::Problem as ProblemSchema;
use auth_skeleton::http::{CurrentUser, prefer};
use auth_skeleton::rate_limit::Limit;
use auth_skeleton::{ApiError, Auth, Problem};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use utoipa::ToSchema;

use crate::change::{
    BatchError, ChangeResult, PushRequest, Rejection, Row, Status, WireChange, check_batch,
};
use crate::cursor::Cursor;
use crate::limits::{DEFAULT_PULL_LIMIT, MAX_PULL_LIMIT, PUSH_BODY_LIMIT};
use crate::sync::{RowSync, SyncError};

/// Mounts `POST /v1/rows/push` and `GET /v1/rows/pull`.
pub fn configure(cfg: &mut web::ServiceConfig, sync: RowSync) {
    cfg.service(
        web::scope("/v1/rows")
            .app_data(web::Data::new(sync))
            // A user's rows must never be served from a cache.
            .wrap(DefaultHeaders::new().add(CacheControl(vec![CacheDirective::NoStore])))
            .service(web::resource("/push").route(web::post().to(push)))
            .service(web::resource("/pull").route(web::get().to(pull))),
    );
}

/// The routes and schemas of the row sync, for `/openapi.json` (see [`auth_skeleton::http::openapi`]).
///
/// The 405 answers to other methods are not operations of their own: the resources are what
/// the document lists.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(push, pull),
    components(schemas(
        PushRequest,
        WireChange,
        PushResponse,
        ChangeResult,
        Status,
        Rejection,
        PullResponse,
        Row,
    )),
    tags((name = "rows", description = "Row-level last-write-wins sync with tombstones")),
    modifiers(&DataMatchesDeleted)
)]
pub struct ApiDoc;

/// States in the schema what the server checks: a change carries an object as `data` unless it
/// is a tombstone, and a tombstone carries none (`null` or absent). A generator reading the
/// document then never sends what the server must refuse.
struct DataMatchesDeleted;

impl utoipa::Modify for DataMatchesDeleted {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(row) = openapi
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("PushedRow"))
        else {
            return;
        };
        let rule = serde_json::json!({"allOf": [row, {"oneOf": [
            {"type": "object", "required": ["data"],
             "properties": {"deleted": {"type": "boolean", "enum": [false]}, "data": {"type": "object"}}},
            {"type": "object",
             "properties": {"deleted": {"type": "boolean", "enum": [true]}, "data": {"type": "null"}}},
        ]}]});
        *row = serde_json::from_value(rule).expect("the rule is a schema");
    }
}

/// The answer to a push.
#[derive(Serialize, ToSchema)]
struct PushResponse {
    /// One result per change, in the order of the changes.
    results: Vec<ChangeResult>,
    /// The server's clock, ms since the Unix epoch.
    server_time: i64,
}

/// Push changed rows; each wins or loses against the stored row by its version.
#[utoipa::path(post, path = "/v1/rows/push", tag = "rows", operation_id = "rows_push",
    request_body(content = PushRequest, description = "At most 1000 changes and 2 MiB"),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "One result per change, in order; applied changes are durable", body = PushResponse),
        (status = 400, description = "invalid_request: a malformed change (the detail names it and the field); nothing is applied", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 403, description = "email_not_verified: the service stores data only for verified accounts (REQUIRE_VERIFIED_EMAIL)", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 413, description = "payload_too_large: more than 1000 changes or a body over 2 MiB", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited: the user's pushes (RATE_LIMIT_PUSH_USER); Retry-After says when", body = ProblemSchema, content_type = "application/problem+json"),
    ))]
async fn push(
    me: CurrentUser,
    auth: web::Data<Auth>,
    sync: web::Data<RowSync>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, Problem> {
    auth.limit(Limit::PushUser, me.user_id()).await?;
    // The body is read only once the caller is known, so that a stranger gets 401, not 413.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > PUSH_BODY_LIMIT) {
        return Err(ApiError::PayloadTooLarge {
            limit: PUSH_BODY_LIMIT,
        }
        .into());
    }
    let body = read_limited(&mut body.into_inner(), PUSH_BODY_LIMIT).await?;
    let request: PushRequest = parse(&body)?;
    let changes = check_batch(request).map_err(|e| match e {
        BatchError::TooManyChanges => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            e.to_string(),
        ),
        BatchError::Malformed { .. } => {
            Problem::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
        }
    })?;
    let pushed = sync.push(me.user_id(), &changes).await.map_err(problem)?;
    let applied = pushed
        .results
        .iter()
        .filter(|r| r.status == Status::Applied)
        .count();
    record_rows(RowsDirection::Pushed, applied as u64);
    if applied > 0 {
        // Committed: wake the user's waiting pulls, here and on the other instances.
        auth.changes().announce(me.user_id()).await;
    }
    Ok(HttpResponse::Ok().json(PushResponse {
        results: pushed.results,
        server_time: sync.now_ms(),
    }))
}

/// The query of a pull, as text: numbers are parsed here so that the errors name the parameter.
#[derive(Deserialize)]
struct PullQuery {
    since: Option<String>,
    limit: Option<String>,
}

/// A page of a pull.
#[derive(Serialize, ToSchema)]
struct PullResponse {
    /// The caller's rows changed after `since`, in the order the server applied them,
    /// tombstones included.
    changes: Vec<Row>,
    /// Where the next pull starts (opaque).
    cursor: String,
    /// Whether more changes follow `cursor`.
    has_more: bool,
    /// The server's clock, ms since the Unix epoch.
    server_time: i64,
}

/// Pull the caller's rows changed since a cursor.
#[utoipa::path(get, path = "/v1/rows/pull", tag = "rows", operation_id = "rows_pull",
    params(
        ("since" = Option<String>, Query, description = "The `cursor` of the previous pull; absent or empty starts from the beginning"),
        ("limit" = Option<u64>, Query, minimum = 1, description = "At most this many changes (default 500; above 1000 counts as 1000)"),
        ("Prefer" = Option<String>, Header, description = "`wait=S` (RFC 7240, S at most 60): with nothing newer than `since`, hold the request until a change of the caller's rows commits through any instance or S seconds pass; the answer then carries `Preference-Applied: wait=S`"),
    ),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The next page of changes", body = PullResponse,
            headers(("Preference-Applied" = String, description = "`wait=S` when the request waited (or would have) for a change"))),
        (status = 400, description = "invalid_request: a malformed cursor or limit, or a cursor issued to another user", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = ProblemSchema, content_type = "application/problem+json"),
        (status = 410, description = "resync_required: a purge since the cursor was issued may have removed tombstones the caller has not seen; pull from the beginning and replace the local state", body = ProblemSchema, content_type = "application/problem+json"),
    ))]
async fn pull(
    me: CurrentUser,
    auth: web::Data<Auth>,
    sync: web::Data<RowSync>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let query = web::Query::<PullQuery>::from_query(req.query_string())
        .map_err(|_| invalid("the query string is malformed"))?
        .into_inner();
    // An empty `since` is the same as none: from the start.
    let since = match query.since.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            Cursor::decode(text, me.user_id(), sync.keys()).map_err(|e| invalid(e.to_string()))?,
        ),
    };
    let limit = match query.limit.as_deref() {
        None | Some("") => DEFAULT_PULL_LIMIT,
        // Up to 2^63-1, the document's range (an int64 of at least 1).
        Some(text) => match text.parse::<i64>().ok().and_then(|n| u64::try_from(n).ok()) {
            Some(0) | None => {
                return Err(invalid(format!(
                    "limit: must be a whole number from 1 (at most {MAX_PULL_LIMIT} changes are returned)"
                )));
            }
            // A greater limit is lowered to the maximum: `has_more` tells the client to go on.
            Some(n) => u32::try_from(n.min(u64::from(MAX_PULL_LIMIT))).unwrap_or(MAX_PULL_LIMIT),
        },
    };
    // A long-poll subscribes before it reads, so that a push committed between the read and the
    // wait still wakes it. There is none while the service stops: answer at once then.
    let wait = prefer::wait(&req);
    let mut subscription = wait.and_then(|_| auth.changes().subscribe(me.user_id()));
    let deadline = Instant::now() + wait.unwrap_or_default();
    // After a wait that no announced change ended, one more read: a change may have committed
    // unannounced (an instance killed before announcing it, a pooler that drops NOTIFY).
    let mut last_read = false;
    let page = loop {
        let page = sync
            .pull(me.user_id(), since, limit)
            .await
            .map_err(problem)?;
        let Some(waiting) = subscription.as_mut() else {
            break page;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if !page.changes.is_empty() || last_read || left.is_zero() {
            break page;
        }
        let woken = waiting.wait(left).await;
        // The session may have ended while the request waited: neither what changed since nor
        // a fresh cursor is for it.
        CurrentUser::recheck(&req).await?;
        last_read = woken != Woken::Changed;
    };
    record_rows(RowsDirection::Pulled, page.changes.len() as u64);
    let mut response = HttpResponse::Ok();
    if let (Some(waited), Some(_)) = (wait, &subscription) {
        response.insert_header(prefer::applied(waited));
    }
    Ok(response.json(PullResponse {
        changes: page.changes,
        cursor: page.cursor.encode(me.user_id(), sync.keys()),
        has_more: page.has_more,
        server_time: sync.now_ms(),
    }))
}

fn invalid(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
}

fn problem(err: SyncError) -> Problem {
    match err {
        SyncError::Cursor(e) => invalid(e.to_string()),
        SyncError::ResyncRequired => {
            Problem::new(StatusCode::GONE, "resync_required", err.to_string())
        }
        SyncError::AccountGone => ApiError::Unauthenticated.into(),
        SyncError::Db(e) => {
            tracing::error!(error = %e, "row sync failed");
            ApiError::internal(e).into()
        }
    }
}
