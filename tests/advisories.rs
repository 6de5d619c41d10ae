//! Known defects of `auth-skeleton` releases: `release/advisories.toml`.
//!
//! ```toml
//! [[advisory]]
//! id = "ASK-2026-0001"
//! severity = "high"
//! summary = "What an attacker can do, and under which configuration"
//! affected = [">=0.1.0, <0.1.1"]
//! patched = [">=0.1.1, <0.2.0", ">=0.2.0"]
//! fix = ["<the commit that fixes it>"]
//! references = ["CHANGELOG.md, Security"]
//! ```
//!
//! A release is affected when it matches one of `affected` and none of `patched`.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use semver::{Version, VersionReq};
use serde::Deserialize;

/// The advisories' file, relative to the workspace root.
pub const FILE: &str = "release/advisories.toml";

/// How bad a defect is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// One known defect.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advisory {
    /// `ASK-YEAR-NNNN`, never reused.
    pub id: String,
    /// How bad it is.
    pub severity: Severity,
    /// What it allows, in one paragraph.
    pub summary: String,
    /// The releases that have it, unless `patched` says otherwise.
    pub affected: Vec<VersionReq>,
    /// The releases that have the fix.
    pub patched: Vec<VersionReq>,
    /// The commits that fix it.
    pub fix: Vec<String>,
    /// Where it is described.
    #[serde(default)]
    pub references: Vec<String>,
}

impl Advisory {
    /// Whether `version` has the defect.
    pub fn affects(&self, version: &Version) -> bool {
        self.affected.iter().any(|r| r.matches(version))
            && !self.patched.iter().any(|r| r.matches(version))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    advisory: Vec<Advisory>,
}

/// The advisories in `text`, the contents of an advisories file.
///
/// # Errors
/// When it is not TOML of the shape above, an id appears twice, or an advisory has no
/// `affected` range.
pub fn parse(text: &str) -> Result<Vec<Advisory>, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut ids = BTreeSet::new();
    for advisory in &file.advisory {
        if !ids.insert(advisory.id.as_str()) {
            return Err(format!("{} appears twice", advisory.id));
        }
        if advisory.affected.is_empty() {
            return Err(format!("{} has no affected releases", advisory.id));
        }
    }
    Ok(file.advisory)
}

/// The advisories of the workspace at `root`: none when it has no advisories file.
///
/// # Errors
/// When the file cannot be read or [`parse`] refuses it.
pub fn load(root: &Path) -> Result<Vec<Advisory>, String> {
    let path = root.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_is_affected_inside_affected_and_outside_patched() {
        let advisories = parse(
            r#"
            [[advisory]]
            id = "ASK-2026-0001"
            severity = "high"
            summary = "s"
            affected = [">=0.1.0, <0.1.1"]
            patched = [">=0.1.1, <0.2.0", ">=0.2.0"]
            fix = ["abc"]
            "#,
        )
        .unwrap();
        let [advisory] = advisories.as_slice() else {
            panic!("{advisories:?}")
        };
        let affects = |v: &str| advisory.affects(&Version::parse(v).unwrap());
        assert!(affects("0.1.0"));
        assert!(!affects("0.1.1"));
        assert!(!affects("0.1.7"));
        assert!(!affects("0.2.0"));
        assert!(!affects("1.0.0"));
        assert!(!affects("0.0.9"));
    }

    #[test]
    fn a_patched_range_inside_the_affected_one_wins() {
        // Fixed on a release branch (0.1.4) before the next minor release is.
        let advisories = parse(
            r#"
            [[advisory]]
            id = "ASK-2026-0009"
            severity = "medium"
            summary = "s"
            affected = ["<0.3.0"]
            patched = [">=0.1.4, <0.2.0"]
            fix = ["abc"]
            "#,
        )
        .unwrap();
        let affects = |v: &str| advisories[0].affects(&Version::parse(v).unwrap());
        assert!(affects("0.1.3"));
        assert!(!affects("0.1.4"));
        assert!(!affects("0.1.9"));
        assert!(affects("0.2.1"));
        assert!(!affects("0.3.0"));
    }

    #[test]
    fn unknown_fields_and_repeated_ids_are_refused() {
        let one = "[[advisory]]\nid = \"A\"\nseverity = \"high\"\nsummary = \"s\"\n\
                   affected = [\"<1\"]\npatched = []\nfix = []\n";
        assert!(parse(one).is_ok());
        assert!(parse(&format!("{one}{one}")).unwrap_err().contains("twice"));
        assert!(parse(&format!("{one}afected = []\n")).is_err());
        assert!(parse(&one.replace("high", "severe")).is_err());
        assert!(parse(&one.replace("<1", "not a range")).is_err());
    }

    #[test]
    fn the_repository_s_advisories_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let advisories = load(&root).unwrap();
        assert!(advisories.len() >= 3, "{advisories:?}");
        let v010 = Version::new(0, 1, 0);
        for id in ["ASK-2026-0001", "ASK-2026-0002", "ASK-2026-0003"] {
            let advisory = advisories.iter().find(|a| a.id == id).unwrap();
            assert!(advisory.affects(&v010), "{id}");
            assert!(!advisory.affects(&Version::new(0, 1, 1)), "{id}");
            assert!(!advisory.affects(&Version::new(0, 2, 0)), "{id}");
        }
    }
}
