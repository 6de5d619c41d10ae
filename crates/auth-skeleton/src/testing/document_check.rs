//! The check that an app's `/openapi.json` lists exactly the routes it serves, for the apps'
//! tests (schemathesis then checks what each documented operation answers).

/// The route patterns an actix `ResourceMap` holds, with scopes joined to their resources.
///
/// actix-web has no public way to list an app's routes, but its `ResourceMap` prints them in its
/// `Debug` form; this reads that form. It is for tests (a check that a document is complete),
/// never for serving.
pub fn route_patterns(map: &actix_web::dev::ResourceMap) -> Vec<String> {
    let dump = format!("{map:#?}");
    // Each ResourceMap prints its own `pattern: ResourceDef { .., patterns: Single("..."),
    // is_prefix: .., .. }` before its `nodes`; the indentation of "ResourceMap {" gives the depth.
    // A resource (not a scope) is a definition that is not a prefix.
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut found = Vec::new();
    let mut awaiting_prefix = false;
    let mut lines = dump.lines();
    while let Some(line) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if text.ends_with("ResourceMap {") {
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            let parent = stack.last().map(|(_, p)| p.clone()).unwrap_or_default();
            stack.push((indent, parent));
            awaiting_prefix = false;
        } else if text.starts_with("patterns: Single(") {
            let literal = lines
                .next()
                .unwrap_or_default()
                .trim()
                .trim_end_matches(',');
            let pattern: String = serde_json::from_str(literal).unwrap_or_default();
            if let Some(top) = stack.last_mut() {
                top.1.push_str(&pattern);
                awaiting_prefix = true;
            }
        } else if awaiting_prefix && let Some(v) = text.strip_prefix("is_prefix: ") {
            awaiting_prefix = false;
            if v.starts_with("false")
                && let Some(top) = stack.last()
            {
                found.push(top.1.clone());
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Checks that the app's `/openapi.json` documents exactly the routes it serves: every mounted
/// route pattern is a documented path, and every documented path and method is routed (answers
/// something other than "no such route" or `405`). Returns the discrepancies.
///
/// Builds the app as [`crate::service::start`] does, on a scratch SQLite database, and sends
/// only unauthenticated requests, so nothing is changed. Call it from an app's tests:
///
/// ```ignore
/// #[actix_web::test]
/// async fn the_openapi_document_lists_every_route() {
///     auth_skeleton::testing::check_document(app_rows::spec(), app_rows::engine())
///         .await
///         .unwrap();
/// }
/// ```
pub async fn check_document(
    spec: crate::service::AppSpec,
    engine: crate::service::EngineBuilder,
) -> Result<(), Vec<String>> {
    use actix_web::http::Method;
    use actix_web::test::{TestRequest, call_service, init_service, read_body};
    use actix_web::{App, HttpRequest, HttpResponse, web};

    use crate::clock::Clock;
    use crate::config::{Settings, Vars};
    use crate::service::{AppInfo, EngineContext, configure_app};

    const UNROUTED: &str = "x-unrouted";
    let fail = |e: String| vec![e];
    let database = super::TestDatabase::new(super::Backend::Sqlite).await;
    let vars = Vars::from_pairs([("DATABASE_URL", database.url.as_str())]);
    let settings = Settings::from_vars(spec.name, 0, &vars).map_err(|e| fail(e.to_string()))?;
    let clock = Clock::manual(1_764_307_200_000);
    let db = crate::service::open(&spec, &settings, &clock)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let engine = engine
        .build(EngineContext {
            db: db.clone(),
            clock: clock.clone(),
            vars,
            keys: crate::secret_key::Keyring::ephemeral(),
        })
        .map_err(|e| fail(e.to_string()))?;
    let auth = crate::accounts::Auth::new(db, settings.auth.clone(), clock, Vec::new())
        .map_err(|e| fail(e.to_string()))?;
    let info = AppInfo {
        name: spec.name,
        version: spec.version,
    };
    let data = web::Data::new(auth);
    let app = init_service(
        App::new()
            .configure(|cfg| configure_app(cfg, data.clone(), info, engine.as_ref()))
            .default_service(web::to(|req: HttpRequest| async move {
                HttpResponse::NotFound()
                    .insert_header((UNROUTED, "1"))
                    .body(route_patterns(req.resource_map()).join("\n"))
            })),
    )
    .await;

    let unrouted = call_service(&app, TestRequest::get().uri("/.unrouted").to_request()).await;
    let body = read_body(unrouted).await;
    let served: Vec<String> = String::from_utf8_lossy(&body)
        .lines()
        .map(str::to_owned)
        .collect();
    let response = call_service(&app, TestRequest::get().uri("/openapi.json").to_request()).await;
    let doc: serde_json::Value =
        serde_json::from_slice(&read_body(response).await).map_err(|e| fail(e.to_string()))?;
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();

    let mut problems = Vec::new();
    if served.is_empty() {
        problems.push("no served routes were found".to_owned());
    }
    for pattern in &served {
        if !paths.contains_key(pattern) {
            problems.push(format!("{pattern} is served but not documented"));
        }
    }
    for (path, operations) in &paths {
        let uri = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for (method, operation) in operations.as_object().into_iter().flatten() {
            // A `HEAD` documented as its path's `GET` is served by running that `GET`
            // (`head_as_get`, a middleware of the running service), which is checked here.
            if operation[crate::http::openapi::HEAD_AS_GET] == true {
                continue;
            }
            let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            let request = TestRequest::default()
                .method(method.clone())
                .uri(&uri)
                .to_request();
            let response = call_service(&app, request).await;
            if response.headers().contains_key(UNROUTED)
                || response.status() == actix_web::http::StatusCode::METHOD_NOT_ALLOWED
            {
                problems.push(format!("{method} {path} is documented but not served"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
