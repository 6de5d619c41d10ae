//! The promise the product exists for, checked on the real binaries: `app-rows` and `app-blob`
//! run as separate processes on separate databases and share nothing at run time. The same
//! email makes two unrelated accounts, a session of one app means nothing to the other, deleting
//! or crashing one leaves the other whole. (`processes.rs` checks that neither will open the
//! other's database.)

use auth_skeleton::AUTH_SKELETON_VERSION;
use auth_skeleton::testing::{Backend, ServiceProcess, TEST_PASSWORD, TestDatabase};
use reqwest::Method;
use serde_json::json;
use system_tests::binary;

use crate::http::{call, login, me, signup};

const EMAIL: &str = "ann@example.com";

/// Two apps, each on a fresh database of its own on `backend`.
struct Pair {
    rows: ServiceProcess,
    blob: ServiceProcess,
    // Kept alive as long as the services: dropping one deletes its database.
    _databases: (TestDatabase, TestDatabase),
}

impl Pair {
    async fn start(backend: Backend) -> Self {
        let rows_db = TestDatabase::new(backend).await;
        let blob_db = TestDatabase::new(backend).await;
        assert_ne!(rows_db.url, blob_db.url);
        Self {
            rows: ServiceProcess::start(&binary("app-rows"), &[("DATABASE_URL", &rows_db.url)]),
            blob: ServiceProcess::start(&binary("app-blob"), &[("DATABASE_URL", &blob_db.url)]),
            _databases: (rows_db, blob_db),
        }
    }
}

async fn each_app_reports_its_own_version_and_the_librarys(backend: Backend) {
    let pair = Pair::start(backend).await;
    for (service, app) in [(&pair.rows, "app-rows"), (&pair.blob, "app-blob")] {
        let reply = call(&service.base_url, Method::GET, "/healthz", None, None).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body["app"], app);
        assert_eq!(reply.body["version"], "0.1.0", "{app}'s Cargo.toml version");
        assert_eq!(reply.body["auth_skeleton"], AUTH_SKELETON_VERSION);
    }
}

async fn the_same_email_makes_two_unrelated_accounts(backend: Backend) {
    let pair = Pair::start(backend).await;
    let (rows_token, rows_id) = signup(&pair.rows.base_url, EMAIL).await;
    let (blob_token, blob_id) = signup(&pair.blob.base_url, EMAIL).await;
    assert_ne!(rows_id, blob_id, "each app minted its own account");

    // Each token works where it was issued and nowhere else.
    assert_eq!(
        me(&pair.rows.base_url, &rows_token).await.body["user"]["id"],
        rows_id
    );
    assert_eq!(
        me(&pair.blob.base_url, &blob_token).await.body["user"]["id"],
        blob_id
    );
    for (base_url, foreign) in [
        (&pair.blob.base_url, &rows_token),
        (&pair.rows.base_url, &blob_token),
    ] {
        let reply = me(base_url, foreign).await;
        assert_eq!((reply.status, reply.code()), (401, "unauthenticated"));
    }
    let reply = call(
        &pair.blob.base_url,
        Method::GET,
        "/v1/save",
        Some(&rows_token),
        None,
    )
    .await;
    assert_eq!(reply.status, 401, "app-rows' token opened app-blob's save");
    let pull = "/v1/rows/pull";
    let reply = call(
        &pair.rows.base_url,
        Method::GET,
        pull,
        Some(&blob_token),
        None,
    )
    .await;
    assert_eq!(reply.status, 401, "app-blob's token pulled app-rows' rows");

    // A password change in one app is not a password change in the other.
    let change =
        json!({"current_password": TEST_PASSWORD, "new_password": "a-new-secret-for-rows"});
    let path = "/v1/auth/password/change";
    let reply = call(
        &pair.rows.base_url,
        Method::POST,
        path,
        Some(&rows_token),
        Some(change),
    )
    .await;
    assert_eq!(reply.status, 204, "password change: {:?}", reply.body);
    assert_eq!(
        login(&pair.blob.base_url, EMAIL, TEST_PASSWORD)
            .await
            .status,
        200
    );
    let reply = login(&pair.rows.base_url, EMAIL, TEST_PASSWORD).await;
    assert_eq!((reply.status, reply.code()), (401, "invalid_credentials"));
}

async fn deleting_the_account_in_one_app_leaves_the_other(backend: Backend) {
    let pair = Pair::start(backend).await;
    let (rows_token, _) = signup(&pair.rows.base_url, EMAIL).await;
    let (blob_token, blob_id) = signup(&pair.blob.base_url, EMAIL).await;

    let body = json!({"password": TEST_PASSWORD});
    let path = "/v1/auth/account";
    let reply = call(
        &pair.rows.base_url,
        Method::DELETE,
        path,
        Some(&rows_token),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
    assert_eq!(me(&pair.rows.base_url, &rows_token).await.status, 401);
    let reply = login(&pair.rows.base_url, EMAIL, TEST_PASSWORD).await;
    assert_eq!((reply.status, reply.code()), (401, "invalid_credentials"));

    let reply = me(&pair.blob.base_url, &blob_token).await;
    assert_eq!(
        (reply.status, &reply.body["user"]["id"]),
        (200, &json!(blob_id))
    );
    assert_eq!(
        login(&pair.blob.base_url, EMAIL, TEST_PASSWORD)
            .await
            .status,
        200
    );
    // And the email is free again only where it was deleted.
    signup(&pair.rows.base_url, EMAIL).await;
    let body = json!({"email": EMAIL, "password": TEST_PASSWORD, "session": "bearer"});
    let reply = call(
        &pair.blob.base_url,
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(body),
    )
    .await;
    assert_eq!((reply.status, reply.code()), (409, "email_taken"));
}

async fn killing_one_app_leaves_the_other_serving(backend: Backend) {
    let mut pair = Pair::start(backend).await;
    let (rows_token, _) = signup(&pair.rows.base_url, EMAIL).await;
    let (blob_token, _) = signup(&pair.blob.base_url, EMAIL).await;

    pair.rows.kill();
    let down = reqwest::Client::new()
        .get(format!("{}/healthz", pair.rows.base_url))
        .send()
        .await;
    assert!(down.is_err(), "app-rows still answers after SIGKILL");

    let blob = &pair.blob.base_url;
    assert_eq!(
        call(blob, Method::GET, "/readyz", None, None).await.status,
        200
    );
    assert_eq!(me(blob, &blob_token).await.status, 200);
    assert_eq!(login(blob, EMAIL, TEST_PASSWORD).await.status, 200);
    signup(blob, "bob@example.com").await;
    let put = reqwest::Client::new()
        .put(format!("{blob}/v1/save"))
        .bearer_auth(&blob_token)
        .header("If-None-Match", "*")
        .body("a save written while app-rows is down")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 201, "{}", pair.blob.logs());
    // The dead app's token is as meaningless to the survivor as before.
    assert_eq!(me(blob, &rows_token).await.status, 401);
}

auth_skeleton::both_backends!(
    each_app_reports_its_own_version_and_the_librarys,
    the_same_email_makes_two_unrelated_accounts,
    deleting_the_account_in_one_app_leaves_the_other,
    killing_one_app_leaves_the_other_serving,
);
