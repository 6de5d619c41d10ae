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

/// A cursor is keyed with the service's secret key: one altered, or made by anyone without
/// the key, is refused.
async fn a_made_up_cursor_is_400(backend: Backend) {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let (server, ann) = start_signed_in(backend, &[]).await;
    let rows: Vec<_> = (0..3)
        .map(|i| row("c", &format!("a{i}"), 1_000, 0, "n", json!({})))
        .collect();
    push(&server, &ann, &rows).await;
    let cursor = pull(&server, &ann, "?limit=1").await.body["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
    // The sequence number's last byte: pretend to stand further on.
    bytes[8] ^= 1;
    let altered = URL_SAFE_NO_PAD.encode(&bytes);
    let reply = pull(&server, &ann, &format!("?since={altered}")).await;
    assert_problem(&reply, 400, "invalid_request");
    let other_key = auth_skeleton::secret_key::Keyring::ephemeral();
    // The right format for the right user, made with another key.
    let forged = app_rows::cursor::Cursor { seq: 1, epoch: 0 };
    let me = server
        .send(server.get("/v1/auth/me").bearer_auth(&ann))
        .await;
    let id = me.body["user"]["id"].as_str().unwrap();
    let reply = pull(
        &server,
        &ann,
        &format!("?since={}", forged.encode(id, &other_key)),
    )
    .await;
    assert_problem(&reply, 400, "invalid_request");
    let reply = pull(&server, &ann, &format!("?since={cursor}")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["changes"].as_array().unwrap().len(), 2);
}

auth_skeleton::both_backends!(another_users_cursor_is_400, a_made_up_cursor_is_400);
