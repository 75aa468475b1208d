//! Per-process state of the pending token copies (see [`super::pending`]), apart so the
//! connector's state can hold it without importing the rules.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::ports::KeyBytes;

/// Per-process state of the pending copies: the data key this process seals with, the ones
/// it has unwrapped, when it last tried to move a copy, whether token writes fail.
#[derive(Default)]
pub struct SealingKeys {
    pub(super) own: tokio::sync::Mutex<Option<OwnKey>>,
    pub(super) opened: Mutex<HashMap<String, Arc<KeyBytes>>>,
    pub(super) flushes: Mutex<HashMap<String, Instant>>,
    pub(super) secret_failed_at: Mutex<Option<Instant>>,
}

/// The data key this process seals with (plaintext, wrapped as stored beside each copy), when
/// it was made and how many copies it sealed: it is replaced when either grows too large.
pub(super) struct OwnKey {
    pub(super) key: Arc<(KeyBytes, String)>,
    pub(super) made_at: Instant,
    pub(super) seals: u64,
}
