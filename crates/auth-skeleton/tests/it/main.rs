//! Integration tests of the auth layer through HTTP, each on SQLite and on PostgreSQL.

mod support;

mod accounts;
