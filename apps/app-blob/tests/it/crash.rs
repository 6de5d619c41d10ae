//! The real binary: a save acknowledged with 2xx survives kill -9; bad settings stop it.

use auth_skeleton::testing::{Backend, ServiceProcess, TEST_PASSWORD, TestDatabase};
use serde_json::{Value, json};

use crate::support::*;

const EXE: &str = env!("CARGO_BIN_EXE_app-blob");

async fn an_acknowledged_save_survives_kill_9(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let vars = [("DATABASE_URL", database.url.as_str())];
    let client = reqwest::Client::new();
    let mut service = ServiceProcess::start(EXE, &vars);

    let signup: Value = client
        .post(format!("{}/v1/auth/signup", service.base_url))
        .json(&json!({"email": "ann@example.com", "password": TEST_PASSWORD, "session": "bearer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signup["token"].as_str().expect("a token").to_owned();
    let body = random_bytes(2 * 1024 * 1024 + 3);
    let reply = client
        .put(format!("{}/v1/save", service.base_url))
        .bearer_auth(&token)
        .header("If-None-Match", "*")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    let version = reply.headers()["etag"].to_str().unwrap().to_owned();

    service.kill();
    let service = ServiceProcess::start(EXE, &vars);
    let reply = client
        .get(format!("{}/v1/save", service.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "{}", service.logs());
    assert_eq!(reply.headers()["etag"].to_str().unwrap(), version);
    let bytes = reply.bytes().await.unwrap();
    assert!(bytes == body, "the save came back different after kill -9");
}

async fn an_invalid_setting_stops_the_service_naming_it(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    for (var, value) in [("MAX_SAVE_BYTES", "0"), ("SAVE_HISTORY", "many")] {
        let (status, stderr) = ServiceProcess::run(
            EXE,
            &["serve"],
            &[
                ("DATABASE_URL", &database.url),
                ("BIND", "127.0.0.1:0"),
                (var, value),
            ],
        );
        assert!(!status.success());
        assert!(stderr.contains(var), "{stderr}");
    }
}

auth_skeleton::both_backends!(
    an_acknowledged_save_survives_kill_9,
    an_invalid_setting_stops_the_service_naming_it,
);
