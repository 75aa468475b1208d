//! End-to-end tests of the simulator over HTTP (one test binary to keep link time down).

mod api;
mod common;
mod control;
mod faults;
mod oauth;
mod recordings;
