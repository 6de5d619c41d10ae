//! HAProxy (Debian's package) as a real load balancer in front of the real binaries.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `haproxy` with a generated configuration; stopped when dropped.
pub struct Haproxy {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Starts HAProxy in the foreground with `global`/`defaults` for HTTP and the given
    /// frontends and backends, and waits until `ready_port` on 127.0.0.1 accepts connections.
    ///
    /// # Panics
    /// When `haproxy` is not installed (`.ci/run` installs it) or does not start.
    pub fn start(sections: &str, ready_port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("haproxy.cfg");
        std::fs::write(
            &config,
            format!(
                "global\n    maxconn 256\n\
                 defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    \
                 timeout server 30s\n\n{sections}"
            ),
        )
        .unwrap();
        let log = dir.path().join("haproxy.log");
        let mut child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("haproxy runs (apt-get install haproxy; .ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", ready_port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "haproxy exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "haproxy did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, _dir: dir }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago, for a listener the test configures.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
