//! What the database holds and who may open it.

use auth_skeleton::db::Db;
use auth_skeleton::db::{Migrations, OwnershipError, claim_ownership};
use auth_skeleton::testing::TestDatabase;
use auth_skeleton::{execute_db, read_db};

use crate::support::*;

async fn no_token_or_password_is_stored_in_the_clear(backend: Backend) {
    let server = start(backend).await;
    let token = bearer(&server, "ann@example.com").await;
    let (_, secret) = token.split_once('.').unwrap();
    let dump: Vec<String> = read_db!(server.db, |pool| {
        sqlx::query_scalar(
            "SELECT id || ' ' || email || ' ' || password_hash FROM auth_users
             UNION ALL
             SELECT id || ' ' || user_id || ' ' || COALESCE(device_name, '') FROM auth_sessions",
        )
        .fetch_all(pool)
        .await
    })
    .unwrap();
    let hashes: Vec<Vec<u8>> = read_db!(server.db, |pool| {
        sqlx::query_scalar("SELECT secret_hash FROM auth_sessions")
            .fetch_all(pool)
            .await
    })
    .unwrap();
    assert_eq!(dump.len(), 2);
    let everything = dump.join("\n");
    assert!(
        !everything.contains(TEST_PASSWORD),
        "the password is stored"
    );
    assert!(
        !everything.contains(secret) && !everything.contains(&token),
        "the token is stored"
    );
    assert!(everything.contains("$argon2id$"));
    assert_eq!(hashes.len(), 1);
    assert_eq!(
        hashes[0].len(),
        32,
        "a SHA-256, not the 32-byte secret itself"
    );
    use base64::Engine as _;
    let raw_secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(secret)
        .unwrap();
    assert_ne!(hashes[0], raw_secret);
}

async fn a_database_belongs_to_the_app_that_created_it(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let db = Db::connect(&database.url).await.unwrap();
    claim_ownership(&db, "app-rows", 1).await.unwrap();
    claim_ownership(&db, "app-rows", 2)
        .await
        .expect("the owner may reopen it");
    match claim_ownership(&db, "app-blob", 3).await {
        Err(OwnershipError::OwnedByAnotherApp { owner, me }) => {
            assert_eq!((owner.as_str(), me.as_str()), ("app-rows", "app-blob"));
        }
        other => panic!("app-blob was allowed in: {other:?}"),
    }
    db.close().await;
}

/// A service that cannot start says why in a typed error: another app's database, a port in use.
async fn a_service_that_cannot_start_says_why(backend: Backend) {
    use auth_skeleton::clock::Clock;
    use auth_skeleton::config::{Settings, Vars};
    use auth_skeleton::service::{self, StartError};

    let database = TestDatabase::new(backend).await;
    let vars = Vars::from_pairs([
        ("DATABASE_URL", database.url.as_str()),
        ("SECRET_KEY", auth_skeleton::testing::TEST_SECRET_KEY),
    ]);
    let settings = Settings::from_vars("app-test", 0, &vars).unwrap();
    let db = Db::connect(&database.url).await.unwrap();
    claim_ownership(&db, "app-rows", 1).await.unwrap();
    db.close().await;
    match service::open(&spec(), &settings, &Clock::system()).await {
        Err(StartError::Ownership(OwnershipError::OwnedByAnotherApp { owner, .. })) => {
            assert_eq!(owner, "app-rows");
        }
        other => panic!("{other:?}"),
    }

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let other = TestDatabase::new(backend).await;
    let vars = Vars::from_pairs([
        ("DATABASE_URL", other.url.as_str()),
        ("SECRET_KEY", auth_skeleton::testing::TEST_SECRET_KEY),
        ("BIND", addr.as_str()),
    ]);
    let settings = Settings::from_vars("app-test", 0, &vars).unwrap();
    let clock = Clock::system();
    let db = service::open(&spec(), &settings, &clock).await.unwrap();
    let started = service::start(
        &spec(),
        &settings,
        db,
        clock,
        vars,
        service::EngineBuilder::new(|_| {
            Ok::<_, auth_skeleton::config::ConfigError>(TestEngine(Default::default()))
        }),
    )
    .await;
    match started {
        Err(e @ StartError::Bind { .. }) => assert!(e.to_string().starts_with("BIND: "), "{e}"),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("bound a port in use"),
    }
}

async fn migrations_are_idempotent_and_tracked_apart_from_the_apps(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let db = Db::connect(&database.url).await.unwrap();
    let auth = Migrations::auth();
    let shipped: Vec<i64> = auth.sqlite.iter().map(|m| m.version).collect();
    assert_eq!(
        shipped,
        auth.postgres.iter().map(|m| m.version).collect::<Vec<_>>(),
        "both backends ship the same versions"
    );
    assert_eq!(auth.applied_version(&db).await.unwrap(), None);
    auth.run(&db).await.unwrap();
    auth.run(&db).await.unwrap();
    assert_eq!(
        auth.applied_version(&db).await.unwrap(),
        shipped.iter().max().copied()
    );
    assert_eq!(
        Migrations::none().applied_version(&db).await.unwrap(),
        None,
        "the app's table is separate"
    );
    let default_table: Option<i64> = read_db!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM _auth_skeleton_migrations")
            .fetch_optional(pool)
            .await
    })
    .unwrap();
    assert_eq!(
        default_table,
        Some(shipped.len() as i64),
        "each migration applied once"
    );
    db.close().await;
}

/// A deleted account leaves no trace of its address or its devices in the SQLite file
/// (`secure_delete`): a copy of the file after the deletion holds neither.
#[actix_web::test]
async fn a_deleted_account_is_gone_from_the_sqlite_file() {
    const MARKER: &str = "zq7marker";
    let server = start(Backend::Sqlite).await;
    let email = format!("{MARKER}@example.com");
    let reply = server
        .send(server.post(
            "/v1/auth/signup",
            &serde_json::json!({"email": email, "password": TEST_PASSWORD, "session": "bearer",
                                "device_name": format!("{MARKER}-phone")}),
        ))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let token = reply.body["token"].as_str().unwrap().to_owned();
    // Another account keeps the pages in use, as on a real service.
    bearer(&server, "bob@example.com").await;
    let reply = server
        .send(
            server
                .request(reqwest::Method::DELETE, "/v1/auth/account")
                .bearer_auth(&token)
                .json(&serde_json::json!({ "password": TEST_PASSWORD })),
        )
        .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
    // The pages go back from the WAL into the database file.
    execute_db!(server.db, sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")).unwrap();
    let file = auth_skeleton::db::sqlite_file(&server.database.url).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
        "the deleted account is still in {}",
        file.display()
    );
}

auth_skeleton::both_backends!(
    a_service_that_cannot_start_says_why,
    no_token_or_password_is_stored_in_the_clear,
    a_database_belongs_to_the_app_that_created_it,
    migrations_are_idempotent_and_tracked_apart_from_the_apps,
);
