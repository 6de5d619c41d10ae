//! `app-notes` over HTTP on both backends: notes are private to their writer, go with the
//! account, and `/openapi.json` lists exactly the routes served.

use auth_skeleton::testing::{Backend, TEST_PASSWORD, TestServer};
use reqwest::Method;
use serde_json::json;

async fn start(backend: Backend) -> TestServer {
    TestServer::start(backend, app_notes::spec(), &[], app_notes::engine()).await
}

async fn each_user_reads_and_replaces_only_their_own_note(backend: Backend) {
    let server = start(backend).await;
    let (ann, _) = server.signup_bearer("ann@example.com").await;
    let (bob, _) = server.signup_bearer("bob@example.com").await;
    let get = |token: &str| server.get("/v1/note").bearer_auth(token.to_owned());
    let put = |token: &str, text: &str| {
        server
            .request(Method::PUT, "/v1/note")
            .bearer_auth(token.to_owned())
            .json(&json!({"text": text}))
    };

    let reply = server.send(get(&ann)).await;
    assert_eq!((reply.status, reply.code()), (404, "not_found"));
    for text in ["buy milk", "buy oat milk"] {
        let reply = server.send(put(&ann, text)).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let reply = server.send(get(&ann)).await;
        assert_eq!((reply.status, &reply.body), (200, &json!({"text": text})));
    }
    let reply = server.send(get(&bob)).await;
    assert_eq!(reply.status, 404, "bob sees no note: {:?}", reply.body);
    server.send(put(&bob, "bob's")).await;
    let reply = server.send(get(&ann)).await;
    assert_eq!(reply.body, json!({"text": "buy oat milk"}));

    let reply = server.send(server.get("/v1/note")).await;
    assert_eq!((reply.status, reply.code()), (401, "unauthenticated"));
    let reply = server
        .send(
            server
                .request(Method::PUT, "/v1/note")
                .bearer_auth(&ann)
                .json(&json!({"txt": 1})),
        )
        .await;
    assert_eq!((reply.status, reply.code()), (400, "invalid_request"));
    let reply = server
        .send(server.request(Method::DELETE, "/v1/note").bearer_auth(&ann))
        .await;
    assert_eq!((reply.status, reply.code()), (405, "method_not_allowed"));
    assert_eq!(reply.header("allow"), Some("GET, HEAD, PUT"));
}

async fn deleting_the_account_deletes_only_that_users_note(backend: Backend) {
    let server = start(backend).await;
    let (ann, ann_id) = server.signup_bearer("ann@example.com").await;
    let (bob, bob_id) = server.signup_bearer("bob@example.com").await;
    for token in [&ann, &bob] {
        let put = server.request(Method::PUT, "/v1/note").bearer_auth(token);
        let reply = server.send(put.json(&json!({"text": "mine"}))).await;
        assert_eq!(reply.status, 200);
    }
    let delete = server
        .request(Method::DELETE, "/v1/auth/account")
        .bearer_auth(&ann)
        .json(&json!({"password": TEST_PASSWORD}));
    let reply = server.send(delete).await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);

    let notes_of = |user_id: String| {
        let db = server.db.clone();
        async move {
            auth_skeleton::read_db!(db, |pool| {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM notes WHERE user_id = $1")
                    .bind(&user_id)
                    .fetch_one(pool)
                    .await
            })
            .unwrap()
        }
    };
    assert_eq!(notes_of(ann_id).await, 0);
    assert_eq!(notes_of(bob_id).await, 1);
    let reply = server.send(server.get("/v1/note").bearer_auth(&bob)).await;
    assert_eq!(reply.body, json!({"text": "mine"}));
}

/// PostgreSQL text cannot hold U+0000, so neither backend takes it: a clear `400`, the same on
/// both, instead of a server fault on one.
async fn a_note_with_a_nul_character_is_refused(backend: Backend) {
    let server = start(backend).await;
    let (ann, _) = server.signup_bearer("ann@example.com").await;
    let put = |text: &str| {
        server
            .request(Method::PUT, "/v1/note")
            .bearer_auth(ann.clone())
            .json(&json!({"text": text}))
    };
    let reply = server.send(put("a\u{0}b")).await;
    assert_eq!((reply.status, reply.code()), (400, "invalid_request"));
    assert!(reply.body["detail"].as_str().unwrap().contains("text"));
    let reply = server
        .send(server.get("/v1/note").bearer_auth(ann.clone()))
        .await;
    assert_eq!(reply.status, 404, "nothing was stored");
    assert_eq!(server.send(put("a\tb")).await.status, 200);
}

/// The document names what a client of the note routes can meet besides success.
async fn the_document_lists_the_note_routes_problems(backend: Backend) {
    let server = start(backend).await;
    let doc = server.send(server.get("/openapi.json")).await.body;
    let put = &doc["paths"]["/v1/note"]["put"]["responses"];
    for (status, code) in [
        ("400", "invalid_request"),
        ("401", "unauthenticated"),
        ("403", "csrf_rejected"),
        ("403", "email_not_verified"),
        ("413", "payload_too_large"),
    ] {
        let description = put[status]["description"].as_str().unwrap_or_default();
        assert!(description.contains(code), "{status} {code}: {put}");
    }
    let get = &doc["paths"]["/v1/note"]["get"]["responses"];
    assert!(
        get["403"]["description"]
            .as_str()
            .unwrap()
            .contains("email_not_verified")
    );
    assert!(
        !get["403"]["description"]
            .as_str()
            .unwrap()
            .contains("csrf_rejected")
    );
}

auth_skeleton::both_backends!(
    the_document_lists_the_note_routes_problems,
    a_note_with_a_nul_character_is_refused,
    each_user_reads_and_replaces_only_their_own_note,
    deleting_the_account_deletes_only_that_users_note,
);

#[actix_web::test]
async fn the_openapi_document_lists_every_route() {
    auth_skeleton::testing::check_document(app_notes::spec(), app_notes::engine())
        .await
        .unwrap();
}
