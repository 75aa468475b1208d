//! `GET /connections/{id}/zoom/recordings`: any range, walked in Zoom's one-month windows.

use crate::app::Connector;
use crate::app::actions::ZoomCall;
use crate::domain::error::ApiError;
use crate::zoom::errors::unreadable_answer;
use crate::zoom::recordings::{
    MAX_WINDOWS_PER_CALL, RecordingsCursor, RecordingsPage, RecordingsQuery,
    decode_recordings_cursor, default_recordings_from, encode_recordings_cursor, format_day,
    parse_day, recordings_window_end,
};

impl Connector {
    /// Walks Zoom's one-month windows and their pages over any range.
    pub async fn list_recordings(
        &self,
        id: &str,
        query: RecordingsQuery,
    ) -> Result<RecordingsPage, ApiError> {
        if let Some(size) = query.page_size
            && !(1..=300).contains(&size)
        {
            return Err(ApiError::validation("`page_size` must be between 1 and 300.")
                .with_extra(serde_json::json!({ "errors": [{ "field": "page_size", "message": "between 1 and 300" }] })));
        }
        let mut cursor = match &query.cursor {
            Some(c) => decode_recordings_cursor(c)?,
            None => {
                let to = match &query.to {
                    Some(t) => parse_day("to", t)?,
                    None => self.now().date(),
                };
                let from = match &query.from {
                    Some(f) => parse_day("from", f)?,
                    None => default_recordings_from(to),
                };
                if from > to {
                    return Err(ApiError::validation("`from` must not be after `to`.")
                        .with_extra(serde_json::json!({ "errors": [{ "field": "from", "message": "after `to`" }] })));
                }
                RecordingsCursor {
                    from: format_day(from),
                    to: format_day(to),
                    window: format_day(from),
                    token: None,
                    page_size: query.page_size,
                }
            }
        };
        // An explicit page size wins; else the one the walk started with.
        if query.page_size.is_some() {
            cursor.page_size = query.page_size;
        }
        let page_size = cursor.page_size.unwrap_or(30).clamp(1, 300);
        let to = parse_day("to", &cursor.to)?;
        for _ in 0..MAX_WINDOWS_PER_CALL {
            let window_start = parse_day("cursor", &cursor.window)?;
            let window_end = recordings_window_end(window_start, to);
            let query = {
                let mut q = url::form_urlencoded::Serializer::new(String::new());
                q.append_pair("from", &format_day(window_start))
                    .append_pair("to", &format_day(window_end))
                    .append_pair("page_size", &page_size.to_string());
                if let Some(t) = &cursor.token {
                    q.append_pair("next_page_token", t);
                }
                q.finish()
            };
            let mut call = ZoomCall::get("/users/me/recordings");
            call.query = Some(query);
            let answer = self.zoom_pass(id, &call).await?;
            let body: serde_json::Value =
                serde_json::from_slice(&answer.body).map_err(|_| unreadable_answer())?;
            let meetings = body["meetings"].as_array().cloned().unwrap_or_default();
            let next_token = body["next_page_token"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            let next = match next_token {
                Some(t) => Some(RecordingsCursor {
                    token: Some(t),
                    ..cursor.clone()
                }),
                None if window_end < to => Some(RecordingsCursor {
                    window: format_day(window_end + time::Duration::days(1)),
                    token: None,
                    ..cursor.clone()
                }),
                None => None,
            };
            match next {
                Some(n) if meetings.is_empty() => cursor = n,
                next => {
                    return Ok(RecordingsPage {
                        from: cursor.from.clone(),
                        to: cursor.to.clone(),
                        meetings,
                        next_cursor: next.as_ref().map(encode_recordings_cursor),
                    });
                }
            }
        }
        Ok(RecordingsPage {
            from: cursor.from.clone(),
            to: cursor.to.clone(),
            meetings: Vec::new(),
            next_cursor: Some(encode_recordings_cursor(&cursor)),
        })
    }
}
