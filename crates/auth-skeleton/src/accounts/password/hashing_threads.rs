//! The threads password hashing runs on: a fixed few, at a lower CPU priority than the threads
//! that handle requests.
//!
//! An argon2 computation takes tens of milliseconds of CPU. Sharing a core with the async workers
//! at the same priority, it delays the cheap requests that become ready meanwhile by up to a
//! scheduler slice each, so a flood of logins raises the latency of everything else. With the
//! hashing threads 10 nice levels below the process, the scheduler hands the core to a request thread as soon as one is
//! ready: under contention logins slow down first, and when nothing else wants the CPU, hashing
//! runs at full speed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::HashError;

/// How much nicer than the process the hashing threads are (nice values go up to 19).
const NICER_BY: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// A queue served by `count` hashing threads; they end when every clone of it is dropped.
#[derive(Debug, Clone)]
pub(super) struct HashingThreads {
    jobs: mpsc::Sender<Job>,
}

impl HashingThreads {
    pub(super) fn start(count: usize) -> Result<Self, HashError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..count {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let next = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = next else { return };
                        // A panicking job drops its answer channel (its caller gets an error);
                        // the thread lives on for the next one.
                        let _ = catch_unwind(AssertUnwindSafe(job));
                    }
                })
                .map_err(|e| HashError::new(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self { jobs })
    }

    /// Runs `work` on a hashing thread and waits for its result without blocking the caller's.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (answer, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                // A caller that went away (a dropped request) no longer needs the result.
                if !answer.is_closed() {
                    let _ = answer.send(work());
                }
            }))
            .map_err(|_| HashError::new("the hashing threads have stopped"))?;
        result
            .await
            .map_err(|_| HashError::new("the hashing computation failed"))
    }
}

/// Lowers the calling thread's CPU priority by [`NICER_BY`] (on Linux the nice value is per
/// thread, and a new thread starts with its creator's).
#[cfg(target_os = "linux")]
fn lower_priority() {
    use rustix::process::{getpriority_process, setpriority_process};
    let me = Some(rustix::thread::gettid());
    let lowered =
        getpriority_process(me).and_then(|nice| setpriority_process(me, (nice + NICER_BY).min(19)));
    if let Err(e) = lowered {
        tracing::warn!(error = %e, "cannot lower the priority of a password-hashing thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_at_a_lower_priority_and_a_panic_costs_only_its_job() {
        let threads = HashingThreads::start(1).unwrap();
        #[cfg(target_os = "linux")]
        {
            let nice_of_this_thread =
                || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
            let ours = nice_of_this_thread();
            let theirs = threads.run(nice_of_this_thread).await.unwrap();
            assert_eq!(theirs, (ours + NICER_BY).min(19));
        }
        let failed = threads.run(|| -> u32 { panic!("a failing job") }).await;
        assert!(failed.is_err());
        assert_eq!(threads.run(|| 2 + 2).await.unwrap(), 4);
    }
}
