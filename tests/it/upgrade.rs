//! Schema upgrades keep people signed in: a database built by the previous release's auth
//! migrations (the fixture `tests/fixtures/auth-0002`, the schema of the 0.1 line: accounts,
//! sessions, mailed tokens and the outbox), filled with accounts and sessions as that release
//! wrote them, is upgraded by the current crate, and the real service then accepts the old
//! passwords and the old session tokens. (`mixed_fleet.rs` does the same with a database that the
//! real 0.1.1 binary wrote.)

use std::time::{SystemTime, UNIX_EPOCH};

use auth_skeleton::accounts::password::{HashCost, Hasher};
use auth_skeleton::db::Db;
use auth_skeleton::db::{AUTH_MIGRATIONS_TABLE, Migrations, claim_ownership};
use auth_skeleton::testing::{Backend, ServiceProcess, TestDatabase};
use auth_skeleton::token::NewSessionToken;
use auth_skeleton::{execute_db, read_db};
use reqwest::Method;
use system_tests::binary;

use crate::http::{call, login, me};

const DAY_MS: i64 = 86_400_000;

/// The auth migrations of the previous release, tracked where the library tracks its own, so
/// that the current crate sees them as applied and continues from there.
fn previous_release() -> Migrations {
    let mut sqlite = sqlx::migrate!("fixtures/auth-0002/sqlite");
    let mut postgres = sqlx::migrate!("fixtures/auth-0002/postgres");
    sqlite.dangerous_set_table_name(AUTH_MIGRATIONS_TABLE);
    postgres.dangerous_set_table_name(AUTH_MIGRATIONS_TABLE);
    Migrations { sqlite, postgres }
}

/// An account as the previous release stored it, with a live session.
struct OldAccount {
    email: &'static str,
    password: &'static str,
    id: String,
    token: NewSessionToken,
}

async fn write_account(db: &Db, hasher: &Hasher, account: &OldAccount, now: i64) {
    let hash = hasher.hash(&account.password.into()).await.expect("a hash");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    execute_db!(
        db,
        sqlx::query(
            "INSERT INTO auth_users
                 (id, email, email_verified, password_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&account.id)
        .bind(account.email)
        .bind(false)
        .bind(&hash)
        .bind(now - 10 * DAY_MS)
    )
    .expect("the user row");
    execute_db!(
        db,
        sqlx::query(
            "INSERT INTO auth_sessions
                 (id, user_id, secret_hash, created_at, last_seen_at, expires_at, device_name)
             VALUES ($1, $2, $3, $4, $5, $6, 'old phone')",
        )
        .bind(&account.token.id)
        .bind(&account.id)
        .bind(&account.token.secret_hash)
        .bind(now - 2 * DAY_MS)
        .bind(now - DAY_MS)
        .bind(now + 60 * DAY_MS)
    )
    .expect("the session row");
}

/// Every user and session column that a migration must leave alone, in a fixed order.
async fn snapshot(db: &Db) -> Vec<String> {
    read_db!(db, |pool| {
        sqlx::query_scalar(
            "SELECT u.id || ' ' || u.email || ' ' || u.password_hash || ' ' || s.id || ' ' ||
                    s.created_at || ' ' || s.expires_at
             FROM auth_users u JOIN auth_sessions s ON s.user_id = u.id ORDER BY u.id",
        )
        .fetch_all(pool)
        .await
    })
    .expect("the snapshot")
}

async fn old_passwords_and_sessions_work_after_the_upgrade(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let accounts = [
        OldAccount {
            email: "ann@example.com",
            password: "written-by-the-old-release",
            id: auth_skeleton::token::new_id(),
            token: NewSessionToken::generate(),
        },
        OldAccount {
            email: "bob@example.com",
            password: "another-old-secret-77",
            id: auth_skeleton::token::new_id(),
            token: NewSessionToken::generate(),
        },
    ];

    // The previous release: its app claimed the database and applied its auth migrations.
    let db = Db::connect(&database.url).await.unwrap();
    claim_ownership(&db, "app-rows", now - 10 * DAY_MS)
        .await
        .unwrap();
    let previous = previous_release();
    let fixture = previous.sqlite.iter().map(|m| m.version).max();
    assert_eq!(fixture, Some(2), "0.1's migrations: 0001 and 0002");
    previous.run(&db).await.unwrap();
    let current = Migrations::auth();
    assert_eq!(current.applied_version(&db).await.unwrap(), fixture);
    let hasher = Hasher::new(HashCost::default(), 2).unwrap();
    for account in &accounts {
        write_account(&db, &hasher, account, now).await;
    }
    let before = snapshot(&db).await;
    assert_eq!(before.len(), 2);

    // The upgrade, by the current crate.
    current.run(&db).await.expect("the upgrade applies");
    let latest = current.sqlite.iter().map(|m| m.version).max();
    assert!(
        latest > fixture,
        "the crate has migrations past the fixture"
    );
    assert_eq!(current.applied_version(&db).await.unwrap(), latest);
    assert_eq!(snapshot(&db).await, before, "the upgrade rewrote user data");
    db.close().await;

    // The real service on the upgraded database.
    let service = ServiceProcess::start(&binary("app-rows"), &[("DATABASE_URL", &database.url)]);
    for account in &accounts {
        let reply = me(&service.base_url, &account.token.token).await;
        assert_eq!(reply.status, 200, "old session refused: {:?}", reply.body);
        assert_eq!(reply.body["user"]["id"], account.id.as_str());
        assert_eq!(reply.body["user"]["email"], account.email);
        assert_eq!(reply.body["session"]["id"], account.token.id.as_str());

        let reply = login(&service.base_url, account.email, account.password).await;
        assert_eq!(reply.status, 200, "old password refused: {:?}", reply.body);
        let reply = login(&service.base_url, account.email, "not-the-old-password").await;
        assert_eq!((reply.status, reply.code()), (401, "invalid_credentials"));
    }
    // Both the old session and the new login's are listed, with the old one's device name.
    let token = &accounts[0].token;
    let reply = call(
        &service.base_url,
        Method::GET,
        "/v1/auth/sessions",
        Some(&token.token),
        None,
    )
    .await;
    let sessions = reply.body["sessions"].as_array().expect("a list").clone();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert!(
        sessions
            .iter()
            .any(|s| s["id"] == token.id.as_str() && s["device_name"] == "old phone"),
        "{sessions:?}"
    );
}

auth_skeleton::both_backends!(old_passwords_and_sessions_work_after_the_upgrade);
