//! Sign-up, login and the account routes.

use auth_skeleton::testing::Backend;
use serde_json::json;

use crate::support::*;

async fn signup_with_bearer_returns_a_working_token(backend: Backend) {
    let server = start(backend).await;
    let reply = server
        .send(server.post(
            "/v1/auth/signup",
            &json!({"email": " Ann@Example.com ", "password": TEST_PASSWORD, "session": "bearer", "device_name": "Pixel 9"}),
        ))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert!(
        reply.set_cookies().is_empty(),
        "a bearer sign-up sets no cookie"
    );
    assert_eq!(reply.body["user"]["email"], "ann@example.com");
    assert_eq!(reply.body["user"]["email_verified"], false);
    assert_eq!(reply.body["session"]["current"], true);
    assert_eq!(reply.body["session"]["device_name"], "Pixel 9");
    let token = reply.body["token"].as_str().unwrap();

    let me = server
        .send(server.get("/v1/auth/me").bearer_auth(token))
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"], reply.body["user"]);
    assert_eq!(me.body["session"]["id"], reply.body["session"]["id"]);
}

auth_skeleton::both_backends!(signup_with_bearer_returns_a_working_token);
