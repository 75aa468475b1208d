//! The catalogue's records kept in the simulator's state: occurrences, registrants, meetings in
//! progress and held, summaries, download tokens and page tokens.

use time::OffsetDateTime;

/// A per-occurrence change of a recurring meeting (`occurrence_id` on PATCH/DELETE).
#[derive(Clone, Default)]
pub(crate) struct OccurrenceOverride {
    pub start_time: Option<OffsetDateTime>,
    pub duration: Option<i64>,
    pub deleted: bool,
}

/// One registration for a meeting or webinar.
#[derive(Clone)]
pub(crate) struct Registrant {
    pub id: String,
    /// The registration form as sent (email, first_name, last_name, address, ...).
    pub form: serde_json::Map<String, serde_json::Value>,
    pub status: &'static str,
    pub create_time: OffsetDateTime,
    /// Occurrences registered for; empty means all.
    pub occurrence_ids: Vec<String>,
    pub join_url: String,
    pub participant_pin_code: i64,
}

/// A meeting in progress (started through the control API).
#[derive(Clone)]
pub(crate) struct LiveInstance {
    pub start_time: OffsetDateTime,
    pub participants: Vec<crate::types::SimParticipant>,
}

/// A held (ended) instance of a meeting: what `/past_meetings` answers from.
#[derive(Clone)]
pub(crate) struct PastInstance {
    pub meeting_id: i64,
    pub uuid: String,
    pub host_id: String,
    pub host_email: String,
    pub host_name: String,
    pub topic: String,
    pub meeting_type: i64,
    pub start_time: OffsetDateTime,
    pub end_time: OffsetDateTime,
    pub participants: Vec<crate::types::SimParticipant>,
}

/// An AI Companion summary attached to a meeting instance.
#[derive(Clone)]
pub(crate) struct StoredSummary {
    pub meeting_id: i64,
    pub meeting_uuid: String,
    pub host_id: String,
    pub host_email: String,
    pub topic: String,
    pub start_time: OffsetDateTime,
    pub end_time: OffsetDateTime,
    pub created: OffsetDateTime,
    pub summary: crate::types::SimMeetingSummary,
}

/// A `download_access_token` handed out with a meeting's recordings.
#[derive(Clone)]
pub(crate) struct DownloadToken {
    pub user_id: String,
    pub recording_uuid: String,
    pub expires_at: OffsetDateTime,
}

/// Where a list answer continues (every list but recordings): the keys of the whole list as
/// it was when the first page was asked for, so pages never repeat or skip an item.
#[derive(Clone)]
pub(crate) struct PageToken {
    pub owner: String,
    /// Which list (e.g. `meetings`, `registrants:123`): a token only continues its own list.
    pub list: String,
    pub keys: Vec<String>,
    pub offset: usize,
    pub page_size: usize,
    pub expires_at: OffsetDateTime,
}
