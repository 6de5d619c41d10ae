//! Hooks through which an app takes part in the library's operations.

use std::future::Future;
use std::pin::Pin;

use crate::accounts::UserId;
use crate::db::Tx;

/// A boxed future, as returned by hook methods (so that hooks can be stored as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Deletes an app's data of a user when the account is deleted.
///
/// Runs inside the transaction that deletes the user: either the account and all its app data
/// go, or nothing does.
///
/// ```
/// use auth_skeleton::accounts::UserId;
/// use auth_skeleton::db::Tx;
/// use auth_skeleton::accounts::hooks::{AccountDataHook, BoxFuture};
/// use auth_skeleton::execute_tx;
///
/// struct Notes;
///
/// impl AccountDataHook for Notes {
///     fn delete_user_data<'a>(
///         &'a self,
///         tx: &'a mut Tx,
///         user_id: &'a UserId,
///     ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
///         Box::pin(async move {
///             execute_tx!(
///                 tx,
///                 sqlx::query("DELETE FROM notes WHERE user_id = $1").bind(user_id)
///             )?;
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
        user_id: &'a UserId,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>>;

    /// Runs once the deletion of `user_id`'s account has committed, for what the app keeps
    /// outside the database (files beside it), which the transaction could not take with it.
    /// The default does nothing. The account is gone whatever happens here: log a failure.
    fn user_data_deleted<'a>(&'a self, user_id: &'a UserId) -> BoxFuture<'a, ()> {
        let _ = user_id;
        Box::pin(async {})
    }
}

/// Runs `statements` in order inside `tx`, each with `user_id` bound to `$1`: the whole body of
/// an [`AccountDataHook`] whose tables are keyed by the user's id. List child tables before the
/// tables they reference.
///
/// ```
/// use auth_skeleton::accounts::UserId;
/// use auth_skeleton::db::Tx;
/// use auth_skeleton::accounts::hooks::{AccountDataHook, BoxFuture, delete_rows};
///
/// struct Notes;
///
/// impl AccountDataHook for Notes {
///     fn delete_user_data<'a>(
///         &'a self,
///         tx: &'a mut Tx,
///         user_id: &'a UserId,
///     ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
///         delete_rows(tx, user_id, &["DELETE FROM notes WHERE user_id = $1"])
///     }
/// }
/// ```
pub fn delete_rows<'a>(
    tx: &'a mut Tx,
    user_id: &'a UserId,
    statements: &'a [&'static str],
) -> BoxFuture<'a, Result<(), sqlx::Error>> {
    Box::pin(async move {
        for &sql in statements {
            crate::execute_tx!(&mut *tx, sqlx::query(sql).bind(user_id))?;
        }
        Ok(())
    })
}
