//! Rate limits through HTTP: defaults, configuration, `off`, `Retry-After`, client IPs behind
//! proxies, and the reset that gets a locked-out owner back in.

use reqwest::Method;
use serde_json::json;

use crate::support::*;

fn assert_limited(reply: &Reply) {
    assert_problem(reply, 429, "rate_limited");
    let retry: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(retry >= 1, "{retry}");
}

async fn login_attempts_per_email_are_limited_the_same_for_known_and_unknown(backend: Backend) {
    let server = start(backend).await;
    bearer(&server, "ann@example.com").await;
    for email in ["ann@example.com", "nobody@example.com"] {
        for attempt in 1..=8 {
            let reply = login(&server, email, "wrong-password-1").await;
            assert_eq!(reply.status, 401, "attempt {attempt} for {email}");
        }
    }
    let hashes = server.auth.hasher().computations_started();
    let known = login(&server, "ANN@example.com", TEST_PASSWORD).await;
    let unknown = login(&server, "nobody@example.com", "wrong-password-1").await;
    assert_limited(&known);
    assert_limited(&unknown);
    for field in ["type", "title", "status", "code"] {
        assert_eq!(
            known.body[field], unknown.body[field],
            "a refusal says nothing about the account"
        );
    }
    assert_eq!(
        server.auth.hasher().computations_started(),
        hashes,
        "refused attempts are not hashed"
    );
}

async fn login_attempts_per_ip_are_limited_and_configurable(backend: Backend) {
    let (server, _) = start_with(
        backend,
        &[
            ("RATE_LIMIT_LOGIN_IP", "3/hour"),
            ("RATE_LIMIT_LOGIN_EMAIL", "off"),
        ],
    )
    .await;
    for i in 0..3 {
        assert_eq!(
            login(&server, &format!("u{i}@example.com"), "wrong-password-1")
                .await
                .status,
            401
        );
    }
    assert_limited(&login(&server, "u9@example.com", "wrong-password-1").await);
}

async fn a_limit_can_be_turned_off(backend: Backend) {
    let (server, _) = start_with(
        backend,
        &[
            ("RATE_LIMIT_LOGIN_IP", "off"),
            ("RATE_LIMIT_LOGIN_EMAIL", "off"),
        ],
    )
    .await;
    for _ in 0..25 {
        assert_eq!(
            login(&server, "ann@example.com", "wrong-password-1")
                .await
                .status,
            401
        );
    }
}

async fn attempt(server: &auth_skeleton::testing::TestServer, forwarded: &str) -> Reply {
    server
        .send(
            server
                .post(
                    "/v1/auth/login",
                    &json!({"email": "a@example.com", "password": "wrong-password-1"}),
                )
                .header("x-forwarded-for", forwarded.to_owned()),
        )
        .await
}

async fn forwarded_for_is_believed_only_from_trusted_proxies(backend: Backend) {
    let vars = [
        ("RATE_LIMIT_LOGIN_IP", "2/hour"),
        ("RATE_LIMIT_LOGIN_EMAIL", "off"),
    ];

    // Untrusted: rotating the header does not escape the peer's limit.
    let (server, _) = start_with(backend, &vars).await;
    assert_eq!(attempt(&server, "198.51.100.1").await.status, 401);
    assert_eq!(attempt(&server, "198.51.100.2").await.status, 401);
    assert_limited(&attempt(&server, "198.51.100.3").await);

    // Trusted loopback proxy: the rightmost untrusted address is the client.
    let mut trusted = vars.to_vec();
    trusted.push(("TRUSTED_PROXIES", "127.0.0.1/32"));
    let (server, _) = start_with(backend, &trusted).await;
    assert_eq!(attempt(&server, "6.6.6.6, 198.51.100.1").await.status, 401);
    assert_eq!(attempt(&server, "7.7.7.7, 198.51.100.1").await.status, 401);
    assert_limited(&attempt(&server, "8.8.8.8, 198.51.100.1").await);
    assert_eq!(
        attempt(&server, "198.51.100.2").await.status,
        401,
        "another client has its own limit"
    );
}

async fn a_locked_out_owner_gets_back_in_through_a_reset(backend: Backend) {
    let (server, sink) = start_with_mail(backend, &[]).await;
    bearer(&server, "bob@example.com").await;
    for _ in 0..8 {
        login(&server, "bob@example.com", "attackers-guess-1").await;
    }
    assert_limited(&login(&server, "bob@example.com", TEST_PASSWORD).await);

    let forgot = server
        .send(server.post(
            "/v1/auth/password/forgot",
            &json!({"email": "bob@example.com"}),
        ))
        .await;
    assert_eq!(
        forgot.status, 202,
        "reset still works while login is limited"
    );
    let token = sink
        .wait_for("bob@example.com", 1)
        .await
        .token(RESET_LINK)
        .unwrap();
    let reset = server
        .send(server.post(
            "/v1/auth/password/reset",
            &json!({"token": token, "new_password": "violet-harbor-93"}),
        ))
        .await;
    assert_eq!(reset.status, 204);
    assert_eq!(
        login(&server, "bob@example.com", "violet-harbor-93")
            .await
            .status,
        200,
        "the reset cleared the limit"
    );
}

/// Reset links mailed to an address so far.
async fn reset_links(server: &auth_skeleton::testing::TestServer) -> i64 {
    auth_skeleton::read_db!(server.db, |pool| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM auth_mailed_tokens WHERE purpose = 'reset_password'",
        )
        .fetch_one(pool)
        .await
    })
    .unwrap()
}

/// Past an address's own limit, forgot still answers `202` (so nobody can make the owner's
/// own request fail by asking first), alike for unknown addresses, and mails nothing more.
async fn past_the_per_address_limit_forgot_answers_202_and_mails_nothing(backend: Backend) {
    let server = start(backend).await;
    bearer(&server, "cat@example.com").await;
    let forgot = |email: &'static str| {
        server.send(server.post("/v1/auth/password/forgot", &json!({ "email": email })))
    };
    for _ in 0..2 {
        assert_eq!(forgot("cat@example.com").await.status, 202);
        assert_eq!(forgot("ghost@example.com").await.status, 202);
    }
    // The background tasks of the two allowed requests have written their links.
    for _ in 0..200 {
        if reset_links(&server).await == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(reset_links(&server).await, 2);
    let known = forgot("cat@example.com").await;
    let unknown = forgot("ghost@example.com").await;
    assert_eq!((known.status, unknown.status), (202, 202));
    assert_eq!(known.body, unknown.body);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(reset_links(&server).await, 2, "no mail past the limit");
}

/// The per-IP limit of forgot still answers `429`.
async fn forgot_requests_are_limited_per_ip(backend: Backend) {
    let (server, _) = start_with(backend, &[("RATE_LIMIT_FORGOT_IP", "2/minute")]).await;
    let forgot = |email: &'static str| {
        server.send(server.post("/v1/auth/password/forgot", &json!({ "email": email })))
    };
    assert_eq!(forgot("a@example.com").await.status, 202);
    assert_eq!(forgot("b@example.com").await.status, 202);
    assert_limited(&forgot("c@example.com").await);
}

async fn signups_per_ip_are_limited(backend: Backend) {
    let (server, _) = start_with(backend, &[("RATE_LIMIT_SIGNUP_IP", "2/minute")]).await;
    assert_eq!(
        signup(&server, "a1@example.com", "bearer").await.status,
        201
    );
    assert_eq!(
        signup(&server, "a2@example.com", "bearer").await.status,
        201
    );
    assert_limited(&signup(&server, "a3@example.com", "bearer").await);
}

async fn mail_sending_routes_of_a_user_are_limited(backend: Backend) {
    let server = start(backend).await;
    let token = bearer(&server, "dan@example.com").await;
    for _ in 0..3 {
        let reply = server
            .send(
                server
                    .request(Method::POST, "/v1/auth/verify-email/request")
                    .bearer_auth(&token),
            )
            .await;
        assert_eq!(reply.status, 202);
    }
    assert_limited(
        &server
            .send(
                server
                    .request(Method::POST, "/v1/auth/verify-email/request")
                    .bearer_auth(&token),
            )
            .await,
    );

    let change = |n: u32| {
        server.send(
            server
                .post(
                    "/v1/auth/email/change",
                    &json!({"new_email": format!("dan{n}@example.com"), "password": TEST_PASSWORD}),
                )
                .bearer_auth(&token),
        )
    };
    for n in 0..3 {
        assert_eq!(change(n).await.status, 202);
    }
    assert_limited(&change(9).await);
}

auth_skeleton::both_backends!(
    login_attempts_per_email_are_limited_the_same_for_known_and_unknown,
    login_attempts_per_ip_are_limited_and_configurable,
    a_limit_can_be_turned_off,
    forwarded_for_is_believed_only_from_trusted_proxies,
    a_locked_out_owner_gets_back_in_through_a_reset,
    past_the_per_address_limit_forgot_answers_202_and_mails_nothing,
    forgot_requests_are_limited_per_ip,
    signups_per_ip_are_limited,
    mail_sending_routes_of_a_user_are_limited,
);
