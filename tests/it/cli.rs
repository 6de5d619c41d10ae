//! The operator's command line, run as the real binaries against real databases: account
//! administration, backups, and configuration checks with their messages.

use std::process::{Command, Output};

use auth_skeleton::testing::{Backend, ServiceProcess, TEST_PASSWORD, TestDatabase};
use serde_json::{Value, json};
use system_tests::binary;

/// Runs `app` with `args` and `vars`, from a scratch directory, with no inherited configuration.
fn run(app: &str, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(binary(app));
    command.args(args).env("LOG_FORMAT", "text");
    for name in [
        "DATABASE_URL",
        "BIND",
        "PUBLIC_URL",
        "COOKIE_SECURE",
        "CONFIG_FILE",
        "MAIL_TRANSPORT",
        "SECRET_KEY",
        "SECRET_KEY_FILE",
        "SECRET_KEY_PREVIOUS",
    ] {
        command.env_remove(name);
    }
    for (k, v) in vars {
        command.env(k, v);
    }
    command.output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn signup(base_url: &str, email: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base_url}/v1/auth/signup"))
        .json(&json!({"email": email, "password": TEST_PASSWORD, "session": "bearer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

async fn me_status(base_url: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base_url}/v1/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `auth_session_cache_lookups_total{result="hit"}` from the service's `/metrics`.
async fn session_cache_hits(base_url: &str) -> u64 {
    let text = reqwest::get(format!("{base_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("auth_session_cache_lookups_total{result=\"hit\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn push_row(base_url: &str, token: &str) {
    let response = reqwest::Client::new()
        .post(format!("{base_url}/v1/rows/push"))
        .bearer_auth(token)
        .json(&json!({"changes": [{
            "collection": "notes", "id": "n1", "ts": now_ms(), "counter": 0, "node": "d1",
            "deleted": false, "data": {"text": "hello"}
        }]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["results"][0]["status"], "applied",
        "the row is stored: {body}"
    );
}

/// The wall clock in Unix milliseconds, as a writing device would stamp a change.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn users_commands_manage_accounts_of_a_running_service(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    // The cache is on by default on SQLite only; the CLI's wait matters wherever it is on.
    let vars = [
        ("DATABASE_URL", database.url.as_str()),
        ("SESSION_CACHE_REFRESH", "500ms"),
    ];
    let service = ServiceProcess::start(&binary("app-rows"), &vars);
    let ann = signup(&service.base_url, "ann@example.com").await;
    let bob = signup(&service.base_url, "bob@example.com").await;
    push_row(&service.base_url, &bob).await;

    let list = run("app-rows", &["users", "list"], &vars);
    assert!(list.status.success(), "{}", stderr(&list));
    let text = stdout(&list);
    assert!(
        text.contains("ann@example.com") && text.contains("bob@example.com"),
        "{text}"
    );

    let list = run("app-rows", &["users", "list", "--json"], &vars);
    let accounts: Value = serde_json::from_slice(&list.stdout).expect("JSON");
    assert_eq!(accounts.as_array().unwrap().len(), 2);
    assert_eq!(accounts[0]["email"], "ann@example.com");
    assert_eq!(accounts[0]["sessions"].as_array().unwrap().len(), 1);

    // Addresses are matched as sign-in matches them: trimmed, case-folded.
    let show = run(
        "app-rows",
        &["users", "show", " ANN@Example.com", "--json"],
        &vars,
    );
    assert!(show.status.success(), "{}", stderr(&show));
    let account: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(account["email_verified"], false);

    let verify = run("app-rows", &["users", "verify", "ann@example.com"], &vars);
    assert!(verify.status.success(), "{}", stderr(&verify));
    let show = run(
        "app-rows",
        &["users", "show", "ann@example.com", "--json"],
        &vars,
    );
    let account: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(account["email_verified"], true);
    let again = run("app-rows", &["users", "verify", "ann@example.com"], &vars);
    assert!(again.status.success() && stdout(&again).contains("already"));

    // Reads are answered from the session cache once it holds the session...
    for _ in 0..2 {
        assert_eq!(me_status(&service.base_url, &ann).await, 200);
    }
    assert!(
        session_cache_hits(&service.base_url).await >= 1,
        "the session cache answered"
    );
    // ...and still, once the command is back, the revocation holds there too.
    let revoke = run(
        "app-rows",
        &["sessions", "revoke", "ann@example.com"],
        &vars,
    );
    assert!(revoke.status.success(), "{}", stderr(&revoke));
    assert!(
        stdout(&revoke).contains("revoked 1 session"),
        "{}",
        stdout(&revoke)
    );
    assert_eq!(
        me_status(&service.base_url, &ann).await,
        401,
        "signed out at once"
    );

    let refused = run("app-rows", &["users", "delete", "bob@example.com"], &vars);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("--yes"), "{}", stderr(&refused));
    for _ in 0..2 {
        assert_eq!(
            me_status(&service.base_url, &bob).await,
            200,
            "nothing was deleted"
        );
    }

    let delete = run(
        "app-rows",
        &["users", "delete", "bob@example.com", "--yes"],
        &vars,
    );
    assert!(delete.status.success(), "{}", stderr(&delete));
    assert_eq!(me_status(&service.base_url, &bob).await, 401);
    let db = auth_skeleton::db::Db::connect(&database.url).await.unwrap();
    let rows: i64 = auth_skeleton::read_db!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM rows_items")
            .fetch_one(pool)
            .await
    })
    .unwrap();
    assert_eq!(
        rows, 0,
        "the app's deletion hook ran in the same transaction"
    );
    db.close().await;
    let show = run("app-rows", &["users", "show", "bob@example.com"], &vars);
    assert!(!show.status.success());
    assert!(stderr(&show).contains("no account"), "{}", stderr(&show));
}

async fn admin_commands_refuse_a_database_that_is_not_set_up(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let vars = [("DATABASE_URL", database.url.as_str())];
    let list = run("app-rows", &["users", "list"], &vars);
    assert!(!list.status.success());
    assert!(
        stderr(&list).contains("app-rows migrate"),
        "{}",
        stderr(&list)
    );

    assert!(run("app-blob", &["migrate"], &vars).status.success());
    let list = run("app-rows", &["users", "list"], &vars);
    assert!(!list.status.success());
    assert!(
        stderr(&list).contains("belongs to the app `app-blob`"),
        "{}",
        stderr(&list)
    );
    let bad = run("app-blob", &["users", "show", "not-an-address"], &vars);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("not an email address"),
        "{}",
        stderr(&bad)
    );
}

async fn backup_copies_a_live_sqlite_database_and_points_postgres_to_pg_dump(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let vars = [("DATABASE_URL", database.url.as_str())];
    let service = ServiceProcess::start(&binary("app-rows"), &vars);
    signup(&service.base_url, "ann@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("copy.db");
    let target = target.to_str().unwrap();

    let backup = run("app-rows", &["backup", target], &vars);
    match backend {
        Backend::Sqlite => {
            assert!(backup.status.success(), "{}", stderr(&backup));
            // The copy is a working database of the same app.
            let copy_url = format!("sqlite://{target}");
            let list = run(
                "app-rows",
                &["users", "list"],
                &[("DATABASE_URL", &copy_url)],
            );
            assert!(list.status.success(), "{}", stderr(&list));
            assert!(stdout(&list).contains("ann@example.com"));
            let again = run("app-rows", &["backup", target], &vars);
            assert!(!again.status.success(), "a backup never overwrites");
            assert!(
                stderr(&again).contains("exists already"),
                "{}",
                stderr(&again)
            );
        }
        Backend::Postgres => {
            assert!(!backup.status.success());
            assert!(stderr(&backup).contains("pg_dump"), "{}", stderr(&backup));
            assert!(!std::path::Path::new(target).exists());
        }
    }
}

/// `check-config` with `vars`: the exit code and what it printed on both streams.
fn check(vars: &[(&str, &str)]) -> (i32, String) {
    let out = run("app-rows", &["check-config"], vars);
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

/// `SECRET_KEY` is required wherever a copy of the database could be read apart from the
/// machine the service runs on (PostgreSQL, a public URL); on SQLite otherwise it is generated
/// beside the database. It is never printed.
#[tokio::test]
async fn a_secret_key_is_required_with_postgres_or_a_public_url() {
    let key = auth_skeleton::secret_key::SecretKey::generate().to_base64();
    let postgres = TestDatabase::new(Backend::Postgres).await;
    let public = [
        ("PUBLIC_URL", "https://rows.example.com"),
        ("MAIL_TRANSPORT", "smtp://127.0.0.1:2525"),
    ];
    for vars in [
        vec![("DATABASE_URL", postgres.url.as_str())],
        public.to_vec(),
    ] {
        let (code, out) = check(&vars);
        assert_eq!(code, 2, "{out}");
        assert!(
            out.contains("SECRET_KEY") && out.contains("head -c 32 /dev/urandom"),
            "{out}"
        );
        let mut with_key = vars.clone();
        with_key.push(("SECRET_KEY", key.as_str()));
        let (code, out) = check(&with_key);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("SECRET_KEY=***") && !out.contains(key.as_str()),
            "{out}"
        );
    }
    let out = run("app-rows", &["serve"], &[("DATABASE_URL", &postgres.url)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("SECRET_KEY"), "{}", stderr(&out));
    let (code, out) = check(&[
        ("DATABASE_URL", &postgres.url),
        ("SECRET_KEY", "dG9vIHNob3J0"),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("SECRET_KEY") && out.contains("32"), "{out}");
    assert!(
        !out.contains("dG9vIHNob3J0"),
        "the value is never echoed: {out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/rows.db", dir.path().display());
    let (code, out) = check(&[("DATABASE_URL", &url)]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("generated into") && out.contains("rows.db.secret-key"),
        "{out}"
    );
    // A damaged key file fails the check as it would fail `serve`.
    std::fs::write(dir.path().join("rows.db.secret-key"), "abcd").unwrap();
    let (code, out) = check(&[("DATABASE_URL", &url)]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("SECRET_KEY") && out.contains("32"), "{out}");

    // A key file others can read is warned about, with the command that closes it.
    let key_file = dir.path().join("secret-key");
    std::fs::write(&key_file, format!("{}\n", key.as_str())).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let key_path = key_file.to_str().unwrap();
    let (code, out) = check(&[
        ("DATABASE_URL", &postgres.url),
        ("SECRET_KEY_FILE", key_path),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("read from {key_path}")), "{out}");
    assert!(
        out.contains("warning") && out.contains(key_path) && out.contains("chmod"),
        "{out}"
    );
    assert!(!out.contains(key.as_str()), "{out}");

    // So is every other file a secret is read from.
    let previous = dir.path().join("previous-key");
    let relay = dir.path().join("relay");
    std::fs::write(
        &previous,
        auth_skeleton::secret_key::SecretKey::generate()
            .to_base64()
            .as_str(),
    )
    .unwrap();
    std::fs::write(&relay, "smtps://user:pw@relay.example.com").unwrap();
    for file in [&previous, &relay] {
        std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
    }
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let (code, out) = check(&[
        ("DATABASE_URL", &postgres.url),
        ("SECRET_KEY_FILE", key_path),
        ("SECRET_KEY_PREVIOUS_FILE", previous.to_str().unwrap()),
        ("MAIL_TRANSPORT_FILE", relay.to_str().unwrap()),
    ]);
    assert_eq!(code, 0, "{out}");
    for file in [&previous, &relay] {
        assert!(
            out.contains(&format!("chmod 600 {}", file.display())),
            "{out}"
        );
    }
    assert!(
        !out.contains(&format!("chmod 600 {key_path}")),
        "a private key file is fine: {out}"
    );
}

#[test]
fn check_config_says_what_is_wrong_and_how_to_fix_it() {
    let (code, out) = check(&[("PUBLIC_URL", "http://rows.example.com")]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("COOKIE_SECURE") && out.contains("https"),
        "{out}"
    );
    let (code, out) = check(&[("PUBLIC_URL", "http://localhost:8080")]);
    assert_eq!(code, 0, "localhost may use plain http: {out}");

    let (code, out) = check(&[("PUBLIC_URL", "rows.example.com")]);
    assert_eq!(code, 2);
    assert!(
        out.contains("PUBLIC_URL") && out.contains("https://example.com"),
        "{out}"
    );

    let (code, out) = check(&[("RATE_LIMIT_LOGIN", "5/minute")]);
    assert_eq!(code, 2);
    assert!(
        out.contains("RATE_LIMIT_LOGIN:") && out.contains("RATE_LIMIT_LOGIN_IP"),
        "{out}"
    );
    let (code, out) = check(&[("RATE_LIMIT_LOGIN_IP", "5/fortnight")]);
    assert_eq!(code, 2);
    assert!(out.contains("10/minute"), "{out}");

    let (code, out) = check(&[("MAIL_TRANSPORT", "smtps://user:hunter2@:465:bad")]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("MAIL_TRANSPORT"), "{out}");
    assert!(
        !out.contains("hunter2"),
        "the password is never echoed: {out}"
    );

    // Settings that would leak live links or SMTP credentials in production.
    let (code, out) = check(&[("PUBLIC_URL", "https://rows.example.com")]);
    assert_eq!(code, 2, "the log transport with a public URL: {out}");
    assert!(
        out.contains("MAIL_TRANSPORT") && out.contains("reset"),
        "{out}"
    );
    let cleartext = [
        ("PUBLIC_URL", "https://rows.example.com"),
        ("MAIL_TRANSPORT", "smtp://user:hunter2@smtp.example.com:587"),
    ];
    let (code, out) = check(&cleartext);
    assert_eq!(code, 2, "cleartext SMTP to another host: {out}");
    assert!(
        out.contains("tls=required") && out.contains("tls=none"),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "{out}");
    for (transport, public_url) in [
        (
            "smtp://smtp.example.com:587?tls=required",
            "https://rows.example.com",
        ),
        (
            "smtp://relay.internal:25?tls=none",
            "https://rows.example.com",
        ),
        ("log", "http://127.0.0.1:8080"),
    ] {
        let key = auth_skeleton::testing::TEST_SECRET_KEY;
        let (code, out) = check(&[
            ("PUBLIC_URL", public_url),
            ("MAIL_TRANSPORT", transport),
            ("SECRET_KEY", key),
        ]);
        assert_eq!(code, 0, "{transport} with {public_url}: {out}");
    }

    let (code, out) = check(&[("ROWS_QUOTA", "lots")]);
    assert_eq!(code, 1, "the app's own variables are checked too: {out}");
    assert!(out.contains("ROWS_QUOTA"), "{out}");

    let (code, out) = check(&[
        ("DATABASE_URL", "postgres://app:s3cret@db.internal/rows"),
        ("SECRET_KEY", auth_skeleton::testing::TEST_SECRET_KEY),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("postgres://app:***@db.internal/rows"), "{out}");
    assert!(!out.contains("s3cret"), "{out}");
}

#[test]
fn settings_come_from_flags_then_environment_then_secret_files_then_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app-rows.toml");
    std::fs::write(
        &file,
        "bind = \"127.0.0.1:7001\"\npublic_url = \"https://file.example.com\"\n\
         mail_transport = \"smtps://mail.example.com\"\n\
         database_url = \"sqlite://from-file.db\"\n[rate_limit]\nlogin_ip = \"9/minute\"\n",
    )
    .unwrap();
    let secret = dir.path().join("db-url");
    std::fs::write(&secret, "postgres://app:pw@secret.internal/rows\n").unwrap();
    let config = file.to_str().unwrap();
    // The file's public URL requires a secret key: from a file, as a deployment keeps it.
    let key_file = dir.path().join("secret-key");
    std::fs::write(
        &key_file,
        format!("{}\n", auth_skeleton::testing::TEST_SECRET_KEY),
    )
    .unwrap();
    let key = ("SECRET_KEY_FILE", key_file.to_str().unwrap());

    let out = run("app-rows", &["check-config", "--config", config], &[key]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("BIND=127.0.0.1:7001"), "{text}");
    assert!(
        text.contains("PUBLIC_URL=https://file.example.com"),
        "{text}"
    );
    assert!(
        text.contains("DATABASE_URL=sqlite://from-file.db"),
        "{text}"
    );

    let out = run(
        "app-rows",
        &["check-config", "--config", config],
        &[
            ("BIND", "127.0.0.1:7002"),
            ("DATABASE_URL_FILE", secret.to_str().unwrap()),
            key,
        ],
    );
    let text = stdout(&out);
    assert!(
        text.contains("BIND=127.0.0.1:7002"),
        "the environment beats the file: {text}"
    );
    assert!(
        text.contains("DATABASE_URL=postgres://app:***@secret.internal/rows"),
        "a *_FILE secret beats the file: {text}"
    );

    let out = run(
        "app-rows",
        &[
            "check-config",
            "--config",
            config,
            "--bind",
            "127.0.0.1:7003",
        ],
        &[("BIND", "127.0.0.1:7002"), key],
    );
    assert!(
        stdout(&out).contains("BIND=127.0.0.1:7003"),
        "a flag beats everything"
    );

    let out = run(
        "app-rows",
        &["check-config"],
        &[
            ("DATABASE_URL", "sqlite://x.db"),
            ("DATABASE_URL_FILE", secret.to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("DATABASE_URL_FILE"),
        "{}",
        stderr(&out)
    );

    let missing = run(
        "app-rows",
        &["check-config", "--config", "/no/such.toml"],
        &[],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("/no/such.toml"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn help_lists_every_command() {
    for app in ["app-rows", "app-blob"] {
        let out = run(app, &["--help"], &[]);
        assert!(out.status.success());
        let help = stdout(&out);
        for command in [
            "serve",
            "migrate",
            "check-config",
            "backup",
            "users",
            "sessions",
        ] {
            assert!(
                help.contains(command),
                "{app} --help lacks {command}:\n{help}"
            );
        }
        assert!(help.contains("--database-url") && help.contains("DATABASE_URL"));
        let users = stdout(&run(app, &["users", "--help"], &[]));
        for command in ["list", "show", "verify", "delete"] {
            assert!(users.contains(command), "{users}");
        }
    }
}

auth_skeleton::both_backends!(
    users_commands_manage_accounts_of_a_running_service,
    admin_commands_refuse_a_database_that_is_not_set_up,
    backup_copies_a_live_sqlite_database_and_points_postgres_to_pg_dump,
);
