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
    /// for STARTTLS, `smtps` for TLS, `?tls=none` to say that cleartext is meant; see lettre's
    /// `from_url`).
    Smtp(String),
}

/// Why a transport would leak live links or passwords, if it would: `MAIL_TRANSPORT=log` with a
/// public URL outside the local machine (every reset link would land in the log), or an
/// `smtp://` URL to another host that neither asks for TLS (`?tls=required`) nor says it goes
/// without (`?tls=none`), so links and SMTP credentials would cross the network in cleartext.
pub fn transport_risk(transport: &TransportConfig, public_url: &url::Url) -> Option<String> {
    match transport {
        TransportConfig::Log if !crate::web_origin::is_loopback(public_url) => Some(format!(
            "is `log` but PUBLIC_URL ({}) is not on this machine: the log would hold every live \
             reset and sign-in link. Send mail through SMTP (MAIL_TRANSPORT=smtps://... or \
             smtp://...?tls=required), or use log only with a loopback PUBLIC_URL",
            crate::web_origin::origin_of(public_url)
        )),
        TransportConfig::Smtp(value) => {
            let url = url::Url::parse(value).ok()?;
            let tls = url
                .query_pairs()
                .find(|(k, _)| k == "tls")
                .map(|(_, v)| v.into_owned());
            let cleartext = url.scheme() == "smtp" && tls.as_deref() != Some("required");
            (cleartext && tls.as_deref() != Some("none") && !crate::web_origin::is_loopback(&url)).then(|| {
                format!(
                    "sends mail in cleartext to {}: add ?tls=required (STARTTLS) or use smtps://; \
                     if the relay really takes no TLS, say so with ?tls=none",
                    url.host_str().unwrap_or_default()
                )
            })
        }
        _ => None,
    }
}

/// An SMTP failure as it may be logged: a relay's reply is described by its code only, since a
/// relay that refuses a message may quote it, live link included.
fn smtp_failure(err: &lettre::transport::smtp::Error) -> String {
    match err.status() {
        Some(code) => {
            let kind = if err.is_permanent() {
                "permanent"
            } else {
                "transient"
            };
            format!("the SMTP server refused the message: {kind} error {code}")
        }
        None => err.to_string(),
    }
}

/// The URL lettre parses: `tls=none` is this crate's word for "cleartext, on purpose", which
/// lettre spells by leaving `tls` out.
fn lettre_url(value: &str) -> String {
    let Ok(mut url) = url::Url::parse(value) else {
        return value.to_owned();
    };
    if !url.query_pairs().any(|(k, v)| k == "tls" && v == "none") {
        return value.to_owned();
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "tls")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    url.to_string()
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
            AsyncSmtpTransport::<Tokio1Executor>::from_url(&lettre_url(value)).map_err(|e| {
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
                // 0700 when new: the messages hold live sign-in links.
                crate::private_files::create_dir_all(dir)
                    .map_err(|e| format!("MAIL_TRANSPORT: cannot create {}: {e}", dir.display()))?;
                Transport::File(AsyncFileTransport::new(dir))
            }
            TransportConfig::Smtp(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(&lettre_url(url))
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
            Transport::Smtp(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| smtp_failure(&e)),
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
        assert!(TransportConfig::parse("smtp://relay.internal:25?tls=none").is_ok());
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

    fn risk(transport: &str, public_url: &str) -> Option<String> {
        let transport = TransportConfig::parse(transport).unwrap();
        transport_risk(&transport, &url::Url::parse(public_url).unwrap())
    }

    #[test]
    fn the_log_transport_is_for_the_local_machine_only() {
        for local in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            assert_eq!(risk("log", local), None, "{local}");
        }
        for public in [
            "https://rows.example.com",
            "http://0.0.0.0:8080",
            "http://10.0.0.5",
        ] {
            let why = risk("log", public).expect(public);
            assert!(why.contains("reset"), "{why}");
        }
        assert_eq!(risk("file:/tmp/mail", "https://rows.example.com"), None);
    }

    #[test]
    fn cleartext_smtp_to_another_host_must_be_asked_for() {
        let public = "https://rows.example.com";
        for refused in [
            "smtp://smtp.example.com",
            "smtp://user:pass@smtp.example.com:587",
            "smtp://smtp.example.com?tls=opportunistic",
        ] {
            let why = risk(refused, public).expect(refused);
            assert!(why.contains("tls=required"), "{why}");
        }
        for allowed in [
            "smtp://smtp.example.com?tls=required",
            "smtps://user:pass@smtp.example.com",
            "smtp://relay.internal:25?tls=none",
            "smtp://127.0.0.1:2525",
            "smtp://localhost:25",
        ] {
            assert_eq!(risk(allowed, public), None, "{allowed}");
        }
    }

    #[test]
    fn tls_none_is_dropped_before_lettre_sees_it() {
        assert_eq!(lettre_url("smtp://relay:25?tls=none"), "smtp://relay:25");
        assert_eq!(
            lettre_url("smtp://relay:25?tls=none&hello_name=me"),
            "smtp://relay:25?hello_name=me"
        );
        assert_eq!(
            lettre_url("smtp://relay:25?tls=required"),
            "smtp://relay:25?tls=required"
        );
    }
}
