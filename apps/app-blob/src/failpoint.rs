//! Crash points for the tests that kill the service in the middle of a write.
//!
//! In a debug build, `APP_BLOB_CRASH_AT=NAME` makes the process kill itself with `SIGKILL` when
//! it reaches the point `NAME`: no destructor runs and nothing is flushed, as when the power
//! goes. Release builds have no crash points.

/// Kills the process here if `APP_BLOB_CRASH_AT` names this point (debug builds only).
pub fn hit(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("APP_BLOB_CRASH_AT").is_ok_and(|at| at == name) {
        eprintln!("app-blob: crash point {name} reached");
        // SIGKILL cannot be caught: the process stops here.
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
