//! Zoom actions for a connection: one call path ([`Connector::call_zoom`]) that finds a token,
//! refreshes once on 401, retries safe calls on 5xx, and maps Zoom's errors; the routes on
//! top of it; request validation against Zoom's own OpenAPI description.

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::tokens::{TokenNeed, jittered};
use super::{Connector, ZOOM_API_TIMEOUT};
use crate::error::{ApiError, ZoomErrorInfo};
use crate::ports::{ItemKind, ZoomRequest, ZoomResponse, ZoomTransportError};
use crate::secret::{SecretString, sha256_hex};

/// Zoom's published description of the endpoints we call (structure only).
pub const ZOOM_OPENAPI: &str =
    include_str!("../../../tests/fixtures/zoom-meetings-api-subset.openapi.json");

/// How long an `Idempotency-Key` answer is kept.
pub const IDEMPOTENCY_TTL_SECS: i64 = 24 * 3600;
/// An in-progress idempotency record older than this is taken over (its worker died).
pub const IDEMPOTENCY_STALE_SECS: i64 = 60;
/// Safe calls retry 5xx this many times.
const SAFE_RETRIES: u32 = 2;

/// A Zoom answer passed on to the caller.
#[derive(Debug, Clone)]
pub struct PassThrough {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl From<ZoomResponse> for PassThrough {
    fn from(r: ZoomResponse) -> Self {
        Self {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

#[derive(Deserialize)]
struct ZoomErrorBody {
    code: Option<i64>,
    message: Option<String>,
}

/// Seconds from Zoom's `Retry-After`: seconds, or an absolute date-time for daily limits.
pub fn retry_after_secs(value: Option<&str>, now: OffsetDateTime) -> Option<u64> {
    let value = value?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let at = OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .or_else(|_| OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822))
        .ok()?;
    Some((at - now).whole_seconds().max(0) as u64)
}

/// Maps a Zoom error answer to ours, keeping Zoom's `{status, code, message}`.
pub fn map_zoom_error(response: &ZoomResponse, now: OffsetDateTime) -> ApiError {
    let parsed: Option<ZoomErrorBody> = serde_json::from_slice(&response.body).ok();
    let code = parsed.as_ref().and_then(|b| b.code);
    let message = parsed.and_then(|b| b.message).unwrap_or_else(|| {
        String::from_utf8_lossy(&response.body)
            .chars()
            .take(300)
            .collect()
    });
    let zoom = ZoomErrorInfo {
        status: response.status,
        code,
        message: message.clone(),
    };
    let error = match (response.status, code) {
        (429, _) => {
            let retry = retry_after_secs(response.header("retry-after"), now)
                // The daily meeting limit may come without Retry-After: wait for the next day.
                .unwrap_or_else(|| {
                    if response.header("x-ratelimit-type") == Some("Daily-limit") {
                        3600
                    } else {
                        1
                    }
                });
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "zoom_rate_limited",
                format!("Zoom's rate limit was reached: {message}"),
            )
            .with_retry_after(retry)
        }
        (_, Some(4711)) => ApiError::new(
            StatusCode::FORBIDDEN,
            "zoom_scope_missing",
            format!(
                "The connection lacks a Zoom scope this call needs ({message}); add the scope to the Zoom app and reconnect."
            ),
        ),
        (404, _) => ApiError::new(
            StatusCode::NOT_FOUND,
            "zoom_not_found",
            format!("Zoom: {message}"),
        ),
        (401, _) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "zoom_unauthorized",
            format!("Zoom refused the token after a refresh: {message}"),
        ),
        (s, _) if s >= 500 => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "zoom_unavailable",
            format!("Zoom answered {s}: {message}"),
        )
        .with_retry_after(5),
        (s, _) => ApiError::new(
            StatusCode::from_u16(s)
                .ok()
                .filter(|s| s.is_client_error())
                .unwrap_or(StatusCode::BAD_GATEWAY),
            "zoom_error",
            format!("Zoom: {message}"),
        ),
    };
    error.with_zoom(zoom)
}

fn transport_error(e: &ZoomTransportError) -> ApiError {
    match e {
        ZoomTransportError::Timeout => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "zoom_unavailable",
            "Zoom did not answer in time; retry shortly.",
        )
        .with_retry_after(5),
        ZoomTransportError::Connect(_) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "zoom_unavailable",
            "Zoom could not be reached; retry shortly.",
        )
        .with_retry_after(5),
    }
}

/// One call for [`Connector::call_zoom`].
#[derive(Debug, Clone)]
pub struct ZoomCall {
    pub method: Method,
    /// Percent-encoded path below the API base.
    pub path: String,
    pub query: Option<String>,
    pub body: Option<Bytes>,
    pub content_type: Option<String>,
}

impl ZoomCall {
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            query: None,
            body: None,
            content_type: None,
        }
    }

    pub fn json(method: Method, path: impl Into<String>, body: &serde_json::Value) -> Self {
        Self {
            method,
            path: path.into(),
            query: None,
            body: Some(Bytes::from(body.to_string())),
            content_type: Some("application/json".into()),
        }
    }
}

impl Connector {
    /// Sends `call` for connection `id`. A 401 refreshes once and retries; safe methods retry
    /// 5xx and transport failures with jittered back-off; anything else is answered as Zoom
    /// gave it (success) or mapped (error) by the caller.
    pub async fn call_zoom(&self, id: &str, call: &ZoomCall) -> Result<ZoomResponse, ApiError> {
        let mut token = self.obtain_token(id, TokenNeed::Usable).await?.token;
        let safe = call.method == Method::GET || call.method == Method::HEAD;
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .zoom
                .send(self.request(&token.api_base, call, token.access_token.clone()))
                .await;
            match result {
                Ok(r) if r.status == 401 && !refreshed => {
                    self.tokens.forget(id);
                    token = self
                        .obtain_token(id, TokenNeed::ReplaceRejected(token.access_token.clone()))
                        .await?
                        .token;
                    refreshed = true;
                }
                Ok(r) if r.status >= 500 && safe && attempt <= SAFE_RETRIES => {
                    tokio::time::sleep(jittered(Duration::from_millis(200 * attempt as u64))).await;
                }
                Err(e) if safe && attempt <= SAFE_RETRIES => {
                    tracing::debug!(error = %e, "zoom call failed; retrying");
                    tokio::time::sleep(jittered(Duration::from_millis(200 * attempt as u64))).await;
                }
                Ok(r) => return Ok(r),
                Err(e) => return Err(transport_error(&e)),
            }
        }
    }

    fn request(&self, base: &str, call: &ZoomCall, access_token: SecretString) -> ZoomRequest {
        ZoomRequest {
            method: call.method.clone(),
            base: base.to_owned(),
            path: call.path.clone(),
            query: call.query.clone(),
            body: call.body.clone(),
            content_type: call.content_type.clone(),
            access_token,
            timeout: ZOOM_API_TIMEOUT,
        }
    }

    /// A call whose success is passed on as is and whose failure is mapped.
    pub async fn zoom_pass(&self, id: &str, call: &ZoomCall) -> Result<PassThrough, ApiError> {
        let response = self.call_zoom(id, call).await?;
        if response.status >= 400 {
            return Err(map_zoom_error(&response, self.now()));
        }
        Ok(response.into())
    }

    /// GET a JSON document with a bare token (the callback's `GET /users/me`).
    pub async fn zoom_json<T: serde::de::DeserializeOwned>(
        &self,
        api_base: &str,
        path: &str,
        access_token: &SecretString,
    ) -> Result<T, ApiError> {
        let response = self
            .zoom
            .send(self.request(api_base, &ZoomCall::get(path), access_token.clone()))
            .await
            .map_err(|e| transport_error(&e))?;
        if response.status >= 400 {
            return Err(map_zoom_error(&response, self.now()));
        }
        serde_json::from_slice(&response.body).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "zoom_error",
                "Zoom's answer could not be read.",
            )
        })
    }

    /// `POST /connections/{id}/zoom/meetings`: validated, and with an `Idempotency-Key` the
    /// first answer is returned to every retry (concurrent duplicates create one meeting).
    pub async fn create_meeting(
        &self,
        id: &str,
        body: &serde_json::Value,
        idempotency_key: Option<&str>,
    ) -> Result<PassThrough, ApiError> {
        let warning = validate_meeting(body, true)?;
        let Some(key) = idempotency_key else {
            return self.create_meeting_once(id, body, warning.as_deref()).await;
        };
        if key.is_empty() || key.len() > 255 {
            return Err(ApiError::validation(
                "`Idempotency-Key` must be 1 to 255 characters.",
            ));
        }
        let record_key = format!("http|{id}|{}", sha256_hex(key));
        let fingerprint = sha256_hex(&body.to_string());
        match self
            .begin_idempotent(&record_key, &fingerprint, Duration::from_secs(20))
            .await?
        {
            IdempotencyStart::Done(answer) => {
                if answer.fingerprint != fingerprint {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "idempotency_key_reused",
                        "This Idempotency-Key was used with a different body.",
                    ));
                }
                Ok(PassThrough {
                    status: answer.status,
                    headers: vec![
                        ("content-type".into(), "application/json".into()),
                        ("idempotent-replayed".into(), "true".into()),
                    ],
                    body: Bytes::from(answer.body.to_string()),
                })
            }
            IdempotencyStart::Started { version, .. } => {
                let result = self.create_meeting_once(id, body, warning.as_deref()).await;
                match &result {
                    Ok(answer) => {
                        let body: serde_json::Value =
                            serde_json::from_slice(&answer.body).unwrap_or_default();
                        self.finish_idempotent(
                            &record_key,
                            version,
                            &IdempotentAnswer {
                                status: answer.status,
                                body,
                                fingerprint,
                            },
                        )
                        .await?;
                    }
                    // Failed attempts may be retried with the same key.
                    Err(_) => {
                        self.store
                            .delete_item(ItemKind::Idempotency, &record_key, Some(version))
                            .await?;
                    }
                }
                result
            }
        }
    }

    async fn create_meeting_once(
        &self,
        id: &str,
        body: &serde_json::Value,
        warning: Option<&str>,
    ) -> Result<PassThrough, ApiError> {
        let mut answer = self
            .zoom_pass(
                id,
                &ZoomCall::json(Method::POST, "/users/me/meetings", body),
            )
            .await?;
        if let Some(w) = warning
            && let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&answer.body)
            && let Some(obj) = json.as_object_mut()
        {
            obj.insert("warning".into(), w.into());
            answer.body = Bytes::from(json.to_string());
        }
        Ok(answer)
    }

    /// Claims an idempotency record, or waits for / returns the first answer.
    pub async fn begin_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        wait: Duration,
    ) -> Result<IdempotencyStart, ApiError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let now = self.now_unix();
            let value = serde_json::json!({ "state": "in_progress", "started_at": now, "fingerprint": fingerprint });
            if self
                .store
                .create_item(
                    ItemKind::Idempotency,
                    key,
                    &value,
                    Some(now + IDEMPOTENCY_TTL_SECS),
                    now,
                )
                .await?
            {
                let item = self.store.get_item(ItemKind::Idempotency, key, now).await?;
                if let Some(item) = item.filter(|i| i.value == value) {
                    return Ok(IdempotencyStart::Started {
                        version: item.version,
                        resumed_from: None,
                    });
                }
                continue;
            }
            let Some(item) = self.store.get_item(ItemKind::Idempotency, key, now).await? else {
                continue;
            };
            match item.value["state"].as_str() {
                Some("done") => {
                    let answer: IdempotentAnswer =
                        serde_json::from_value(item.value["answer"].clone())
                            .map_err(|_| ApiError::internal("corrupt idempotency record"))?;
                    return Ok(IdempotencyStart::Done(answer));
                }
                _ if item.value["started_at"]
                    .as_i64()
                    .is_some_and(|t| now - t > IDEMPOTENCY_STALE_SECS) =>
                {
                    // Its worker died mid-way: take over.
                    let value = serde_json::json!({ "state": "in_progress", "started_at": now, "fingerprint": fingerprint });
                    if self
                        .store
                        .replace_item(
                            ItemKind::Idempotency,
                            key,
                            &value,
                            Some(now + IDEMPOTENCY_TTL_SECS),
                            item.version,
                        )
                        .await?
                    {
                        return Ok(IdempotencyStart::Started {
                            version: item.version + 1,
                            resumed_from: item.value["started_at"].as_i64(),
                        });
                    }
                }
                _ => {}
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "request_in_progress",
                    "A request with this Idempotency-Key is still in progress; retry shortly.",
                )
                .with_retry_after(2));
            }
            tokio::time::sleep(jittered(Duration::from_millis(100))).await;
        }
    }

    pub async fn finish_idempotent(
        &self,
        key: &str,
        version: u64,
        answer: &IdempotentAnswer,
    ) -> Result<(), ApiError> {
        let now = self.now_unix();
        let value = serde_json::json!({ "state": "done", "answer": answer, "fingerprint": answer.fingerprint });
        if !self
            .store
            .replace_item(
                ItemKind::Idempotency,
                key,
                &value,
                Some(now + IDEMPOTENCY_TTL_SECS),
                version,
            )
            .await?
        {
            tracing::warn!("idempotency record changed while the request ran");
        }
        Ok(())
    }
}

pub enum IdempotencyStart {
    /// We own the record (its version) and must finish it. `resumed_from` is when a worker
    /// that died mid-way had started (unix seconds): it may have created the thing already.
    Started {
        version: u64,
        resumed_from: Option<i64>,
    },
    Done(IdempotentAnswer),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotentAnswer {
    pub status: u16,
    pub body: serde_json::Value,
    pub fingerprint: String,
}

static ZOOM_SPEC: LazyLock<serde_json::Value> =
    LazyLock::new(|| serde_json::from_str(ZOOM_OPENAPI).unwrap_or_default());

fn request_schema(path: &str, method: &str) -> Option<&'static serde_json::Value> {
    ZOOM_SPEC
        .get("paths")?
        .get(path)?
        .get(method)?
        .get("requestBody")?
        .get("content")?
        .get("application/json")?
        .get("schema")
}

static CREATE_VALIDATOR: LazyLock<Option<jsonschema::Validator>> = LazyLock::new(|| {
    request_schema("/users/{userId}/meetings", "post")
        .and_then(|s| jsonschema::validator_for(s).ok())
});
static UPDATE_VALIDATOR: LazyLock<Option<jsonschema::Validator>> = LazyLock::new(|| {
    request_schema("/meetings/{meetingId}", "patch").and_then(|s| jsonschema::validator_for(s).ok())
});
static LIVESTREAM_VALIDATOR: LazyLock<Option<jsonschema::Validator>> = LazyLock::new(|| {
    request_schema("/meetings/{meetingId}/livestream", "patch")
        .and_then(|s| jsonschema::validator_for(s).ok())
});

fn schema_errors(
    validator: &jsonschema::Validator,
    body: &serde_json::Value,
) -> Result<(), ApiError> {
    let errors: Vec<serde_json::Value> = validator
        .iter_errors(body)
        .take(10)
        .map(|e| {
            let pointer = e.instance_path().to_string();
            let field = pointer.trim_start_matches('/').replace('/', ".");
            serde_json::json!({ "field": if field.is_empty() { "(body)".to_owned() } else { field }, "message": e.to_string() })
        })
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    let fields: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
    Err(ApiError::validation(format!(
        "The request does not match Zoom's schema: {}.",
        fields.join(", ")
    ))
    .with_extra(serde_json::json!({ "errors": errors })))
}

/// Validates a create/update meeting body against Zoom's schema and the `start_time` rules.
/// Returns a warning when `start_time` ends in `Z` and a `timezone` is given (Zoom then
/// ignores the timezone).
pub fn validate_meeting(
    body: &serde_json::Value,
    create: bool,
) -> Result<Option<String>, ApiError> {
    if !body.is_object() {
        return Err(ApiError::validation(
            "The body must be a JSON object (Zoom's meeting fields).",
        ));
    }
    let validator = if create {
        &*CREATE_VALIDATOR
    } else {
        &*UPDATE_VALIDATOR
    };
    if let Some(v) = validator {
        schema_errors(v, body)?;
    }
    let mut warning = None;
    if let Some(start) = body.get("start_time").and_then(|v| v.as_str()) {
        if !is_zoom_start_time(start) {
            return Err(ApiError::validation(
                "`start_time` must be yyyy-MM-ddTHH:mm:ssZ (UTC) or yyyy-MM-ddTHH:mm:ss (local time in `timezone`).",
            )
            .with_extra(serde_json::json!({ "errors": [{ "field": "start_time", "message": "invalid date-time" }] })));
        }
        if start.ends_with('Z')
            && body
                .get("timezone")
                .and_then(|v| v.as_str())
                .is_some_and(|t| !t.is_empty())
        {
            warning = Some("start_time ends in Z (UTC), so Zoom ignores `timezone`; drop the Z to mean local time in that timezone.".to_owned());
        }
    }
    Ok(warning)
}

pub fn validate_livestream(body: &serde_json::Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::validation(
            "The body must be a JSON object with stream_url, stream_key and page_url.",
        ));
    }
    match &*LIVESTREAM_VALIDATOR {
        Some(v) => schema_errors(v, body),
        None => Ok(()),
    }
}

/// `yyyy-MM-ddTHH:mm:ss` with an optional `Z`, a real calendar date and time.
pub fn is_zoom_start_time(value: &str) -> bool {
    let local = value.strip_suffix('Z').unwrap_or(value);
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(local, &format).is_ok()
}

/// Path segment for a meeting id or UUID. UUIDs that start with `/` or contain `//` must be
/// encoded twice (Zoom decodes once before routing).
pub fn meeting_path_segment(id: &str) -> Result<String, ApiError> {
    if id.is_empty() || id.len() > 200 {
        return Err(ApiError::validation("Invalid meeting id."));
    }
    let once = urlencoding_component(id);
    if id.starts_with('/') || id.contains("//") {
        Ok(urlencoding_component(&once))
    } else {
        Ok(once)
    }
}

fn urlencoding_component(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        // form encoding writes spaces as '+'; paths need %20.
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;
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
    }

    #[test]
    fn meeting_validation_names_fields() {
        let err = validate_meeting(&serde_json::json!({ "type": 5 }), true).unwrap_err();
        assert_eq!(err.code, "validation_failed");
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
        assert_eq!((e.status.as_u16(), e.code), (502, "zoom_unavailable"));
    }
}

/// Query of `GET /connections/{id}/zoom/recordings`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct RecordingsQuery {
    /// First day, `yyyy-mm-dd` (default: 30 days before `to`).
    pub from: Option<String>,
    /// Last day, `yyyy-mm-dd` (default: today, UTC).
    pub to: Option<String>,
    /// Meetings per Zoom page, 1–300 (default 30).
    pub page_size: Option<u32>,
    /// Resume where the previous answer's `next_cursor` left off.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordingsPage {
    pub from: String,
    pub to: String,
    pub meetings: Vec<serde_json::Value>,
    pub next_cursor: Option<String>,
}

/// Where a recordings walk stands: the window start and Zoom's page token inside it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordingsCursor {
    pub from: String,
    pub to: String,
    pub window: String,
    pub token: Option<String>,
}

/// Zoom cuts ranges longer than a month silently; 28 days is within a month in any month.
const WINDOW_DAYS: i64 = 28;
/// Empty windows walked in one request before answering with a cursor.
const MAX_WINDOWS_PER_CALL: usize = 13;

fn day_format() -> &'static [time::format_description::BorrowedFormatItem<'static>] {
    time::macros::format_description!("[year]-[month]-[day]")
}

fn parse_day(field: &str, value: &str) -> Result<time::Date, ApiError> {
    time::Date::parse(value, day_format()).map_err(|_| {
        ApiError::validation(format!("`{field}` must be a date yyyy-mm-dd.")).with_extra(
            serde_json::json!({ "errors": [{ "field": field, "message": "expected yyyy-mm-dd" }] }),
        )
    })
}

fn format_day(d: time::Date) -> String {
    d.format(day_format()).unwrap_or_default()
}

pub fn encode_recordings_cursor(c: &RecordingsCursor) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(c).unwrap_or_default())
}

pub fn decode_recordings_cursor(value: &str) -> Result<RecordingsCursor, ApiError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::validation("`cursor` is not a cursor this API returned."))
}

impl Connector {
    /// Walks Zoom's one-month windows and their pages over any range.
    pub async fn list_recordings(
        &self,
        id: &str,
        query: RecordingsQuery,
    ) -> Result<RecordingsPage, ApiError> {
        let page_size = query.page_size.unwrap_or(30);
        if !(1..=300).contains(&page_size) {
            return Err(ApiError::validation(
                "`page_size` must be between 1 and 300.",
            ));
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
                    None => to - time::Duration::days(30),
                };
                if from > to {
                    return Err(ApiError::validation("`from` must not be after `to`."));
                }
                RecordingsCursor {
                    from: format_day(from),
                    to: format_day(to),
                    window: format_day(from),
                    token: None,
                }
            }
        };
        let to = parse_day("to", &cursor.to)?;
        for _ in 0..MAX_WINDOWS_PER_CALL {
            let window_start = parse_day("cursor", &cursor.window)?;
            let window_end = (window_start + time::Duration::days(WINDOW_DAYS - 1)).min(to);
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
            let body: serde_json::Value = serde_json::from_slice(&answer.body).map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "zoom_error",
                    "Zoom's answer could not be read.",
                )
            })?;
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

/// Checks a proxy path (below the API base) and returns it percent-encoded as received.
/// Refuses anything that could climb out of the base: `.`/`..` segments (also encoded),
/// backslashes, control characters, empty paths.
pub fn checked_proxy_path(raw: &str) -> Result<String, ApiError> {
    let refuse = || {
        ApiError::validation(
            "The proxy path must stay below Zoom's API base (no `..`, `.`, `\\` or empty path).",
        )
    };
    let trimmed = raw.trim_start_matches('/');
    if trimmed.is_empty() || raw.len() > 2048 {
        return Err(refuse());
    }
    for segment in trimmed.split('/') {
        let decoded = percent_decode(segment).ok_or_else(refuse)?;
        let twice = percent_decode(&decoded).unwrap_or_else(|| decoded.clone());
        for d in [&decoded, &twice] {
            if d == "."
                || d == ".."
                || d.contains('\\')
                || d.chars().any(char::is_control)
                || d.split('/').any(|p| p == "..")
            {
                return Err(refuse());
            }
        }
    }
    Ok(format!("/{trimmed}"))
}

fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod proxy_tests {
    use super::*;
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
        fn recordings_cursor_round_trip(from in "[0-9]{4}-[0-9]{2}-[0-9]{2}", token in proptest::option::of("[ -~]{0,30}")) {
            let c = RecordingsCursor { from: from.clone(), to: from.clone(), window: from, token };
            prop_assert_eq!(decode_recordings_cursor(&encode_recordings_cursor(&c)).unwrap(), c);
        }

        #[test]
        fn recordings_cursor_decoder_never_panics(raw in "[ -~]{0,80}") {
            let _ = decode_recordings_cursor(&raw);
        }
    }
}
