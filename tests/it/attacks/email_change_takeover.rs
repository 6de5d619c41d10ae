//! Account takeover through a pending email change.
//!
//! The attacker holds the account for a while (signed up with the victim's address, or knows a
//! stolen password), asks to move it to an address of their own and keeps the link. The owner
//! takes the account back by a credential event; the attacker's link must be dead by then.
//!
//! Replayed against app-rows and app-blob, both on the current release since app-blob's move
//! (ASK-2026-0001 in `release/advisories.toml`). An instance of app-blob 0.1.1 running beside a
//! current one is `mixed_fleet.rs`'s (ASK-2026-0004).

use auth_skeleton::AUTH_SKELETON_VERSION;
use auth_skeleton::testing::{Backend, ServiceProcess, TEST_PASSWORD};
use reqwest::Method;
use serde_json::json;

use super::{MailedService, token_of};
use crate::http::{call, signup};

const NEW_PASSWORD: &str = "reclaimed-harbour-88";

/// What the owner does to take the account back.
#[derive(Debug, Clone, Copy)]
enum Reclaim {
    /// Forgot password, then the reset link.
    PasswordReset,
    /// A password change from a session of the owner's.
    PasswordChange,
    /// "Sign out everywhere else".
    RevokeOthers,
    /// Revoking the attacker's session by its id.
    RevokeOne,
    /// An operator's `sessions revoke EMAIL`.
    OperatorRevoke,
    /// `DELETE /v1/auth/email/change`.
    CancelChange,
}

const RECLAIMS: [Reclaim; 6] = [
    Reclaim::PasswordReset,
    Reclaim::PasswordChange,
    Reclaim::RevokeOthers,
    Reclaim::RevokeOne,
    Reclaim::OperatorRevoke,
    Reclaim::CancelChange,
];

async fn login(base: &str, email: &str, password: &str) -> String {
    let reply = crate::http::login(base, email, password).await;
    assert_eq!(reply.status, 200, "login {email}: {:?}", reply.body);
    reply.body["token"].as_str().unwrap().to_owned()
}

async fn a_pending_email_change_dies_with_every_credential_event(backend: Backend) {
    for app in ["app-rows", "app-blob"] {
        the_takeover_is_refused_by(app, backend).await;
    }
}

async fn the_takeover_is_refused_by(app: &str, backend: Backend) {
    let mailed = MailedService::start_app(app, backend, &[]).await;
    let (sink, base) = (&mailed.sink, mailed.base());
    let health = call(base, Method::GET, "/healthz", None, None).await;
    assert_eq!(
        health.body["auth_skeleton"], AUTH_SKELETON_VERSION,
        "{app}: {:?}",
        health.body
    );

    for (n, reclaim) in RECLAIMS.into_iter().enumerate() {
        let victim = format!("victim{n}@example.com");
        let attacker_inbox = format!("attacker{n}@evil.test");
        // The attacker holds a session of the account (signed up with the victim's address).
        let (attacker_token, _) = signup(base, &victim).await;
        let reply = call(
            base,
            Method::POST,
            "/v1/auth/email/change",
            Some(&attacker_token),
            Some(json!({"new_email": attacker_inbox, "password": TEST_PASSWORD})),
        )
        .await;
        assert_eq!(reply.status, 202, "{reclaim:?}: {:?}", reply.body);
        let stolen = token_of(&sink.wait_for(&attacker_inbox, 0).await, "confirm-email");

        // The notice to the owner's address says how to stop the change.
        let notice = sink.wait_for(&victim, 1).await;
        assert!(
            notice.text().contains("cancel"),
            "the notice says how to cancel: {}",
            notice.text()
        );

        // The owner takes the account back.
        match reclaim {
            Reclaim::PasswordReset => {
                let token = mailed.reset_link(&victim, 2).await;
                let reply = call(
                    base,
                    Method::POST,
                    "/v1/auth/password/reset",
                    None,
                    Some(json!({"token": token, "new_password": NEW_PASSWORD})),
                )
                .await;
                assert_eq!(reply.status, 204, "{:?}", reply.body);
            }
            Reclaim::PasswordChange => {
                let owner = login(base, &victim, TEST_PASSWORD).await;
                let reply = call(
                    base,
                    Method::POST,
                    "/v1/auth/password/change",
                    Some(&owner),
                    Some(json!({"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD})),
                )
                .await;
                assert_eq!(reply.status, 204, "{:?}", reply.body);
            }
            Reclaim::RevokeOthers => {
                let owner = login(base, &victim, TEST_PASSWORD).await;
                let reply = call(
                    base,
                    Method::POST,
                    "/v1/auth/sessions/revoke-others",
                    Some(&owner),
                    None,
                )
                .await;
                assert_eq!(reply.status, 204, "{:?}", reply.body);
            }
            Reclaim::RevokeOne => {
                let owner = login(base, &victim, TEST_PASSWORD).await;
                let sessions =
                    call(base, Method::GET, "/v1/auth/sessions", Some(&owner), None).await;
                let theirs = sessions.body["sessions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["current"] == false)
                    .expect("the attacker's session is listed")["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let path = format!("/v1/auth/sessions/{theirs}");
                let reply = call(base, Method::DELETE, &path, Some(&owner), None).await;
                assert_eq!(reply.status, 204, "{:?}", reply.body);
            }
            Reclaim::OperatorRevoke => {
                let (status, stderr) = ServiceProcess::run(
                    &mailed.binary,
                    &["sessions", "revoke", &victim],
                    &mailed.vars(),
                );
                assert!(status.success(), "{stderr}");
            }
            Reclaim::CancelChange => {
                let owner = login(base, &victim, TEST_PASSWORD).await;
                let reply = call(
                    base,
                    Method::DELETE,
                    "/v1/auth/email/change",
                    Some(&owner),
                    None,
                )
                .await;
                assert_eq!(reply.status, 204, "{:?}", reply.body);
            }
        }

        // The attacker's link no longer moves the account.
        let reply = call(
            base,
            Method::POST,
            "/v1/auth/email/confirm",
            None,
            Some(json!({"token": stolen})),
        )
        .await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "invalid_token"),
            "{app}: after {reclaim:?} the attacker's link still worked: {:?}",
            reply.body
        );
        let password = match reclaim {
            Reclaim::PasswordReset | Reclaim::PasswordChange => NEW_PASSWORD,
            _ => TEST_PASSWORD,
        };
        let owner = login(base, &victim, password).await;
        let me = call(base, Method::GET, "/v1/auth/me", Some(&owner), None).await;
        assert_eq!(me.body["user"]["email"], victim.as_str(), "{reclaim:?}");
    }
}

/// A link of a change the owner did not interrupt still works, so the rule above is the
/// credential event's doing and not a broken confirmation route.
async fn an_uninterrupted_email_change_still_confirms(backend: Backend) {
    let mailed = MailedService::start(backend, &[]).await;
    let (sink, base) = (&mailed.sink, mailed.base());
    let (token, _) = signup(base, "ann@example.com").await;
    let reply = call(
        base,
        Method::POST,
        "/v1/auth/email/change",
        Some(&token),
        Some(json!({"new_email": "ann@new.test", "password": TEST_PASSWORD})),
    )
    .await;
    assert_eq!(reply.status, 202);
    // Signing in and out on another device is no credential event.
    let other = login(base, "ann@example.com", TEST_PASSWORD).await;
    let reply = call(base, Method::POST, "/v1/auth/logout", Some(&other), None).await;
    assert_eq!(reply.status, 204);
    let link = token_of(&sink.wait_for("ann@new.test", 0).await, "confirm-email");
    let reply = call(
        base,
        Method::POST,
        "/v1/auth/email/confirm",
        None,
        Some(json!({"token": link})),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["user"]["email"], "ann@new.test");
}

auth_skeleton::both_backends!(
    a_pending_email_change_dies_with_every_credential_event,
    an_uninterrupted_email_change_still_confirms,
);
