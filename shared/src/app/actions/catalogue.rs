//! Running a catalogue action (`zoom::catalogue`): the same rules for every row — checked
//! before any call, the connection's token (refreshed on use, one 401 retry), Zoom's errors
//! kept, lists behind one cursor, `Idempotency-Key` on every create.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::Value;

use super::meetings::add_warning;
use super::{PassThrough, ZoomCall};
use crate::app::Connector;
use crate::app::idempotency::{HttpClaim, replay};
use crate::domain::error::{ApiError, ErrorCode};
use crate::domain::idempotency::IdempotentAnswer;
use crate::secret::sha256_hex;
use crate::zoom::catalogue::{Action, Shape};
use crate::zoom::errors::{map_zoom_error, unreadable_answer};
use crate::zoom::recordings::RecordingsQuery;
use crate::zoom::requests::{
    CheckedQuery, PAGE_TOKEN_INVALID_CODE, check_query, cursor_expired, list_answer,
    list_page_query, zoom_path,
};
use crate::zoom::schema::{validate_body, validate_livestream, validate_meeting};
use crate::zoom::stored::{restore_secrets, without_secrets};

/// One call of a catalogue action, as the HTTP layer read it.
#[derive(Debug, Default)]
pub struct ActionRequest {
    /// The route's path parameters other than the connection id.
    pub path: Vec<(String, String)>,
    pub query: Option<String>,
    /// The JSON body, for actions that take one.
    pub body: Option<Value>,
    pub idempotency_key: Option<String>,
}

fn json_answer(status: u16, body: &Value) -> PassThrough {
    PassThrough {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from(body.to_string()),
    }
}

impl Connector {
    /// Runs `action` for connection `id`.
    pub async fn run_action(
        &self,
        id: &str,
        action: &'static Action,
        request: ActionRequest,
    ) -> Result<PassThrough, ApiError> {
        let query = check_query(action, request.query.as_deref())?;
        let path = zoom_path(action, &request.path)?;
        let body = self.checked_body(action, request.body)?;
        match action.shape {
            Shape::CreateMeeting => {
                let body = body.unwrap_or_default();
                self.create_meeting(id, &body, request.idempotency_key.as_deref())
                    .await
            }
            Shape::RecordingsWalk => {
                let page = self.list_recordings(id, recordings_query(&query)).await?;
                Ok(json_answer(
                    200,
                    &serde_json::to_value(page).unwrap_or_default(),
                ))
            }
            Shape::List(key) => self.list_page(id, &path, key, &query).await,
            Shape::MeetingRecordings => self.meeting_recordings(id, &path, &query).await,
            Shape::Plain | Shape::UpdateMeeting => {
                let mut call = ZoomCall::get(path);
                call.method = Method::from_bytes(action.method.as_bytes())
                    .map_err(|_| ApiError::internal("catalogue method"))?;
                call.query = encode_query(&query.to_zoom);
                if let Some(body) = &body {
                    call.body = Some(Bytes::from(body.to_string()));
                    call.content_type = Some("application/json".into());
                }
                match (&request.idempotency_key, action.is_create()) {
                    (Some(key), true) => {
                        let fingerprint = sha256_hex(&format!(
                            "{}|{}",
                            action.name,
                            call.body
                                .as_deref()
                                .map(String::from_utf8_lossy)
                                .unwrap_or_default()
                        ));
                        self.create_once(id, key, &fingerprint, &call, action.read_back)
                            .await
                    }
                    _ => self.zoom_pass(id, &call).await,
                }
            }
        }
    }

    /// The body checked against Zoom's schema for the operation (and the meeting rules).
    fn checked_body(
        &self,
        action: &Action,
        body: Option<Value>,
    ) -> Result<Option<Value>, ApiError> {
        let Some(schema) = action.body_schema() else {
            return Ok(None);
        };
        let body = body.ok_or_else(|| {
            ApiError::validation("This action takes a JSON body (Zoom's fields).")
        })?;
        match (action.shape, action.name) {
            (Shape::CreateMeeting, _) => {}
            (Shape::UpdateMeeting, _) => {
                validate_meeting(&body, false)?;
            }
            (_, "update_livestream") => validate_livestream(&body)?,
            _ => validate_body(schema, &body)?,
        }
        Ok(Some(body))
    }

    /// One page of a list: Zoom's page token travels in the cursor with the first query.
    async fn list_page(
        &self,
        id: &str,
        path: &str,
        key: &str,
        query: &CheckedQuery,
    ) -> Result<PassThrough, ApiError> {
        let (pairs, resumed) = list_page_query(query)?;
        let mut call = ZoomCall::get(path);
        call.query = encode_query(&pairs);
        let response = self.call_zoom(id, &call).await?;
        if response.status >= 400 {
            let code = serde_json::from_slice::<Value>(&response.body)
                .ok()
                .and_then(|b| b["code"].as_i64());
            if resumed && response.status == 400 && code == Some(PAGE_TOKEN_INVALID_CODE) {
                return Err(cursor_expired());
            }
            return Err(map_zoom_error(&response, self.now()));
        }
        let zoom: Value =
            serde_json::from_slice(&response.body).map_err(|_| unreadable_answer())?;
        Ok(json_answer(200, &list_answer(key, &zoom, &pairs)))
    }

    /// A meeting's recordings; with `download_links=true`, each file's `download_url` carries
    /// Zoom's short-lived download token (never the connection's OAuth token).
    async fn meeting_recordings(
        &self,
        id: &str,
        path: &str,
        query: &CheckedQuery,
    ) -> Result<PassThrough, ApiError> {
        let links = query.ours("download_links") == Some("true");
        let mut pairs = query.to_zoom.clone();
        if links {
            pairs.push(("include_fields".into(), "download_access_token".into()));
        }
        let mut call = ZoomCall::get(path);
        call.query = encode_query(&pairs);
        let answer = self.zoom_pass(id, &call).await?;
        let mut body: Value =
            serde_json::from_slice(&answer.body).map_err(|_| unreadable_answer())?;
        let token = body
            .as_object_mut()
            .and_then(|o| o.remove("download_access_token"));
        if links {
            let Some(token) = token.as_ref().and_then(Value::as_str) else {
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::ZoomError,
                    "Zoom gave no download token for these recordings.",
                ));
            };
            let ttl = pairs
                .iter()
                .find(|(k, _)| k == "ttl")
                .and_then(|(_, v)| v.parse::<i64>().ok())
                .unwrap_or(86_400);
            let expires = (self.now() + time::Duration::seconds(ttl))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            for file in body["recording_files"].as_array_mut().into_iter().flatten() {
                if let Some(url) = file["download_url"]
                    .as_str()
                    .and_then(|u| url::Url::parse(u).ok())
                {
                    let mut url = url;
                    url.query_pairs_mut().append_pair("access_token", token);
                    file["download_url"] = url.to_string().into();
                    file["download_expires_at"] = expires.clone().into();
                }
            }
        }
        Ok(json_answer(answer.status, &body))
    }

    /// A create with an `Idempotency-Key`: the first answer is returned to every retry with
    /// the same body. Zoom may have acted when the outcome is unknown (timeout, 5xx); the key
    /// is then released so a retry can try again (only meetings are looked up at Zoom).
    async fn create_once(
        &self,
        id: &str,
        key: &str,
        fingerprint: &str,
        call: &ZoomCall,
        read_back: Option<&str>,
    ) -> Result<PassThrough, ApiError> {
        match self.claim_http_key(id, key, fingerprint).await? {
            HttpClaim::Replay(answer) => {
                let body = self.replayed_answer(id, read_back, &answer).await;
                Ok(replay(answer.status, &body))
            }
            HttpClaim::Started {
                record_key,
                version,
                ..
            } => match self.zoom_pass(id, call).await {
                Ok(answer) => {
                    let body = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
                    // Kept 24 h: without a host key or passcodes when a replay can read them
                    // back from Zoom (the others have nowhere to get them from again).
                    let body = match read_back {
                        Some(_) => without_secrets(&body),
                        None => body,
                    };
                    let first = IdempotentAnswer {
                        status: answer.status,
                        body,
                        fingerprint: fingerprint.to_owned(),
                    };
                    self.finish_idempotent(&record_key, version, &first).await?;
                    Ok(answer)
                }
                Err(e) => {
                    self.release_record(&record_key, version).await;
                    Err(e)
                }
            },
        }
    }
}

impl Connector {
    /// The stored first answer of a create, with what the store does not keep (a host's
    /// `start_url`, passcodes) filled in from Zoom's object read back at `read_back` (`{id}`:
    /// the answer's `id`). When Zoom cannot be asked, the stored answer with a `warning`
    /// saying what is missing.
    pub(super) async fn replayed_answer(
        &self,
        id: &str,
        read_back: Option<&str>,
        answer: &IdempotentAnswer,
    ) -> Value {
        let mut body = answer.body.clone();
        let (Some(path), Value::Number(object_id)) = (read_back, &body["id"]) else {
            return body;
        };
        if !(200..300).contains(&answer.status) {
            return body;
        }
        let call = ZoomCall::get(path.replace("{id}", &object_id.to_string()));
        let fresh = match self.zoom_pass(id, &call).await {
            Ok(r) => serde_json::from_slice::<Value>(&r.body).map_err(|_| unreadable_answer()),
            Err(e) => Err(e),
        };
        match fresh {
            Ok(fresh) => restore_secrets(&mut body, &fresh),
            Err(e) => {
                tracing::warn!(error = %e, connection_id = %id, "replayed a create without its start_url and passcodes");
                let warning = format!(
                    "Replayed without start_url and passcodes (not kept by the connector): Zoom could not be asked for them ({}). Get the object ({path}) for them.",
                    e.code
                );
                add_warning(&mut body, Some(&warning));
            }
        }
        body
    }
}

fn encode_query(pairs: &[(String, String)]) -> Option<String> {
    (!pairs.is_empty()).then(|| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    })
}

fn recordings_query(query: &CheckedQuery) -> RecordingsQuery {
    RecordingsQuery {
        from: query.ours("from").map(str::to_owned),
        to: query.ours("to").map(str::to_owned),
        page_size: query.ours("page_size").and_then(|v| v.parse().ok()),
        cursor: query.ours("cursor").map(str::to_owned),
    }
}
