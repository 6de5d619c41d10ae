//! Integration tests of the save engine through HTTP, each on SQLite and on PostgreSQL.

mod support;

mod account;
mod backup;
mod conflicts;
mod crash;
mod files;
mod head;
mod history;
mod idempotency;
mod long_poll;
mod openapi;
mod quota;
mod routes;
mod storage;
mod upgrade;
mod uploads;
