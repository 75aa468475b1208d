//! Shared library of the Zoom connector.
//!
//! Layers, innermost first; each may use the ones before it, never one after it
//! (`tests/layering.rs` checks this):
//! - [`domain`]: connections, tokens, idempotency and lease records, errors;
//! - [`zoom`]: Zoom's quirks as data and the pure rules built on them (error mapping, path
//!   encoding, schema checks, recordings windows);
//! - [`ports`]: the small traits the rules need (stores, bus, Zoom, clock);
//! - [`app`]: the business rules (connect, callback, refresh, actions, events, webhooks),
//!   which name no adapter, SDK, database or web framework;
//! - [`http`] (one axum router per HTTP function), [`adapters`] (AWS, the embedded local
//!   store and queue, Zoom over HTTP) and [`wiring`] (ports for AWS and for local, the Lambda
//!   handlers), which use everything above and not each other, except `wiring`.
//!
//! Beside them, used by all: [`config`], [`deadline`] (the invocation's time budget),
//! [`metrics`] (the catalogue and its sink), [`sealed`] (AES-256-GCM), [`secret`], [`telemetry`].

pub mod adapters;

pub mod app;

pub mod config;

pub mod deadline;

pub mod domain;

pub mod http;

pub mod metrics;

pub mod ports;

pub mod sealed;

pub mod secret;

pub mod telemetry;

pub mod wiring;

pub mod zoom;

#[cfg(test)]
mod layering_tests;
