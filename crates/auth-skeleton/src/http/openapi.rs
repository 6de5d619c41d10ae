//! The OpenAPI 3.1 document served at `/openapi.json`: the library's routes (auth, the pages
//! of mailed links, health, metrics) merged with the engine's ([`crate::service::Engine::openapi`]).
//!
//! The document is built with [utoipa](https://docs.rs/utoipa) from the handlers themselves:
//! each carries a `#[utoipa::path]`, its request body is the type it deserialises and its
//! response body the type it serialises, so the document and the bytes on the wire come from
//! the same declarations. The problems a route answers are listed by `code`, and
//! [`document`] adds the ones every body or signed-in route shares. The test helper
//! [`check_document`](crate::testing::check_document) (feature `testing`) lists every route the
//! service really mounts that the document lacks, and every documented path the service does
//! not serve, so neither can drift from the other unnoticed.
//!
//! An engine contributes its part like this:
//!
//! ```
//! use utoipa::OpenApi;
//!
//! /// Pull the caller's changed rows.
//! #[utoipa::path(get, path = "/v1/notes", tag = "notes",
//!     responses((status = 200, description = "The notes")))]
//! async fn list_notes() {}
//!
//! #[derive(OpenApi)]
//! #[openapi(paths(list_notes))]
//! struct NotesApi;
//!
//! // In `impl auth_skeleton::service::Engine for Notes`:
//! // fn openapi(&self) -> utoipa::openapi::OpenApi { NotesApi::openapi() }
//! let doc = auth_skeleton::http::openapi::document("app-notes", "1.0.0", NotesApi::openapi());
//! assert!(doc.paths.paths.contains_key("/v1/notes"));
//! assert!(doc.paths.paths.contains_key("/v1/auth/login"));
//! ```

use std::collections::BTreeMap;
use std::marker::PhantomData;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, response::Response};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::http::problem::ApiError;

/// The whole service's document: the library's routes plus `engine`'s, titled with the app.
pub fn document(
    app_name: &str,
    app_version: &str,
    engine: utoipa::openapi::OpenApi,
) -> utoipa::openapi::OpenApi {
    let mut doc = LibraryApi::openapi();
    doc.merge(crate::http::routes::AuthApi::openapi());
    doc.merge(crate::http::pages::PagesApi::openapi());
    doc.merge(crate::http::operations::OperationsApi::openapi());
    doc.info.title = app_name.to_owned();
    doc.info.version = app_version.to_owned();
    doc.info.description = Some(format!(
        "{app_name}: accounts and sessions from auth-skeleton {}, plus the app's sync routes. \
         Errors are RFC 9457 problem details with a stable `code`.",
        crate::AUTH_SKELETON_VERSION
    ));
    doc.merge(engine);
    add_common_problems(&mut doc);
    add_retry_after(&mut doc);
    add_head_as_get(&mut doc);
    doc
}

/// The extension that marks a `HEAD` operation as the `GET` of its path without content, which
/// [`AllowedMethods`](crate::http::allowed_methods::AllowedMethods) answers by running the `GET`.
pub(crate) const HEAD_AS_GET: &str = "x-head-as-get";

/// Documents `HEAD` wherever `GET` is documented and `HEAD` is not: the service answers it with
/// the `GET`'s status and headers and no content (RFC 9110 §9.3.2), so the operation is the
/// `GET`'s with every response's content removed.
fn add_head_as_get(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let (Some(get), None) = (&item.get, &item.head) else {
            continue;
        };
        let mut head = get.clone();
        head.operation_id = get.operation_id.as_ref().map(|id| format!("{id}_head"));
        head.summary = get.summary.as_ref().map(|s| format!("{s} (headers only)"));
        head.description =
            Some("The `GET` of this path without content: the same status and headers.".to_owned());
        for response in head.responses.responses.values_mut() {
            if let RefOr::T(response) = response {
                response.content.clear();
            }
        }
        head.extensions
            .get_or_insert_with(Default::default)
            .insert(HEAD_AS_GET.to_owned(), serde_json::Value::Bool(true));
        item.head = Some(head);
    }
}

/// Documents the `Retry-After` header (delay in seconds, RFC 9110 §10.2.3) on every `429`, and on
/// the `503` of an operation that can answer `overloaded`: the server sends it with both.
fn add_retry_after(doc: &mut utoipa::openapi::OpenApi) {
    let overloaded = Overloaded::error().to_problem().code().to_owned();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.head,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, response) in operation.responses.responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                let retries = status == "429"
                    || (status == "503" && response.description.contains(&overloaded));
                if retries {
                    response
                        .headers
                        .insert("Retry-After".to_owned(), retry_after_header());
                }
            }
        }
    }
}

/// `Retry-After` as the service sends it: a whole number of seconds.
fn retry_after_header() -> utoipa::openapi::Header {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    utoipa::openapi::HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some("Seconds to wait before trying again".to_owned()))
        .build()
}

/// Documents, on every operation, the problems any such operation can answer:
/// `400 invalid_request` where a body is read (malformed JSON, a wrong type or a missing field)
/// and `401 unauthenticated` where a session is required, added to the operation's own `400` or
/// `401` when that names other codes. One rule instead of a line per handler, so a new route
/// cannot forget them.
fn add_common_problems(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            (false, &mut item.get),
            (true, &mut item.put),
            (true, &mut item.post),
            (true, &mut item.delete),
            (true, &mut item.patch),
        ];
        for (unsafe_method, operation) in operations {
            let Some(operation) = operation else {
                continue;
            };
            let reads_body = operation.request_body.is_some();
            let signed_in = operation
                .security
                .as_ref()
                .is_some_and(|requirements| !requirements.is_empty());
            let responses = &mut operation.responses.responses;
            if reads_body {
                add_problem::<InvalidRequest>(responses);
                add_problem::<PayloadTooLarge>(responses);
            }
            if signed_in {
                add_problem::<Unauthenticated>(responses);
            }
            // A cookie session's unsafe request from an origin that is not allowed.
            if signed_in && unsafe_method {
                add_problem::<CsrfRejected>(responses);
            }
            // The app's routes refuse unverified accounts under `REQUIRE_VERIFIED_EMAIL`.
            if signed_in && !path.starts_with("/v1/auth/") {
                add_problem::<EmailNotVerified>(responses);
            }
        }
    }
}

/// Adds `C` to `responses`: a new response for its status, or one more code in the description
/// of the response already there (unless that one names it).
fn add_problem<C: ProblemCode>(responses: &mut BTreeMap<String, RefOr<Response>>) {
    let code = C::error().to_problem().code().to_owned();
    let (status, line) = C::describe();
    match responses.get_mut(&status) {
        None => {
            responses.insert(status, problem_response(line).into());
        }
        Some(RefOr::T(response)) if !response.description.contains(&code) => {
            response.description = format!("{}; {line}", response.description);
        }
        Some(_) => {}
    }
}

/// A response with the problem body and `description`.
fn problem_response(description: String) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// The problems an operation answers, by `code`, for the `responses(...)` of a
/// `#[utoipa::path]`: `Problems<NotFound>` documents `404 not_found` with the problem body,
/// `Problems<(EmailTaken, RateLimited)>` both `409 email_taken` and `429 rate_limited`. Codes that share a status share its response,
/// whose description names each. The status and the code are those [`ApiError`] answers with.
pub(crate) struct Problems<T>(PhantomData<T>);

impl<T: ProblemCodes> IntoResponses for Problems<T> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut lines: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (status, line) in T::describe() {
            lines.entry(status).or_default().push(line);
        }
        lines
            .into_iter()
            .map(|(status, lines)| (status, problem_response(lines.join("; ")).into()))
            .collect()
    }
}

/// A problem `code` an operation can answer with.
pub(crate) trait ProblemCode {
    /// When it is the answer, for the response's description.
    const WHEN: &'static str;
    /// An error that is answered with this code: its status and code come from there.
    fn error() -> ApiError;

    /// The status, and the description's line for this code.
    fn describe() -> (String, String) {
        let problem = Self::error().to_problem();
        (
            problem.status().as_u16().to_string(),
            format!("{}: {}", problem.code(), Self::WHEN),
        )
    }
}

/// One [`ProblemCode`], or several as a tuple.
pub(crate) trait ProblemCodes {
    /// Each code's status and description line, in order.
    fn describe() -> Vec<(String, String)>;
}

impl<C: ProblemCode> ProblemCodes for C {
    fn describe() -> Vec<(String, String)> {
        vec![<C as ProblemCode>::describe()]
    }
}

macro_rules! problem_code_tuples {
    ($($code:ident),+) => {
        impl<$($code: ProblemCode),+> ProblemCodes for ($($code,)+) {
            fn describe() -> Vec<(String, String)> {
                vec![$($code::describe()),+]
            }
        }
    };
}

problem_code_tuples!(A, B);
problem_code_tuples!(A, B, C);
problem_code_tuples!(A, B, C, D);
problem_code_tuples!(A, B, C, D, E);
problem_code_tuples!(A, B, C, D, E, F);
problem_code_tuples!(A, B, C, D, E, F, G);

macro_rules! problem_codes {
    ($($(#[$doc:meta])* $name:ident = $error:expr, $when:literal;)+) => {
        $(
            $(#[$doc])*
            pub(crate) struct $name;

            impl ProblemCode for $name {
                const WHEN: &'static str = $when;
                fn error() -> ApiError {
                    $error
                }
            }
        )+
    };
}

problem_codes! {
    /// [`ApiError::InvalidRequest`].
    InvalidRequest = ApiError::InvalidRequest(String::new()),
        "a malformed body, a wrong type, a missing field or an invalid value (the detail names the field)";
    /// [`ApiError::PayloadTooLarge`].
    PayloadTooLarge = ApiError::PayloadTooLarge { limit: 0 },
        "the body is larger than the route takes";
    /// [`ApiError::EmailNotVerified`].
    EmailNotVerified = ApiError::EmailNotVerified,
        "the service stores data only for verified accounts (`REQUIRE_VERIFIED_EMAIL`) and this one is not";
    /// [`ApiError::Unauthenticated`].
    Unauthenticated = ApiError::Unauthenticated,
        "no live session";
    /// [`ApiError::InvalidEmail`].
    InvalidEmail = ApiError::InvalidEmail(String::new()),
        "the address is not one the service can take or send to";
    /// [`ApiError::WeakPassword`].
    WeakPassword = ApiError::WeakPassword(String::new()),
        "the password breaks a rule (the detail says which)";
    /// [`ApiError::InvalidToken`].
    InvalidToken = ApiError::InvalidToken,
        "the mailed token is unknown, expired or used";
    /// [`ApiError::InvalidCredentials`].
    InvalidCredentials = ApiError::InvalidCredentials,
        "a wrong password (or, at login, an unknown email)";
    /// [`ApiError::CsrfRejected`].
    CsrfRejected = ApiError::CsrfRejected,
        "the request's Origin is not an allowed origin";
    /// [`ApiError::NotFound`].
    NotFound = ApiError::NotFound(""),
        "no such item, or one that belongs to another user";
    /// [`ApiError::EmailTaken`].
    EmailTaken = ApiError::EmailTaken,
        "another account has this address";
    /// [`ApiError::AlreadyVerified`].
    AlreadyVerified = ApiError::AlreadyVerified,
        "the address is verified already";
    /// [`ApiError::RateLimited`].
    RateLimited = ApiError::RateLimited { retry_after_secs: 0 },
        "too many attempts; Retry-After says when to try again";
    /// [`ApiError::Overloaded`].
    Overloaded = ApiError::Overloaded { retry_after_secs: 0 },
        "password hashing is saturated and the request was not started; Retry-After says when to try again";
}

#[derive(OpenApi)]
#[openapi(
    components(schemas(crate::http::problem::Problem)),
    modifiers(&Credentials),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "pages", description = "The pages that mailed links open"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
struct LibraryApi;

/// Adds the two ways a request authenticates: a bearer token or the session cookie.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The token from a sign-in with \"session\": \"bearer\"",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "__Host-session",
                "The session cookie (named `session` when COOKIE_SECURE=false); unsafe \
                 methods also need an allowed Origin",
            ))),
        );
    }
}

/// The document's shared schemas, for an app's own `#[utoipa::path]` declarations
/// (`body = Problem` for its problem answers). They are the types the library serialises.
pub mod schemas {
    pub use crate::accounts::model::{Session, User};
    pub use crate::http::problem::Problem;
}
