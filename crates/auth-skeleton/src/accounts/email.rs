//! Email addresses: normalisation (one account per normalised address) and a sanity check.
//!
//! Addresses are trimmed, put in Unicode NFKC form and lower-cased, so that `Ann@Example.COM`
//! and `ann@example.com` are one account. The check is deliberately permissive: the only real
//! proof that an address works is the verification mail.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

/// The longest address accepted (RFC 5321's path limit less the angle brackets).
pub const MAX_EMAIL_LENGTH: usize = 254;
const MAX_LOCAL_PART_LENGTH: usize = 64;

/// Why an address was refused; the message is safe to show the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidEmail(pub &'static str);

/// A normalised, plausible email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Normalises and checks `input`.
    pub fn parse(input: &str) -> Result<Self, InvalidEmail> {
        let normalised: String = input.trim().nfkc().collect::<String>().to_lowercase();
        if normalised.is_empty() {
            return Err(InvalidEmail("the email address is empty"));
        }
        if normalised.chars().count() > MAX_EMAIL_LENGTH {
            return Err(InvalidEmail(
                "the email address is longer than 254 characters",
            ));
        }
        // Format characters (zero-width spaces, bidi overrides) make two different addresses
        // look alike; comments and address literals (`a@[127.0.0.1]`) are refused by the mail
        // library, so an account with one could never be mailed.
        if normalised.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || c.general_category() == GeneralCategory::Format
                || matches!(
                    c,
                    '<' | '>' | ',' | ';' | '"' | '\\' | '(' | ')' | '[' | ']'
                )
        }) {
            return Err(InvalidEmail(
                "the email address contains spaces, invisible or control characters, separators, \
                 comments or an address literal",
            ));
        }
        let Some((local, domain)) = normalised.rsplit_once('@') else {
            return Err(InvalidEmail("the email address has no @"));
        };
        if local.is_empty() || local.contains('@') || local.chars().count() > MAX_LOCAL_PART_LENGTH
        {
            return Err(InvalidEmail(
                "the part before the @ is empty, too long or contains an @",
            ));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels
                .iter()
                .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
        {
            return Err(InvalidEmail(
                "the domain after the @ is not a valid domain name",
            ));
        }
        // The last word is the mail library's: an address it cannot send to is no address.
        if normalised.parse::<lettre::Address>().is_err() {
            return Err(InvalidEmail(
                "the email address is not one mail can be sent to",
            ));
        }
        Ok(Self(normalised))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(&self.0, |(local, _)| local)
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_width_and_whitespace() {
        let a = Email::parse("  Ann@Example.COM ").unwrap();
        let b = Email::parse("ａｎｎ@example.com").unwrap(); // full-width letters, NFKC folds them
        assert_eq!(a.as_str(), "ann@example.com");
        assert_eq!(a, b);
        assert_eq!(a.local_part(), "ann");
    }

    #[test]
    fn refuses_what_cannot_be_an_address() {
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "ann@@example.com",
            "an n@example.com",
            "ann@example..com",
            "ann@-example.com",
            "a\u{0}b@example.com",
            "ann@exam\u{200b}ple.com",
            "ann\u{202e}@example.com",
            "\u{feff}ann@example.com",
            "ann\u{2060}@example.com",
            "ann(comment)@example.com",
            "ann@[127.0.0.1]",
            "ann@[ipv6:::1]",
            ".ann@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long).is_err());
    }
}
