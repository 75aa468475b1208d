//! The refresh lease: who refreshes a connection's tokens right now, across processes.

use serde::{Deserialize, Serialize};

/// The value of an `ItemKind::Lease` record; its expiry is the item's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// The holding process (`Connector::instance_id`).
    pub owner: String,
    /// When it was taken or last renewed (unix seconds).
    pub at: i64,
    /// Why, when not a refresh (`deauthorize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

impl Lease {
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    pub fn is_held_by(value: &serde_json::Value, owner: &str) -> bool {
        serde_json::from_value::<Lease>(value.clone()).is_ok_and(|l| l.owner == owner)
    }
}
