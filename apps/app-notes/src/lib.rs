//! `app-notes`: the smallest app on `auth-skeleton` and the template a new team copies: one
//! text note per user. `GET /v1/note` reads the caller's note (`404 not_found` before the first
//! write); `PUT /v1/note` with `{"text": "..."}` replaces it. The library does the rest.

pub mod store;

use actix_web::{HttpResponse, web};
use auth_skeleton::ApiError;
use auth_skeleton::accounts::UserId;
use auth_skeleton::accounts::hooks::{AccountDataHook, BoxFuture, delete_rows};
use auth_skeleton::db::{Migrations, Tx};
use auth_skeleton::http::openapi::schemas::Problem;
use auth_skeleton::http::{CurrentUser, Json};
use auth_skeleton::service::{AppSpec, EngineBuilder, EngineContext};

/// The app's identity, default port and migrations (`migrations/app-notes`).
pub fn spec() -> AppSpec {
    AppSpec {
        name: "app-notes",
        version: env!("CARGO_PKG_VERSION"),
        default_port: 8082,
        migrations: Migrations::app(
            sqlx::migrate!("../../migrations/app-notes/sqlite"),
            sqlx::migrate!("../../migrations/app-notes/postgres"),
        ),
    }
}

/// How the service builds this app's engine at start (`main`, the tests and the document check
/// all take it).
pub fn engine() -> EngineBuilder {
    EngineBuilder::new(Engine::new)
}

/// A note, as read and written.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Note {
    /// Any text.
    pub text: String,
}

/// The notes engine: the database and clock the library opened for it (`main.rs` builds it).
#[derive(Clone)]
pub struct Engine(pub EngineContext);

impl Engine {
    /// Builds the engine; this app reads no variables of its own, so it cannot fail (a team
    /// that adds settings reads them here from `ctx.vars`).
    pub fn new(ctx: EngineContext) -> Result<Self, auth_skeleton::config::ConfigError> {
        Ok(Self(ctx))
    }
}

#[utoipa::path(get, path = "/v1/note", tag = "notes", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The caller's note", body = Note),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no note written yet", body = Problem, content_type = "application/problem+json")))]
async fn get_note(me: CurrentUser, engine: web::Data<Engine>) -> Result<HttpResponse, ApiError> {
    let text = store::note(&engine.0.db, me.user_id())
        .await?
        .ok_or(ApiError::NotFound("no note written yet"))?;
    Ok(HttpResponse::Ok().json(Note { text }))
}

#[utoipa::path(put, path = "/v1/note", tag = "notes", request_body = Note, security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The note, stored", body = Note),
        (status = 400, description = "invalid_request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json")))]
async fn put_note(
    me: CurrentUser,
    engine: web::Data<Engine>,
    Json(note): Json<Note>,
) -> Result<HttpResponse, ApiError> {
    // PostgreSQL text cannot hold U+0000; refused on both backends, so they answer alike.
    if note.text.contains('\0') {
        return Err(ApiError::InvalidRequest(
            "text: must not contain the NUL character (U+0000)".to_owned(),
        ));
    }
    let now = engine.0.clock.now_ms();
    store::put_note(&engine.0.db, me.user_id(), &note.text, now).await?;
    Ok(HttpResponse::Ok().json(note))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(get_note, put_note), tags((name = "notes", description = "One note per user")))]
struct NotesApi;

impl auth_skeleton::service::Engine for Engine {
    fn configure(&self, cfg: &mut web::ServiceConfig) {
        let routes = web::resource("/v1/note")
            .route(web::get().to(get_note))
            .route(web::put().to(put_note));
        cfg.app_data(web::Data::new(self.clone())).service(routes);
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <NotesApi as utoipa::OpenApi>::openapi()
    }
}

/// The note goes in the transaction that deletes the account (the table's foreign key has no
/// cascade, so forgetting this hook would make account deletion fail rather than leak notes).
impl AccountDataHook for Engine {
    fn delete_user_data<'a>(
        &'a self,
        tx: &'a mut Tx,
        user_id: &'a UserId,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        delete_rows(tx, user_id, &["DELETE FROM notes WHERE user_id = $1"])
    }
}
