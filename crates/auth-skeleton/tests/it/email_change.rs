//! Email change through real mail.

use serde_json::json;

use crate::support::*;

async fn request_change(
    server: &auth_skeleton::testing::TestServer,
    token: &str,
    new_email: &str,
    password: &str,
) -> Reply {
    server
        .send(
            server
                .post(
                    "/v1/auth/email/change",
                    &json!({"new_email": new_email, "password": password}),
                )
                .bearer_auth(token),
        )
        .await
}

async fn a_change_takes_effect_only_when_the_new_address_confirms(backend: Backend) {
    // Four requests in a row: more than the default email-change limit allows.
    let (server, sink) =
        start_with_mail(backend, &[("RATE_LIMIT_EMAIL_CHANGE_USER", "10/hour")]).await;
    let session = bearer(&server, "ann@example.com").await;
    bearer(&server, "taken@example.com").await;
    // A reset link pending before the change must not survive it.
    server
        .send(server.post(
            "/v1/auth/password/forgot",
            &json!({"email": "ann@example.com"}),
        ))
        .await;
    let reset_token = sink
        .wait_for("ann@example.com", 1)
        .await
        .token(RESET_LINK)
        .unwrap();

    assert_problem(
        &request_change(&server, &session, "new@example.com", "wrong-password").await,
        401,
        "invalid_credentials",
    );
    assert_problem(
        &request_change(&server, &session, "nonsense", TEST_PASSWORD).await,
        400,
        "invalid_email",
    );
    assert_problem(
        &request_change(&server, &session, "Taken@example.com", TEST_PASSWORD).await,
        409,
        "email_taken",
    );
    assert_eq!(
        request_change(&server, &session, "New@Example.com", TEST_PASSWORD)
            .await
            .status,
        202
    );

    let confirmation = sink.wait_for("new@example.com", 0).await;
    let token = confirmation
        .token(CONFIRM_LINK)
        .expect("a confirmation link");
    let notice = sink.wait_for("ann@example.com", 2).await;
    assert!(
        notice.text().contains("new@example.com"),
        "{}",
        notice.text()
    );
    assert!(
        notice.link(CONFIRM_LINK).is_none(),
        "the old address gets no link"
    );

    let me = server
        .send(server.get("/v1/auth/me").bearer_auth(&session))
        .await;
    assert_eq!(
        me.body["user"]["email"], "ann@example.com",
        "nothing changes before confirmation"
    );
    let page = server
        .send(server.get(&format!("/confirm-email?token={token}")))
        .await;
    assert_eq!(page.status, 200);

    let confirmed = redeem(&server, "/v1/auth/email/confirm", &token).await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    assert_eq!(confirmed.body["user"]["email"], "new@example.com");
    assert_eq!(confirmed.body["user"]["email_verified"], true);
    assert_problem(
        &redeem(&server, "/v1/auth/email/confirm", &token).await,
        400,
        "invalid_token",
    );
    assert_eq!(
        login(&server, "new@example.com", TEST_PASSWORD)
            .await
            .status,
        200
    );
    assert_eq!(
        login(&server, "ann@example.com", TEST_PASSWORD)
            .await
            .status,
        401
    );
    let changed = sink.wait_for("ann@example.com", 3).await;
    assert!(
        changed.subject().contains("changed"),
        "{}",
        changed.subject()
    );
    let reset = server
        .send(server.post(
            "/v1/auth/password/reset",
            &json!({"token": reset_token, "new_password": "violet-harbor-93"}),
        ))
        .await;
    assert_problem(&reset, 400, "invalid_token");
}

async fn an_address_taken_meanwhile_is_refused_at_confirmation(backend: Backend) {
    let (server, sink) = start_with_mail(backend, &[]).await;
    let session = bearer(&server, "bob@example.com").await;
    assert_eq!(
        request_change(&server, &session, "wanted@example.com", TEST_PASSWORD)
            .await
            .status,
        202
    );
    let token = sink
        .wait_for("wanted@example.com", 0)
        .await
        .token(CONFIRM_LINK)
        .unwrap();
    bearer(&server, "wanted@example.com").await;
    assert_problem(
        &redeem(&server, "/v1/auth/email/confirm", &token).await,
        409,
        "email_taken",
    );
    let me = server
        .send(server.get("/v1/auth/me").bearer_auth(&session))
        .await;
    assert_eq!(me.body["user"]["email"], "bob@example.com");
}

async fn a_verification_link_for_a_former_address_is_invalid(backend: Backend) {
    let (server, sink) = start_with_mail(backend, &[]).await;
    let session = bearer(&server, "cat@example.com").await;
    let old_verification = sink
        .wait_for("cat@example.com", 0)
        .await
        .token(VERIFY_LINK)
        .unwrap();
    request_change(&server, &session, "kitty@example.com", TEST_PASSWORD).await;
    let token = sink
        .wait_for("kitty@example.com", 0)
        .await
        .token(CONFIRM_LINK)
        .unwrap();
    assert_eq!(
        redeem(&server, "/v1/auth/email/confirm", &token)
            .await
            .status,
        200
    );
    let reply = redeem(&server, "/v1/auth/verify-email/confirm", &old_verification).await;
    assert_problem(&reply, 400, "invalid_token");
}

auth_skeleton::both_backends!(
    a_change_takes_effect_only_when_the_new_address_confirms,
    an_address_taken_meanwhile_is_refused_at_confirmation,
    a_verification_link_for_a_former_address_is_invalid,
);
