//! Passwords: the acceptance rules and argon2id hashing.
//!
//! Rules (checked before any hashing, so a refused password costs nothing): a length between
//! the configured minimum and [`MAX_PASSWORD_CHARS`] Unicode scalar values; not on the shipped
//! list of the most common passwords (compared case-insensitively); and not containing the
//! email's local part when that part has at least [`MIN_LOCAL_PART_MATCH`] characters. No
//! composition rules, no truncation, no alteration (OWASP ASVS 5.0 V6.2).
//!
//! Hashing is argon2id in PHC strings with at least m=19456 KiB, t=2, p=1 (OWASP's password
//! storage cheat sheet). It runs on threads of its own at a lower CPU priority (the
//! `hashing_threads` module), behind a semaphore, so that a storm of logins neither stalls the
//! async workers nor takes 19 MiB per attempt without bound: at most `concurrency` hashes run at
//! once and the rest wait their turn. Each running hash
//! borrows its 19 MiB working memory from a pool of at most `concurrency` blocks that are
//! allocated once and reused, so a login costs no allocation (nor the page faults of fresh
//! memory) and the memory held stays at `concurrency` x 19 MiB however long the storm.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::accounts::email::Email;
use hashing_threads::HashingThreads;

mod hashing_threads;

/// The longest password accepted, in Unicode scalar values.
pub const MAX_PASSWORD_CHARS: usize = 256;
/// A local part shorter than this is not checked against the password (`jo` would forbid too much).
pub const MIN_LOCAL_PART_MATCH: usize = 3;

/// The shipped common-password list; see `data/README.md` for its source and licence.
const COMMON_PASSWORDS_TEXT: &str = include_str!("../../data/common-passwords.txt");

static COMMON_PASSWORDS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    COMMON_PASSWORDS_TEXT
        .lines()
        .map(|l| l.trim().to_lowercase())
        .filter(|l| !l.is_empty())
        .collect()
});

/// Whether `password` is on the shipped common-password list (case-insensitively).
pub(crate) fn is_common(password: &str) -> bool {
    COMMON_PASSWORDS.contains(&password.to_lowercase())
}

/// How many distinct passwords the shipped list holds.
#[cfg(test)]
fn common_password_count() -> usize {
    COMMON_PASSWORDS.len()
}

/// A password as a person typed it. It never prints: `Debug` shows `Password(***)` and there is
/// no `Display`, so a request struct or an error that holds one cannot put it in a log. Its
/// memory is wiped when it is dropped. Read it with [`Password::expose`], at the few places that
/// hash, verify or check it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(zeroize::Zeroizing<String>);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(zeroize::Zeroizing::new(password.into()))
    }

    /// The password itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Self {
        Self::new(password)
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Self::new(password)
    }
}

/// In the OpenAPI document a password is a string of at most [`MAX_PASSWORD_CHARS`] characters:
/// the one rule every route checks, before any hashing (longer is `400 weak_password` where a
/// password is set, `401 invalid_credentials` where one is checked). The minimum is configured
/// (`PASSWORD_MIN_LENGTH`) and applies to new passwords only, so it is in the descriptions.
impl utoipa::PartialSchema for Password {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
            .max_length(Some(MAX_PASSWORD_CHARS))
            .into()
    }
}

impl utoipa::ToSchema for Password {}

impl<'de> serde::Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

/// The rules a new password must meet.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// The minimum length in Unicode scalar values (`PASSWORD_MIN_LENGTH`, default 8).
    pub min_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_chars: 8 }
    }
}

impl PasswordPolicy {
    /// Whether `password` is too long to be hashed at all (checked on every path, login too).
    pub fn is_overlong(password: &Password) -> bool {
        password.expose().chars().count() > MAX_PASSWORD_CHARS
    }

    /// Checks a new password; the error says which rule it breaks.
    pub fn check(&self, password: &Password, email: &Email) -> Result<(), String> {
        let password = password.expose();
        let chars = password.chars().count();
        if chars < self.min_chars {
            return Err(format!(
                "the password must have at least {} characters",
                self.min_chars
            ));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(format!(
                "the password must have at most {MAX_PASSWORD_CHARS} characters"
            ));
        }
        if is_common(password) {
            return Err("the password is on the list of the most common passwords".to_owned());
        }
        let local = email.local_part();
        if local.chars().count() >= MIN_LOCAL_PART_MATCH && password.to_lowercase().contains(local)
        {
            return Err("the password must not contain the email address's local part".to_owned());
        }
        Ok(())
    }
}

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Parallelism.
    pub p: u32,
}

impl HashCost {
    /// The floor the contract requires: m=19456 KiB, t=2, p=1.
    pub const MINIMUM: HashCost = HashCost {
        m_kib: 19_456,
        t: 2,
        p: 1,
    };

    fn params(self) -> Params {
        Params::new(self.m_kib, self.t, self.p, None).unwrap_or(Params::DEFAULT)
    }

    /// Whether `self` is weaker than `other` in any dimension.
    fn weaker_than(self, other: HashCost) -> bool {
        self.m_kib < other.m_kib || self.t < other.t || self.p < other.p
    }
}

impl Default for HashCost {
    fn default() -> Self {
        Self::MINIMUM
    }
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// It matches.
    Yes {
        /// The stored hash is weaker than the configured cost (or not argon2id): replace it.
        needs_rehash: bool,
    },
    /// It does not match (or there was no account: see [`Hasher::verify`]).
    No,
}

/// Hashing failed for a reason other than a wrong password.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {message}")]
pub struct HashError {
    message: String,
    overloaded: bool,
}

impl HashError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            overloaded: false,
        }
    }

    fn overloaded() -> Self {
        Self {
            message: "the hashing queue is full".to_owned(),
            overloaded: true,
        }
    }

    /// Whether the work was refused, not started, because the hashing queue was full: the
    /// caller should answer `503 overloaded` at once rather than wait.
    pub fn is_overloaded(&self) -> bool {
        self.overloaded
    }
}

/// How many hashes may wait per hashing thread before more are refused as overloaded. A flood
/// of logins then gets `503` at once instead of queueing every legitimate login for seconds.
pub const QUEUE_PER_THREAD: usize = 8;

/// Hashes and verifies passwords off the async workers, a bounded number at a time.
#[derive(Debug, Clone)]
pub struct Hasher {
    cost: HashCost,
    concurrency: usize,
    permits: Arc<Semaphore>,
    /// Admission: the computations running or waiting for a permit; none past its size.
    admitted: Arc<Semaphore>,
    /// Verified against when an email is unknown, so that such a login costs the same work.
    dummy_hash: Arc<String>,
    /// How many hash or verify computations have started (for metrics and tests).
    started: Arc<AtomicU64>,
    /// Working memory for the hashes in flight, reused (at most `concurrency` blocks).
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Where the computations run.
    threads: HashingThreads,
}

impl Hasher {
    /// A hasher with the given cost that runs at most `concurrency` hashes at once and lets
    /// [`QUEUE_PER_THREAD`] per thread wait.
    pub fn new(cost: HashCost, concurrency: usize) -> Result<Self, HashError> {
        Self::with_queue(cost, concurrency, concurrency.max(1) * QUEUE_PER_THREAD)
    }

    /// A hasher that runs at most `concurrency` hashes at once and lets at most `queue` more
    /// wait; past that, [`Hasher::hash`] and [`Hasher::verify`] fail at once with an error
    /// that [is overloaded](HashError::is_overloaded).
    pub(crate) fn with_queue(
        cost: HashCost,
        concurrency: usize,
        queue: usize,
    ) -> Result<Self, HashError> {
        let dummy_password = crate::token::random_token_string(32);
        let dummy_hash = hash_now(cost, &dummy_password, &mut Vec::new())?;
        let concurrency = concurrency.max(1);
        Ok(Self {
            cost,
            concurrency,
            permits: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
            dummy_hash: Arc::new(dummy_hash),
            started: Arc::new(AtomicU64::new(0)),
            memory: Arc::new(Mutex::new(Vec::new())),
            threads: HashingThreads::start(concurrency)?,
        })
    }

    /// The configured cost.
    pub fn cost(&self) -> HashCost {
        self.cost
    }

    /// The most hashes that run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// How many hash or verify computations have started since this hasher was built (feature
    /// `testing`: tests prove with it that a refused request hashed nothing).
    #[cfg(feature = "testing")]
    pub fn computations_started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Hashes a password into a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let cost = self.cost;
        let password = password.clone();
        self.run_blocking(move |memory| hash_now(cost, password.expose(), memory))
            .await
    }

    /// Checks `password` against `stored`, or against a dummy hash when there is no account, so
    /// that an unknown email costs the same work as a wrong password (the result is then `No`).
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let (phc, real) = match stored {
            Some(s) => (s.to_owned(), true),
            None => ((*self.dummy_hash).clone(), false),
        };
        let password = password.clone();
        let configured = self.cost;
        let verified = self
            .run_blocking(move |memory| verify_now(password.expose(), &phc, configured, memory))
            .await?;
        Ok(if real { verified } else { Verified::No })
    }

    /// Runs `work` on a hashing thread with a permit and a block of working memory, both
    /// given back when it ends (the memory only if the work did not panic).
    async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let _admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| HashError::overloaded())?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError::new(e.to_string()))?;
        self.started.fetch_add(1, Ordering::Relaxed);
        let pool = self.memory.clone();
        let mut memory = pool
            .lock()
            .map_err(|e| HashError::new(e.to_string()))?
            .pop()
            .unwrap_or_default();
        self.threads
            .run(move || {
                let result = work(&mut memory);
                // Holding a permit, this task's block is one of at most `concurrency`.
                if let Ok(mut free) = pool.lock() {
                    free.push(memory);
                }
                result
            })
            .await?
    }
}

/// Runs argon2 with `memory` as its working memory, growing it first if it is too small.
fn hash_into(
    argon2: &Argon2<'_>,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), HashError> {
    let needed = argon2.params().block_count();
    if memory.len() < needed {
        memory.resize(needed, Block::new());
    }
    argon2
        .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..])
        .map_err(|e| HashError::new(e.to_string()))
}

fn hash_now(cost: HashCost, password: &str, memory: &mut Vec<Block>) -> Result<String, HashError> {
    let params = cost.params();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt_bytes: [u8; Salt::RECOMMENDED_LENGTH] = crate::token::random_bytes();
    let salt = Salt::new(&salt_bytes).map_err(|e| HashError::new(e.to_string()))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    hash_into(&argon2, password, &salt_bytes, &mut out, memory)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| HashError::new(e.to_string()))?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| HashError::new(e.to_string()))?),
    };
    Ok(hash.to_string())
}

fn verify_now(
    password: &str,
    phc: &str,
    configured: HashCost,
    memory: &mut Vec<Block>,
) -> Result<Verified, HashError> {
    let parsed = PasswordHash::new(phc).map_err(|e| HashError::new(e.to_string()))?;
    // The parameters come from the stored string, not from the configured cost.
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str())
        .map_err(|e| HashError::new(e.to_string()))?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|e| HashError::new(e.to_string()))?,
        None => Version::default(),
    };
    let stored = Params::try_from(&parsed).map_err(|e| HashError::new(e.to_string()))?;
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Ok(Verified::No);
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, stored.clone());
    hash_into(&argon2, password, salt.as_ref(), &mut out, memory)?;
    // `Output`'s equality is constant-time.
    if Output::new(&out).map_err(|e| HashError::new(e.to_string()))? != *expected {
        return Ok(Verified::No);
    }
    let stored_cost = HashCost {
        m_kib: stored.m_cost(),
        t: stored.t_cost(),
        p: stored.p_cost(),
    };
    let needs_rehash =
        parsed.algorithm.as_str() != "argon2id" || stored_cost.weaker_than(configured);
    Ok(Verified::Yes { needs_rehash })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_prints() {
        let password: Password = serde_json::from_str(r#""hunter2-correct-horse""#).unwrap();
        assert_eq!(password.expose(), "hunter2-correct-horse");
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Login {
            email: String,
            password: Password,
        }
        let login: Login = serde_json::from_str(
            r#"{"email": "a@example.com", "password": "hunter2-correct-horse"}"#,
        )
        .unwrap();
        let printed = format!("{login:?} {login:#?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("Password(***)"), "{printed}");
    }

    fn email() -> Email {
        Email::parse("maria.lopez@example.com").unwrap()
    }

    #[test]
    fn ships_at_least_ten_thousand_common_passwords() {
        assert!(
            common_password_count() >= 10_000,
            "{}",
            common_password_count()
        );
        assert!(is_common("password") && is_common("PASSWORD") && is_common("12345678"));
        assert!(!is_common("correct horse battery staple 1987"));
    }

    #[test]
    fn policy_refuses_short_long_common_and_local_part() {
        let p = PasswordPolicy { min_chars: 8 };
        assert!(
            p.check(&Password::from("short"), &email())
                .unwrap_err()
                .contains("at least 8")
        );
        assert!(
            p.check(&Password::from("x".repeat(257)), &email())
                .unwrap_err()
                .contains("at most 256")
        );
        assert!(
            p.check(&Password::from("é".repeat(256)), &email()).is_ok(),
            "length counts characters, not bytes"
        );
        assert!(
            p.check(&Password::from("iloveyou"), &email())
                .unwrap_err()
                .contains("common")
        );
        assert!(
            p.check(&Password::from("xxMaria.Lopez99"), &email())
                .unwrap_err()
                .contains("local part")
        );
        assert!(
            p.check(&Password::from("tangerine-orbit-41"), &email())
                .is_ok()
        );
        let short_local = Email::parse("jo@example.com").unwrap();
        assert!(
            p.check(&Password::from("jo-tangerine-orbit"), &short_local)
                .is_ok()
        );
    }

    #[test]
    fn reads_and_writes_the_same_phc_strings_as_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let cost = HashCost {
            m_kib: 8_192,
            t: 1,
            p: 1,
        };
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, cost.params())
            .hash_password(b"tangerine-orbit-41")
            .unwrap()
            .to_string();
        let mut memory = Vec::new();
        assert_eq!(
            verify_now("tangerine-orbit-41", &theirs, cost, &mut memory).unwrap(),
            Verified::Yes {
                needs_rehash: false
            }
        );
        assert_eq!(
            verify_now("tangerine-orbit-42", &theirs, cost, &mut memory).unwrap(),
            Verified::No
        );
        let ours = hash_now(cost, "tangerine-orbit-41", &mut memory).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"tangerine-orbit-41", &parsed)
                .is_ok()
        );
        // A block bigger than needed (left by a costlier hash) is reused as it is.
        assert_eq!(memory.len(), 8_192);
        let big = HashCost::MINIMUM;
        hash_now(big, "x", &mut memory).unwrap();
        assert_eq!(memory.len(), 19_456);
        assert_eq!(
            verify_now("tangerine-orbit-41", &ours, cost, &mut memory).unwrap(),
            Verified::Yes {
                needs_rehash: false
            }
        );
    }

    #[tokio::test]
    async fn past_the_queue_work_is_refused_at_once_as_overloaded() {
        // A real hash (tens of ms): the first is still running when the third is submitted a few
        // microseconds later. A cheap one could finish in between, and the third would fit.
        let cost = HashCost::MINIMUM;
        // One running and one waiting; a third started with them is refused, not queued.
        let hasher = Hasher::with_queue(cost, 1, 1).unwrap();
        let results = futures_util::future::join_all((0..3).map(|i| {
            let hasher = hasher.clone();
            async move { hasher.hash(&Password::from(format!("password-{i}"))).await }
        }))
        .await;
        let overloaded = results
            .iter()
            .filter(|r| r.as_ref().is_err_and(HashError::is_overloaded))
            .count();
        assert_eq!(overloaded, 1, "{results:?}");
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
        assert!(
            hasher
                .hash(&Password::from("once-the-queue-drains"))
                .await
                .is_ok()
        );
        assert_eq!(
            hasher.computations_started(),
            3,
            "the refused one never ran"
        );
    }

    #[tokio::test]
    async fn holds_at_most_concurrency_blocks_of_memory() {
        let cost = HashCost {
            m_kib: 1_024,
            t: 1,
            p: 1,
        };
        let hasher = Hasher::new(cost, 2).unwrap();
        let hashes = futures_util::future::join_all((0..8).map(|i| {
            let hasher = hasher.clone();
            async move {
                hasher
                    .hash(&Password::from(format!("password-{i}")))
                    .await
                    .unwrap()
            }
        }))
        .await;
        assert_eq!(hashes.len(), 8);
        let pooled = hasher.memory.lock().unwrap().len();
        assert!((1..=2).contains(&pooled), "{pooled}");
    }

    #[tokio::test]
    async fn hashes_verify_and_flag_weaker_parameters_for_rehash() {
        let weak = HashCost {
            m_kib: 8_192,
            t: 1,
            p: 1,
        };
        let old = Hasher::new(weak, 2).unwrap();
        let stored = old
            .hash(&Password::from("tangerine-orbit-41"))
            .await
            .unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"),
            "{stored}"
        );

        let current = Hasher::new(HashCost::MINIMUM, 2).unwrap();
        assert_eq!(
            current
                .verify(&Password::from("tangerine-orbit-41"), Some(&stored))
                .await
                .unwrap(),
            Verified::Yes { needs_rehash: true }
        );
        assert_eq!(
            current
                .verify(&Password::from("tangerine-orbit-42"), Some(&stored))
                .await
                .unwrap(),
            Verified::No
        );
        let fresh = current
            .hash(&Password::from("tangerine-orbit-41"))
            .await
            .unwrap();
        assert!(
            fresh.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{fresh}"
        );
        assert_eq!(
            current
                .verify(&Password::from("tangerine-orbit-41"), Some(&fresh))
                .await
                .unwrap(),
            Verified::Yes {
                needs_rehash: false
            }
        );
        assert_eq!(
            current
                .verify(&Password::from("anything"), None)
                .await
                .unwrap(),
            Verified::No
        );
    }
}
