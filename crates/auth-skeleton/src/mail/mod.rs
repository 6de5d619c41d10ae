//! Mail: the transports of `MAIL_TRANSPORT`, the message templates and the durable outbox.
//!
//! Nothing is sent from a request: a request writes the message into the outbox in the same
//! transaction as the token it carries, and a background worker delivers it with retries. A crash
//! or an SMTP outage therefore loses no mail, and a slow SMTP server never slows a request.

pub mod outbox;
pub mod templates;

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};

/// How long one SMTP conversation may take before it counts as a failure.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Where mail goes (`MAIL_TRANSPORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportConfig {
    /// `log`: print each message to the log (development: the link shows up in the log).
    Log,
    /// `file:DIR`: write each message as an RFC 5322 `.eml` file in `DIR`.
    File(std::path::PathBuf),
    /// `smtp://...` or `smtps://...`: deliver through an SMTP relay (credentials, `?tls=required`
    /// for STARTTLS, `smtps` for TLS; see lettre's `from_url`).
    Smtp(String),
}

impl TransportConfig {
    /// Parses a `MAIL_TRANSPORT` value.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value == "log" {
            Ok(Self::Log)
        } else if let Some(dir) = value.strip_prefix("file:") {
            if dir.is_empty() {
                Err("file: needs a directory, e.g. file:/var/lib/app/mail".to_owned())
            } else {
                Ok(Self::File(dir.into()))
            }
        } else if value.starts_with("smtp://") || value.starts_with("smtps://") {
            AsyncSmtpTransport::<Tokio1Executor>::from_url(value).map_err(|e| {
                format!("the SMTP URL does not parse ({e}); write e.g. smtps://user:pass@smtp.example.com")
            })?;
            Ok(Self::Smtp(value.to_owned()))
        } else {
            Err("expected log, file:DIR, smtp://... or smtps://...".to_owned())
        }
    }
}

/// Mail settings of the auth layer.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// Where mail goes.
    pub transport: TransportConfig,
    /// The sender (`MAIL_FROM`).
    pub from: Mailbox,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: TransportConfig::Log,
            from: "no-reply@localhost"
                .parse()
                .expect("a valid default sender"),
        }
    }
}

/// A transport built from a [`TransportConfig`].
#[derive(Clone)]
pub(crate) enum Transport {
    Log,
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Log => "Transport::Log",
            Transport::File(_) => "Transport::File",
            Transport::Smtp(_) => "Transport::Smtp",
        })
    }
}

impl Transport {
    pub(crate) fn new(config: &TransportConfig) -> Result<Self, String> {
        Ok(match config {
            TransportConfig::Log => Transport::Log,
            TransportConfig::File(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("MAIL_TRANSPORT: cannot create {}: {e}", dir.display()))?;
                Transport::File(AsyncFileTransport::new(dir))
            }
            TransportConfig::Smtp(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| format!("MAIL_TRANSPORT: {e}"))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
        })
    }

    /// Delivers one message; the error is safe to log (it never contains the message).
    pub(crate) async fn send(&self, message: Message, text_for_log: &str) -> Result<(), String> {
        match self {
            Transport::Log => {
                let to = message
                    .envelope()
                    .to()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let subject = message
                    .headers()
                    .get_raw("Subject")
                    .unwrap_or_default()
                    .to_owned();
                // The log transport exists to show the message during development.
                tracing::info!(target: "auth_skeleton::mail", %to, %subject, "mail (MAIL_TRANSPORT=log):\n{text_for_log}");
                Ok(())
            }
            Transport::File(t) => t.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_transports_and_refuses_the_rest() {
        assert_eq!(TransportConfig::parse("log"), Ok(TransportConfig::Log));
        assert_eq!(
            TransportConfig::parse("file:/tmp/mail"),
            Ok(TransportConfig::File("/tmp/mail".into()))
        );
        assert!(matches!(
            TransportConfig::parse("smtps://user:pa%20ss@smtp.example.com:465"),
            Ok(TransportConfig::Smtp(_))
        ));
        assert!(TransportConfig::parse("smtp://localhost:2525?tls=required").is_ok());
        for bad in [
            "",
            "file:",
            "sendmail",
            "smtp://",
            "http://smtp.example.com",
        ] {
            assert!(TransportConfig::parse(bad).is_err(), "{bad:?}");
        }
    }
}
