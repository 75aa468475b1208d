//! The local stack's adapters: one embedded SQLite file for secrets, records and events, and
//! an in-process meeting queue, and the data dir's master key for the pending-token copy.

pub use keys::LocalDataKeys;
pub use store::{LocalStore, PublishedEvent};

pub mod keys;

pub mod queue;

pub mod store;
