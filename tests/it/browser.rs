//! The TypeScript client's tests and the example web app's browser tests (Playwright driving
//! Debian's Chromium), against the binaries this workspace built: `bash clients/run-tests` with
//! `APP_ROWS_BIN` and `APP_BLOB_BIN` set to them. The script installs Chromium when it is missing
//! and runs `npm ci`, so the first run on a machine needs the npm registry.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use system_tests::binary;

/// Echoes each line of `pipe` as it comes (labelled `stream`) and keeps it in `log`.
fn relay(
    pipe: impl Read + Send + 'static,
    stream: &'static str,
    log: Arc<Mutex<String>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            eprintln!("[run-tests {stream}] {line}");
            let mut log = log.lock().expect("the log");
            log.push_str(&line);
            log.push('\n');
        }
    })
}

#[test]
fn the_typescript_client_and_the_web_example_pass_their_tests_in_a_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository's root");
    let started = Instant::now();
    let mut child = Command::new("bash")
        .arg(root.join("clients/run-tests"))
        .current_dir(root)
        .env("APP_ROWS_BIN", binary("app-rows"))
        .env("APP_BLOB_BIN", binary("app-blob"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs clients/run-tests");
    let log = Arc::new(Mutex::new(String::new()));
    let readers = [
        relay(
            child.stdout.take().expect("stdout"),
            "out",
            Arc::clone(&log),
        ),
        relay(
            child.stderr.take().expect("stderr"),
            "err",
            Arc::clone(&log),
        ),
    ];
    let status = child.wait().expect("clients/run-tests ends");
    for reader in readers {
        reader.join().expect("the output is read");
    }
    let log = log.lock().expect("the log");
    // Every line was echoed as it came; the message repeats the end.
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    assert!(
        status.success(),
        "clients/run-tests failed ({status}) after {:.0?}; the end of its output:\n{tail}",
        started.elapsed()
    );
    assert!(
        log.contains("== all passed"),
        "clients/run-tests exited 0 without finishing; the end of its output:\n{tail}"
    );
}

/// How many of the script's last lines a failure message repeats.
const TAIL_LINES: usize = 200;
