//! Test harness shared by the end-to-end tests: moto (started from the project's .venv, one
//! process per test binary, never skipped), the Zoom simulator, and a running connector on a
//! loopback port with either store backend.

pub mod faultproxy;
pub mod moto;
pub mod stack;
