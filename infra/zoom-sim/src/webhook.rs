//! Zoom → app webhooks: signing and the events the simulator sends.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Hex HMAC-SHA256 of `message` under `secret`.
pub fn hmac_sha256_hex(secret: &str, message: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty tag anyway.
    match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(message);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Zoom's `x-zm-signature`: `v0=` + hex HMAC-SHA256(secret, `v0:{timestamp}:{body}`).
pub fn sign_webhook(secret_token: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("v0:{timestamp}:").into_bytes();
    message.extend_from_slice(body);
    format!("v0={}", hmac_sha256_hex(secret_token, &message))
}

/// Zoom's `endpoint.url_validation` event for a given plain token.
pub fn url_validation_event(plain_token: &str) -> Value {
    json!({
        "event": "endpoint.url_validation",
        "event_ts": time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
        "payload": { "plainToken": plain_token },
    })
}

/// What a correct endpoint answers to `endpoint.url_validation`.
pub fn url_validation_answer(secret_token: &str, plain_token: &str) -> Value {
    json!({
        "plainToken": plain_token,
        "encryptedToken": hmac_sha256_hex(secret_token, plain_token.as_bytes()),
    })
}

/// A Zoom event of `user_id` (account `account_id`) shaped like Zoom's: `meeting.*` (created,
/// updated, deleted, started, ended, participant_joined, participant_left), `webinar.*`,
/// `recording.completed` (with Zoom's top-level `download_token`), `recording.transcript_completed`,
/// `user.updated`; any other name gets a meeting-shaped object with `host_id`.
pub fn trigger_event(event: &str, account_id: &str, user_id: &str, email: &str) -> Value {
    let now = time::OffsetDateTime::now_utc();
    let event_ts = now.unix_timestamp() * 1000 + i64::from(now.millisecond());
    let start = crate::util::rfc3339(now);
    let meeting = json!({
        "id": 85_746_065_432_i64,
        "uuid": "4444AAAiAAAAAiAiAiiAii==",
        "host_id": user_id,
        "topic": "Weekly sync",
        "type": 2,
        "start_time": start,
        "duration": 30,
        "timezone": "UTC",
        "join_url": "https://zoom.us/j/85746065432?pwd=c2ltdWxhdG9y",
        "start_url": "https://zoom.us/s/85746065432?zak=eyJzaW11bGF0b3IiOiJ6YWsifQ",
        "password": "123456",
    });
    let participant = json!({
        "user_id": "16778240",
        "user_name": "Guest",
        "id": "guest-user-id",
        "participant_uuid": "guest-participant-uuid",
        "email": "guest@example.com",
        "join_time": start,
        "leave_time": start,
    });
    let (object, extra) = match event {
        "meeting.participant_joined"
        | "meeting.participant_left"
        | "webinar.participant_joined"
        | "webinar.participant_left" => {
            let mut m = meeting.clone();
            m["participant"] = participant;
            (m, None)
        }
        "meeting.updated" => (
            json!({ "id": 85_746_065_432_i64, "host_id": user_id, "topic": "Weekly sync (moved)" }),
            Some((
                "old_object",
                json!({ "id": 85_746_065_432_i64, "topic": "Weekly sync" }),
            )),
        ),
        "recording.completed" => {
            let mut m = meeting.clone();
            m["account_id"] = json!(account_id);
            m["share_url"] = json!("https://zoom.us/rec/share/simulated");
            m["recording_files"] = json!([
                { "id": "file-1", "file_type": "MP4", "file_size": 1_234_567, "recording_type": "shared_screen_with_speaker_view",
                  "download_url": "https://zoom.us/rec/download/simulated-1", "play_url": "https://zoom.us/rec/play/simulated-1", "status": "completed" },
                { "id": "file-2", "file_type": "M4A", "file_size": 234_567, "recording_type": "audio_only",
                  "download_url": "https://zoom.us/rec/download/simulated-2", "status": "completed" }
            ]);
            (m, None)
        }
        "recording.transcript_completed" => {
            let mut m = meeting.clone();
            m["recording_files"] = json!([
                { "id": "file-3", "file_type": "TRANSCRIPT", "file_extension": "VTT", "recording_type": "audio_transcript",
                  "download_url": "https://zoom.us/rec/download/simulated-3", "status": "completed" }
            ]);
            (m, None)
        }
        "user.updated" => (
            json!({ "id": user_id, "first_name": "Sim", "last_name": "Updated", "email": email }),
            Some(("old_object", json!({ "id": user_id, "first_name": "Sim" }))),
        ),
        e if e.starts_with("user.") => (json!({ "id": user_id, "email": email }), None),
        _ => (meeting, None),
    };
    let mut payload = json!({ "account_id": account_id, "object": object });
    if event.starts_with("meeting.") || event.starts_with("webinar.") || event.starts_with("user.")
    {
        payload["operator"] = json!(email);
        payload["operator_id"] = json!(user_id);
    }
    if let Some((k, v)) = extra {
        payload[k] = v;
    }
    let mut body = json!({ "event": event, "event_ts": event_ts, "payload": payload });
    if event == "recording.completed" || event == "recording.transcript_completed" {
        body["download_token"] = json!("eyJzaW11bGF0ZWQiOiJkb3dubG9hZF90b2tlbiJ9");
    }
    body
}

/// Sends `event` to `target_url` signed with `secret_token`, as Zoom does.
pub async fn send_signed(
    target_url: &str,
    secret_token: &str,
    event: &Value,
) -> reqwest::Result<reqwest::Response> {
    let body = serde_json::to_vec(event).unwrap_or_default();
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = sign_webhook(secret_token, timestamp, &body);
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?
        .post(target_url)
        .header("content-type", "application/json; charset=utf-8")
        .header("user-agent", "Zoom Marketplace/1.0a")
        .header("x-zm-request-timestamp", timestamp.to_string())
        .header("x-zm-signature", signature)
        .header(
            "x-zm-trackingid",
            format!("v=2.0&s={timestamp}&c=sim_{}", uuid_like()),
        )
        .body(body)
        .send()
        .await
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{nanos:x}{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        assert_eq!(
            hmac_sha256_hex("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            sign_webhook("Jefe", 1, b"x"),
            format!("v0={}", hmac_sha256_hex("Jefe", b"v0:1:x"))
        );
    }
}
