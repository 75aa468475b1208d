//! The local stack's adapters: one embedded SQLite file for secrets, records and events, and
//! an in-process meeting queue.

pub use store::{LocalStore, PublishedEvent};

pub mod queue;

pub mod store;
