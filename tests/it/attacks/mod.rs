//! Attacks through the real binaries: each file replays one class of attack that an outside
//! review ran against the services, and asserts the promise of the contract that stops it.

mod addresses;
mod client_ip;
mod credential_races;
mod database_copy;
mod email_change_takeover;
mod mail_settings;
mod metric_labels;
mod password_guessing;
mod storage_exhaustion;
mod targeted_lockout;
mod token_floods;

use auth_skeleton::testing::{Backend, ReceivedMail, ServiceProcess, SmtpSink, TestDatabase};
use system_tests::binary;

/// The public URL of the services these attacks start: mailed links are built from it.
pub const PUBLIC_URL: &str = "http://127.0.0.1:9";

/// A real app (app-rows unless [`MailedService::start_app`] names another) on a fresh database
/// whose mail goes to an SMTP sink on loopback.
pub struct MailedService {
    pub sink: SmtpSink,
    pub service: ServiceProcess,
    /// The binary's path, e.g. for its administration commands.
    pub binary: String,
    vars: Vec<(&'static str, String)>,
    _database: TestDatabase,
}

impl MailedService {
    /// Starts app-rows with `extra` settings on top of the database, the sink and [`PUBLIC_URL`].
    pub async fn start(backend: Backend, extra: &[(&'static str, &str)]) -> Self {
        Self::start_app("app-rows", backend, extra).await
    }

    /// Starts the workspace's binary `app` as [`MailedService::start`] starts app-rows.
    pub async fn start_app(app: &str, backend: Backend, extra: &[(&'static str, &str)]) -> Self {
        let database = TestDatabase::new(backend).await;
        let sink = SmtpSink::start().await;
        let mut vars = vec![
            ("DATABASE_URL", database.url.clone()),
            ("MAIL_TRANSPORT", sink.url()),
            ("PUBLIC_URL", PUBLIC_URL.to_owned()),
            ("COOKIE_SECURE", "false".to_owned()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let binary = binary(app);
        let service = ServiceProcess::start(&binary, &Self::pairs(&vars));
        Self {
            sink,
            service,
            binary,
            vars,
            _database: database,
        }
    }

    /// The service's settings, e.g. to run an administration command on its database.
    pub fn vars(&self) -> Vec<(&str, &str)> {
        Self::pairs(&self.vars)
    }

    fn pairs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> &str {
        &self.service.base_url
    }

    /// Asks for a password reset of `email` and returns the token of the link mailed for it,
    /// the `skip`-th mail to that address being the one before.
    pub async fn reset_link(&self, email: &str, skip: usize) -> String {
        let reply = crate::http::call(
            self.base(),
            reqwest::Method::POST,
            "/v1/auth/password/forgot",
            None,
            Some(serde_json::json!({ "email": email })),
        )
        .await;
        assert_eq!(reply.status, 202, "{:?}", reply.body);
        token_of(&self.sink.wait_for(email, skip).await, "reset-password")
    }
}

/// The token of the link to `{PUBLIC_URL}/{page}` in `mail`.
pub fn token_of(mail: &ReceivedMail, page: &str) -> String {
    mail.token(&format!("{PUBLIC_URL}/{page}?token="))
        .unwrap_or_else(|| panic!("a {page} link in: {}", mail.text()))
}
