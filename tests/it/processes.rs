//! Each app binary serves on a port it chose, signs people up, shuts down cleanly on SIGTERM,
//! and refuses another app's database.

use auth_skeleton::db::Db;
use auth_skeleton::testing::{Backend, ServiceProcess, TEST_PASSWORD, TestDatabase};
use serde_json::{Value, json};
use system_tests::binary;

async fn signup(base_url: &str, email: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base_url}/v1/auth/signup"))
        .json(&json!({"email": email, "password": TEST_PASSWORD, "session": "bearer"}))
        .send()
        .await
        .expect("the service answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn the_real_binary_serves_on_port_zero_and_signs_up(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let mut service =
        ServiceProcess::start(&binary("app-rows"), &[("DATABASE_URL", &database.url)]);
    assert!(
        !service.base_url.ends_with(":0"),
        "the real port is printed: {}",
        service.base_url
    );
    let (status, body) = signup(&service.base_url, "ann@example.com").await;
    assert_eq!(status, 201, "{body:?}\n{}", service.logs());
    let token = body["token"].as_str().unwrap();
    let me = reqwest::Client::new()
        .get(format!("{}/v1/auth/me", service.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status().as_u16(), 200);
    let status = service.terminate();
    assert!(
        status.success(),
        "SIGTERM ends the service with 0: {status:?}\n{}",
        service.logs()
    );
}

const APPS: [&str; 3] = ["app-rows", "app-blob", "app-notes"];

/// The names of the database's tables, sorted.
async fn tables(url: &str) -> Vec<String> {
    let db = Db::connect(url).await.expect("the database opens");
    let names = match &db {
        Db::Sqlite(s) => {
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .fetch_all(&s.reader)
                .await
        }
        Db::Postgres(p) => {
            sqlx::query_scalar(
                "SELECT tablename::TEXT FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            )
            .fetch_all(p)
            .await
        }
    }
    .expect("the table list");
    db.close().await;
    names
}

async fn an_app_refuses_another_apps_database(backend: Backend) {
    for owner in APPS {
        let database = TestDatabase::new(backend).await;
        let vars = [("DATABASE_URL", database.url.as_str())];
        let (status, stderr) = ServiceProcess::run(&binary(owner), &["migrate"], &vars);
        assert!(status.success(), "{owner} migrate: {stderr}");
        let before = tables(&database.url).await;
        // Refused while the owner is stopped, and while it serves the same database.
        for owner_serving in [false, true] {
            let _owner = owner_serving.then(|| ServiceProcess::start(&binary(owner), &vars));
            for intruder in APPS.into_iter().filter(|&app| app != owner) {
                for command in ["migrate", "serve"] {
                    let (status, stderr) =
                        ServiceProcess::run(&binary(intruder), &[command], &vars);
                    assert!(
                        !status.success(),
                        "{intruder} {command} on {owner}'s database"
                    );
                    let refusal = format!("belongs to the app `{owner}`, not `{intruder}`");
                    assert!(stderr.contains(&refusal), "{stderr}");
                }
            }
        }
        assert_eq!(
            tables(&database.url).await,
            before,
            "a refused app changed {owner}'s schema"
        );
    }
}

auth_skeleton::both_backends!(
    the_real_binary_serves_on_port_zero_and_signs_up,
    an_app_refuses_another_apps_database,
);

/// With `BIND` on port 0 and no `PUBLIC_URL`, the default public origin (`http://` + `BIND`) is
/// the address the service listens on: pages from it pass the CSRF check, and mailed links
/// lead back to it.
#[tokio::test]
async fn the_default_public_url_names_the_port_chosen_for_port_zero() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let mail = tempfile::tempdir().unwrap();
    let transport = format!("file:{}", mail.path().display());
    let mut service = ServiceProcess::start(
        &binary("app-rows"),
        &[
            ("DATABASE_URL", &database.url),
            ("COOKIE_SECURE", "false"),
            ("MAIL_TRANSPORT", &transport),
        ],
    );
    let origin = service.base_url.clone();
    assert!(!origin.ends_with(":0"), "{origin}");
    let reply = reqwest::Client::new()
        .post(format!("{origin}/v1/auth/signup"))
        .header("origin", &origin)
        .json(&json!({"email": "ann@example.com", "password": TEST_PASSWORD, "session": "cookie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201, "{}", service.logs());
    let mut mails = Vec::new();
    for _ in 0..100 {
        mails = std::fs::read_dir(mail.path())
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        if !mails.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let link = format!("{origin}/verify-email");
    assert!(
        mails.iter().any(|m| m.contains(&link)),
        "no link to {link}: {mails:?}"
    );
    assert!(service.terminate().success());
}
