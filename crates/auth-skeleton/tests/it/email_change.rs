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

/// An email-change link written without a security stamp, as the 0.1 line writes them (for
/// instance by a 0.1 instance still running beside a 0.2 one during an upgrade): a credential
/// event deletes it too, whoever may be left to accept it.
async fn an_unstamped_change_link_dies_with_every_credential_event(backend: Backend) {
    let server = start(backend).await;
    let events: [(&str, &str, Option<serde_json::Value>); 3] = [
        ("POST", "/v1/auth/sessions/revoke-others", None),
        (
            "POST",
            "/v1/auth/password/change",
            Some(json!({"current_password": TEST_PASSWORD, "new_password": "another-fine-key-93"})),
        ),
        ("DELETE", "/v1/auth/email/change", None),
    ];
    for (n, (method, path, body)) in events.into_iter().enumerate() {
        let (token, user_id) = server.signup_bearer(&format!("owner{n}@example.com")).await;
        let now = server.clock.now_ms();
        for (hash, purpose) in [
            ([n as u8; 32], "change_email"),
            ([100 + n as u8; 32], "reset_password"),
        ] {
            auth_skeleton::execute_db!(
                server.db,
                sqlx::query(
                    "INSERT INTO auth_mailed_tokens
                         (token_hash, purpose, user_id, email, created_at, expires_at)
                     VALUES ($1, $2, $3, 'thief@example.com', $4, $5)",
                )
                .bind(hash.to_vec())
                .bind(purpose)
                .bind(&user_id)
                .bind(now)
                .bind(now + 3_600_000)
            )
            .unwrap();
        }
        let mut request = server.request(method.parse().unwrap(), path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = server.send(request.bearer_auth(&token)).await;
        assert_eq!(reply.status, 204, "{path}: {:?}", reply.body);
        let left: Vec<String> = auth_skeleton::read_db!(server.db, |pool| {
            sqlx::query_scalar(
                "SELECT purpose FROM auth_mailed_tokens WHERE user_id = $1 ORDER BY purpose",
            )
            .bind(&user_id)
            .fetch_all(pool)
            .await
        })
        .unwrap();
        assert!(
            !left.iter().any(|p| p == "change_email"),
            "after {method} {path}: {left:?}"
        );
        // The verification link is not for moving the account: it stays.
        assert!(left.iter().any(|p| p == "verify_email"), "{left:?}");
    }
}

auth_skeleton::both_backends!(
    a_change_takes_effect_only_when_the_new_address_confirms,
    an_address_taken_meanwhile_is_refused_at_confirmation,
    a_verification_link_for_a_former_address_is_invalid,
    an_unstamped_change_link_dies_with_every_credential_event,
);
