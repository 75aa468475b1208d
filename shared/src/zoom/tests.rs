//! Tests of the pure Zoom rules (errors, paths, schema checks, recordings windows).
#![allow(unused_imports)] // each test module takes the whole Zoom toolbox

mod proxy_tests {
    use super::super::{errors::*, paths::*, recordings::*, schema::*};

    use crate::zoom::exchange::ZoomResponse;

    use bytes::Bytes;

    use http::StatusCode;

    use crate::domain::error::{ApiError, ErrorCode};
    use proptest::prelude::*;

    #[test]
    fn proxy_paths() {
        assert_eq!(checked_proxy_path("users/me").unwrap(), "/users/me");
        assert_eq!(
            checked_proxy_path("meetings/%252Fabc/recordings").unwrap(),
            "/meetings/%252Fabc/recordings"
        );
        for bad in [
            "",
            "../oauth/token",
            "users/../../x",
            "users/%2e%2e/x",
            "a/%252e%252e/b",
            ".",
            "a\\b",
            "a/%5c/b",
            "a/%0d%0a",
        ] {
            assert!(checked_proxy_path(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn accepted_paths_never_climb(raw in "[a-z0-9%./\\\\-]{0,40}") {
            if let Ok(p) = checked_proxy_path(&raw) {
                let base = url::Url::parse("https://api.zoom.us/v2/").unwrap();
                let joined = base.join(p.trim_start_matches('/')).unwrap();
                prop_assert!(joined.path().starts_with("/v2/"), "{} -> {}", raw, joined);
                prop_assert_eq!(joined.host_str(), Some("api.zoom.us"));
            }
        }

        #[test]
        fn recordings_cursor_round_trip(start in 0i64..20_000, len in 0i64..400, token in proptest::option::of("[ -~]{0,30}"), page_size in proptest::option::of(1u32..=300)) {
            let from = time::macros::date!(2000 - 01 - 01) + time::Duration::days(start);
            let to = from + time::Duration::days(len);
            let c = RecordingsCursor { from: format_day(from), to: format_day(to), window: format_day(to), token, page_size };
            prop_assert_eq!(decode_recordings_cursor(&encode_recordings_cursor(&c)).unwrap(), c);
        }

        #[test]
        fn cursors_outside_their_range_are_refused(start in 0i64..20_000, len in 1i64..400) {
            let from = time::macros::date!(2000 - 01 - 01) + time::Duration::days(start);
            let to = from + time::Duration::days(len);
            let c = RecordingsCursor { from: format_day(to), to: format_day(from), window: format_day(to), token: None, page_size: None };
            prop_assert!(decode_recordings_cursor(&encode_recordings_cursor(&c)).is_err());
        }

        #[test]
        fn recordings_cursor_decoder_never_panics(raw in "[ -~]{0,80}") {
            let _ = decode_recordings_cursor(&raw);
        }
    }
}

mod hostile_input_tests {
    //! Arbitrary caller input and arbitrary Zoom answers: never a panic, never a 5xx of ours
    //! for the caller's mistakes.

    use proptest::prelude::*;

    use super::super::{errors::*, paths::*, recordings::*, schema::*};

    use crate::zoom::exchange::ZoomResponse;

    use bytes::Bytes;

    use http::StatusCode;

    use crate::domain::error::{ApiError, ErrorCode};

    /// Any date, with the calendar's two ends (where arithmetic overflows) well represented.
    fn any_date() -> impl Strategy<Value = time::Date> {
        let (min, max) = (
            time::Date::MIN.to_julian_day(),
            time::Date::MAX.to_julian_day(),
        );
        prop_oneof![min..=max, min..=min + 60, max - 60..=max]
            .prop_map(|d| time::Date::from_julian_day(d).unwrap())
    }

    /// JSON of any shape, a few levels deep, with Zoom's meeting field names mixed in.
    fn any_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::from),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z?"
                .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("topic".to_owned()),
                        Just("type".to_owned()),
                        Just("start_time".to_owned()),
                        Just("duration".to_owned()),
                        Just("timezone".to_owned()),
                        Just("password".to_owned()),
                        Just("settings".to_owned()),
                        Just("recurrence".to_owned()),
                        Just("stream_url".to_owned()),
                        "[a-z_]{1,10}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The recordings walk's date arithmetic saturates at the calendar's ends (a caller's
        /// `to=9999-12-31` once overflowed and panicked).
        #[test]
        fn recordings_windows_never_overflow(start in any_date(), to in any_date()) {
            let end = recordings_window_end(start, to);
            prop_assert!(end <= to);
            if start <= to {
                prop_assert!(end >= start);
            }
            let from = default_recordings_from(to);
            prop_assert!(from <= to);
        }

        /// Dates as callers type them, through the same parsing as the route.
        #[test]
        fn recordings_dates_from_callers_never_overflow(
            from in prop_oneof!["-?[0-9]{4}-[0-9]{2}-[0-9]{2}", "(9999-12|-9999-01)-[0-3][0-9]"],
            to in prop_oneof!["-?[0-9]{4}-[0-9]{2}-[0-9]{2}", "(9999-12|-9999-01)-[0-3][0-9]"],
        ) {
            if let (Ok(from), Ok(to)) = (parse_day("from", &from), parse_day("to", &to)) {
                let _ = recordings_window_end(from, to);
                let _ = default_recordings_from(to);
                let _ = format_day(from);
            }
        }

        #[test]
        fn recordings_cursor_decoder_never_panics_on_any_input(raw in any::<String>()) {
            let _ = decode_recordings_cursor(&raw);
        }

        /// Cursors are caller input too: any JSON, base64-encoded as ours are.
        #[test]
        fn forged_cursors_are_refused_or_consistent(value in any_json()) {
            use base64::Engine;
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
            if let Ok(c) = decode_recordings_cursor(&raw) {
                let from = parse_day("from", &c.from).unwrap();
                let window = parse_day("window", &c.window).unwrap();
                let to = parse_day("to", &c.to).unwrap();
                prop_assert!(from <= window && window <= to);
            }
        }

        /// Meeting ids become one path segment toward Zoom: never a `/`, never a climb.
        #[test]
        fn meeting_path_segments_stay_one_segment(id in prop_oneof![any::<String>(), "[0-9A-Za-z/+=%.]{1,40}", "(\\.{1,2}|%2[eE]|/|[a-z]){1,8}"]) {
            match meeting_path_segment(&id) {
                Ok(segment) => {
                    prop_assert!(!segment.is_empty());
                    prop_assert!(!segment.contains('/'), "{:?} -> {}", id, segment);
                    // Zoom decodes once before routing: no dot segment then either.
                    let at_zoom = percent_decode(&segment).unwrap();
                    prop_assert!(
                        at_zoom.split('/').all(|s| s != "." && s != ".."),
                        "{:?} -> {}", id, segment
                    );
                    prop_assert!(segment.chars().all(|c| c.is_ascii_alphanumeric() || "%-_.*".contains(c)), "{}", segment);
                }
                Err(e) => prop_assert_eq!(e.code, ErrorCode::ValidationFailed),
            }
        }

        /// Any body a caller sends is validated into Ok or a 400, never a panic.
        #[test]
        fn meeting_and_livestream_validation_never_panics(body in any_json()) {
            for create in [true, false] {
                if let Err(e) = validate_meeting(&body, create) {
                    prop_assert_eq!(e.status, StatusCode::BAD_REQUEST);
                }
            }
            if let Err(e) = validate_livestream(&body) {
                prop_assert_eq!(e.status, StatusCode::BAD_REQUEST);
            }
        }

        /// Whatever Zoom answers with an error status, the mapping keeps a stable code and
        /// answers a 4xx or a 502, never a 500 of ours.
        #[test]
        fn zoom_errors_map_to_client_errors_or_502(
            status in 400u16..600,
            body in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..200),
                any_json().prop_map(|v| v.to_string().into_bytes()),
                (any::<i64>(), any::<String>()).prop_map(|(code, message)| {
                    serde_json::json!({ "code": code, "message": message }).to_string().into_bytes()
                }),
            ],
            retry_after in proptest::option::of(prop_oneof![any::<String>(), any::<u64>().prop_map(|n| n.to_string())]),
            limit_type in proptest::option::of(prop_oneof![Just("Daily-limit".to_owned()), any::<String>()]),
        ) {
            let mut headers = Vec::new();
            if let Some(v) = retry_after {
                headers.push(("retry-after".to_owned(), v));
            }
            if let Some(v) = limit_type {
                headers.push(("x-ratelimit-type".to_owned(), v));
            }
            let response = ZoomResponse { status, headers, body: Bytes::from(body) };
            let e = map_zoom_error(&response, time::OffsetDateTime::now_utc());
            prop_assert!(
                e.status.is_client_error() || e.status == StatusCode::BAD_GATEWAY,
                "{} -> {}", status, e.status
            );
            prop_assert!(!e.code.as_str().is_empty());
            prop_assert_eq!(e.zoom.as_ref().map(|z| z.status), Some(status));
            if status == 429 {
                prop_assert!(e.retry_after_secs.is_some());
            }
        }

        #[test]
        fn retry_after_never_panics(value in any::<String>()) {
            let _ = retry_after_secs(Some(&value), time::OffsetDateTime::now_utc());
        }
    }
}

mod zoom_rules {
    use super::super::{errors::*, paths::*, recordings::*, schema::*};

    use crate::zoom::exchange::ZoomResponse;

    use bytes::Bytes;

    use http::StatusCode;

    use crate::domain::error::{ApiError, ErrorCode};
    use time::macros::datetime;

    #[test]
    fn retry_after_forms() {
        let now = datetime!(2026-11-30 12:00:00 UTC);
        assert_eq!(retry_after_secs(Some("7"), now), Some(7));
        assert_eq!(
            retry_after_secs(Some("2026-12-01T00:00:00Z"), now),
            Some(12 * 3600)
        );
        assert_eq!(retry_after_secs(Some("garbage"), now), None);
        assert_eq!(retry_after_secs(None, now), None);
        // An HTTP date, and Zoom's zone-less form read as UTC.
        assert_eq!(
            retry_after_secs(Some("Tue, 01 Dec 2026 00:00:00 GMT"), now),
            Some(12 * 3600)
        );
        assert_eq!(
            retry_after_secs(Some("2026-12-01T00:00:00"), now),
            Some(12 * 3600)
        );
        // A date in the past means "now".
        assert_eq!(retry_after_secs(Some("2026-11-01T00:00:00Z"), now), Some(0));
    }

    #[test]
    fn daily_limit_without_retry_after_waits_for_utc_midnight() {
        let now = datetime!(2026-11-30 20:00:00 UTC);
        let daily = ZoomResponse {
            status: 429,
            headers: vec![("x-ratelimit-type".into(), "Daily-limit".into())],
            body: Bytes::from_static(br#"{"code":429,"message":"daily"}"#),
        };
        let e = map_zoom_error(&daily, now);
        assert_eq!(
            (e.status.as_u16(), e.retry_after_secs),
            (429, Some(4 * 3600))
        );
        let qps = ZoomResponse {
            headers: vec![("X-RateLimit-Type".into(), "QPS".into())],
            ..daily
        };
        assert_eq!(map_zoom_error(&qps, now).retry_after_secs, Some(1));
    }

    #[test]
    fn zoom_field_errors_are_kept() {
        let resp = ZoomResponse {
            status: 400,
            headers: vec![],
            body: Bytes::from_static(
                br#"{"code":300,"message":"Validation Failed.","errors":[{"field":"password","message":"Invalid field."}]}"#,
            ),
        };
        let e = map_zoom_error(&resp, datetime!(2026-11-30 12:00:00 UTC));
        assert_eq!((e.status.as_u16(), e.code), (400, ErrorCode::ZoomError));
        assert_eq!(e.zoom.as_ref().unwrap().code, Some(300));
        assert_eq!(e.to_json()["errors"][0]["field"], "password");
    }

    #[test]
    fn meeting_validation_names_fields() {
        let err = validate_meeting(&serde_json::json!({ "type": 5 }), true).unwrap_err();
        assert_eq!(err.code, ErrorCode::ValidationFailed);
        assert!(err.detail.contains("type"), "{}", err.detail);
        let err =
            validate_meeting(&serde_json::json!({ "password": "12345678901" }), true).unwrap_err();
        assert!(err.detail.contains("password"), "{}", err.detail);
        let err = validate_meeting(&serde_json::json!({ "duration": "long" }), true).unwrap_err();
        assert!(err.detail.contains("duration"), "{}", err.detail);
        let err =
            validate_meeting(&serde_json::json!({ "start_time": "tomorrow" }), true).unwrap_err();
        assert!(err.detail.contains("start_time"), "{}", err.detail);
        assert!(validate_meeting(&serde_json::json!({ "topic": "ok", "type": 2, "start_time": "2026-12-01T10:00:00" }), true).unwrap().is_none());
        let warn = validate_meeting(&serde_json::json!({ "start_time": "2026-12-01T10:00:00Z", "timezone": "Europe/Berlin" }), true).unwrap();
        assert!(warn.unwrap().contains("timezone"));
    }

    #[test]
    fn validation_errors_name_nested_and_missing_fields_without_echoing_values() {
        let err = validate_meeting(
            &serde_json::json!({ "recurrence": { "repeat_interval": 1 }, "settings": { "audio": "loud" } }),
            false,
        )
        .unwrap_err();
        let doc = err.to_json();
        let fields: Vec<&str> = doc["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&"recurrence.type"), "{doc}");
        assert!(fields.contains(&"settings.audio"), "{doc}");
        let err = validate_meeting(&serde_json::json!({ "password": "secret-passcode" }), true)
            .unwrap_err();
        assert!(!err.to_json().to_string().contains("secret-passcode"));
        let err = validate_meeting(&serde_json::json!({ "password": "a b" }), true).unwrap_err();
        assert_eq!(err.to_json()["errors"][0]["field"], "password");
        let err =
            validate_livestream(&serde_json::json!({ "stream_url": "rtmp://x" })).unwrap_err();
        let doc = err.to_json();
        assert!(
            doc["detail"].as_str().unwrap().contains("stream_key"),
            "{doc}"
        );
        assert!(validate_livestream(&serde_json::json!({ "stream_url": "rtmp://x", "stream_key": "k", "page_url": "https://e.com" })).is_ok());
    }

    #[test]
    fn uuids_are_double_encoded_when_needed() {
        assert_eq!(meeting_path_segment("85746065432").unwrap(), "85746065432");
        assert_eq!(
            meeting_path_segment("4444AAAiAAAAAiAiAiiAii==").unwrap(),
            "4444AAAiAAAAAiAiAiiAii%3D%3D"
        );
        assert_eq!(
            meeting_path_segment("/ajXp112QmuoKj4854875==").unwrap(),
            "%252FajXp112QmuoKj4854875%253D%253D"
        );
        assert_eq!(meeting_path_segment("ab//cd").unwrap(), "ab%252F%252Fcd");
        // Already encoded by the caller (once or twice): never a third time.
        assert_eq!(
            meeting_path_segment("%2FajXp112QmuoKj4854875%3D%3D").unwrap(),
            "%252FajXp112QmuoKj4854875%253D%253D"
        );
        assert_eq!(
            meeting_path_segment("%252FajXp%253D%253D").unwrap(),
            "%252FajXp%253D%253D"
        );
        assert_eq!(meeting_path_segment("ab%2Fcd").unwrap(), "ab%2Fcd");
        for bad in ["", "%zz", "%25252F", "a\ncd"] {
            assert!(meeting_path_segment(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn zoom_errors_are_mapped() {
        let now = datetime!(2026-11-30 12:00:00 UTC);
        let resp = |status, body: &str, headers: Vec<(&str, &str)>| ZoomResponse {
            status,
            headers: headers
                .into_iter()
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .collect(),
            body: Bytes::from(body.to_owned()),
        };
        let e = map_zoom_error(
            &resp(
                404,
                r#"{"code":3001,"message":"Meeting does not exist: 1."}"#,
                vec![],
            ),
            now,
        );
        assert_eq!(
            (e.status.as_u16(), e.zoom.as_ref().unwrap().code),
            (404, Some(3001))
        );
        let e = map_zoom_error(
            &resp(
                400,
                r#"{"code":4711,"message":"Invalid access token, does not contain scopes:[meeting:write]."}"#,
                vec![],
            ),
            now,
        );
        assert_eq!(e.status.as_u16(), 403);
        assert!(e.detail.contains("meeting:write"));
        let e = map_zoom_error(
            &resp(
                429,
                r#"{"code":429,"message":"limit"}"#,
                vec![("retry-after", "2026-11-30T12:01:00Z")],
            ),
            now,
        );
        assert_eq!((e.status.as_u16(), e.retry_after_secs), (429, Some(60)));
        let e = map_zoom_error(&resp(503, "", vec![]), now);
        assert_eq!(
            (e.status.as_u16(), e.code),
            (502, ErrorCode::ZoomUnavailable)
        );
    }
}

mod api_host_tests {
    use super::super::paths::is_zoom_api_host;

    #[test]
    fn zoom_api_hosts() {
        assert!(is_zoom_api_host("api.zoom.us"));
        assert!(is_zoom_api_host("api-eu.zoom.us"));
        assert!(!is_zoom_api_host("api-.zoom.us"));
        assert!(!is_zoom_api_host("api-eu.zoom.us.evil.com"));
        assert!(!is_zoom_api_host("evil.com"));
    }
}
