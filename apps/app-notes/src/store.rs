//! The notes table's SQL, one function per statement, for SQLite and PostgreSQL alike.

use auth_skeleton::db::Db;
use auth_skeleton::{execute_db, read_db};

/// The user's note, if one was written.
pub async fn note(db: &Db, user_id: &str) -> Result<Option<String>, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_scalar::<_, String>("SELECT text FROM notes WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await
    })
}

/// Writes the user's note, replacing any earlier one.
pub async fn put_note(db: &Db, user_id: &str, text: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    execute_db!(
        db,
        sqlx::query(
            "INSERT INTO notes (user_id, text, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET text = $2, updated_at = $3",
        )
        .bind(user_id)
        .bind(text)
        .bind(now_ms)
    )?;
    Ok(())
}
