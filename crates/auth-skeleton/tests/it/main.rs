//! Integration tests of the auth layer through HTTP, each on SQLite and on PostgreSQL.

mod support;

mod account;
mod accounts;
mod csrf;
mod email_change;
mod layers;
mod observability;
mod openapi;
mod protocol;
mod rate_limits;
mod recovery;
mod session_cache;
mod sessions;
mod several_instances;
mod storage;
mod verification;
