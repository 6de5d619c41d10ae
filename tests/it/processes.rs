//! Each app binary serves on a port it chose, signs people up, shuts down cleanly on SIGTERM,
//! and refuses another app's database.

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

async fn an_app_refuses_another_apps_database(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let vars = [("DATABASE_URL", database.url.as_str())];
    let (status, _) = ServiceProcess::run(&binary("app-rows"), &["migrate"], &vars);
    assert!(status.success());
    let (status, stderr) = ServiceProcess::run(&binary("app-blob"), &["migrate"], &vars);
    assert!(!status.success(), "app-blob migrated app-rows' database");
    assert!(stderr.contains("belongs to the app `app-rows`"), "{stderr}");
    let (status, stderr) = ServiceProcess::run(&binary("app-blob"), &["serve"], &vars);
    assert!(!status.success(), "app-blob served app-rows' database");
    assert!(stderr.contains("belongs to the app `app-rows`"), "{stderr}");
}

auth_skeleton::both_backends!(
    the_real_binary_serves_on_port_zero_and_signs_up,
    an_app_refuses_another_apps_database,
);
