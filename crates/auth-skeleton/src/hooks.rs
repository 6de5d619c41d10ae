//! Hooks through which an app takes part in the library's operations.

use std::future::Future;
use std::pin::Pin;

use crate::db::Tx;

/// A boxed future, as returned by hook methods (so that hooks can be stored as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Deletes an app's data of a user when the account is deleted.
///
/// Runs inside the transaction that deletes the user: either the account and all its app data
/// go, or nothing does.
///
/// ```
/// use auth_skeleton::db::Tx;
/// use auth_skeleton::hooks::{AccountDataHook, BoxFuture};
/// use auth_skeleton::with_tx;
///
/// struct Notes;
///
/// impl AccountDataHook for Notes {
///     fn delete_user_data<'a>(
///         &'a self,
///         tx: &'a mut Tx,
///         user_id: &'a str,
///     ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
///         Box::pin(async move {
///             with_tx!(tx, |conn| {
///                 sqlx::query("DELETE FROM notes WHERE user_id = $1")
///                     .bind(user_id)
///                     .execute(conn)
///                     .await
///                     .map(|done| done.rows_affected())
///             })?;
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait AccountDataHook: Send + Sync + 'static {
    /// Deletes everything the app keeps for `user_id`, inside `tx`.
    fn delete_user_data<'a>(
        &'a self,
        tx: &'a mut Tx,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>>;
}
