//! Device tokens (OWASP "Slow Down Online Guessing Attacks with Device Cookies"): a login that
//! presents a live device token of the account it signs in to is held to that token's own
//! failure count instead of the per-email limit, so whoever keeps an account locked out with
//! wrong passwords does not lock out the devices its owner already uses. After
//! [`MAX_FAILURES`] failures the token no longer helps, so a stolen one buys few guesses.
//!
//! A token is `ID.SECRET` like a session token (only a SHA-256 of the secret is stored). Every
//! successful sign-in hands one out: the presented one again (its failures back to zero) or a
//! new one, while the account keeps fewer than [`MAX_PER_ACCOUNT`]. Credential events leave
//! them alone: after taking the account back with a reset, its owner's phone must still get
//! past an attacker's lockout. Whoever held the password before and kept tokens is bounded by
//! `RATE_LIMIT_LOGIN_DEVICE_USER`, shared by all of the account's tokens, and by the cap.

use std::time::Duration;

use super::Auth;
use crate::accounts::AuthError;
use crate::db::Tx;
use crate::rate_limit::Limit;
use crate::store::{self, DeviceTokenRow, UserRow};
use crate::token::{NewSessionToken, PresentedToken};

/// A device token lives this long after the last sign-in that presented it.
pub const LIFETIME: Duration = Duration::from_secs(365 * 86_400);
/// Failed logins a device token survives; past them it is like no token at all.
pub const MAX_FAILURES: i64 = 5;
/// The device tokens one account keeps. When it has as many, a sign-in from yet another device
/// gets none: evicting the least recently used would let whoever once held the password push
/// out its owner's phone by signing in often.
pub const MAX_PER_ACCOUNT: i64 = 20;

/// A presented device token that names the account being signed in to, with one attempt
/// counted against it.
#[derive(Debug)]
pub(super) struct Reserved {
    id: String,
    token: String,
}

impl Auth {
    /// Counts this login against `presented` if it is a live device token of `user`: `None`
    /// (so the per-email limit applies) for no token, a malformed, unknown, expired or
    /// exhausted one, or one of another account.
    pub(super) async fn reserve_device(
        &self,
        presented: Option<&str>,
        user: Option<&UserRow>,
    ) -> Result<Option<Reserved>, AuthError> {
        let (Some(token), Some(user)) = (presented, user) else {
            return Ok(None);
        };
        let Some(parsed) = PresentedToken::parse(token) else {
            return Ok(None);
        };
        let Some(row) = store::device_token(self.db(), &parsed.id).await? else {
            return Ok(None);
        };
        let now = self.now();
        if !parsed.matches(&row.secret_hash)
            || row.user_id != user.id
            || row.failures >= MAX_FAILURES
            || row.expires_at <= now
        {
            return Ok(None);
        }
        // The account's tokens share a budget: each token's own count bounds a stolen token,
        // this bounds a pile of them. Tokens from before the latest credential event share one
        // budget and the others another, so a pile kept by whoever held the account before its
        // owner took it back cannot use up what the owner's new devices sign in with. Past it,
        // the login is one like any other, under the address's limit.
        let stamp = user.security_stamp;
        let budget = match row.security_stamp == stamp {
            true => format!("{}:{stamp}", user.id),
            false => format!("{}:stale", user.id),
        };
        if self.limit(Limit::LoginDeviceUser, &budget).await.is_err() {
            return Ok(None);
        }
        let reserved = store::reserve_device_attempt(self.db(), &row.id, MAX_FAILURES, now).await?;
        Ok(reserved.then(|| Reserved {
            id: row.id,
            token: token.to_owned(),
        }))
    }

    /// Gives back the attempt of a login that never got to check its password.
    pub(super) async fn release_device(&self, reserved: &Reserved) {
        if let Err(e) = store::release_device_attempt(self.db(), &reserved.id).await {
            tracing::warn!(error = %e, "device token attempt not given back");
        }
    }

    /// The device token to hand out after signing `user` in, inside `tx`: the reserved one,
    /// renewed, or a new one, unless the account already keeps [`MAX_PER_ACCOUNT`] issued since
    /// its latest credential event (older ones do not count: a pile left by whoever held the
    /// account before does not keep its owner's new devices from getting theirs).
    pub(super) async fn issue_device_token(
        &self,
        tx: &mut Tx,
        user: &UserRow,
        reserved: Option<Reserved>,
        now: i64,
    ) -> Result<Option<String>, AuthError> {
        let expires_at = now.saturating_add(LIFETIME.as_millis() as i64);
        // The stamp as read with the account before the password check: a credential event
        // since then makes the token stale at once, which errs on the safe side.
        let (user_id, stamp) = (&user.id, user.security_stamp);
        // A reserved token may have been purged meanwhile (it had reached its failures): then a
        // new one.
        if let Some(reserved) = reserved
            && store::renew_device_token(tx, &reserved.id, stamp, expires_at).await?
        {
            return Ok(Some(reserved.token));
        }
        if store::count_device_tokens(tx, user_id, stamp, now).await? >= MAX_PER_ACCOUNT {
            return Ok(None);
        }
        let minted = NewSessionToken::generate();
        let row = DeviceTokenRow {
            id: minted.id,
            user_id: user_id.clone(),
            secret_hash: minted.secret_hash,
            failures: 0,
            security_stamp: stamp,
            expires_at,
        };
        store::insert_device_token(tx, &row, now).await?;
        Ok(Some(minted.token))
    }
}
