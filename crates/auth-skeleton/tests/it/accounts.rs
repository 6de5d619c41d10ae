//! Sign-up and login.

use std::time::Instant;

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
    assert!(token.len() >= 43, "a token of at least 256 bits");

    let me = server
        .send(server.get("/v1/auth/me").bearer_auth(token))
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"], reply.body["user"]);
    assert_eq!(me.body["session"]["id"], reply.body["session"]["id"]);
}

async fn signup_with_cookie_sets_a_host_cookie_and_no_token(backend: Backend) {
    let server = start(backend).await;
    let reply = signup(&server, "bob@example.com", "cookie").await;
    assert_eq!(reply.status, 201);
    assert!(
        reply.body.get("token").is_none(),
        "the token is only in the cookie"
    );
    let cookie = reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-session="))
        .expect("a __Host-session cookie")
        .to_owned();
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=7776000",
    ] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    let value = session_cookie(&reply);
    let me = server
        .send(
            server
                .get("/v1/auth/me")
                .header("cookie", format!("{COOKIE}={value}")),
        )
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"]["email"], "bob@example.com");
}

async fn insecure_cookies_are_named_session_without_secure(backend: Backend) {
    let (server, _) = start_with(backend, &[("COOKIE_SECURE", "false")]).await;
    let reply = signup(&server, "bob@example.com", "cookie").await;
    let cookie = reply.set_cookies()[0].to_owned();
    assert!(cookie.starts_with("session="), "{cookie}");
    assert!(
        !cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

async fn signup_refuses_bad_emails_weak_passwords_and_taken_addresses(backend: Backend) {
    let server = start(backend).await;
    let post = |body: serde_json::Value| server.send(server.post("/v1/auth/signup", &body));

    let reply = post(json!({"email": "not-an-address", "password": TEST_PASSWORD})).await;
    assert_problem(&reply, 400, "invalid_email");

    for (password, rule) in [
        ("short", "at least 8"),
        ("password1", "common"),
        ("my-carol.doe-rocks", "local part"),
    ] {
        let reply = post(json!({"email": "carol.doe@example.com", "password": password})).await;
        assert_problem(&reply, 400, "weak_password");
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(detail.contains(rule), "{detail}");
        assert!(
            !detail.contains(password),
            "the detail echoes the password: {detail}"
        );
    }

    assert_eq!(
        signup(&server, "dave@example.com", "bearer").await.status,
        201
    );
    let reply = signup(&server, "  DAVE@example.COM", "bearer").await;
    assert_problem(&reply, 409, "email_taken");
}

async fn minimum_length_is_configurable(backend: Backend) {
    let (server, _) = start_with(backend, &[("PASSWORD_MIN_LENGTH", "20")]).await;
    let reply = signup(&server, "erin@example.com", "bearer").await;
    assert_problem(&reply, 400, "weak_password");
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("at least 20")
    );
}

async fn login_opens_a_new_session_every_time(backend: Backend) {
    let server = start(backend).await;
    let first = bearer(&server, "fay@example.com").await;
    let a = login(&server, "FAY@example.com", TEST_PASSWORD).await;
    let b = server
        .send(
            server
                .post("/v1/auth/login", &json!({"email": "fay@example.com", "password": TEST_PASSWORD, "session": "bearer"}))
                .bearer_auth(&first),
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(b.status, 200);
    let ids = [&a.body["session"]["id"], &b.body["session"]["id"]];
    assert_ne!(ids[0], ids[1]);
    assert_ne!(a.body["token"], b.body["token"]);
    assert_ne!(
        b.body["token"].as_str(),
        Some(first.as_str()),
        "a presented session is never reused"
    );
    assert_eq!(
        me_status(&server, &first).await,
        200,
        "older sessions stay valid"
    );
    assert_eq!(
        me_status(&server, a.body["token"].as_str().unwrap()).await,
        200
    );
}

async fn unknown_email_and_wrong_password_answer_identically(backend: Backend) {
    let server = start(backend).await;
    bearer(&server, "gus@example.com").await;
    let before = server.auth.hasher().computations_started();
    let wrong = login(&server, "gus@example.com", "not-the-password-1").await;
    let unknown = login(&server, "nobody@example.com", "not-the-password-1").await;
    assert_problem(&wrong, 401, "invalid_credentials");
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(
        server.auth.hasher().computations_started() - before,
        2,
        "an unknown email costs the same argon2 work as a wrong password"
    );
}

async fn overlong_passwords_are_refused_before_hashing(backend: Backend) {
    let server = start(backend).await;
    bearer(&server, "hal@example.com").await;
    let overlong = "x".repeat(257);
    let before = server.auth.hasher().computations_started();
    let started = Instant::now();
    let reply = login(&server, "hal@example.com", &overlong).await;
    assert_problem(&reply, 401, "invalid_credentials");
    let reply = server
        .send(server.post(
            "/v1/auth/signup",
            &json!({"email": "ivy@example.com", "password": overlong}),
        ))
        .await;
    assert_problem(&reply, 400, "weak_password");
    assert_eq!(
        server.auth.hasher().computations_started(),
        before,
        "nothing was hashed"
    );
    // Not a timing assertion: a record of what the two refusals cost.
    eprintln!("two overlong refusals took {:?}", started.elapsed());
}

async fn login_rehashes_a_weaker_stored_hash(backend: Backend) {
    use auth_skeleton::accounts::password::{HashCost, Hasher};
    let server = start(backend).await;
    let (_, user_id) = server.signup_bearer("jan@example.com").await;
    let weak = Hasher::new(
        HashCost {
            m_kib: 8_192,
            t: 1,
            p: 1,
        },
        1,
    )
    .unwrap();
    let weak_hash = weak.hash(&TEST_PASSWORD.into()).await.unwrap();
    auth_skeleton::execute_db!(
        server.db,
        sqlx::query("UPDATE auth_users SET password_hash = $1 WHERE id = $2")
            .bind(&weak_hash)
            .bind(&user_id)
    )
    .unwrap();
    assert_eq!(
        login(&server, "jan@example.com", TEST_PASSWORD)
            .await
            .status,
        200
    );
    let stored = auth_skeleton::store::user_by_id(&server.db, &user_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored
            .password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        stored.password_hash
    );
    assert_eq!(
        login(&server, "jan@example.com", TEST_PASSWORD)
            .await
            .status,
        200
    );
}

async fn concurrent_signups_of_one_address_create_one_account(backend: Backend) {
    let server = start(backend).await;
    let attempts = (0..6).map(|_| signup(&server, "kim@example.com", "bearer"));
    let replies = futures_util::future::join_all(attempts).await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let taken = replies
        .iter()
        .filter(|r| r.status == 409 && r.code() == "email_taken")
        .count();
    assert_eq!(
        (created, taken),
        (1, 5),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
}

auth_skeleton::both_backends!(
    signup_with_bearer_returns_a_working_token,
    signup_with_cookie_sets_a_host_cookie_and_no_token,
    insecure_cookies_are_named_session_without_secure,
    signup_refuses_bad_emails_weak_passwords_and_taken_addresses,
    minimum_length_is_configurable,
    login_opens_a_new_session_every_time,
    unknown_email_and_wrong_password_answer_identically,
    overlong_passwords_are_refused_before_hashing,
    login_rehashes_a_weaker_stored_hash,
    concurrent_signups_of_one_address_create_one_account,
);
