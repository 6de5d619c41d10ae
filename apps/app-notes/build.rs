//! `sqlx::migrate!` embeds the app's migration files at compile time; this makes a new or
//! changed migration alone (with no source change) rebuild the app.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations/app-notes");
}
