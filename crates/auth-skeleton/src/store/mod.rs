//! Every statement on the library's own tables (`auth_users`, `auth_sessions`,
//! `auth_device_tokens`, `auth_mailed_tokens`, `auth_mail_outbox`, `auth_change_counter`,
//! `auth_rate_limits`), one
//! function per statement, for both backends. Their schema is in the library's migrations.
//!
//! Nothing here decides policy (expiry, rotation, who may see what, when to mail): that is the
//! domain's job, in `accounts` and `mail`. This module sits below both, so that `mail` keeps its
//! outbox without going through `accounts`. Functions that must share a transaction with other
//! work take a [`Tx`](crate::db::Tx).
//!
//! One rule is kept here rather than by the callers: the functions that set a password, end
//! another session or change the address record the credential event themselves (see
//! [`move_security_stamp`]), so a route built on them cannot forget it.

mod device_tokens;
mod mailed_tokens;
mod outbox;
mod rate_limits;
mod sessions;
mod users;

pub use device_tokens::{
    DeviceTokenRow, count_device_tokens, device_token, insert_device_token, purge_device_tokens,
    release_device_attempt, renew_device_token, reserve_device_attempt,
};
pub use mailed_tokens::{
    MailedTokenOwner, delete_mailed_tokens, insert_mailed_token, peek_mailed_token,
    purge_mailed_tokens, spend_mailed_token,
};
pub use outbox::{
    OutboxMessage, claim_mail, count_mail, delete_mail, due_mail, insert_mail, reschedule_mail,
};
pub use rate_limits::{Counted, clear_rate_limit, count_rate_limit, prune_rate_limits};
pub use sessions::{
    SessionRow, SessionWithUser, change_counter, delete_session, delete_sessions_except,
    insert_session, live_sessions, purge_dead_sessions, revoke_session, session_with_user,
    touch_session,
};
pub use users::{
    InsertUserError, UserId, UserRow, all_users, delete_user, insert_user, lock_account,
    mark_verified, move_security_stamp, replace_password_hash, security_stamp, set_email,
    set_password_hash, user_by_email, user_by_id,
};
