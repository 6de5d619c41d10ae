//! Conditional requests (RFC 9110 §13): parsing `If-Match` and `If-None-Match` and deciding
//! whether a request may go ahead, apart from any storage.
//!
//! The save is one resource whose current version is an opaque tag (the ETag without quotes),
//! or nothing when no save exists. Our ETags are always strong.

use std::fmt;

/// One entity tag of a condition: `"xyz"` or `W/"xyz"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    /// `W/` was given.
    pub weak: bool,
    /// The tag between the quotes.
    pub opaque: String,
}

/// The value of an `If-Match` or `If-None-Match` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `*`: any current version.
    Any,
    /// A list of entity tags (never empty).
    Tags(Vec<EntityTag>),
}

/// Why a condition field could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedCondition;

impl fmt::Display for MalformedCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected * or a comma-separated list of quoted entity tags such as \"g1-ab\"")
    }
}

impl Condition {
    /// Parses a field value (several field lines joined with `, `).
    ///
    /// Stricter than RFC 9110 allows in one way: an empty list is refused, since a condition
    /// that can never hold is far more likely a client bug than an intent.
    pub fn parse(value: &str) -> Result<Self, MalformedCondition> {
        if value.trim() == "*" {
            return Ok(Condition::Any);
        }
        let mut tags = Vec::new();
        let mut rest = value;
        loop {
            // Empty list elements are allowed (RFC 9110 §5.6.1).
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            let weak = rest.starts_with("W/");
            if weak {
                rest = &rest[2..];
            }
            rest = rest.strip_prefix('"').ok_or(MalformedCondition)?;
            let end = rest.find('"').ok_or(MalformedCondition)?;
            let opaque = &rest[..end];
            // etagc = %x21 / %x23-7E / obs-text; a header that got here is visible ASCII.
            if !opaque
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b))
            {
                return Err(MalformedCondition);
            }
            tags.push(EntityTag {
                weak,
                opaque: opaque.to_owned(),
            });
            rest = rest[end + 1..].trim_start_matches([' ', '\t']);
            if !(rest.is_empty() || rest.starts_with(',')) {
                return Err(MalformedCondition);
            }
        }
        if tags.is_empty() {
            return Err(MalformedCondition);
        }
        Ok(Condition::Tags(tags))
    }

    /// `If-Match` semantics: strong comparison, so a weak tag never matches.
    fn holds_for_if_match(&self, current: Option<&str>) -> bool {
        match (self, current) {
            (_, None) => false,
            (Condition::Any, Some(_)) => true,
            (Condition::Tags(tags), Some(cur)) => tags.iter().any(|t| !t.weak && t.opaque == cur),
        }
    }

    /// Whether some tag of `If-None-Match` matches, by weak comparison (RFC 9110 §13.1.2).
    fn matches_for_if_none_match(&self, current: Option<&str>) -> bool {
        match (self, current) {
            (_, None) => false,
            (Condition::Any, Some(_)) => true,
            (Condition::Tags(tags), Some(cur)) => tags.iter().any(|t| t.opaque == cur),
        }
    }
}

/// The conditions a request carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    /// `If-Match`.
    pub if_match: Option<Condition>,
    /// `If-None-Match`.
    pub if_none_match: Option<Condition>,
}

/// What to do with a request, given its preconditions and the current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The conditions hold (or there are none): go ahead.
    Proceed,
    /// A read whose `If-None-Match` matched: `304 Not Modified`.
    NotModified,
    /// A condition failed: `412 Precondition Failed`.
    Failed,
}

impl Preconditions {
    /// Whether these conditions protect a `PUT` against lost updates: `If-Match` (replace a known
    /// version) or `If-None-Match: *` (create only if nothing exists). Anything else is `428`:
    /// `If-None-Match: "x"` alone would let a client overwrite every version but one.
    pub fn guards_write(&self) -> bool {
        self.if_match.is_some() || self.if_none_match == Some(Condition::Any)
    }

    /// Evaluates the conditions of a `GET` against the current version.
    pub fn evaluate_read(&self, current: Option<&str>) -> Outcome {
        self.evaluate(current, Outcome::NotModified)
    }

    /// Evaluates the conditions of a `PUT` or `DELETE` against the current version.
    pub fn evaluate_write(&self, current: Option<&str>) -> Outcome {
        self.evaluate(current, Outcome::Failed)
    }

    /// RFC 9110 §13.2.2: `If-Match` first, then `If-None-Match`, whose failure is `304` for
    /// reads and `412` for writes.
    fn evaluate(&self, current: Option<&str>, if_none_match_failure: Outcome) -> Outcome {
        if let Some(c) = &self.if_match
            && !c.holds_for_if_match(current)
        {
            return Outcome::Failed;
        }
        if let Some(c) = &self.if_none_match
            && c.matches_for_if_none_match(current)
        {
            return if_none_match_failure;
        }
        Outcome::Proceed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(weak: bool, opaque: &str) -> EntityTag {
        EntityTag {
            weak,
            opaque: opaque.to_owned(),
        }
    }

    fn cond(s: &str) -> Condition {
        Condition::parse(s).unwrap_or_else(|_| panic!("{s:?} should parse"))
    }

    #[test]
    fn parses_star_single_lists_and_weak_tags() {
        assert_eq!(cond("*"), Condition::Any);
        assert_eq!(cond(" * "), Condition::Any);
        assert_eq!(cond("\"a\""), Condition::Tags(vec![tag(false, "a")]));
        assert_eq!(cond("W/\"a\""), Condition::Tags(vec![tag(true, "a")]));
        assert_eq!(
            cond("\"a\", W/\"b\" ,\"c,d\""),
            Condition::Tags(vec![tag(false, "a"), tag(true, "b"), tag(false, "c,d")])
        );
        assert_eq!(cond(", \"a\",,"), Condition::Tags(vec![tag(false, "a")]));
        assert_eq!(cond("\"\""), Condition::Tags(vec![tag(false, "")]));
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in [
            "",
            "   ",
            ",",
            "a",
            "\"a",
            "a\"",
            "\"a\" \"b\"",
            "\"a\"b",
            "w/\"a\"",
            "W/a",
            "*, \"a\"",
            "\"a\", *",
            "\"a b\"",
            "**",
        ] {
            assert_eq!(Condition::parse(bad), Err(MalformedCondition), "{bad:?}");
        }
    }

    fn pre(if_match: Option<&str>, if_none_match: Option<&str>) -> Preconditions {
        Preconditions {
            if_match: if_match.map(cond),
            if_none_match: if_none_match.map(cond),
        }
    }

    #[test]
    fn only_if_match_or_create_only_guard_a_write() {
        assert!(!pre(None, None).guards_write());
        assert!(pre(Some("\"a\""), None).guards_write());
        assert!(pre(Some("*"), None).guards_write());
        assert!(pre(None, Some("*")).guards_write());
        assert!(!pre(None, Some("\"a\"")).guards_write());
    }

    #[test]
    fn if_match_uses_strong_comparison() {
        let w = |m: &str, cur: Option<&str>| pre(Some(m), None).evaluate_write(cur);
        assert_eq!(w("\"a\"", Some("a")), Outcome::Proceed);
        assert_eq!(w("\"b\", \"a\"", Some("a")), Outcome::Proceed);
        assert_eq!(w("\"b\"", Some("a")), Outcome::Failed);
        assert_eq!(w("W/\"a\"", Some("a")), Outcome::Failed);
        assert_eq!(w("\"a\"", None), Outcome::Failed);
        assert_eq!(w("*", Some("a")), Outcome::Proceed);
        assert_eq!(w("*", None), Outcome::Failed);
    }

    #[test]
    fn if_none_match_star_creates_only() {
        let w = |cur: Option<&str>| pre(None, Some("*")).evaluate_write(cur);
        assert_eq!(w(None), Outcome::Proceed);
        assert_eq!(w(Some("a")), Outcome::Failed);
    }

    #[test]
    fn reads_answer_not_modified_by_weak_comparison() {
        let r = |n: &str, cur: Option<&str>| pre(None, Some(n)).evaluate_read(cur);
        assert_eq!(r("\"a\"", Some("a")), Outcome::NotModified);
        assert_eq!(r("W/\"a\"", Some("a")), Outcome::NotModified);
        assert_eq!(r("\"x\", \"a\"", Some("a")), Outcome::NotModified);
        assert_eq!(r("*", Some("a")), Outcome::NotModified);
        assert_eq!(r("\"b\"", Some("a")), Outcome::Proceed);
        assert_eq!(pre(None, None).evaluate_read(Some("a")), Outcome::Proceed);
    }

    #[test]
    fn if_match_is_evaluated_before_if_none_match() {
        // If-Match fails: 412 even though If-None-Match would say 304.
        assert_eq!(
            pre(Some("\"b\""), Some("\"a\"")).evaluate_read(Some("a")),
            Outcome::Failed
        );
        // Both hold for a write: If-Match matches and If-None-Match does not.
        assert_eq!(
            pre(Some("\"a\""), Some("\"b\"")).evaluate_write(Some("a")),
            Outcome::Proceed
        );
        // If-Match holds but If-None-Match matches too: a write fails.
        assert_eq!(
            pre(Some("\"a\""), Some("\"a\"")).evaluate_write(Some("a")),
            Outcome::Failed
        );
    }

    /// Over every combination of small inputs: a write never proceeds unless its guard names the
    /// current state (the property the whole conflict detection rests on).
    #[test]
    fn a_guarded_write_proceeds_only_on_the_state_it_names() {
        let currents = [None, Some("a"), Some("b")];
        let values = [
            None,
            Some("*"),
            Some("\"a\""),
            Some("W/\"a\""),
            Some("\"b\", \"c\""),
        ];
        for cur in currents {
            for m in values {
                for n in values {
                    let p = pre(m, n);
                    if !p.guards_write() || p.evaluate_write(cur) != Outcome::Proceed {
                        continue;
                    }
                    match (&p.if_match, cur) {
                        (Some(Condition::Any), Some(_)) => {}
                        (Some(Condition::Tags(tags)), Some(c)) => {
                            assert!(
                                tags.iter().any(|t| !t.weak && t.opaque == c),
                                "{p:?} {cur:?}"
                            )
                        }
                        (None, None) => assert_eq!(p.if_none_match, Some(Condition::Any)),
                        _ => panic!("{p:?} proceeded on {cur:?}"),
                    }
                }
            }
        }
    }
}
