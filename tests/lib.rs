//! Helpers for the system tests in `it/`: locating and starting the real app binaries.
