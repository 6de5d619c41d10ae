//! Email verification through real mail.

use reqwest::Method;

use crate::support::*;

async fn signup_mails_a_link_that_verifies_once(backend: Backend) {
    let (server, sink) = start_with_mail(backend, &[]).await;
    let token = bearer(&server, "ann@example.com").await;
    let mail = sink.wait_for("ann@example.com", 0).await;
    assert_eq!(mail.from, "no-reply@app.test");
    assert!(mail.subject().contains("app-test"), "{}", mail.subject());
    let link = mail
        .link(VERIFY_LINK)
        .expect("a verification link in the text part");
    assert!(
        mail.html().contains(&link),
        "the HTML part carries the same link"
    );
    assert!(mail.html().contains("app-test"));
    let secret = mail.token(VERIFY_LINK).unwrap();

    // Opening the page spends nothing.
    let page = server
        .send(server.get(&format!("/verify-email?token={secret}")))
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = String::from_utf8(page.bytes.clone()).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from other origins"
    );
    assert!(html.contains("/v1/auth/verify-email/confirm"));
    let script = server.send(server.get("/auth-assets/pages.js")).await;
    assert_eq!(script.status, 200);

    let confirmed = redeem(&server, "/v1/auth/verify-email/confirm", &secret).await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    assert_eq!(confirmed.body["user"]["email_verified"], true);
    let me = server
        .send(server.get("/v1/auth/me").bearer_auth(&token))
        .await;
    assert_eq!(me.body["user"]["email_verified"], true);

    let again = redeem(&server, "/v1/auth/verify-email/confirm", &secret).await;
    assert_problem(&again, 400, "invalid_token");
    let resend = server
        .send(
            server
                .request(Method::POST, "/v1/auth/verify-email/request")
                .bearer_auth(&token),
        )
        .await;
    assert_problem(&resend, 409, "already_verified");
}

async fn a_resent_link_works_and_unknown_tokens_do_not(backend: Backend) {
    let (server, sink) = start_with_mail(backend, &[]).await;
    let token = bearer(&server, "bob@example.com").await;
    sink.wait_for("bob@example.com", 0).await;
    let resend = server
        .send(
            server
                .request(Method::POST, "/v1/auth/verify-email/request")
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(resend.status, 202);
    let second = sink
        .wait_for("bob@example.com", 1)
        .await
        .token(VERIFY_LINK)
        .unwrap();
    for bogus in ["", "short", &"A".repeat(43), &format!("{second}x")] {
        assert_problem(
            &redeem(&server, "/v1/auth/verify-email/confirm", bogus).await,
            400,
            "invalid_token",
        );
    }
    assert_eq!(
        redeem(&server, "/v1/auth/verify-email/confirm", &second)
            .await
            .status,
        200
    );
    let anonymous = server
        .send(server.request(Method::POST, "/v1/auth/verify-email/request"))
        .await;
    assert_problem(&anonymous, 401, "unauthenticated");
}

async fn a_verification_link_expires_after_24_hours(backend: Backend) {
    let (server, sink) = start_with_mail(backend, &[]).await;
    bearer(&server, "cat@example.com").await;
    let secret = sink
        .wait_for("cat@example.com", 0)
        .await
        .token(VERIFY_LINK)
        .unwrap();
    server
        .clock
        .advance(std::time::Duration::from_secs(24 * 3_600));
    assert_problem(
        &redeem(&server, "/v1/auth/verify-email/confirm", &secret).await,
        400,
        "invalid_token",
    );
}

async fn lifetimes_are_configurable(backend: Backend) {
    let (server, sink) = start_with_mail(backend, &[("EMAIL_VERIFY_TTL", "10m")]).await;
    bearer(&server, "dan@example.com").await;
    let mail = sink.wait_for("dan@example.com", 0).await;
    assert!(mail.text().contains("10 minutes"), "{}", mail.text());
    server.clock.advance(std::time::Duration::from_secs(600));
    let secret = mail.token(VERIFY_LINK).unwrap();
    assert_problem(
        &redeem(&server, "/v1/auth/verify-email/confirm", &secret).await,
        400,
        "invalid_token",
    );
}

async fn two_concurrent_redemptions_of_one_token_succeed_once(backend: Backend) {
    let (server, sink) = start_with_mail(backend, &[]).await;
    bearer(&server, "eve@example.com").await;
    let secret = sink
        .wait_for("eve@example.com", 0)
        .await
        .token(VERIFY_LINK)
        .unwrap();
    let attempts = (0..4).map(|_| redeem(&server, "/v1/auth/verify-email/confirm", &secret));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        3,
        "{statuses:?}"
    );
}

async fn file_transport_writes_one_eml_per_message(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let transport = format!("file:{}", dir.path().display());
    let (server, _) = start_with(backend, &[("MAIL_TRANSPORT", &transport)]).await;
    bearer(&server, "fay@example.com").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let eml = loop {
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .collect();
        if let Some(f) = files
            .iter()
            .find(|f| f.path().extension().is_some_and(|e| e == "eml"))
        {
            break std::fs::read_to_string(f.path()).unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "no .eml written");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(eml.contains("To: fay@example.com"), "{eml}");
    assert!(eml.contains("multipart/alternative"));
}

async fn a_token_works_only_for_its_own_purpose(backend: Backend) {
    let (server, sink) = start_with_mail(backend, &[]).await;
    bearer(&server, "gus@example.com").await;
    let verify = sink
        .wait_for("gus@example.com", 0)
        .await
        .token(VERIFY_LINK)
        .unwrap();
    server
        .send(server.post(
            "/v1/auth/password/forgot",
            &serde_json::json!({"email": "gus@example.com"}),
        ))
        .await;
    let reset = sink
        .wait_for("gus@example.com", 1)
        .await
        .token(RESET_LINK)
        .unwrap();

    assert_problem(
        &redeem(&server, "/v1/auth/email/confirm", &verify).await,
        400,
        "invalid_token",
    );
    assert_problem(
        &redeem(&server, "/v1/auth/verify-email/confirm", &reset).await,
        400,
        "invalid_token",
    );
    let reset_with_verify = server
        .send(server.post(
            "/v1/auth/password/reset",
            &serde_json::json!({"token": verify, "new_password": "violet-harbor-93"}),
        ))
        .await;
    assert_problem(&reset_with_verify, 400, "invalid_token");
    // Each still works where it belongs: a foreign use spent nothing.
    assert_eq!(
        redeem(&server, "/v1/auth/verify-email/confirm", &verify)
            .await
            .status,
        200
    );
}

auth_skeleton::both_backends!(
    a_token_works_only_for_its_own_purpose,
    signup_mails_a_link_that_verifies_once,
    a_resent_link_works_and_unknown_tokens_do_not,
    a_verification_link_expires_after_24_hours,
    lifetimes_are_configurable,
    two_concurrent_redemptions_of_one_token_succeed_once,
    file_transport_writes_one_eml_per_message,
);
