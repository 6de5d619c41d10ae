//! Conditional requests (RFC 9110 §13): parsing `If-Match` and `If-None-Match` and deciding
//! whether a request may go ahead, apart from any storage.
//!
//! The save is one resource whose current version is an opaque tag (the ETag without quotes),
//! or nothing when no save exists. Our ETags are always strong.

use std::collections::BTreeSet;
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

    /// What these conditions mean for a write (see [`WriteMeaning`]).
    pub fn write_meaning(&self) -> WriteMeaning {
        let if_match = match &self.if_match {
            None => WriteMeaning::ANY,
            Some(Condition::Any) => WriteMeaning::AllBut {
                absent: true,
                tags: BTreeSet::new(),
            },
            // Strong comparison: a weak tag matches nothing.
            Some(Condition::Tags(tags)) => WriteMeaning::Only {
                absent: false,
                tags: tags
                    .iter()
                    .filter(|t| !t.weak)
                    .map(|t| t.opaque.clone())
                    .collect(),
            },
        };
        let if_none_match = match &self.if_none_match {
            None => WriteMeaning::ANY,
            Some(Condition::Any) => WriteMeaning::Only {
                absent: true,
                tags: BTreeSet::new(),
            },
            // Weak comparison: `W/` makes no difference.
            Some(Condition::Tags(tags)) => WriteMeaning::AllBut {
                absent: false,
                tags: tags.iter().map(|t| t.opaque.clone()).collect(),
            },
        };
        if_match.and(if_none_match)
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

/// What a write's conditions mean, whatever their spelling: the states of the save (no save, or
/// a current version's tag) in which the write goes ahead.
///
/// RFC 9110 lets one meaning be written many ways: a list in any order, with repeats or empty
/// elements, on one field line or several; a weak tag in `If-Match`, which never matches
/// (strong comparison); `W/"x"` or `"x"` in `If-None-Match`, which compares weakly. Two writes
/// with the same meaning decide alike in every state, so a retry spelled otherwise is the same
/// request (see [`crate::idempotency`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMeaning {
    /// Exactly these states: the tags listed, and no save when `absent`.
    Only {
        /// No save is one of them.
        absent: bool,
        /// The versions, sorted and without repeats.
        tags: BTreeSet<String>,
    },
    /// Every state except these.
    AllBut {
        /// No save is one of the exceptions.
        absent: bool,
        /// The versions excepted, sorted and without repeats.
        tags: BTreeSet<String>,
    },
}

impl WriteMeaning {
    const ANY: WriteMeaning = WriteMeaning::AllBut {
        absent: false,
        tags: BTreeSet::new(),
    };

    /// Both conditions: the states in both sets.
    fn and(self, other: WriteMeaning) -> WriteMeaning {
        use WriteMeaning::{AllBut, Only};
        match (self, other) {
            (Only { absent: a, tags: x }, Only { absent: b, tags: y }) => Only {
                absent: a && b,
                tags: x.intersection(&y).cloned().collect(),
            },
            (Only { absent: a, tags: x }, AllBut { absent: b, tags: y })
            | (AllBut { absent: b, tags: y }, Only { absent: a, tags: x }) => Only {
                absent: a && !b,
                tags: x.difference(&y).cloned().collect(),
            },
            (AllBut { absent: a, tags: x }, AllBut { absent: b, tags: y }) => AllBut {
                absent: a || b,
                tags: x.union(&y).cloned().collect(),
            },
        }
    }

    /// Whether a write goes ahead when the save is at `current` (`None`: no save).
    pub fn admits(&self, current: Option<&str>) -> bool {
        let (absent, tags, inside) = match self {
            WriteMeaning::Only { absent, tags } => (absent, tags, true),
            WriteMeaning::AllBut { absent, tags } => (absent, tags, false),
        };
        let listed = match current {
            None => *absent,
            Some(tag) => tags.contains(tag),
        };
        listed == inside
    }

    /// The meaning as the two field values (`If-Match`, `If-None-Match`; empty for an absent
    /// field) that state it most plainly, one pair per meaning.
    ///
    /// A condition sent in its plain spelling, one tag or `*`, comes out as it was sent.
    pub fn plain_fields(&self) -> (String, String) {
        let list = |tags: &BTreeSet<String>| {
            tags.iter()
                .map(|t| format!("\"{t}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let star = |yes: bool| if yes { "*" } else { "" }.to_owned();
        match self {
            // Never: the one pair that no other meaning gives (a tag list is never `*`).
            WriteMeaning::Only {
                absent: false,
                tags,
            } if tags.is_empty() => ("*".to_owned(), "*".to_owned()),
            WriteMeaning::Only { absent, tags } => (list(tags), star(*absent)),
            WriteMeaning::AllBut { absent, tags } => (star(*absent), list(tags)),
        }
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

    /// Every combination of the values below, as `If-Match` and `If-None-Match`.
    fn combinations() -> Vec<Preconditions> {
        let values = [
            None,
            Some("*"),
            Some("\"a\""),
            Some("W/\"a\""),
            Some("\"a\", \"a\""),
            Some("\"b\", \"a\""),
            Some("\"a\", \"b\""),
            Some("\"a\", W/\"b\""),
            Some("W/\"b\", W/\"a\""),
            Some("\"b\""),
        ];
        let mut all = Vec::new();
        for m in values {
            for n in values {
                all.push(pre(m, n));
            }
        }
        all
    }

    /// No save, every tag the combinations name, and one they never name.
    const STATES: [Option<&str>; 4] = [None, Some("a"), Some("b"), Some("c")];

    #[test]
    fn the_meaning_of_a_write_is_how_it_is_decided() {
        for p in combinations() {
            let meaning = p.write_meaning();
            for cur in STATES {
                assert_eq!(
                    meaning.admits(cur),
                    p.evaluate_write(cur) == Outcome::Proceed,
                    "{p:?} {cur:?}"
                );
            }
        }
    }

    /// Two conditions have one meaning exactly when they decide alike in every state, and one
    /// plain spelling exactly when they have one meaning.
    #[test]
    fn conditions_that_decide_alike_have_one_meaning_and_one_plain_spelling() {
        let all = combinations();
        for p in &all {
            for q in &all {
                let alike = STATES
                    .iter()
                    .all(|&cur| p.evaluate_write(cur) == q.evaluate_write(cur));
                assert_eq!(p.write_meaning() == q.write_meaning(), alike, "{p:?} {q:?}");
                assert_eq!(
                    p.write_meaning().plain_fields() == q.write_meaning().plain_fields(),
                    alike,
                    "{p:?} {q:?}"
                );
            }
        }
    }

    #[test]
    fn plain_conditions_are_their_own_plain_spelling() {
        let plain = |m: Option<&str>, n: Option<&str>| pre(m, n).write_meaning().plain_fields();
        let fields = |m: &str, n: &str| (m.to_owned(), n.to_owned());
        assert_eq!(plain(Some("\"g1-ab\""), None), fields("\"g1-ab\"", ""));
        assert_eq!(plain(Some("*"), None), fields("*", ""));
        assert_eq!(plain(None, Some("*")), fields("", "*"));
        assert_eq!(plain(Some(" \"a\" ,\"a\","), None), fields("\"a\"", ""));
        assert_eq!(
            plain(Some("\"b\", \"a\""), None),
            fields("\"a\", \"b\"", "")
        );
        assert_eq!(plain(Some("*"), Some("W/\"a\"")), fields("*", "\"a\""));
        assert_eq!(plain(Some("W/\"a\""), None), fields("*", "*"));
        assert_eq!(plain(Some("\"a\""), Some("*")), fields("*", "*"));
    }
}
