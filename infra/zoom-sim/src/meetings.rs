//! Meeting bodies: Zoom's validation rules for create/update and how a meeting is rendered.

use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::state::{Livestream, Meeting};
use crate::types::SimUser;
use crate::util::{random_alnum, zoom_time};

/// Timezone of meetings created without one (the simulated users' own timezone).
pub(crate) const DEFAULT_TIMEZONE: &str = "UTC";
const ALLOWED_TYPES: [i64; 5] = [1, 2, 3, 8, 10];

/// One entry of Zoom's `errors: [{field, message}]`.
#[derive(Debug)]
pub(crate) struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: &str, message: &str) -> Self {
        Self {
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// The fields of a create/update body that passed validation.
#[derive(Debug, Default)]
pub(crate) struct MeetingInput {
    topic: Option<String>,
    meeting_type: Option<i64>,
    start_time: Option<StartTime>,
    duration: Option<i64>,
    timezone: Option<String>,
    agenda: Option<String>,
    password: Option<String>,
    settings: Option<Map<String, Value>>,
    recurrence: Option<Value>,
    tracking_fields: Option<Value>,
    pre_schedule: Option<bool>,
}

#[derive(Debug, Clone, Copy)]
enum StartTime {
    /// Ended in `Z` (or carried an offset): an instant; `timezone` does not shift it.
    Absolute(OffsetDateTime),
    /// Wall-clock time in the meeting's `timezone`.
    Local(PrimitiveDateTime),
}

impl StartTime {
    fn resolve(self, timezone: &str) -> OffsetDateTime {
        match self {
            StartTime::Absolute(at) => at,
            StartTime::Local(local) => {
                crate::tz::local_to_utc(local, timezone).unwrap_or_else(|| local.assume_utc())
            }
        }
    }
}

fn parse_start_time(raw: &str) -> Option<StartTime> {
    if let Ok(at) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(StartTime::Absolute(at));
    }
    PrimitiveDateTime::parse(
        raw,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    )
    .or_else(|_| {
        PrimitiveDateTime::parse(
            raw,
            format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        )
    })
    .ok()
    .map(StartTime::Local)
}

/// Zoom's passcode rule: at most 10 of `[a-z A-Z 0-9 @ - _ *]`.
fn valid_password(password: &str) -> bool {
    password.chars().count() <= 10
        && password
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '-' | '_' | '*'))
}

const SETTINGS_ENUMS: [(&str, &[&str]); 3] = [
    ("audio", &["both", "telephony", "voip"]),
    ("auto_recording", &["local", "cloud", "none"]),
    ("encryption_type", &["enhanced_encryption", "e2ee"]),
];
const SETTINGS_INT_ENUMS: [(&str, &[i64]); 4] = [
    ("approval_type", &[0, 1, 2]),
    ("jbh_time", &[0, 5, 10]),
    ("registration_type", &[1, 2, 3]),
    ("calendar_type", &[1, 2]),
];
const SETTINGS_BOOLEANS: [&str; 16] = [
    "host_video",
    "participant_video",
    "join_before_host",
    "mute_upon_entry",
    "watermark",
    "use_pmi",
    "waiting_room",
    "meeting_authentication",
    "close_registration",
    "show_share_button",
    "allow_multiple_devices",
    "email_notification",
    "focus_mode",
    "private_meeting",
    "host_save_video_order",
    "alternative_hosts_email_notification",
];

fn validate_settings(settings: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    for (key, allowed) in SETTINGS_ENUMS {
        let Some(value) = settings.get(key) else {
            continue;
        };
        if !value.as_str().is_some_and(|v| allowed.contains(&v)) {
            errors.push(FieldError::new(
                &format!("settings.{key}"),
                "Invalid field.",
            ));
        }
    }
    for (key, allowed) in SETTINGS_INT_ENUMS {
        let Some(value) = settings.get(key) else {
            continue;
        };
        if !value.as_i64().is_some_and(|v| allowed.contains(&v)) {
            errors.push(FieldError::new(
                &format!("settings.{key}"),
                "Invalid field.",
            ));
        }
    }
    for key in SETTINGS_BOOLEANS {
        if settings.get(key).is_some_and(|v| !v.is_boolean()) {
            errors.push(FieldError::new(
                &format!("settings.{key}"),
                "Invalid field.",
            ));
        }
    }
    if settings
        .get("alternative_hosts")
        .is_some_and(|v| !v.is_string())
    {
        errors.push(FieldError::new(
            "settings.alternative_hosts",
            "Invalid field.",
        ));
    }
}

/// Validates a create/update body the way Zoom does (code 300 with `errors`).
pub(crate) fn validate(body: &Map<String, Value>) -> Result<MeetingInput, Vec<FieldError>> {
    validate_types(body, &ALLOWED_TYPES)
}

/// `validate` with another set of allowed `type`s (webinars: 5, 6, 9).
pub(crate) fn validate_types(
    body: &Map<String, Value>,
    allowed_types: &[i64],
) -> Result<MeetingInput, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut input = MeetingInput::default();

    let string_field = |name: &str, max: usize, errors: &mut Vec<FieldError>| -> Option<String> {
        match body.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() <= max => Some(s.clone()),
            Some(Value::String(_)) => {
                errors.push(FieldError::new(
                    name,
                    &format!("The length of {name} must be less than or equal to {max}."),
                ));
                None
            }
            Some(_) => {
                errors.push(FieldError::new(name, "Invalid field."));
                None
            }
        }
    };
    input.topic = string_field("topic", 200, &mut errors);
    input.agenda = string_field("agenda", 2000, &mut errors);
    input.timezone = string_field("timezone", 64, &mut errors);
    let start_time = string_field("start_time", 64, &mut errors);
    let password = string_field("password", usize::MAX, &mut errors);

    match body.get("type") {
        None | Some(Value::Null) => {}
        Some(value) => match value.as_i64() {
            Some(t) if allowed_types.contains(&t) => input.meeting_type = Some(t),
            _ => errors.push(FieldError::new("type", "Invalid field.")),
        },
    }
    match body.get("duration") {
        None | Some(Value::Null) => {}
        Some(value) => match value.as_i64() {
            Some(d) if d >= 0 => input.duration = Some(d),
            _ => errors.push(FieldError::new("duration", "Invalid field.")),
        },
    }
    if let Some(raw) = start_time {
        match parse_start_time(&raw) {
            Some(parsed) => input.start_time = Some(parsed),
            None => errors.push(FieldError::new("start_time", "Invalid field.")),
        }
    }
    if let Some(password) = password {
        if valid_password(&password) {
            input.password = Some(password);
        } else {
            errors.push(FieldError::new(
                "password",
                "Password can only contain the following characters: [a-z A-Z 0-9 @ - _ *] and can have a maximum of 10 characters.",
            ));
        }
    }
    match body.get("settings") {
        None | Some(Value::Null) => {}
        Some(Value::Object(settings)) => {
            validate_settings(settings, &mut errors);
            input.settings = Some(settings.clone());
        }
        Some(_) => errors.push(FieldError::new("settings", "Invalid field.")),
    }
    match body.get("recurrence") {
        None | Some(Value::Null) => {}
        Some(Value::Object(recurrence)) => {
            if recurrence
                .get("type")
                .and_then(Value::as_i64)
                .is_some_and(|t| (1..=3).contains(&t))
            {
                input.recurrence = Some(Value::Object(recurrence.clone()));
            } else {
                errors.push(FieldError::new("recurrence.type", "Invalid field."));
            }
        }
        Some(_) => errors.push(FieldError::new("recurrence", "Invalid field.")),
    }
    match body.get("tracking_fields") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items))
            if items
                .iter()
                .all(|i| i.get("field").is_some_and(Value::is_string)) =>
        {
            input.tracking_fields = Some(Value::Array(items.clone()));
        }
        Some(_) => errors.push(FieldError::new("tracking_fields", "Invalid field.")),
    }
    match body.get("pre_schedule") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => input.pre_schedule = Some(*b),
        Some(_) => errors.push(FieldError::new("pre_schedule", "Invalid field.")),
    }

    if errors.is_empty() {
        Ok(input)
    } else {
        Err(errors)
    }
}

/// What a PATCH with `occurrence_id` may change: start (resolved in `timezone` unless the body
/// names one) and duration. The body is validated like any meeting update.
pub(crate) fn occurrence_change(
    body: &Map<String, Value>,
    timezone: &str,
) -> Result<(Option<OffsetDateTime>, Option<i64>), Vec<FieldError>> {
    let input = validate(body)?;
    let timezone = input.timezone.as_deref().unwrap_or(timezone);
    Ok((
        input.start_time.map(|s| s.resolve(timezone)),
        input.duration,
    ))
}

fn default_settings() -> Map<String, Value> {
    let settings = json!({
        "host_video": false,
        "participant_video": false,
        "cn_meeting": false,
        "in_meeting": false,
        "join_before_host": false,
        "jbh_time": 0,
        "mute_upon_entry": false,
        "watermark": false,
        "use_pmi": false,
        "approval_type": 2,
        "audio": "voip",
        "auto_recording": "none",
        "enforce_login": false,
        "enforce_login_domains": "",
        "alternative_hosts": "",
        "alternative_host_update_polls": false,
        "close_registration": false,
        "show_share_button": false,
        "allow_multiple_devices": false,
        "registrants_confirmation_email": true,
        "waiting_room": false,
        "registrants_email_notification": true,
        "meeting_authentication": false,
        "encryption_type": "enhanced_encryption",
        "alternative_hosts_email_notification": true,
        "focus_mode": false,
        "private_meeting": false,
        "email_notification": true,
        "host_save_video_order": false,
    });
    match settings {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Builds a new meeting hosted by `host` from a validated body.
pub(crate) fn create(
    host: &SimUser,
    id: i64,
    uuid: String,
    input: MeetingInput,
    now: OffsetDateTime,
) -> Meeting {
    let meeting_type = input.meeting_type.unwrap_or(2);
    let timezone = input
        .timezone
        .clone()
        .unwrap_or_else(|| DEFAULT_TIMEZONE.to_owned());
    let password = input.password.clone().unwrap_or_else(|| random_alnum(6));
    let encrypted = random_alnum(32);
    let mut fields = Map::new();
    fields.insert("id".into(), json!(id));
    fields.insert("uuid".into(), json!(uuid));
    fields.insert("host_id".into(), json!(host.id));
    fields.insert("host_email".into(), json!(host.email));
    fields.insert("topic".into(), json!("Zoom meeting"));
    fields.insert("type".into(), json!(meeting_type));
    fields.insert("status".into(), json!("waiting"));
    fields.insert("timezone".into(), json!(timezone));
    fields.insert("duration".into(), json!(60));
    fields.insert("created_at".into(), json!(zoom_time(now)));
    // Instant and scheduled meetings have a start time; "no fixed time" recurring ones do not.
    if meeting_type != 3 {
        fields.insert("start_time".into(), json!(zoom_time(now)));
    }
    fields.insert(
        "start_url".into(),
        json!(format!("https://zoom.us/s/{id}?zak={}", random_alnum(40))),
    );
    fields.insert(
        "join_url".into(),
        json!(format!("https://zoom.us/j/{id}?pwd={encrypted}")),
    );
    fields.insert("password".into(), json!(password));
    fields.insert("h323_password".into(), json!(password));
    fields.insert("pstn_password".into(), json!(password));
    fields.insert("encrypted_password".into(), json!(encrypted));
    fields.insert("pre_schedule".into(), json!(false));
    fields.insert("settings".into(), Value::Object(default_settings()));
    let mut meeting = Meeting {
        id,
        host_id: host.id.clone(),
        fields,
        livestream: Livestream::default(),
        occurrence_overrides: Default::default(),
        registrants: Vec::new(),
        live: None,
    };
    apply(&mut meeting, input);
    // Zoom uses `start_time` only for scheduled and fixed-time recurring meetings: an instant
    // meeting starts now, whatever the body said.
    if meeting_type == 1 {
        meeting
            .fields
            .insert("start_time".into(), json!(zoom_time(now)));
    }
    meeting
}

/// Merges validated fields into a meeting (PATCH semantics: absent fields stay).
pub(crate) fn apply(meeting: &mut Meeting, input: MeetingInput) {
    let fields = &mut meeting.fields;
    if let Some(timezone) = &input.timezone {
        fields.insert("timezone".into(), json!(timezone));
    }
    let timezone = fields
        .get("timezone")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_TIMEZONE)
        .to_owned();
    if let Some(start) = input.start_time {
        fields.insert(
            "start_time".into(),
            json!(zoom_time(start.resolve(&timezone))),
        );
    }
    if let Some(topic) = input.topic {
        fields.insert("topic".into(), json!(topic));
    }
    if let Some(meeting_type) = input.meeting_type {
        fields.insert("type".into(), json!(meeting_type));
    }
    if let Some(duration) = input.duration {
        fields.insert("duration".into(), json!(duration));
    }
    if let Some(agenda) = input.agenda {
        fields.insert("agenda".into(), json!(agenda));
    }
    if let Some(password) = input.password {
        fields.insert("password".into(), json!(password));
        fields.insert("h323_password".into(), json!(password));
        fields.insert("pstn_password".into(), json!(password));
    }
    if let Some(new_settings) = input.settings {
        let settings = fields
            .entry("settings")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(settings) = settings {
            for (key, value) in new_settings {
                settings.insert(key, value);
            }
        }
    }
    if let Some(recurrence) = input.recurrence {
        fields.insert("recurrence".into(), recurrence);
    }
    if let Some(tracking_fields) = input.tracking_fields {
        fields.insert("tracking_fields".into(), tracking_fields);
    }
    if let Some(pre_schedule) = input.pre_schedule {
        fields.insert("pre_schedule".into(), json!(pre_schedule));
    }
    // Zoom quirk: a recurring meeting with no fixed time (type 3) accepts `approval_type` 0/1
    // and silently stores 2 (registration off).
    if fields.get("type").and_then(Value::as_i64) == Some(3)
        && let Some(Value::Object(settings)) = fields.get_mut("settings")
    {
        settings.insert("approval_type".into(), json!(2));
    }
    crate::occurrences::refresh(meeting);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn validation_reports_zoom_fields() {
        let errors = validate(&body(json!({"type": 5, "password": "abcdefghijkl"}))).err();
        let fields: Vec<String> = errors
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, vec!["type", "password"]);
        assert!(validate(&body(json!({"type": 10, "password": "abc@_-*9"}))).is_ok());
        assert!(validate(&body(json!({"settings": {"audio": "loud"}}))).is_err());
        assert!(validate(&body(json!({"start_time": "tomorrow"}))).is_err());
    }

    #[test]
    fn local_start_time_uses_timezone() {
        let host = SimUser::ada();
        let input = validate(&body(json!({
            "start_time": "2026-07-01T10:00:00", "timezone": "Europe/Berlin"
        })))
        .unwrap_or_default();
        let meeting = create(&host, 1, "u".into(), input, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(meeting.fields["start_time"], json!("2026-07-01T08:00:00Z"));
        let input = validate(&body(json!({
            "start_time": "2026-07-01T10:00:00Z", "timezone": "Europe/Berlin"
        })))
        .unwrap_or_default();
        let meeting = create(&host, 1, "u".into(), input, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(meeting.fields["start_time"], json!("2026-07-01T10:00:00Z"));
    }
}
