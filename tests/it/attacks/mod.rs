//! Attacks through the real binaries: each file replays one class of attack that an outside
//! review ran against the services, and asserts the promise of the contract that stops it.

mod addresses;
mod client_ip;
mod credential_races;
mod email_change_takeover;
mod mail_settings;
mod metric_labels;
mod password_guessing;
mod token_floods;
