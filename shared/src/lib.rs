//! Shared library of the Zoom connector.
//!
//! Layers, outermost first:
//! - [`http`]: one axum router per HTTP function, used by Lambda and by the local stack;
//! - [`services`]: the business rules (connect, callback, refresh, actions, events, webhooks);
//! - [`ports`]: the small traits the services need (stores, bus, Zoom, clock);
//! - [`adapters`]: AWS, the embedded local store, and Zoom over HTTP;
//!
//! beside them: [`lambda`] (serving on Lambda), [`deadline`] (the invocation's time budget),
//! [`metrics`] (the catalogue and its sink), [`webhook_profile`] (Zoom's webhook quirks).

pub mod adapters;
pub mod config;
pub mod deadline;
pub mod domain;
pub mod error;
pub mod http;
pub mod lambda;
pub mod metrics;
pub mod ports;
pub mod secret;
pub mod services;
pub mod telemetry;
pub mod webhook_profile;
