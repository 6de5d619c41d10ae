//! Credential events racing each other: confirming an email change at the same moment as the
//! owner's revoke-others or password reset must give each request a real answer (no `500` from a
//! deadlock) and leave the account consistent; and asking for an email change must not spend
//! the owner's pending reset links.

use auth_skeleton::testing::{Backend, TEST_PASSWORD};
use reqwest::Method;
use serde_json::json;

use super::{MailedService, token_of};
use crate::http::{call, login, signup};

const ROUNDS: usize = 24;

async fn confirming_a_change_while_the_owner_signs_others_out_never_fails(backend: Backend) {
    let mailed = MailedService::start(
        backend,
        &[
            ("RATE_LIMIT_SIGNUP_IP", "off"),
            ("RATE_LIMIT_LOGIN_IP", "off"),
            ("RATE_LIMIT_FORGOT_IP", "off"),
        ],
    )
    .await;
    let (sink, base, service) = (&mailed.sink, mailed.base(), &mailed.service);

    for round in 0..ROUNDS {
        let owner_email = format!("owner{round}@example.com");
        let new_email = format!("moved{round}@example.com");
        let (holder, _) = signup(base, &owner_email).await;
        let reply = call(
            base,
            Method::POST,
            "/v1/auth/email/change",
            Some(&holder),
            Some(json!({"new_email": new_email, "password": TEST_PASSWORD})),
        )
        .await;
        assert_eq!(reply.status, 202, "{:?}", reply.body);
        let change = token_of(&sink.wait_for(&new_email, 0).await, "confirm-email");
        let owner = login(base, &owner_email, TEST_PASSWORD).await.body["token"]
            .as_str()
            .unwrap()
            .to_owned();

        // Half the rounds race revoke-others, half a password reset.
        let confirm = call(
            base,
            Method::POST,
            "/v1/auth/email/confirm",
            None,
            Some(json!({"token": change})),
        );
        let (confirmed, event) = if round % 2 == 0 {
            let revoke = call(
                base,
                Method::POST,
                "/v1/auth/sessions/revoke-others",
                Some(&owner),
                None,
            );
            tokio::join!(confirm, revoke)
        } else {
            let reset = mailed.reset_link(&owner_email, 2).await;
            let reset = call(
                base,
                Method::POST,
                "/v1/auth/password/reset",
                None,
                Some(json!({"token": reset, "new_password": "a-brand-new-secret"})),
            );
            tokio::join!(confirm, reset)
        };
        assert!(
            matches!(confirmed.status, 200 | 400),
            "round {round}: confirm got {} {:?}\n{}",
            confirmed.status,
            confirmed.body,
            service.logs()
        );
        assert!(
            matches!(event.status, 204 | 400),
            "round {round}: the owner's event got {} {:?}\n{}",
            event.status,
            event.body,
            service.logs()
        );
        if round % 2 == 0 {
            assert_eq!(event.status, 204, "round {round}: revoke-others");
            let me = call(base, Method::GET, "/v1/auth/me", Some(&holder), None).await;
            assert_eq!(me.status, 401, "round {round}: the other session is out");
        }
    }
}

/// Asking to change the address (which any holder of a session and the password can) must not
/// spend the reset link the owner is about to use to take the account back.
async fn an_email_change_request_leaves_the_owners_reset_link_alive(backend: Backend) {
    let mailed = MailedService::start(backend, &[]).await;
    let (sink, base) = (&mailed.sink, mailed.base());
    let (_, _) = signup(base, "ann@example.com").await;
    let attacker = login(base, "ann@example.com", TEST_PASSWORD).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let reset = mailed.reset_link("ann@example.com", 1).await;

    let reply = call(
        base,
        Method::POST,
        "/v1/auth/email/change",
        Some(&attacker),
        Some(json!({"new_email": "thief@evil.test", "password": TEST_PASSWORD})),
    )
    .await;
    assert_eq!(reply.status, 202);
    let stolen = token_of(&sink.wait_for("thief@evil.test", 0).await, "confirm-email");

    let reply = call(
        base,
        Method::POST,
        "/v1/auth/password/reset",
        None,
        Some(json!({"token": reset, "new_password": "a-brand-new-secret"})),
    )
    .await;
    assert_eq!(
        reply.status, 204,
        "the owner's reset link: {:?}",
        reply.body
    );
    let me = call(base, Method::GET, "/v1/auth/me", Some(&attacker), None).await;
    assert_eq!(me.status, 401, "the attacker is signed out");
    let reply = call(
        base,
        Method::POST,
        "/v1/auth/email/confirm",
        None,
        Some(json!({"token": stolen})),
    )
    .await;
    assert_eq!(
        reply.status, 400,
        "the attacker's link is dead: {:?}",
        reply.body
    );
}

auth_skeleton::both_backends!(
    confirming_a_change_while_the_owner_signs_others_out_never_fails,
    an_email_change_request_leaves_the_owners_reset_link_alive,
);
