//! System tests: the real app binaries as separate processes on real databases.

mod attacks;
mod browser;
mod cli;
mod fleet;
mod haproxy;
mod http;
mod isolation;
mod isolation_levels;
mod mail_outage;
mod mixed_fleet;
mod permissions;
mod processes;
mod publish_local;
mod releases;
mod request_log;
mod schemathesis;
mod several_instances;
mod upgrade;
