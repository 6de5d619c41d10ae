//! The messages the auth layer sends, each with a plain-text and an HTML part that carry the
//! app's name. Links are built from `PUBLIC_URL` only, never from a request's `Host`.

/// A rendered message, ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// The text/plain part.
    pub text: String,
    /// The text/html part.
    pub html: String,
}

/// What a message is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Template<'a> {
    /// "Confirm your email address", with the verification link.
    VerifyEmail {
        /// `{PUBLIC_URL}/verify-email?token=T`.
        link: &'a str,
        /// How long the link works, for the reader ("24 hours").
        valid_for: &'a str,
    },
    /// "Reset your password", with the reset link.
    ResetPassword {
        /// `{PUBLIC_URL}/reset-password?token=T`.
        link: &'a str,
        /// How long the link works.
        valid_for: &'a str,
    },
    /// "Confirm your new email address", sent to the new address.
    ConfirmEmailChange {
        /// `{PUBLIC_URL}/confirm-email?token=T`.
        link: &'a str,
        /// How long the link works.
        valid_for: &'a str,
    },
    /// Notice to the account's address: its password was reset.
    PasswordWasReset,
    /// Notice to the account's address: its password was changed.
    PasswordWasChanged,
    /// Notice to the old address: a change to `new_email` was requested.
    EmailChangeRequested {
        /// The requested address.
        new_email: &'a str,
    },
    /// Notice to the old address: the account's address is now `new_email`.
    EmailWasChanged {
        /// The new address.
        new_email: &'a str,
    },
}

impl Template<'_> {
    /// Renders the message for the app `app`.
    pub fn render(&self, app: &str) -> Rendered {
        let not_you = "If this was not you, reset your password and sign out your other sessions.";
        let (subject, intro, link, outro) = match self {
            Template::VerifyEmail { link, valid_for } => (
                format!("Confirm your email address for {app}"),
                format!("Confirm that this address belongs to your {app} account."),
                Some(*link),
                format!(
                    "The link works for {valid_for}. If you did not sign up, ignore this message."
                ),
            ),
            Template::ResetPassword { link, valid_for } => (
                format!("Reset your {app} password"),
                format!("Someone asked to reset the password of your {app} account."),
                Some(*link),
                format!(
                    "The link works for {valid_for} and only once. If you did not ask, ignore this \
                     message: your password stays as it is."
                ),
            ),
            Template::ConfirmEmailChange { link, valid_for } => (
                format!("Confirm your new email address for {app}"),
                format!("Confirm that your {app} account should use this address from now on."),
                Some(*link),
                format!(
                    "The link works for {valid_for}. If you did not ask for this, ignore this message."
                ),
            ),
            Template::PasswordWasReset => (
                format!("Your {app} password was reset"),
                format!(
                    "The password of your {app} account was reset and every session was signed out."
                ),
                None,
                not_you.to_owned(),
            ),
            Template::PasswordWasChanged => (
                format!("Your {app} password was changed"),
                format!(
                    "The password of your {app} account was changed; other sessions were signed out."
                ),
                None,
                not_you.to_owned(),
            ),
            Template::EmailChangeRequested { new_email } => (
                format!("A change of your {app} email address was requested"),
                format!(
                    "Someone signed in to your {app} account asked to change its email address to \
                     {new_email}. Nothing changes until that address is confirmed."
                ),
                None,
                "If this was not you, reset your password (\"forgot password\" works without \
                 signing in): a reset cancels every pending change of address and signs out every \
                 session."
                    .to_owned(),
            ),
            Template::EmailWasChanged { new_email } => (
                format!("Your {app} email address was changed"),
                format!("Your {app} account now uses the address {new_email}."),
                None,
                not_you.to_owned(),
            ),
        };
        let text = match link {
            Some(link) => format!("{intro}\n\n{link}\n\n{outro}\n\n-- {app}\n"),
            None => format!("{intro}\n\n{outro}\n\n-- {app}\n"),
        };
        let link_html = link
            .map(|l| {
                let l = escape(l);
                format!("<p><a href=\"{l}\">{l}</a></p>\n")
            })
            .unwrap_or_default();
        let html = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{subject}</title></head>\n\
             <body>\n<p>{intro}</p>\n{link_html}<p>{outro}</p>\n<p>&mdash; {app}</p>\n</body></html>\n",
            subject = escape(&subject),
            intro = escape(&intro),
            outro = escape(&outro),
            app = escape(app),
        );
        Rendered {
            subject,
            text,
            html,
        }
    }
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parts_carry_the_app_name_and_the_link() {
        let link = "https://play.example.com/verify-email?token=abc";
        let m = Template::VerifyEmail {
            link,
            valid_for: "24 hours",
        }
        .render("app-rows");
        assert!(m.subject.contains("app-rows"));
        assert!(m.text.contains(link) && m.text.contains("app-rows"));
        assert!(m.html.contains(&format!("href=\"{link}\"")) && m.html.contains("app-rows"));
    }

    #[test]
    fn html_is_escaped() {
        let m = Template::EmailWasChanged {
            new_email: "<script>@x.y",
        }
        .render("a&b");
        assert!(m.html.contains("&lt;script&gt;@x.y") && m.html.contains("a&amp;b"));
        assert!(!m.html.contains("<script>"));
    }
}
