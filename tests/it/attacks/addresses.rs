//! Addresses that look like another or cannot be mailed: invisible and bidi characters,
//! comments and address literals are `400 invalid_email` at sign-up, not accounts whose mail
//! fails in the outbox forever.

use auth_skeleton::testing::{Backend, ServiceProcess, TEST_PASSWORD, TestDatabase};
use reqwest::Method;
use serde_json::json;
use system_tests::binary;

use crate::http::call;

async fn deceptive_and_unmailable_addresses_are_refused(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let service = ServiceProcess::start(&binary("app-rows"), &[("DATABASE_URL", &database.url)]);
    for address in [
        "ann@exam\u{200b}ple.com",
        "ann\u{202e}moc.elpmaxe@example.com",
        "\u{feff}ann@example.com",
        "ann(work)@example.com",
        "ann@[127.0.0.1]",
    ] {
        let body = json!({"email": address, "password": TEST_PASSWORD, "session": "bearer"});
        let reply = call(
            &service.base_url,
            Method::POST,
            "/v1/auth/signup",
            None,
            Some(body),
        )
        .await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "invalid_email"),
            "{address:?}: {:?}",
            reply.body
        );
    }
}

auth_skeleton::both_backends!(deceptive_and_unmailable_addresses_are_refused);
