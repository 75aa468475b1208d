//! What of Zoom's create-meeting answer the connector keeps (idempotency records, 24 h): no
//! credential. A retry that replays the answer gets them back from Zoom (get the meeting).
//!
//! Zoom's create answer (its OpenAPI description, and what Zoom sends beyond it) carries the
//! host's `start_url` (with the host's ZAK: it starts the meeting as the host) and the passcode
//! in several forms: `password`, `h323_password`, `pstn_password`, `encrypted_password`, and
//! the `pwd` parameter of `join_url` (the encrypted passcode; the link lets anyone in without
//! typing it). Settings may carry passcodes too; every key named `…password` or `…passcode`
//! counts.

use serde_json::Value;

use super::profile::{CREDENTIAL_KEYS, CREDENTIAL_QUERY_PARAMS, strip_query_params};

/// URL parameters that carry a passcode or a credential (`pwd`: the encrypted passcode of a
/// join link; `tk`: a registrant's join token), besides [`CREDENTIAL_QUERY_PARAMS`].
const PASSCODE_QUERY_PARAMS: &[&str] = &["pwd", "tk"];

/// Is this key's value a credential or a passcode?
pub fn is_secret_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    CREDENTIAL_KEYS.contains(&key) || lower.ends_with("password") || lower.ends_with("passcode")
}

fn strip_url(s: &str) -> String {
    let s = strip_query_params(s, CREDENTIAL_QUERY_PARAMS);
    strip_query_params(&s, PASSCODE_QUERY_PARAMS)
}

/// The meeting without credentials or passcodes: secret keys removed wherever they are,
/// credential and passcode parameters removed from every URL.
pub fn without_secrets(meeting: &Value) -> Value {
    match meeting {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !is_secret_key(k))
                .map(|(k, v)| (k.clone(), without_secrets(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_secrets).collect()),
        Value::String(s) => Value::String(strip_url(s)),
        other => other.clone(),
    }
}

/// Puts back into `stored` (made by [`without_secrets`]) what was taken out, from `fresh`
/// (Zoom's current meeting): secret keys `stored` lacks, and URLs whose stored form is
/// `fresh`'s without its secret parameters. Everything else stays as first answered.
pub fn restore_secrets(stored: &mut Value, fresh: &Value) {
    match (stored, fresh) {
        (Value::Object(kept), Value::Object(current)) => {
            for (key, value) in current {
                match kept.get_mut(key) {
                    Some(kept_value) => restore_secrets(kept_value, value),
                    None if is_secret_key(key) => {
                        kept.insert(key.clone(), value.clone());
                    }
                    None => {}
                }
            }
        }
        (Value::Array(kept), Value::Array(current)) => {
            for (kept_value, value) in kept.iter_mut().zip(current) {
                restore_secrets(kept_value, value);
            }
        }
        (kept @ Value::String(_), Value::String(current))
            if kept.as_str() != Some(current.as_str())
                && kept.as_str() == Some(strip_url(current).as_str()) =>
        {
            *kept = Value::String(current.clone());
        }
        _ => {}
    }
}

/// Does the value hold a credential or a passcode anywhere?
pub fn has_secrets(value: &Value) -> bool {
    *value != without_secrets(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn created() -> Value {
        json!({
            "id": 81234567890_i64,
            "topic": "Board",
            "start_url": "https://zoom.us/s/81234567890?zak=HOSTKEY",
            "join_url": "https://zoom.us/j/81234567890?pwd=ENCRYPTED",
            "registration_url": "https://zoom.us/meeting/register/abc",
            "password": "Pass9x",
            "h323_password": "Pass9x",
            "pstn_password": "Pass9x",
            "encrypted_password": "ENCRYPTED",
            "settings": {
                "host_video": false,
                "password": "Pass9x",
                "authentication_exception": [
                    { "email": "a@example.com", "join_url": "https://zoom.us/j/81234567890?tk=TOKEN" }
                ]
            }
        })
    }

    #[test]
    fn the_stored_copy_keeps_no_host_key_or_passcode() {
        let stored = without_secrets(&created());
        let text = stored.to_string();
        for secret in [
            "HOSTKEY",
            "Pass9x",
            "ENCRYPTED",
            "TOKEN",
            "start_url",
            "password",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(stored["join_url"], "https://zoom.us/j/81234567890");
        assert_eq!(stored["topic"], "Board");
        assert_eq!(
            stored["registration_url"],
            "https://zoom.us/meeting/register/abc"
        );
        assert!(has_secrets(&created()));
        assert!(!has_secrets(&stored));
    }

    #[test]
    fn restoring_from_zoom_gives_the_first_answer_back() {
        let first = created();
        let mut replay = without_secrets(&first);
        // Zoom's get-meeting answer has more fields, and a changed topic stays as first answered.
        let mut current = first.clone();
        current["status"] = json!("waiting");
        current["topic"] = json!("Renamed");
        restore_secrets(&mut replay, &current);
        let mut expected = first;
        assert_eq!(replay["topic"], "Board");
        expected["topic"] = json!("Board");
        assert_eq!(replay, expected);
    }
}
