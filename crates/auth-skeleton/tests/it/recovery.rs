//! Forgot-password and reset through real mail.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

async fn forgot(server: &auth_skeleton::testing::TestServer, email: &str) -> Reply {
    server
        .send(server.post("/v1/auth/password/forgot", &json!({ "email": email })))
        .await
}

async fn reset(server: &auth_skeleton::testing::TestServer, token: &str, password: &str) -> Reply {
    server
        .send(server.post(
            "/v1/auth/password/reset",
            &json!({"token": token, "new_password": password}),
        ))
        .await
}

async fn known_and_unknown_addresses_get_the_same_answer_and_only_real_accounts_get_mail(
    backend: Backend,
) {
    let (server, sink) = start_with_mail(backend, &[]).await;
    bearer(&server, "ann@example.com").await;
    sink.wait_for("ann@example.com", 0).await; // verification
    let known = forgot(&server, " ANN@Example.com ").await;
    let unknown = forgot(&server, "nobody@example.com").await;
    assert_eq!((known.status, unknown.status), (202, 202));
    assert_eq!(known.bytes, unknown.bytes);
    assert_eq!(
        known.headers.get("content-length"),
        unknown.headers.get("content-length")
    );
    let mail = sink.wait_for("ann@example.com", 1).await;
    assert_eq!(
        mail.to,
        vec!["ann@example.com"],
        "mail goes to the stored address"
    );
    assert!(mail.link(RESET_LINK).is_some(), "{}", mail.text());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count_for("nobody@example.com"), 0);
    assert_problem(
        &forgot(&server, "not an address").await,
        400,
        "invalid_email",
    );
}

async fn a_reset_sets_the_password_verifies_and_signs_everyone_out(backend: Backend) {
    let (server, sink) = start_with_mail(backend, &[]).await;
    let session = bearer(&server, "bob@example.com").await;
    forgot(&server, "bob@example.com").await;
    let first = sink
        .wait_for("bob@example.com", 1)
        .await
        .token(RESET_LINK)
        .unwrap();
    forgot(&server, "bob@example.com").await;
    let second = sink
        .wait_for("bob@example.com", 2)
        .await
        .token(RESET_LINK)
        .unwrap();

    let page = server
        .send(server.get(&format!("/reset-password?token={second}")))
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));

    assert_problem(
        &reset(&server, &second, "password1").await,
        400,
        "weak_password",
    );
    assert_eq!(
        reset(&server, &second, "violet-harbor-93").await.status,
        204,
        "a weak try does not burn the link"
    );
    assert_eq!(
        me_status(&server, &session).await,
        401,
        "every session is revoked"
    );
    assert_problem(
        &reset(&server, &second, "violet-harbor-94").await,
        400,
        "invalid_token",
    );
    assert_problem(
        &reset(&server, &first, "violet-harbor-95").await,
        400,
        "invalid_token",
    );
    assert_eq!(
        login(&server, "bob@example.com", TEST_PASSWORD)
            .await
            .status,
        401
    );
    let signed_in = login(&server, "bob@example.com", "violet-harbor-93").await;
    assert_eq!(signed_in.status, 200);
    assert_eq!(
        signed_in.body["user"]["email_verified"], true,
        "the inbox was proven"
    );
    let notice = sink.wait_for("bob@example.com", 3).await;
    assert!(notice.subject().contains("reset"), "{}", notice.subject());
    assert!(notice.link(RESET_LINK).is_none());
}

async fn a_reset_link_expires_after_an_hour(backend: Backend) {
    let (server, sink) = start_with_mail(backend, &[]).await;
    bearer(&server, "cat@example.com").await;
    forgot(&server, "cat@example.com").await;
    let token = sink
        .wait_for("cat@example.com", 1)
        .await
        .token(RESET_LINK)
        .unwrap();
    server.clock.advance(Duration::from_secs(3_600));
    assert_problem(
        &reset(&server, &token, "violet-harbor-93").await,
        400,
        "invalid_token",
    );
}

async fn concurrent_resets_with_one_token_succeed_once(backend: Backend) {
    let (server, sink) = start_with_mail(backend, &[]).await;
    bearer(&server, "dan@example.com").await;
    forgot(&server, "dan@example.com").await;
    let token = sink
        .wait_for("dan@example.com", 1)
        .await
        .token(RESET_LINK)
        .unwrap();
    let passwords = ["violet-harbor-91", "violet-harbor-92", "violet-harbor-93"];
    let replies =
        futures_util::future::join_all(passwords.iter().map(|p| reset(&server, &token, p))).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
    let winner = passwords[statuses.iter().position(|s| *s == 204).unwrap()];
    assert_eq!(login(&server, "dan@example.com", winner).await.status, 200);
}

async fn links_ignore_the_host_the_request_came_with(backend: Backend) {
    let (server, sink) = start_with_mail(backend, &[]).await;
    bearer(&server, "eve@example.com").await;
    let reply = server
        .send(
            server
                .post(
                    "/v1/auth/password/forgot",
                    &json!({"email": "eve@example.com"}),
                )
                .header("host", "evil.example")
                .header("x-forwarded-host", "evil.example")
                .header("forwarded", "host=evil.example"),
        )
        .await;
    assert_eq!(reply.status, 202);
    let mail = sink.wait_for("eve@example.com", 1).await;
    assert!(mail.link(RESET_LINK).is_some(), "{}", mail.text());
    assert!(!mail.text().contains("evil.example") && !mail.html().contains("evil.example"));
}

async fn a_password_change_kills_pending_reset_links_and_sends_a_notice(backend: Backend) {
    let (server, sink) = start_with_mail(backend, &[]).await;
    let session = bearer(&server, "fay@example.com").await;
    forgot(&server, "fay@example.com").await;
    let token = sink
        .wait_for("fay@example.com", 1)
        .await
        .token(RESET_LINK)
        .unwrap();
    let change = server
        .send(
            server
                .post(
                    "/v1/auth/password/change",
                    &json!({"current_password": TEST_PASSWORD, "new_password": "violet-harbor-93"}),
                )
                .bearer_auth(&session),
        )
        .await;
    assert_eq!(change.status, 204);
    assert_problem(
        &reset(&server, &token, "violet-harbor-94").await,
        400,
        "invalid_token",
    );
    let notice = sink.wait_for("fay@example.com", 2).await;
    assert!(notice.subject().contains("changed"), "{}", notice.subject());
}

auth_skeleton::both_backends!(
    known_and_unknown_addresses_get_the_same_answer_and_only_real_accounts_get_mail,
    a_reset_sets_the_password_verifies_and_signs_everyone_out,
    a_reset_link_expires_after_an_hour,
    concurrent_resets_with_one_token_succeed_once,
    links_ignore_the_host_the_request_came_with,
    a_password_change_kills_pending_reset_links_and_sends_a_notice,
);
