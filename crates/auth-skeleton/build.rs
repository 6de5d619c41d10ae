//! `sqlx::migrate!` embeds the migration files at compile time; this makes a new or changed
//! migration alone (with no source change) rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
