//! The fleet's last move, on the real binaries: `app-blob` as it was on the 0.1 line (auth-skeleton
//! 0.1.1 from the registry, built from the commit in `release/moves/app-blob-0.1.toml` in a
//! scratch copy, `system_tests::app_blob_0_1`) writes a database, and the workspace's app-blob,
//! moved to the current release, takes it over. What the old binary wrote itself (accounts,
//! sessions, a save, pending verification, reset and email-change links) is read by the new
//! one as the 0.2 upgrade notes promise, on SQLite and on PostgreSQL; and a link asked of an old
//! instance still running beside a new one dies with the owner's reclaim (ASK-2026-0004).

use std::path::Path;
use std::sync::OnceLock;

use auth_skeleton::AUTH_SKELETON_VERSION;
use auth_skeleton::testing::{Backend, ServiceProcess, SmtpSink, TEST_PASSWORD, TestDatabase};
use reqwest::Method;
use serde_json::json;
use system_tests::app_blob_0_1::OldAppBlob;
use system_tests::binary;

use crate::attacks::{PUBLIC_URL, token_of};
use crate::http::{call, login, me, put_save, signup};

const NEW_PASSWORD: &str = "moved-lighthouse-42";
const SAVE: &[u8] = b"level 7, 3 lives, \x00\xffbinary tail";

/// app-blob's binary as it was on the 0.1 line, built once for every test of this process
/// (nothing to do when `cargo build-app-blob-0-1` ran before).
fn app_blob_0_1() -> &'static str {
    static OLD: OnceLock<Result<String, String>> = OnceLock::new();
    let built = OLD.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let binary = OldAppBlob::prepare(&workspace)?.build()?;
        Ok(binary.display().to_string())
    });
    match built {
        Ok(path) => path,
        Err(e) => {
            panic!("building app-blob as it was on the 0.1 line in a scratch copy failed: {e}")
        }
    }
}

async fn library_of(base: &str) -> String {
    let reply = call(base, Method::GET, "/healthz", None, None).await;
    assert_eq!(reply.body["app"], "app-blob", "{:?}", reply.body);
    reply.body["auth_skeleton"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// One database and one mail sink, shared by the old and the new binary.
struct Setting {
    database: TestDatabase,
    sink: SmtpSink,
    mail: String,
}

impl Setting {
    async fn new(backend: Backend) -> Self {
        let sink = SmtpSink::start().await;
        Self {
            database: TestDatabase::new(backend).await,
            mail: sink.url(),
            sink,
        }
    }

    fn vars(&self) -> [(&str, &str); 4] {
        [
            ("DATABASE_URL", self.database.url.as_str()),
            ("MAIL_TRANSPORT", self.mail.as_str()),
            ("PUBLIC_URL", PUBLIC_URL),
            ("COOKIE_SECURE", "false"),
        ]
    }
}

async fn a_database_written_by_app_blob_0_1_1_is_taken_over_by_0_2(backend: Backend) {
    let (old_binary, new_binary) = (app_blob_0_1(), binary("app-blob"));
    let setting = Setting::new(backend).await;
    let (sink, vars) = (&setting.sink, setting.vars());

    // The 0.1.1 binary writes the database.
    let mut old = ServiceProcess::start(old_binary, &vars);
    let base = old.base_url.clone();
    assert!(library_of(&base).await.starts_with("0.1."));
    let (ann_first, _) = signup(&base, "ann@example.com").await;
    let verify = token_of(&sink.wait_for("ann@example.com", 0).await, "verify-email");
    let reply = login(&base, "ann@example.com", TEST_PASSWORD).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let ann_second = reply.body["token"].as_str().unwrap().to_owned();
    let (status, etag) = put_save(&base, &ann_first, ("if-none-match", "*"), SAVE).await;
    assert_eq!(status, 201);

    let (bob, _) = signup(&base, "bob@example.com").await;
    let body = json!({"new_email": "bob@new.test", "password": TEST_PASSWORD});
    let reply = call(
        &base,
        Method::POST,
        "/v1/auth/email/change",
        Some(&bob),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let change = token_of(&sink.wait_for("bob@new.test", 0).await, "confirm-email");

    signup(&base, "cat@example.com").await;
    let body = json!({"email": "cat@example.com"});
    let reply = call(
        &base,
        Method::POST,
        "/v1/auth/password/forgot",
        None,
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 202);
    let reset = token_of(&sink.wait_for("cat@example.com", 1).await, "reset-password");
    assert!(old.terminate().success(), "{}", old.logs());

    // The workspace's binary, on the current release, migrates it at start and serves it.
    let new = ServiceProcess::start(&new_binary, &vars);
    let base = new.base_url.clone();
    assert_eq!(library_of(&base).await, AUTH_SKELETON_VERSION);

    // Sessions, the password and the save written by 0.1.1.
    for token in [&ann_first, &ann_second] {
        let reply = me(&base, token).await;
        assert_eq!(reply.status, 200, "a 0.1.1 session: {:?}", reply.body);
        assert_eq!(reply.body["user"]["email"], "ann@example.com");
    }
    assert_eq!(
        login(&base, "ann@example.com", TEST_PASSWORD).await.status,
        200
    );
    let response = reqwest::Client::new()
        .get(format!("{base}/v1/save"))
        .bearer_auth(&ann_first)
        .send()
        .await
        .expect("the service answers");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(response.bytes().await.unwrap().as_ref(), SAVE);
    let (status, _) = put_save(&base, &ann_first, ("if-match", &etag), SAVE).await;
    assert_eq!(status, 200, "a save replaced on the upgraded schema");

    // Mailed links: verification and reset links still work; a pending email change ends
    // (migration 0004, as the upgrade notes say).
    let body = json!({"token": verify});
    let reply = call(
        &base,
        Method::POST,
        "/v1/auth/verify-email/confirm",
        None,
        Some(body),
    )
    .await;
    assert_eq!(
        reply.status, 200,
        "a 0.1.1 verification link: {:?}",
        reply.body
    );
    assert_eq!(reply.body["user"]["email_verified"], true);

    let body = json!({"token": reset, "new_password": NEW_PASSWORD});
    let reply = call(
        &base,
        Method::POST,
        "/v1/auth/password/reset",
        None,
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 204, "a 0.1.1 reset link: {:?}", reply.body);
    assert_eq!(
        login(&base, "cat@example.com", NEW_PASSWORD).await.status,
        200
    );

    let body = json!({"token": change});
    let reply = call(
        &base,
        Method::POST,
        "/v1/auth/email/confirm",
        None,
        Some(body),
    )
    .await;
    assert_eq!((reply.status, reply.code()), (400, "invalid_token"));
    assert_eq!(
        me(&base, &bob).await.body["user"]["email"],
        "bob@example.com"
    );
}

/// During an upgrade a 0.1.1 instance may still run beside the first 0.2 one, on the migrated
/// database. The attacker asks for the change through the old instance, the owner takes the
/// account back through the new one, and the attacker's link must be dead on both.
async fn a_link_asked_of_a_0_1_1_instance_dies_with_a_reclaim_on_a_0_2_one(backend: Backend) {
    let (old_binary, new_binary) = (app_blob_0_1(), binary("app-blob"));
    let setting = Setting::new(backend).await;
    let (sink, vars) = (&setting.sink, setting.vars());
    let old = ServiceProcess::start(old_binary, &vars);
    let new = ServiceProcess::start(&new_binary, &vars);
    let (old_base, new_base) = (old.base_url.as_str(), new.base_url.as_str());
    assert!(library_of(old_base).await.starts_with("0.1."));
    assert_eq!(library_of(new_base).await, AUTH_SKELETON_VERSION);

    for reclaim in [
        "password change",
        "revoke-others",
        "revoke one",
        "operator revoke",
    ] {
        let victim = format!("victim.{}@example.com", reclaim.replace(' ', "-"));
        let thief = format!("thief.{}@evil.test", reclaim.replace(' ', "-"));
        let (attacker, _) = signup(old_base, &victim).await;
        let body = json!({"new_email": thief, "password": TEST_PASSWORD});
        let reply = call(
            old_base,
            Method::POST,
            "/v1/auth/email/change",
            Some(&attacker),
            Some(body),
        )
        .await;
        assert_eq!(reply.status, 202, "{:?}", reply.body);
        let link = token_of(&sink.wait_for(&thief, 0).await, "confirm-email");

        let reply = login(new_base, &victim, TEST_PASSWORD).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let owner = reply.body["token"].as_str().unwrap().to_owned();
        let status = match reclaim {
            "password change" => {
                let body = json!({"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD});
                call(
                    new_base,
                    Method::POST,
                    "/v1/auth/password/change",
                    Some(&owner),
                    Some(body),
                )
                .await
                .status
            }
            "revoke-others" => {
                call(
                    new_base,
                    Method::POST,
                    "/v1/auth/sessions/revoke-others",
                    Some(&owner),
                    None,
                )
                .await
                .status
            }
            "revoke one" => {
                let sessions = call(
                    new_base,
                    Method::GET,
                    "/v1/auth/sessions",
                    Some(&owner),
                    None,
                )
                .await;
                let theirs = sessions.body["sessions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["current"] == false)
                    .expect("the attacker's session")["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let path = format!("/v1/auth/sessions/{theirs}");
                call(new_base, Method::DELETE, &path, Some(&owner), None)
                    .await
                    .status
            }
            _ => {
                let (status, stderr) =
                    ServiceProcess::run(&new_binary, &["sessions", "revoke", &victim], &vars);
                assert!(status.success(), "{stderr}");
                204
            }
        };
        assert_eq!(status, 204, "{reclaim}");

        for base in [old_base, new_base] {
            let body = json!({"token": link});
            let reply = call(
                base,
                Method::POST,
                "/v1/auth/email/confirm",
                None,
                Some(body),
            )
            .await;
            assert_eq!(
                (reply.status, reply.code()),
                (400, "invalid_token"),
                "after {reclaim} on 0.2, the link asked of 0.1.1 worked on {base}: {:?}",
                reply.body
            );
        }
    }
}

auth_skeleton::both_backends!(
    a_database_written_by_app_blob_0_1_1_is_taken_over_by_0_2,
    a_link_asked_of_a_0_1_1_instance_dies_with_a_reclaim_on_a_0_2_one,
);
