//! Integration tests of the auth layer through HTTP, each on SQLite and on PostgreSQL.

mod support;

mod account;
mod accounts;
mod csrf;
mod observability;
mod protocol;
mod sessions;
mod storage;
