//! A cursor is bound to the user it was issued to.

use auth_skeleton::testing::Backend;
use serde_json::json;

use crate::support::*;

async fn another_users_cursor_is_400(backend: Backend) {
    let (server, ann) = start_signed_in(backend, &[]).await;
    let (bob, _) = server.signup_bearer("bob@example.com").await;
    push(&server, &ann, &[row("c", "a1", 1_000, 0, "n", json!({}))]).await;
    let bobs: Vec<_> = (0..3)
        .map(|i| row("c", &format!("b{i}"), 1_000, 0, "n", json!({})))
        .collect();
    push(&server, &bob, &bobs).await;
    let anns_cursor = pull(&server, &ann, "").await.body["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let bobs_cursor = pull(&server, &bob, "?limit=1").await.body["cursor"]
        .as_str()
        .unwrap()
        .to_owned();

    let reply = pull(&server, &bob, &format!("?since={anns_cursor}")).await;
    assert_problem(&reply, 400, "invalid_request");
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(detail.starts_with("since:"), "{detail}");
    let reply = pull(&server, &ann, &format!("?since={bobs_cursor}")).await;
    assert_problem(&reply, 400, "invalid_request");
    // Each user's own cursor works.
    let reply = pull(&server, &bob, &format!("?since={bobs_cursor}")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["changes"].as_array().unwrap().len(), 2);
    let reply = pull(&server, &ann, &format!("?since={anns_cursor}")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

auth_skeleton::both_backends!(another_users_cursor_is_400);
