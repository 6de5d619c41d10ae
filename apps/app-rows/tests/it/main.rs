//! Integration tests of `app-rows`: the HTTP routes and the sync properties, each on SQLite and
//! on PostgreSQL, plus the real binary killed mid-flight.

mod client;
mod support;

mod account;
mod byte_quota;
mod concurrency;
mod convergence;
mod crash;
mod current;
mod cursor_owner;
mod data;
mod isolation_levels;
mod long_poll;
mod model;
mod openapi;
mod pull;
mod push;
mod retention;
mod stranding;
mod too_old;
mod validation;
