//! A catalogue action's request made ready for Zoom, without I/O: path parameters encoded,
//! the query checked against Zoom's parameter schemas, and the opaque list `cursor` that
//! carries Zoom's `next_page_token` with the query it belongs to.

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::catalogue::{ACTIONS, Action, QueryParam, Shape};
use super::paths::meeting_path_segment;
use super::schema::{field_error, validation_failed};
use crate::domain::error::{ApiError, ErrorCode};

/// Zoom's error code for a `next_page_token` it no longer knows (they live 15 minutes).
pub const PAGE_TOKEN_INVALID_CODE: i64 = 300;

/// Where a list stands: Zoom's page token and the query it continues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListCursor {
    /// Zoom's `next_page_token`.
    pub token: String,
    /// The Zoom query of the first page (filters and page size), repeated on every page.
    pub query: Vec<(String, String)>,
}

pub fn encode_cursor(cursor: &ListCursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(cursor).unwrap_or_default())
}

pub fn decode_cursor(value: &str) -> Result<ListCursor, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .ok()
        .and_then(|b| serde_json::from_slice::<ListCursor>(&b).ok())
        .filter(|c| !c.token.is_empty() && c.token.len() <= 1024 && c.query.len() <= 16)
        .ok_or_else(|| {
            validation_failed(vec![field_error(
                "cursor",
                "not a cursor this API returned",
            )])
        })
}

/// The answer to a list call whose cursor's page token Zoom no longer knows.
pub fn cursor_expired() -> ApiError {
    ApiError::validation(
        "The cursor expired (Zoom keeps a list position for 15 minutes); start the list again without `cursor`.",
    )
    .with_code(ErrorCode::CursorExpired)
}

/// The Zoom path of `action` for these path parameters (`userId` is `me`).
pub fn zoom_path(action: &Action, params: &[(String, String)]) -> Result<String, ApiError> {
    let mut path = action.zoom_path.to_owned();
    for name in action.path_params() {
        let value = params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        let segment = meeting_path_segment(value).map_err(|_| {
            validation_failed(vec![field_error(
                name,
                "a Zoom id: a number, or a UUID as Zoom gives it",
            )])
        })?;
        path = path.replace(&format!("{{{name}}}"), &segment);
    }
    Ok(path.replace("{userId}", "me"))
}

/// The checked query: `(name, value)` pairs for Zoom, and our own (`cursor`,
/// `download_links`) apart.
#[derive(Debug, Default, PartialEq)]
pub struct CheckedQuery {
    pub to_zoom: Vec<(String, String)>,
    pub ours: Vec<(String, String)>,
}

impl CheckedQuery {
    pub fn ours(&self, name: &str) -> Option<&str> {
        self.ours
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a raw query string against the action's parameters: unknown names, repeated names
/// and values outside Zoom's schema (type, enum, bounds) are refused before any call.
pub fn check_query(action: &Action, raw: Option<&str>) -> Result<CheckedQuery, ApiError> {
    let params = &CHECKERS[action.name];
    let mut checked = CheckedQuery::default();
    let mut errors = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let (name, value) = (name.into_owned(), value.into_owned());
        let Some(checker) = params.iter().find(|c| c.param.name == name) else {
            let known: Vec<&str> = params.iter().map(|c| c.param.name.as_str()).collect();
            let message = if known.is_empty() {
                "this action takes no query parameters".to_owned()
            } else {
                format!(
                    "not a parameter of this action (it takes: {})",
                    known.join(", ")
                )
            };
            errors.push(field_error(&name, &message));
            continue;
        };
        if seen.contains(&name) {
            errors.push(field_error(&name, "given more than once"));
            continue;
        }
        seen.push(name.clone());
        let param = &checker.param;
        if let Err(message) = check_value(checker, &value) {
            errors.push(field_error(&name, &message));
            continue;
        }
        if param.to_zoom {
            checked.to_zoom.push((name, value));
        } else {
            checked.ours.push((name, value));
        }
    }
    if action.shape == Shape::MeetingRecordings
        && checked.to_zoom.iter().any(|(k, _)| k == "ttl")
        && checked.ours("download_links") != Some("true")
    {
        errors.push(field_error("ttl", "only with download_links=true"));
    }
    if errors.is_empty() {
        Ok(checked)
    } else {
        Err(validation_failed(errors))
    }
}

/// A query parameter with its schema compiled once (per process, for every action).
struct ParamChecker {
    param: QueryParam,
    validator: Option<jsonschema::Validator>,
}

static CHECKERS: LazyLock<HashMap<&'static str, Vec<ParamChecker>>> = LazyLock::new(|| {
    ACTIONS
        .iter()
        .map(|action| {
            let checkers = action
                .query_params()
                .into_iter()
                .map(|param| {
                    let dates = param.schema.get("format").and_then(Value::as_str) == Some("date");
                    let validator = jsonschema::draft4::options()
                        .should_validate_formats(dates)
                        .build(&param.schema)
                        .ok();
                    ParamChecker { param, validator }
                })
                .collect();
            (action.name, checkers)
        })
        .collect()
});

/// A query value against its parameter's schema: integers and booleans parsed first.
fn check_value(checker: &ParamChecker, value: &str) -> Result<(), String> {
    let param = &checker.param;
    if value.len() > 1024 || value.chars().any(char::is_control) {
        return Err("too long, or holds control characters".into());
    }
    let typed = match param.schema.get("type").and_then(Value::as_str) {
        Some("integer") => value
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "must be an integer".to_owned())?,
        Some("boolean") => match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err("must be true or false".into()),
        },
        _ => Value::String(value.to_owned()),
    };
    let validator = checker
        .validator
        .as_ref()
        .ok_or_else(|| "cannot be checked".to_owned())?;
    match validator.iter_errors(&typed).next() {
        None => Ok(()),
        Some(e) => Err(e.masked().to_string()),
    }
}

/// The Zoom query of one list page: the cursor's query and token, or the caller's filters.
pub fn list_page_query(query: &CheckedQuery) -> Result<(Vec<(String, String)>, bool), ApiError> {
    match query.ours("cursor") {
        Some(raw) => {
            let cursor = decode_cursor(raw)?;
            let mut pairs = cursor.query;
            pairs.push(("next_page_token".into(), cursor.token));
            Ok((pairs, true))
        }
        None => Ok((query.to_zoom.clone(), false)),
    }
}

/// Turns Zoom's list answer into ours: `{ key: [..], next_cursor }`.
pub fn list_answer(key: &str, zoom: &Value, first_query: &[(String, String)]) -> Value {
    let items = zoom
        .get(key)
        .cloned()
        .unwrap_or_else(|| Value::Array(Vec::new()));
    let next = zoom
        .get("next_page_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|token| {
            encode_cursor(&ListCursor {
                token: token.to_owned(),
                query: first_query
                    .iter()
                    .filter(|(k, _)| k != "next_page_token")
                    .cloned()
                    .collect(),
            })
        });
    serde_json::json!({ key: items, "next_cursor": next })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(name: &str) -> &'static Action {
        Action::by_name(name).unwrap()
    }

    #[test]
    fn queries_are_checked_against_zooms_parameters() {
        let list = action("list_meetings");
        let ok = check_query(list, Some("type=upcoming&page_size=300")).unwrap();
        assert_eq!(ok.to_zoom.len(), 2);
        for bad in [
            "type=soon",
            "page_size=301",
            "page_size=x",
            "next_page_token=t",
            "colour=red",
            "type=live&type=live",
        ] {
            let e = check_query(list, Some(bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::ValidationFailed, "{bad}");
        }
        let e = check_query(action("get_meeting_summary"), Some("x=1")).unwrap_err();
        assert!(
            e.to_json()["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("no query")
        );
        let recordings = action("meeting_recordings");
        assert!(check_query(recordings, Some("download_links=true&ttl=60")).is_ok());
        assert!(check_query(recordings, Some("ttl=60")).is_err());
        assert!(check_query(recordings, Some("download_links=true&ttl=604801")).is_err());
    }

    #[test]
    fn cursors_carry_the_first_query_and_refuse_forgeries() {
        let first = vec![("type".to_owned(), "upcoming".to_owned())];
        let answer = list_answer(
            "meetings",
            &serde_json::json!({ "meetings": [{ "id": 1 }], "next_page_token": "tok" }),
            &first,
        );
        assert_eq!(answer["meetings"][0]["id"], 1);
        let cursor = answer["next_cursor"].as_str().unwrap();
        let query = CheckedQuery {
            ours: vec![("cursor".into(), cursor.into())],
            ..Default::default()
        };
        let (pairs, resumed) = list_page_query(&query).unwrap();
        assert!(resumed);
        assert_eq!(
            pairs,
            [
                ("type".into(), "upcoming".into()),
                ("next_page_token".into(), "tok".into())
            ]
        );
        let last = list_answer(
            "meetings",
            &serde_json::json!({ "meetings": [], "next_page_token": "" }),
            &first,
        );
        assert!(last["next_cursor"].is_null());
        for forged in [
            "",
            "!!",
            "e30",
            &encode_cursor(&ListCursor {
                token: String::new(),
                query: vec![],
            }),
        ] {
            assert!(decode_cursor(forged).is_err(), "{forged}");
        }
    }

    #[test]
    fn path_parameters_are_zoom_ids() {
        let delete = action("delete_meeting_registrant");
        let params = vec![
            ("meetingId".to_owned(), "85746065".to_owned()),
            (
                "registrantId".to_owned(),
                "9tboDiHUQAeOnbmudzWa5g".to_owned(),
            ),
        ];
        assert_eq!(
            zoom_path(delete, &params).unwrap(),
            "/meetings/85746065/registrants/9tboDiHUQAeOnbmudzWa5g"
        );
        let params = vec![("meetingId".to_owned(), "/ab//c==".to_owned())];
        assert_eq!(
            zoom_path(action("get_past_meeting"), &params).unwrap(),
            "/past_meetings/%252Fab%252F%252Fc%253D%253D"
        );
        let e = zoom_path(
            action("get_meeting"),
            &[("meetingId".into(), "../users/me".into())],
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        assert_eq!(
            zoom_path(action("list_webinars"), &[]).unwrap(),
            "/users/me/webinars"
        );
    }
}
