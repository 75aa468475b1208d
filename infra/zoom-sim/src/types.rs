//! Public value types of the simulator: configuration, users, faults, observations, recordings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How the simulator is set up at start.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// `expires_in` of issued access tokens; tokens stop working after it (on the sim clock).
    pub access_token_ttl_secs: u64,
    /// `api_url` reported in token answers (Zoom reports the user's regional API host); `None` omits it.
    pub api_url_in_token: Option<String>,
    /// Secret token used to sign webhooks sent by `POST /_sim/deauthorize`.
    pub webhook_secret_token: Option<String>,
    /// Where `POST /_sim/deauthorize` delivers the `app_deauthorized` webhook.
    pub webhook_target: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 3599,
            api_url_in_token: Some("https://api.zoom.us".to_owned()),
            webhook_secret_token: None,
            webhook_target: None,
        }
    }
}

/// A Zoom user known to the simulator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimUser {
    pub id: String,
    pub account_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

impl SimUser {
    pub fn new(id: &str, account_id: &str, email: &str, first_name: &str, last_name: &str) -> Self {
        Self {
            id: id.to_owned(),
            account_id: account_id.to_owned(),
            email: email.to_owned(),
            first_name: first_name.to_owned(),
            last_name: last_name.to_owned(),
        }
    }

    /// The user every fresh simulator starts with.
    pub fn ada() -> Self {
        Self::new(
            "sim-user-1",
            "sim-account-1",
            "ada@example.com",
            "Ada",
            "Lovelace",
        )
    }
}

/// Which Zoom surface a fault or a latency applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTarget {
    /// `POST /oauth/token`
    Token,
    /// everything under `/v2`
    Api,
    /// `POST /oauth/revoke`
    Revoke,
}

/// A misbehaviour to inject. `times: None` applies until cleared; `Some(n)` to the next `n`
/// matching requests only.
///
/// JSON form (control API): `{"kind":"status","target":"api","status":503,"times":1}`,
/// `{"kind":"rate_limit","target":"api","daily":true}`, `{"kind":"rotate_then_fail"}`,
/// `{"kind":"scope_missing","scope":"meeting:write"}`, `{"kind":"hang","target":"token"}`,
/// `{"kind":"reset_connection","target":"revoke"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer with this status and a Zoom-style error body.
    Status {
        target: FaultTarget,
        status: u16,
        #[serde(default)]
        times: Option<u32>,
    },
    /// Never answer (sleeps an hour) so the client times out.
    Hang {
        target: FaultTarget,
        #[serde(default)]
        times: Option<u32>,
    },
    /// Close the connection without an answer.
    ResetConnection {
        target: FaultTarget,
        #[serde(default)]
        times: Option<u32>,
    },
    /// 429 with Zoom's rate-limit headers; `daily` picks `Daily-limit` over `QPS`.
    RateLimit {
        target: FaultTarget,
        #[serde(default)]
        daily: bool,
        #[serde(default)]
        times: Option<u32>,
    },
    /// A valid refresh grant rotates the tokens but answers 500: the answer was lost.
    RotateThenFail {
        #[serde(default)]
        times: Option<u32>,
    },
    /// Authenticated API calls answer 400 code 4711 naming this scope.
    ScopeMissing {
        scope: String,
        #[serde(default)]
        times: Option<u32>,
    },
}

impl Fault {
    pub fn times(&self) -> Option<u32> {
        match self {
            Fault::Status { times, .. }
            | Fault::Hang { times, .. }
            | Fault::ResetConnection { times, .. }
            | Fault::RateLimit { times, .. }
            | Fault::RotateThenFail { times }
            | Fault::ScopeMissing { times, .. } => *times,
        }
    }

    /// The surface of a transport-level fault (status, hang, reset, rate limit).
    pub(crate) fn transport_target(&self) -> Option<FaultTarget> {
        match self {
            Fault::Status { target, .. }
            | Fault::Hang { target, .. }
            | Fault::ResetConnection { target, .. }
            | Fault::RateLimit { target, .. } => Some(*target),
            Fault::RotateThenFail { .. } | Fault::ScopeMissing { .. } => None,
        }
    }
}

/// What the simulator has counted since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Every `POST /oauth/token`, whatever the outcome.
    pub token_requests: u64,
    /// Authorization-code grants that issued tokens.
    pub authorization_code_grants: u64,
    /// Refresh grants that rotated tokens (including those whose answer a `RotateThenFail`
    /// fault replaced with a 500).
    pub refresh_grants: u64,
    /// Refresh attempts with a refresh token that had already been rotated.
    pub refresh_token_reuse: u64,
    /// `POST /oauth/revoke` calls answered 200.
    pub revocations: u64,
    /// Meetings created through the API.
    pub meetings_created: u64,
    /// Every request under `/v2`, whatever the outcome.
    pub api_requests: u64,
}

/// One request the simulator received (control routes under `/_sim` are not recorded).
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`; empty when there was none.
    pub query: String,
    /// Lower-case header name -> value (repeated headers joined with ", ").
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// When the request arrived.
    pub at: OffsetDateTime,
    /// Status of the answer; 0 while none was sent (a hang in progress or a reset connection).
    pub status: u16,
    pub response_body: Vec<u8>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The form fields of an `application/x-www-form-urlencoded` body.
    pub fn form(&self) -> BTreeMap<String, String> {
        serde_urlencoded::from_bytes(&self.body).unwrap_or_default()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": String::from_utf8_lossy(&self.body),
            "at": crate::util::rfc3339(self.at),
            "status": self.status,
            "response_body": String::from_utf8_lossy(&self.response_body),
        })
    }
}

/// A recorded meeting instance of a user, listed by `GET /v2/users/me/recordings` and
/// `GET /v2/meetings/{meetingId}/recordings`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimRecording {
    /// Numeric meeting id (several instances may share it).
    #[serde(default = "crate::util::random_meeting_id")]
    pub meeting_id: i64,
    /// The instance UUID.
    #[serde(default = "crate::util::random_meeting_uuid")]
    pub uuid: String,
    pub topic: String,
    #[serde(with = "time::serde::rfc3339")]
    pub start_time: OffsetDateTime,
    /// Minutes.
    #[serde(default = "default_duration")]
    pub duration: u32,
    #[serde(default = "SimRecordingFile::defaults")]
    pub recording_files: Vec<SimRecordingFile>,
}

fn default_duration() -> u32 {
    60
}

impl SimRecording {
    /// A recording with a random id and UUID and the usual three files (video, audio, transcript).
    pub fn new(topic: &str, start_time: OffsetDateTime) -> Self {
        Self {
            meeting_id: crate::util::random_meeting_id(),
            uuid: crate::util::random_meeting_uuid(),
            topic: topic.to_owned(),
            start_time,
            duration: default_duration(),
            recording_files: SimRecordingFile::defaults(),
        }
    }

    pub fn with_uuid(mut self, uuid: &str) -> Self {
        uuid.clone_into(&mut self.uuid);
        self
    }

    pub fn with_meeting_id(mut self, meeting_id: i64) -> Self {
        self.meeting_id = meeting_id;
        self
    }
}

/// One file of a recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimRecordingFile {
    #[serde(default = "crate::util::random_file_id")]
    pub id: String,
    /// `MP4`, `M4A`, `TRANSCRIPT`, `CHAT`, ...
    pub file_type: String,
    /// `MP4`, `M4A`, `VTT`, `TXT`, ...
    pub file_extension: String,
    /// `shared_screen_with_speaker_view`, `audio_only`, `audio_transcript`, ...
    pub recording_type: String,
    #[serde(default)]
    pub file_size: u64,
}

impl SimRecordingFile {
    pub fn new(
        file_type: &str,
        file_extension: &str,
        recording_type: &str,
        file_size: u64,
    ) -> Self {
        Self {
            id: crate::util::random_file_id(),
            file_type: file_type.to_owned(),
            file_extension: file_extension.to_owned(),
            recording_type: recording_type.to_owned(),
            file_size,
        }
    }

    pub fn defaults() -> Vec<Self> {
        vec![
            Self::new("MP4", "MP4", "shared_screen_with_speaker_view", 48_213_775),
            Self::new("M4A", "M4A", "audio_only", 5_120_384),
            Self::new("TRANSCRIPT", "VTT", "audio_transcript", 18_042),
        ]
    }
}

/// Someone who attended a meeting instance (see `ZoomSim::add_past_meeting`,
/// `ZoomSim::join_participants`). JSON: `{"name", "user_email"?, "user_id"?, "registrant_id"?,
/// "duration"?}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimParticipant {
    pub name: String,
    #[serde(default)]
    pub user_email: String,
    /// The Zoom user id when the participant was signed in; empty for guests.
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub registrant_id: String,
    /// Seconds in the meeting; `None` means from start to end.
    #[serde(default)]
    pub duration: Option<u32>,
}

impl SimParticipant {
    pub fn new(name: &str, user_email: &str) -> Self {
        Self {
            name: name.to_owned(),
            user_email: user_email.to_owned(),
            user_id: String::new(),
            registrant_id: String::new(),
            duration: None,
        }
    }
}

/// A held meeting instance to record (see `ZoomSim::add_past_meeting`). JSON:
/// `{"uuid"?, "start_time"? (RFC 3339), "duration"? (minutes, default 30), "participants"?: [..]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SimPastMeeting {
    /// The instance UUID; the meeting's current UUID when absent (the meeting then gets a new one).
    #[serde(default)]
    pub uuid: Option<String>,
    /// Start of the instance; the simulator's clock minus `duration` when absent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub start_time: Option<OffsetDateTime>,
    /// Minutes; 30 when absent.
    #[serde(default)]
    pub duration: Option<u32>,
    #[serde(default)]
    pub participants: Vec<SimParticipant>,
}

/// One labelled paragraph of a meeting summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimSummaryDetail {
    pub label: String,
    pub summary: String,
}

/// An AI Companion meeting summary (see `ZoomSim::set_meeting_summary`). JSON:
/// `{"summary_title"?, "summary_overview"?, "summary_details"?: [{"label","summary"}], "next_steps"?: [..]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimMeetingSummary {
    #[serde(default = "default_summary_title")]
    pub summary_title: String,
    #[serde(default)]
    pub summary_overview: String,
    #[serde(default)]
    pub summary_details: Vec<SimSummaryDetail>,
    #[serde(default)]
    pub next_steps: Vec<String>,
}

fn default_summary_title() -> String {
    "Meeting summary".to_owned()
}

impl Default for SimMeetingSummary {
    fn default() -> Self {
        Self {
            summary_title: default_summary_title(),
            summary_overview: "The team reviewed the plan and agreed on the next steps.".to_owned(),
            summary_details: vec![SimSummaryDetail {
                label: "Plan".to_owned(),
                summary: "The plan was reviewed and accepted.".to_owned(),
            }],
            next_steps: vec!["Ada sends the notes.".to_owned()],
        }
    }
}
