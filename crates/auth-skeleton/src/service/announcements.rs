//! Hearing what other instances on the same PostgreSQL database announce: ended sessions
//! (`auth_skeleton_sessions`, sent by triggers at commit) and changed user data
//! (`auth_skeleton_changes`, sent by [`crate::changes::ChangeFeed::announce`]).
//!
//! One connection per instance listens. While it is down nothing announced reaches this
//! instance, so the session cache serves no hit and every long-poll reads again; it reconnects
//! with a growing pause.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use crate::accounts::Auth;

/// The channel of ended sessions and changed accounts (migration 0006).
const SESSIONS_CHANNEL: &str = "auth_skeleton_sessions";
/// The longest pause between attempts to listen again.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Listens until the process ends.
pub(crate) fn spawn(auth: Auth, pool: PgPool) {
    actix_web::rt::spawn(async move {
        let mut pause = Duration::from_millis(100);
        loop {
            match listen(&pool).await {
                Ok(mut listener) => {
                    pause = Duration::from_millis(100);
                    auth.hearing_announcements(true);
                    tracing::debug!("listening for announcements of other instances");
                    let lost = hear(&auth, &mut listener).await;
                    auth.hearing_announcements(false);
                    tracing::warn!(error = %lost, "announcements of other instances unheard; listening again");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for announcements of other instances");
                }
            }
            actix_web::rt::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    });
}

async fn listen(pool: &PgPool) -> Result<Listening, sqlx::Error> {
    // Wrapped at once: the task may be dropped at any await from here on.
    let mut listener = Listening(Some(PgListener::connect_with(pool).await?));
    listener
        .listen_all([SESSIONS_CHANNEL, crate::changes::CHANNEL])
        .await?;
    Ok(listener)
}

/// A listener that is let go without a word when its runtime is already gone: dropping it
/// spawns a task to give its connection back, which needs a runtime (a test's, ending).
struct Listening(Option<PgListener>);

impl Drop for Listening {
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_err() {
            std::mem::forget(self.0.take());
        }
    }
}

impl std::ops::Deref for Listening {
    type Target = PgListener;
    fn deref(&self) -> &PgListener {
        self.0.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Listening {
    fn deref_mut(&mut self) -> &mut PgListener {
        self.0.as_mut().expect("present until dropped")
    }
}

/// Applies announcements until the connection fails.
async fn hear(auth: &Auth, listener: &mut PgListener) -> sqlx::Error {
    loop {
        match listener.try_recv().await {
            Ok(Some(heard)) => match heard.channel() {
                SESSIONS_CHANNEL => auth.heard_session_announcement(heard.payload()),
                _ => auth.changes().wake(heard.payload()),
            },
            Ok(None) => return sqlx::Error::PoolClosed,
            Err(e) => return e,
        }
    }
}
