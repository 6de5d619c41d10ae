//! `/openapi.json`: an OpenAPI 3.1 document of exactly the routes the service mounts.

use std::sync::Arc;

use auth_skeleton::config::ConfigError;
use auth_skeleton::service::{EngineBuilder, EngineContext};

use crate::support::*;

#[actix_web::test]
async fn the_document_lists_every_route_the_service_mounts_and_no_other() {
    let probe = Arc::new(HookProbe::default());
    let result = auth_skeleton::testing::check_document(
        spec(),
        EngineBuilder::new(move |_: EngineContext| Ok::<_, ConfigError>(TestEngine(probe))),
    )
    .await;
    assert_eq!(result, Ok(()));
}

/// An engine with one route it does not document, and one documented path it does not serve.
struct Sloppy;

impl auth_skeleton::accounts::hooks::AccountDataHook for Sloppy {
    fn delete_user_data<'a>(
        &'a self,
        _: &'a mut auth_skeleton::db::Tx,
        _: &'a auth_skeleton::accounts::UserId,
    ) -> auth_skeleton::accounts::hooks::BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async { Ok(()) })
    }
}

impl auth_skeleton::service::Engine for Sloppy {
    fn configure(&self, cfg: &mut actix_web::web::ServiceConfig) {
        cfg.route(
            "/v1/extra/{id}",
            actix_web::web::get().to(actix_web::HttpResponse::Ok),
        );
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        let mut doc = utoipa::openapi::OpenApi::default();
        doc.paths.add_path_operation(
            "/v1/ghost",
            vec![utoipa::openapi::HttpMethod::Get],
            utoipa::openapi::path::Operation::new(),
        );
        doc
    }
}

#[actix_web::test]
async fn the_check_reports_undocumented_routes_and_unserved_paths() {
    let problems = auth_skeleton::testing::check_document(
        spec(),
        EngineBuilder::new(|_: EngineContext| Ok::<_, ConfigError>(Sloppy)),
    )
    .await
    .unwrap_err();
    assert_eq!(
        problems,
        [
            "/v1/extra/{id} is served but not documented",
            "GET /v1/ghost is documented but not served",
        ]
    );
}

#[test]
fn the_route_reader_finds_scoped_and_unscoped_routes() {
    let served = actix_web::rt::System::new().block_on(async {
        use actix_web::test::{TestRequest, call_service, init_service, read_body};
        use actix_web::{App, HttpRequest, HttpResponse, web};
        let app = init_service(
            App::new()
                .route("/healthz", web::get().to(HttpResponse::Ok))
                .service(
                    web::scope("/v1/x")
                        .route("/a/{id}", web::delete().to(HttpResponse::Ok))
                        .route("/b", web::post().to(HttpResponse::Ok)),
                )
                .default_service(web::to(|req: HttpRequest| async move {
                    HttpResponse::Ok()
                        .body(auth_skeleton::testing::route_patterns(req.resource_map()).join("\n"))
                })),
        )
        .await;
        let response = call_service(&app, TestRequest::get().uri("/nowhere").to_request()).await;
        String::from_utf8(read_body(response).await.to_vec()).unwrap()
    });
    let served: Vec<&str> = served.lines().collect();
    assert_eq!(served, ["/healthz", "/v1/x/a/{id}", "/v1/x/b"]);
}

async fn the_served_document_is_openapi_3_1_with_security_schemes(backend: Backend) {
    let server = start(backend).await;
    let reply = server.send(server.get("/openapi.json")).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let doc = &reply.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    assert_eq!(doc["info"]["title"], "app-test");
    assert_eq!(doc["info"]["version"], "9.9.9");
    let login = &doc["paths"]["/v1/auth/login"]["post"];
    assert!(login["responses"]["401"].is_object(), "{login}");
    // Every route with a body has a size limit, and every signed-in unsafe route refuses a
    // cookie from a foreign origin: both are documented.
    assert!(
        login["responses"]["413"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("payload_too_large")),
        "{login}"
    );
    let logout = &doc["paths"]["/v1/auth/logout"]["post"];
    assert!(
        logout["responses"]["403"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("csrf_rejected")),
        "{logout}"
    );
    let me_doc = &doc["paths"]["/v1/auth/me"]["get"];
    assert!(me_doc["responses"]["403"].is_null(), "{me_doc}");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["securitySchemes"]["cookie"].is_object());
    // The user schema has the fields a real response has.
    let (token, _) = server.signup_bearer("ann@example.com").await;
    let me = server
        .send(server.get("/v1/auth/me").bearer_auth(&token))
        .await;
    for (schema, value) in [("User", &me.body["user"]), ("Session", &me.body["session"])] {
        let mut documented: Vec<&String> = doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        let mut real: Vec<&String> = value.as_object().unwrap().keys().collect();
        documented.sort();
        real.sort();
        assert_eq!(documented, real, "{schema}");
    }
}

/// `HEAD` is documented wherever `GET` is, as the `GET` without content, and still answered so;
/// `Retry-After` is documented where the server sends it; a password's length limit is stated.
async fn the_document_states_head_retry_after_and_the_password_limit(backend: Backend) {
    let server = start(backend).await;
    let doc = server.send(server.get("/openapi.json")).await.body;

    let me = &doc["paths"]["/v1/auth/me"];
    let head = &me["head"];
    assert_eq!(head["x-head-as-get"], true, "{me}");
    assert_eq!(
        head["operationId"],
        format!("{}_head", me["get"]["operationId"].as_str().unwrap())
    );
    assert!(head["responses"]["200"].is_object(), "{head}");
    assert!(head["responses"]["200"]["content"].is_null(), "{head}");
    assert!(head["responses"]["401"].is_object(), "{head}");
    let (token, _) = server.signup_bearer("ann@example.com").await;
    let reply = server
        .send(
            server
                .request(reqwest::Method::HEAD, "/v1/auth/me")
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.bytes.len(), 0);

    let login = &doc["paths"]["/v1/auth/login"]["post"]["responses"];
    for status in ["429", "503"] {
        let header = &login[status]["headers"]["Retry-After"];
        assert_eq!(header["schema"]["type"], "integer", "{status}: {login}");
    }
    let readyz = &doc["paths"]["/readyz"]["get"]["responses"]["503"];
    assert!(readyz["headers"]["Retry-After"].is_null(), "{readyz}");

    let credentials = &doc["components"]["schemas"]["Credentials"]["properties"]["password"];
    let password = match credentials["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap();
            &doc["components"]["schemas"][name]
        }
        None => credentials,
    };
    assert_eq!(password["maxLength"], 256, "{credentials}");
    let long = "x".repeat(257);
    let signup = server
        .send(server.post(
            "/v1/auth/signup",
            &serde_json::json!({"email": "bo@example.com", "password": long}),
        ))
        .await;
    assert_eq!(
        (signup.status, signup.body["code"].as_str()),
        (400, Some("weak_password"))
    );
    let login = server
        .send(server.post(
            "/v1/auth/login",
            &serde_json::json!({"email": "ann@example.com", "password": long}),
        ))
        .await;
    assert_eq!(
        (login.status, login.body["code"].as_str()),
        (401, Some("invalid_credentials"))
    );
}

auth_skeleton::both_backends!(
    the_served_document_is_openapi_3_1_with_security_schemes,
    the_document_states_head_retry_after_and_the_password_limit,
);
