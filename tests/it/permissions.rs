//! The files that hold password and session hashes are the service user's alone: the real
//! binaries, run under the usual umasks, create the data directory `0700` and the database, its
//! `-wal`/`-shm` and every backup `0600`; an existing database that others can read is warned
//! about (and left as it is); the deployment files keep it that way.

use std::io::BufRead as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use auth_skeleton::testing::{ServiceProcess, TEST_PASSWORD};
use serde_json::json;
use system_tests::binary;

/// The variables these tests set; anything else the environment holds is removed.
const CLEARED: [&str; 6] = [
    "DATABASE_URL",
    "BIND",
    "PUBLIC_URL",
    "COOKIE_SECURE",
    "CONFIG_FILE",
    "MAIL_TRANSPORT",
];

/// `app-rows ARGS` under `umask UMASK`: through `sh`, since the umask is inherited across exec.
fn under_umask(umask: &str, args: &[&str], database_url: &str) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(binary("app-rows"))
        .args(args);
    for name in CLEARED {
        command.env_remove(name);
    }
    command
        .env("DATABASE_URL", database_url)
        .env("BIND", "127.0.0.1:0")
        .env("LOG_FORMAT", "text");
    command
}

fn run_under_umask(umask: &str, args: &[&str], database_url: &str) -> Output {
    under_umask(umask, args, database_url)
        .output()
        .expect("sh runs")
}

/// `app-rows serve` under `umask`, once it listens: the process and its base URL.
fn serve_under_umask(umask: &str, database_url: &str) -> (Child, String) {
    let mut child = under_umask(umask, &["serve"], database_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(base_url) => (child, base_url),
        Err(_) => {
            let _ = child.kill();
            panic!("app-rows did not start listening under umask {umask}");
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

async fn signup(base_url: &str) {
    let response = reqwest::Client::new()
        .post(format!("{base_url}/v1/auth/signup"))
        .json(&json!({"email": "ann@example.com", "password": TEST_PASSWORD, "session": "bearer"}))
        .send()
        .await
        .expect("the service answers");
    assert_eq!(response.status().as_u16(), 201);
}

#[tokio::test]
async fn every_file_the_service_and_backup_create_is_private_whatever_the_umask() {
    for umask in ["022", "002"] {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let db = data.join("app-rows.db");
        let url = format!("sqlite://{}", db.display());

        let (mut service, base_url) = serve_under_umask(umask, &url);
        signup(&base_url).await;
        assert_eq!(mode(&data), 0o700, "the data directory, umask {umask}");
        for path in [
            db.clone(),
            with_suffix(&db, "-wal"),
            with_suffix(&db, "-shm"),
            with_suffix(&db, ".secret-key"),
        ] {
            assert_eq!(mode(&path), 0o600, "{}, umask {umask}", path.display());
        }

        // Backups while it serves, under either umask, in a directory of the operator's.
        let backups = root.path().join("backups");
        std::fs::create_dir(&backups).unwrap();
        set_mode(&backups, 0o755);
        for backup_umask in ["022", "002"] {
            let target = backups.join(format!("copy-{backup_umask}.db"));
            let out = run_under_umask(backup_umask, &["backup", target.to_str().unwrap()], &url);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(mode(&target), 0o600, "a backup under umask {backup_umask}");
        }
        let _ = child_terminate(&mut service);

        // Nothing else the service left in its directory is open to others either.
        for entry in std::fs::read_dir(&data).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path) & 0o077, 0, "{}", path.display());
        }
        assert_eq!(
            mode(&backups),
            0o755,
            "an operator's directory is left alone"
        );

        // A failed backup leaves nothing behind; an existing file is never replaced.
        let target = backups.join("copy-022.db");
        let before = std::fs::read(&target).unwrap();
        let out = run_under_umask(umask, &["backup", target.to_str().unwrap()], &url);
        assert!(!out.status.success());
        assert_eq!(std::fs::read(&target).unwrap(), before);
    }
}

/// SIGTERM, so that the service checkpoints and removes its `-wal` and `-shm` as it stops.
fn child_terminate(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().expect("the service exits")
}

#[tokio::test]
async fn a_database_others_can_read_is_warned_about_and_left_as_it_is() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    set_mode(&data, 0o755);
    let db = data.join("app-rows.db");
    std::fs::write(&db, "").unwrap();
    set_mode(&db, 0o644);
    let url = format!("sqlite://{}", db.display());
    let db_fix = format!("chmod 600 {}`", db.display());
    let dir_fix = format!("chmod 700 {}`", data.display());

    let mut service = ServiceProcess::start(&binary("app-rows"), &[("DATABASE_URL", &url)]);
    // Served a request: the signal handlers are in place, so SIGTERM below stops it cleanly.
    let health = reqwest::get(format!("{}/healthz", service.base_url)).await;
    assert_eq!(health.unwrap().status().as_u16(), 200);
    let logs = service.logs();
    assert_eq!(logs.matches(&db_fix).count(), 1, "warned once: {logs}");
    assert_eq!(logs.matches(&dir_fix).count(), 1, "{logs}");
    assert!(logs.contains("WARN"), "{logs}");
    let status = service.terminate();
    assert!(status.success(), "{status:?}: {}", service.logs());
    assert_eq!(mode(&db), 0o644, "the operator's file is not changed");
    assert_eq!(mode(&data), 0o755);

    let out = run_under_umask("022", &["check-config"], &url);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "a warning, not an error: {text}");
    assert!(
        text.contains(&db_fix) && text.contains(&dir_fix),
        "check-config reports it: {text}"
    );

    set_mode(&db, 0o600);
    set_mode(&data, 0o700);
    let out = run_under_umask("022", &["check-config"], &url);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("warning"), "{text}");
    let (status, log) = ServiceProcess::run(
        &binary("app-rows"),
        &["migrate"],
        &[("DATABASE_URL", &url), ("LOG_FORMAT", "text")],
    );
    assert!(status.success(), "{log}");
    assert!(
        !log.contains("chmod"),
        "no warning once it is private: {log}"
    );
}

#[test]
fn the_deployment_keeps_the_state_directory_private() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    for app in ["app-rows", "app-blob"] {
        let unit = std::fs::read_to_string(deploy.join(format!("systemd/{app}.service"))).unwrap();
        let lines: Vec<&str> = unit.lines().map(str::trim).collect();
        assert!(lines.contains(&"UMask=0077"), "{app}.service");
        assert!(lines.contains(&"StateDirectoryMode=0700"), "{app}.service");
    }
    let dockerfile = std::fs::read_to_string(deploy.join("Dockerfile")).unwrap();
    let owned = dockerfile
        .find("install -d -o app -g app -m 0700 /var/lib/app")
        .expect("the volume's directory is created for the service user, 0700");
    let volume = dockerfile
        .find("VOLUME [\"/var/lib/app\"]")
        .expect("VOLUME");
    assert!(
        owned < volume,
        "a new volume copies the directory's owner and mode"
    );
    assert!(
        dockerfile.contains("\nUSER app\n"),
        "the service runs as that user"
    );
}
