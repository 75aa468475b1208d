//! End-to-end tests of the simulator over HTTP (one test binary to keep link time down).

mod api;
mod common;
mod control;
mod coverage;
mod faults;
mod listing;
mod oauth;
mod past;
mod recordings;
mod webinars;
