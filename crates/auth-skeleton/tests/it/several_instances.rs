//! Several instances of one app on one database behave as one service: rate limits count
//! across them (`RATE_LIMIT_STORE=database`), and on PostgreSQL a session ended or an account
//! changed through one is refused by the others at once, though they serve reads from memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_skeleton::db::{Db, Migrations};
use auth_skeleton::rate_limit::{
    DatabaseRateLimiter, Limit, RateLimitConfig, RateLimitStore, RateLimiter,
};
use auth_skeleton::testing::{TestDatabase, TestServer};

use crate::support::*;

/// Three login attempts per IP, whatever the address; counted in the database.
const SHARED_LOGIN_LIMIT: &[(&str, &str)] = &[
    ("RATE_LIMIT_LOGIN_IP", "3/hour"),
    ("RATE_LIMIT_LOGIN_EMAIL", "off"),
    ("RATE_LIMIT_STORE", "database"),
];

async fn wrong_login(server: &TestServer, i: usize) -> u16 {
    login(server, &format!("u{i}@example.com"), "wrong-password-1")
        .await
        .status
}

async fn login_attempts_count_across_instances(backend: Backend) {
    let (first, _) = start_with(backend, SHARED_LOGIN_LIMIT).await;
    let second = start_another(&first, SHARED_LOGIN_LIMIT).await;
    assert_eq!(wrong_login(&first, 0).await, 401);
    assert_eq!(wrong_login(&second, 1).await, 401);
    assert_eq!(wrong_login(&first, 2).await, 401);
    let refused = login(&second, "u3@example.com", "wrong-password-1").await;
    assert_problem(&refused, 429, "rate_limited");
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    // 3/hour: the next attempt is allowed 20 minutes after the first.
    assert!((1_150..=1_200).contains(&retry), "Retry-After {retry}");
    assert_eq!(wrong_login(&first, 4).await, 429);
}

async fn with_the_memory_store_each_instance_counts_alone(backend: Backend) {
    let vars = &[
        ("RATE_LIMIT_LOGIN_IP", "3/hour"),
        ("RATE_LIMIT_LOGIN_EMAIL", "off"),
        ("RATE_LIMIT_STORE", "memory"),
    ];
    let (first, _) = start_with(backend, vars).await;
    let second = start_another(&first, vars).await;
    for i in 0..3 {
        assert_eq!(wrong_login(&first, i).await, 401);
    }
    assert_eq!(wrong_login(&first, 3).await, 429);
    assert_eq!(
        wrong_login(&second, 4).await,
        401,
        "the other instance has its own count"
    );
}

async fn limiter(backend: Backend, rate: &str) -> (TestDatabase, Db, DatabaseRateLimiter) {
    let database = TestDatabase::new(backend).await;
    let db = Db::connect(&database.url).await.unwrap();
    Migrations::auth().run(&db).await.unwrap();
    let mut config = RateLimitConfig::off();
    config.set(
        Limit::LoginIp,
        auth_skeleton::rate_limit::Rate::parse(rate).unwrap(),
    );
    config.set_store(RateLimitStore::Database);
    let limiter = DatabaseRateLimiter::new(db.clone(), config);
    (database, db, limiter)
}

async fn concurrent_checks_allow_exactly_the_burst(backend: Backend) {
    let (_database, db, limiter) = limiter(backend, "5/hour").await;
    let limiter = Arc::new(limiter);
    // Two limiters on one database: as two instances would.
    let mut config = RateLimitConfig::off();
    config.set(
        Limit::LoginIp,
        auth_skeleton::rate_limit::Rate::parse("5/hour").unwrap(),
    );
    let other = Arc::new(DatabaseRateLimiter::new(db.clone(), config));
    let attempts: Vec<_> = (0..40)
        .map(|i| {
            let limiter: Arc<DatabaseRateLimiter> = match i % 2 {
                0 => limiter.clone(),
                _ => other.clone(),
            };
            tokio::spawn(async move { limiter.check_async(Limit::LoginIp, "198.51.100.7").await })
        })
        .collect();
    let mut allowed = 0;
    for attempt in attempts {
        if attempt.await.unwrap().is_ok() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5);
    assert!(
        limiter
            .check_async(Limit::LoginIp, "198.51.100.8")
            .await
            .is_ok(),
        "keys are separate"
    );
    limiter.clear_async(Limit::LoginIp, "198.51.100.7").await;
    assert!(
        other
            .check_async(Limit::LoginIp, "198.51.100.7")
            .await
            .is_ok(),
        "a clear is seen by every instance"
    );
}

async fn rows(db: &Db) -> i64 {
    auth_skeleton::read_db!(db, |pool| {
        sqlx::query_scalar("SELECT count(*) FROM auth_rate_limits")
            .fetch_one(pool)
            .await
    })
    .unwrap()
}

async fn idle_keys_are_pruned_and_stored_as_digests(backend: Backend) {
    let (_database, db, limiter) = limiter(backend, "20/second").await;
    for i in 0..10 {
        let key = format!("ann{i}@example.com");
        assert!(limiter.check_async(Limit::LoginIp, &key).await.is_ok());
    }
    assert_eq!(rows(&db).await, 10);
    let mentions: i64 = auth_skeleton::read_db!(&db, |pool| {
        sqlx::query_scalar("SELECT count(*) FROM auth_rate_limits WHERE bucket = $1")
            .bind(b"ann0@example.com".as_slice())
            .fetch_one(pool)
            .await
    })
    .unwrap();
    assert_eq!(mentions, 0);
    limiter.prune_async().await;
    assert_eq!(rows(&db).await, 10, "nothing idle yet");
    // One attempt of a 20/second burst refills in 50 ms.
    tokio::time::sleep(Duration::from_millis(120)).await;
    limiter.prune_async().await;
    assert_eq!(rows(&db).await, 0);
}

auth_skeleton::both_backends!(
    login_attempts_count_across_instances,
    with_the_memory_store_each_instance_counts_alone,
    concurrent_checks_allow_exactly_the_burst,
    idle_keys_are_pruned_and_stored_as_digests,
);

/// On PostgreSQL the session cache is on by default and hears what other instances end.
mod postgres_announcements {
    use super::*;
    use auth_skeleton::execute_db;

    async fn me(server: &TestServer, token: &str) -> u16 {
        me_status(server, token).await
    }

    /// Fills `server`'s cache with `token`'s session, once its listener is up.
    async fn cached(server: &TestServer, token: &str) {
        for _ in 0..3 {
            assert_eq!(me(server, token).await, 200);
        }
    }

    /// Deletes a session row without any trigger firing: nothing announces it, the counter does
    /// not move, so only a copy in memory can still answer for it.
    async fn delete_silently(server: &TestServer, token: &str) {
        let id = token.split('.').next().unwrap().to_owned();
        let Db::Postgres(pool) = &server.db else {
            unreachable!()
        };
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SET LOCAL session_replication_role = replica")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("DELETE FROM auth_sessions WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    /// Waits until `server` answers `token` with 401; how long that took.
    async fn refused_after(server: &TestServer, token: &str, since: Instant) -> Duration {
        while me(server, token).await != 401 {
            assert!(
                since.elapsed() < Duration::from_secs(5),
                "still honoured after 5 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        since.elapsed()
    }

    /// Listeners connect in the background; give them a moment before relying on the cache.
    async fn two_instances() -> (TestServer, TestServer) {
        let (first, _) = start_with(Backend::Postgres, &[]).await;
        let second = start_another(&first, &[]).await;
        wait_for_listeners(&first, 2).await;
        (first, second)
    }

    #[actix_web::test]
    async fn a_logout_through_one_instance_is_refused_by_the_others_at_once() {
        let (first, second) = two_instances().await;
        let token = bearer(&first, "ann@example.com").await;
        let bystander = login(&first, "ann@example.com", TEST_PASSWORD).await.body["token"]
            .as_str()
            .unwrap()
            .to_owned();
        cached(&second, &token).await;
        cached(&second, &bystander).await;
        // Proof that `second` answers from memory: a row gone without a word is still honoured.
        delete_silently(&second, &bystander).await;
        assert_eq!(me(&second, &bystander).await, 200, "served from memory");

        let logout = first
            .send(
                first
                    .post("/v1/auth/logout", &serde_json::json!({}))
                    .bearer_auth(&token),
            )
            .await;
        assert_eq!(logout.status, 204, "{:?}", logout.body);
        let seen = refused_after(&second, &token, Instant::now()).await;
        assert!(seen < Duration::from_millis(500), "seen after {seen:?}");
        assert_eq!(
            me(&second, &bystander).await,
            200,
            "only the ended session is dropped from memory"
        );
    }

    #[actix_web::test]
    async fn an_account_changed_through_the_database_is_dropped_from_every_cache() {
        let (first, second) = two_instances().await;
        let token = bearer(&first, "ann@example.com").await;
        cached(&second, &token).await;
        let id = token.split('.').next().unwrap().to_owned();
        // As the admin CLI would: another process, straight to the database.
        let changed_at = Instant::now();
        let deleted = execute_db!(
            &first.db,
            sqlx::query(
                "DELETE FROM auth_users WHERE id = (SELECT user_id FROM auth_sessions WHERE id = $1)"
            )
            .bind(&id)
        )
        .unwrap();
        assert_eq!(deleted, 1);
        let seen = refused_after(&second, &token, changed_at).await;
        assert!(seen < Duration::from_millis(500), "seen after {seen:?}");
    }

    #[actix_web::test]
    async fn a_lost_listener_empties_the_cache_until_it_listens_again() {
        let (first, second) = two_instances().await;
        let token = bearer(&first, "ann@example.com").await;
        let silent = login(&first, "ann@example.com", TEST_PASSWORD).await.body["token"]
            .as_str()
            .unwrap()
            .to_owned();
        cached(&second, &silent).await;
        delete_silently(&second, &silent).await;
        assert_eq!(me(&second, &silent).await, 200, "served from memory");
        // Cut every listening connection (both instances'), as a network fault would.
        let cut: Vec<bool> = execute_pg(
            &first,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .await;
        assert!(!cut.is_empty(), "the listeners were found");
        // Whatever was in memory is gone: the silently deleted session is refused.
        let seen = refused_after(&second, &silent, Instant::now()).await;
        assert!(seen < Duration::from_secs(2), "seen after {seen:?}");
        // Listening again, the cache serves and hears again.
        wait_for_listeners(&first, 2).await;
        cached(&second, &token).await;
        let logout = first
            .send(
                first
                    .post("/v1/auth/logout", &serde_json::json!({}))
                    .bearer_auth(&token),
            )
            .await;
        assert_eq!(logout.status, 204);
        let seen = refused_after(&second, &token, Instant::now()).await;
        assert!(seen < Duration::from_millis(500), "seen after {seen:?}");
    }

    /// SQL that ends sessions without deleting rows one by one (an update of a session's
    /// lifetime or secret, a TRUNCATE) is announced too.
    #[actix_web::test]
    async fn sessions_ended_by_an_update_or_a_truncate_are_dropped_from_every_cache() {
        let (first, second) = two_instances().await;
        let mut tokens = Vec::new();
        bearer(&first, "ann@example.com").await;
        for _ in 0..4 {
            let reply = login(&first, "ann@example.com", TEST_PASSWORD).await;
            tokens.push(reply.body["token"].as_str().unwrap().to_owned());
        }
        for token in &tokens {
            cached(&second, token).await;
        }
        let Db::Postgres(pool) = &first.db else {
            unreachable!()
        };
        let id = tokens[0].split('.').next().unwrap().to_owned();
        sqlx::query("UPDATE auth_sessions SET expires_at = 0 WHERE id = $1")
            .bind(&id)
            .execute(pool)
            .await
            .unwrap();
        let seen = refused_after(&second, &tokens[0], Instant::now()).await;
        assert!(seen < Duration::from_millis(500), "seen after {seen:?}");
        // Seen last years ago: idle past its end.
        let id = tokens[1].split('.').next().unwrap().to_owned();
        sqlx::query("UPDATE auth_sessions SET last_seen_at = 0 WHERE id = $1")
            .bind(&id)
            .execute(pool)
            .await
            .unwrap();
        let seen = refused_after(&second, &tokens[1], Instant::now()).await;
        assert!(seen < Duration::from_millis(500), "seen after {seen:?}");
        assert_eq!(me(&second, &tokens[2]).await, 200, "the others stay");
        sqlx::query("TRUNCATE auth_sessions")
            .execute(pool)
            .await
            .unwrap();
        let truncated = Instant::now();
        for token in &tokens[2..] {
            let seen = refused_after(&second, token, truncated).await;
            assert!(seen < Duration::from_millis(500), "seen after {seen:?}");
        }
    }

    /// What the triggers announce: ended sessions and changes a cached session holds, nothing
    /// for updates that leave those alone (a lock, a password rehash).
    #[actix_web::test]
    async fn only_changes_a_cache_holds_are_announced() {
        let (server, _) = start_with(Backend::Postgres, &[("RATE_LIMIT_SIGNUP_IP", "off")]).await;
        let token = bearer(&server, "ann@example.com").await;
        let Db::Postgres(pool) = &server.db else {
            unreachable!()
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool)
            .await
            .unwrap();
        listener.listen("auth_skeleton_sessions").await.unwrap();
        let user_id: String = sqlx::query_scalar("SELECT id FROM auth_users")
            .fetch_one(pool)
            .await
            .unwrap();
        for quiet in [
            "UPDATE auth_users SET security_stamp = security_stamp WHERE id = $1",
            "UPDATE auth_users SET password_hash = password_hash, updated_at = updated_at + 1 WHERE id = $1",
            "UPDATE auth_users SET email_verified = email_verified WHERE id = $1",
        ] {
            sqlx::query(quiet)
                .bind(&user_id)
                .execute(pool)
                .await
                .unwrap();
        }
        // The first thing heard is the session's end: the quiet updates said nothing.
        let session = token.split('.').next().unwrap().to_owned();
        sqlx::query("DELETE FROM auth_sessions WHERE id = $1")
            .bind(&session)
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(
            listener.recv().await.unwrap().payload(),
            format!("s:{session}")
        );
        sqlx::query("UPDATE auth_users SET email = 'ann2@example.com' WHERE id = $1")
            .bind(&user_id)
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(
            listener.recv().await.unwrap().payload(),
            format!("u:{user_id}")
        );
        sqlx::query("DELETE FROM auth_users WHERE id = $1")
            .bind(&user_id)
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(
            listener.recv().await.unwrap().payload(),
            format!("u:{user_id}")
        );
        // Many at once: one notification for all.
        for i in 0..70 {
            bearer(&server, &format!("u{i}@example.com")).await;
        }
        sqlx::query("UPDATE auth_users SET email_verified = NOT email_verified")
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(listener.recv().await.unwrap().payload(), "*");
        drop(listener);
    }

    async fn execute_pg(server: &TestServer, sql: &'static str) -> Vec<bool> {
        let Db::Postgres(pool) = &server.db else {
            unreachable!()
        };
        sqlx::query_scalar(sql).fetch_all(pool).await.unwrap()
    }
}
