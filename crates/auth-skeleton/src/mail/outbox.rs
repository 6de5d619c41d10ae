//! The durable mail outbox and its delivery worker.
//!
//! [`enqueue`] writes a rendered message inside the caller's transaction, so a message exists
//! exactly when the token it carries does. [`Outbox::deliver_due`] claims due messages one by one
//! with a conditional `UPDATE` (so several instances on one PostgreSQL database never send a
//! message twice at once), sends them, deletes them once delivered, and on failure schedules a
//! retry with exponential backoff. A message whose link has expired is dropped unsent.
//!
//! The outbox holds each message until it is delivered: that is what makes delivery survive a
//! crash. Delivered messages are deleted at once. The bodies, which carry the links, are sealed
//! with the service's secret key ([`crate::secret_key`]) bound to their row, so a copy of the
//! database holds no usable link; a message that no key of the service opens is dropped.

use std::sync::Arc;
use std::time::Duration;

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::db::{Db, Tx};
use crate::mail::Transport;
use crate::mail::templates::Rendered;
use crate::secret_key::Keyring;
use crate::store::{self, OutboxMessage};
use crate::token::new_id;

/// How long a claimed message is reserved for the instance sending it.
const CLAIM_LEASE: Duration = Duration::from_secs(120);
/// The first retry waits this long; each further one twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);
/// How often the worker looks for due messages when nothing wakes it.
const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Notices (which carry no link) are given up after this long.
pub const NOTICE_LIFETIME: Duration = Duration::from_secs(48 * 3_600);

/// What the outbox's sealed bodies are sealed for (see [`Keyring::seal`]).
const SEAL_PURPOSE: &str = "mail-outbox";
/// The prefix of a sealed body, which is base64url (no padding) of the sealed bytes. Bodies
/// without it were enqueued before sealing and are sent as they are.
const SEALED_PREFIX: &str = "sealed1:";

/// Writes a message for `recipient` into the outbox inside `tx`, its bodies sealed with `keys`;
/// it is dropped unsent after `discard_after` (Unix ms: the expiry of the link it carries).
pub async fn enqueue(
    tx: &mut Tx,
    keys: &Keyring,
    recipient: &str,
    message: &Rendered,
    now: i64,
    discard_after: i64,
) -> Result<(), sqlx::Error> {
    let id = new_id();
    let text = seal(keys, &id, "text", &message.text);
    let html = seal(keys, &id, "html", &message.html);
    store::insert_mail(
        tx,
        &id,
        recipient,
        &message.subject,
        &text,
        &html,
        now,
        discard_after,
    )
    .await
}

/// `body` sealed for the outbox row `id`, as the column stores it.
fn seal(keys: &Keyring, id: &str, part: &str, body: &str) -> String {
    use base64::Engine as _;
    let sealed = keys.seal(
        SEAL_PURPOSE,
        body.as_bytes(),
        format!("{id}/{part}").as_bytes(),
    );
    format!(
        "{SEALED_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed)
    )
}

/// The body of the outbox row `id` as [`seal`] stored it; `None` when no key opens it.
fn open(keys: &Keyring, id: &str, part: &str, stored: &str) -> Option<String> {
    use base64::Engine as _;
    let Some(encoded) = stored.strip_prefix(SEALED_PREFIX) else {
        return Some(stored.to_owned());
    };
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    let opened = keys.open(SEAL_PURPOSE, &sealed, format!("{id}/{part}").as_bytes())?;
    String::from_utf8(opened.to_vec()).ok()
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Messages delivered.
    pub sent: usize,
    /// Messages that failed and were scheduled for a retry.
    pub failed: usize,
    /// Messages dropped because their link had expired.
    pub discarded: usize,
}

/// Delivers the outbox's messages.
#[derive(Debug, Clone)]
pub struct Outbox {
    db: Db,
    clock: Clock,
    transport: Transport,
    from: Mailbox,
    keys: Keyring,
    wake: Arc<Notify>,
}

impl Outbox {
    pub(crate) fn new(
        db: Db,
        clock: Clock,
        transport: Transport,
        from: Mailbox,
        keys: Keyring,
    ) -> Self {
        Self {
            db,
            clock,
            transport,
            from,
            keys,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Tells the worker that a message was enqueued (call after the transaction commits).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// How many messages wait for delivery.
    pub async fn depth(&self) -> Result<i64, sqlx::Error> {
        store::count_mail(&self.db).await
    }

    /// Sends every message that is due now; returns what happened.
    pub async fn deliver_due(&self) -> Result<DeliveryReport, sqlx::Error> {
        let mut report = DeliveryReport::default();
        loop {
            let now = self.clock.now_ms();
            let due = store::due_mail(&self.db, now).await?;
            if due.is_empty() {
                if let Ok(depth) = self.depth().await {
                    crate::metrics::set_mail_outbox_depth(depth.max(0) as u64);
                }
                return Ok(report);
            }
            for message in due {
                self.deliver_one(message, &mut report).await?;
            }
        }
    }

    async fn deliver_one(
        &self,
        m: OutboxMessage,
        report: &mut DeliveryReport,
    ) -> Result<(), sqlx::Error> {
        let now = self.clock.now_ms();
        if now >= m.discard_after {
            self.delete(&m.id).await?;
            tracing::warn!(outbox_id = %m.id, attempts = m.attempts, "mail dropped undelivered: its link expired");
            report.discarded += 1;
            return Ok(());
        }
        // Claim it: only the instance whose UPDATE matches sends it.
        let lease_until = now + CLAIM_LEASE.as_millis() as i64;
        let claimed = store::claim_mail(&self.db, &m.id, m.next_attempt_at, lease_until).await?;
        if !claimed {
            return Ok(());
        }
        let (Some(text), Some(html)) = (
            open(&self.keys, &m.id, "text", &m.body_text),
            open(&self.keys, &m.id, "html", &m.body_html),
        ) else {
            // Sealed with a key this service no longer has (or altered): it can never be sent.
            self.delete(&m.id).await?;
            tracing::error!(outbox_id = %m.id, "mail dropped undelivered: no secret key of this service opens it (was SECRET_KEY changed without SECRET_KEY_PREVIOUS?)");
            report.discarded += 1;
            return Ok(());
        };
        let result = match self.build(&m, text.clone(), html) {
            Ok(message) => self.transport.send(message, &text).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                self.delete(&m.id).await?;
                crate::metrics::record_mail_sent();
                tracing::info!(outbox_id = %m.id, "mail delivered");
                report.sent += 1;
            }
            Err(error) => {
                let attempts = m.attempts + 1;
                let backoff = backoff(attempts);
                let next = self.clock.now_ms() + backoff.as_millis() as i64;
                store::reschedule_mail(&self.db, &m.id, attempts, next, &error).await?;
                // The error comes from the transport and never contains the message.
                tracing::warn!(outbox_id = %m.id, attempts, retry_in_s = backoff.as_secs(), %error, "mail delivery failed");
                crate::metrics::record_mail_failure();
                report.failed += 1;
            }
        }
        Ok(())
    }

    fn build(&self, m: &OutboxMessage, text: String, html: String) -> Result<Message, String> {
        let to: Mailbox = m
            .recipient
            .parse()
            .map_err(|e| format!("the recipient address is not usable: {e}"))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| format!("the message could not be built: {e}"))
    }

    async fn delete(&self, id: &str) -> Result<(), sqlx::Error> {
        store::delete_mail(&self.db, id).await
    }

    /// Runs the delivery loop until the process ends: a pass whenever a message is enqueued,
    /// and every few seconds for retries.
    pub fn spawn_worker(&self) {
        let outbox = self.clone();
        tokio::task::spawn_local(async move {
            loop {
                if let Err(e) = outbox.deliver_due().await {
                    tracing::warn!(error = %e, "mail outbox pass failed");
                }
                let _ = tokio::time::timeout(POLL_INTERVAL, outbox.wake.notified()).await;
            }
        });
    }

    /// Delivers what is due, giving up at `deadline` (for shutdown).
    pub async fn flush(&self, deadline: Duration) {
        match tokio::time::timeout(deadline, self.deliver_due()).await {
            Ok(Ok(report)) if report.sent + report.failed > 0 => {
                tracing::info!(
                    sent = report.sent,
                    failed = report.failed,
                    "mail outbox flushed"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "mail outbox flush failed"),
            Err(_) => tracing::warn!("mail outbox flush timed out; the rest is sent at next start"),
        }
    }
}

/// The wait before retry number `attempts` (1-based): 2 s, 4 s, 8 s, ... capped at 30 minutes.
fn backoff(attempts: i64) -> Duration {
    let exponent = attempts.clamp(1, 20) as u32 - 1;
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(5), Duration::from_secs(32));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
