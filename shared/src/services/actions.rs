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
    include_str!("../../zoom/meetings-api-subset.openapi.json");

/// How long an `Idempotency-Key` answer is kept.
pub const IDEMPOTENCY_TTL_SECS: i64 = 24 * 3600;
/// An in-progress idempotency record older than this is taken over (its worker died).
pub const IDEMPOTENCY_STALE_SECS: i64 = 60;
/// Safe calls retry 5xx and transport failures at most this many times.
const SAFE_RETRIES: u32 = 2;
/// A retry is only started when the whole call can still end within this (one more
/// [`ZOOM_API_TIMEOUT`] included), which keeps actions inside API Gateway's 30 s limit.
const CALL_BUDGET: Duration = Duration::from_secs(20);

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
    /// `[{field, message}]` on Zoom's validation errors.
    errors: Option<serde_json::Value>,
}

/// Seconds from Zoom's `Retry-After`: seconds, or an absolute date-time for daily limits
/// (RFC 3339, an HTTP date, or Zoom's `yyyy-MM-ddTHH:mm:ss` read as UTC).
pub fn retry_after_secs(value: Option<&str>, now: OffsetDateTime) -> Option<u64> {
    use time::format_description::well_known::{Rfc2822, Rfc3339};
    let value = value?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let http_date = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let plain = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let at = OffsetDateTime::parse(value, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(value, &Rfc2822))
        .or_else(|_| time::PrimitiveDateTime::parse(value, http_date).map(|t| t.assume_utc()))
        .or_else(|_| time::PrimitiveDateTime::parse(value, plain).map(|t| t.assume_utc()))
        .ok()?;
    Some((at - now).whole_seconds().max(0) as u64)
}

/// Seconds until the next midnight UTC, when Zoom's daily limits reset (at least 1).
fn secs_to_next_utc_midnight(now: OffsetDateTime) -> u64 {
    let now = now.to_offset(time::UtcOffset::UTC);
    let midnight = now
        .date()
        .next_day()
        .map(|d| d.midnight().assume_utc())
        .unwrap_or(now + time::Duration::days(1));
    (midnight - now).whole_seconds().max(1) as u64
}

/// How long a caller should wait after Zoom's 429: its `Retry-After`, else (the daily meeting
/// limit may come without one) the next midnight UTC for daily limits, else one second.
pub fn rate_limit_retry_after(response: &ZoomResponse, now: OffsetDateTime) -> u64 {
    retry_after_secs(response.header("retry-after"), now).unwrap_or_else(|| {
        let daily = response
            .header("x-ratelimit-type")
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("daily-limit"));
        if daily {
            secs_to_next_utc_midnight(now)
        } else {
            1
        }
    })
}

/// Maps a Zoom error answer to ours, keeping Zoom's `{status, code, message}` (and its
/// field `errors`, when it names any).
pub fn map_zoom_error(response: &ZoomResponse, now: OffsetDateTime) -> ApiError {
    let parsed: Option<ZoomErrorBody> = serde_json::from_slice(&response.body).ok();
    let code = parsed.as_ref().and_then(|b| b.code);
    let field_errors = parsed
        .as_ref()
        .and_then(|b| b.errors.clone())
        .filter(|e| e.as_array().is_some_and(|a| !a.is_empty()));
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
        (429, _) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "zoom_rate_limited",
            format!("Zoom's rate limit was reached: {message}"),
        )
        .with_retry_after(rate_limit_retry_after(response, now)),
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
    let error = error.with_zoom(zoom);
    match field_errors {
        Some(errors) => error.with_extra(serde_json::json!({ "errors": errors })),
        None => error,
    }
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
    /// 5xx and transport failures with jittered back-off while the whole call still fits
    /// [`CALL_BUDGET`]; anything else is answered as Zoom gave it (success) or mapped (error)
    /// by the caller. Unsafe methods are never retried after Zoom may have acted (5xx,
    /// timeouts, 429): a retried create could create twice.
    pub async fn call_zoom(&self, id: &str, call: &ZoomCall) -> Result<ZoomResponse, ApiError> {
        let started = tokio::time::Instant::now();
        let mut token = self.obtain_token(id, TokenNeed::Usable).await?.token;
        let safe = call.method == Method::GET || call.method == Method::HEAD;
        let mut refreshed = false;
        let mut retries = 0;
        loop {
            let result = self
                .zoom
                .send(self.request(&token.api_base, call, token.access_token.clone()))
                .await;
            self.count_zoom_answer(&result);
            if let Ok(r) = &result
                && r.status == 401
                && !refreshed
            {
                // Zoom refused the token (expired early, revoked by a newer authorization):
                // one refresh, one retry. Nothing was done with a refused token.
                self.tokens.forget(id);
                token = self
                    .obtain_token(id, TokenNeed::ReplaceRejected(token.access_token.clone()))
                    .await?
                    .token;
                refreshed = true;
                continue;
            }
            let retryable = match &result {
                Ok(r) => r.status >= 500,
                Err(_) => true,
            };
            let delay = jittered(Duration::from_millis(200 << retries));
            let fits = started.elapsed() + delay + ZOOM_API_TIMEOUT <= CALL_BUDGET
                && crate::deadline::leaves(delay + Duration::from_secs(1));
            if safe && retryable && retries < SAFE_RETRIES && fits {
                retries += 1;
                match &result {
                    Ok(r) => tracing::debug!(status = r.status, "zoom answered 5xx; retrying"),
                    Err(e) => tracing::debug!(error = %e, "zoom call failed; retrying"),
                }
                tokio::time::sleep(delay).await;
                continue;
            }
            return result.map_err(|e| transport_error(&e));
        }
    }

    /// `ZoomResponses` by status class, and `ZoomRateLimited`.
    fn count_zoom_answer(&self, result: &Result<ZoomResponse, crate::ports::ZoomTransportError>) {
        use crate::metrics::Metric;
        let class = match result {
            Ok(r) => match r.status {
                200..=299 => "2xx",
                300..=399 => "3xx",
                400..=499 => "4xx",
                _ => "5xx",
            },
            Err(_) => "timeout",
        };
        self.count(Metric::ZoomResponses, Some(class));
        if matches!(result, Ok(r) if r.status == 429) {
            self.count(Metric::ZoomRateLimited, None);
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
            timeout: crate::deadline::capped(ZOOM_API_TIMEOUT),
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
        timeout: Duration,
    ) -> Result<T, ApiError> {
        let mut request = self.request(api_base, &ZoomCall::get(path), access_token.clone());
        request.timeout = crate::deadline::capped(timeout);
        let response = self.zoom.send(request).await;
        self.count_zoom_answer(&response);
        let response = response.map_err(|e| transport_error(&e))?;
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
            IdempotencyStart::Started {
                version,
                resumed_from,
            } => {
                // The same path as queued events: after an unknown outcome (timeout, 5xx) the
                // record is left for takeover, and the retry looks at Zoom before creating.
                let started_at = self.now_unix();
                let event = super::meeting_events::MeetingEvent {
                    idempotency_key: key.to_owned(),
                    connection_id: id.to_owned(),
                    meeting: body.clone(),
                    correlation_id: None,
                };
                match self.obtain_meeting(&event, &record_key, resumed_from).await {
                    Ok(mut meeting) => {
                        self.finish_idempotent(
                            &record_key,
                            version,
                            &IdempotentAnswer {
                                status: 201,
                                body: meeting.clone(),
                                fingerprint,
                            },
                        )
                        .await?;
                        add_warning(&mut meeting, warning.as_deref());
                        Ok(PassThrough {
                            status: 201,
                            headers: vec![("content-type".into(), "application/json".into())],
                            body: Bytes::from(meeting.to_string()),
                        })
                    }
                    Err(failure) => {
                        if failure.maybe_created {
                            self.leave_for_takeover(&record_key, version, &fingerprint, started_at)
                                .await;
                        } else {
                            // Nothing was created: the key may be retried afresh.
                            self.release_record(&record_key, version).await;
                        }
                        Err(failure.error)
                    }
                }
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
        if warning.is_some()
            && let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&answer.body)
        {
            add_warning(&mut json, warning);
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
            let value = in_progress_record(now, fingerprint);
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
                _ if item.value["outcome_unknown"] == true
                    || item.value["started_at"]
                        .as_i64()
                        .is_some_and(|t| now - t > IDEMPOTENCY_STALE_SECS) =>
                {
                    // Its worker died mid-way, or gave up not knowing whether Zoom created
                    // the meeting: take over (the caller looks at Zoom first).
                    let value = in_progress_record(now, fingerprint);
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

/// The value of an idempotency record whose work started at `started_at` (unix seconds).
pub(crate) fn in_progress_record(started_at: i64, fingerprint: &str) -> serde_json::Value {
    serde_json::json!({ "state": "in_progress", "started_at": started_at, "fingerprint": fingerprint })
}

/// Adds the `start_time`/`timezone` warning of [`validate_meeting`] to Zoom's answer.
fn add_warning(meeting: &mut serde_json::Value, warning: Option<&str>) {
    if let (Some(w), Some(obj)) = (warning, meeting.as_object_mut()) {
        obj.insert("warning".into(), w.into());
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

/// Zoom's schemas are OpenAPI 3.0 schema objects, a draft-4 dialect. Formats are not checked:
/// Zoom calls `start_time` a date-time but also takes local times without `Z` (checked below).
fn compile(schema: Option<&serde_json::Value>) -> Option<jsonschema::Validator> {
    let compiled = jsonschema::draft4::options()
        .should_validate_formats(false)
        .build(schema?);
    if let Err(e) = &compiled {
        tracing::error!(error = %e, "Zoom's schema does not compile; validation is off");
    }
    compiled.ok()
}

static CREATE_VALIDATOR: LazyLock<Option<jsonschema::Validator>> =
    LazyLock::new(|| compile(request_schema("/users/{userId}/meetings", "post")));
static UPDATE_VALIDATOR: LazyLock<Option<jsonschema::Validator>> =
    LazyLock::new(|| compile(request_schema("/meetings/{meetingId}", "patch")));
static LIVESTREAM_VALIDATOR: LazyLock<Option<jsonschema::Validator>> =
    LazyLock::new(|| compile(request_schema("/meetings/{meetingId}/livestream", "patch")));

/// `{field, message}` for a validation failure; `field` is a dotted path (`settings.audio`).
fn field_error(field: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "field": field, "message": message })
}

fn validation_failed(errors: Vec<serde_json::Value>) -> ApiError {
    let mut fields: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
    fields.dedup();
    ApiError::validation(format!(
        "The request does not match Zoom's schema: {}.",
        fields.join(", ")
    ))
    .with_extra(serde_json::json!({ "errors": errors }))
}

fn schema_errors(
    validator: &jsonschema::Validator,
    body: &serde_json::Value,
) -> Vec<serde_json::Value> {
    validator
        .iter_errors(body)
        .take(10)
        .map(|e| {
            let pointer = e.instance_path().to_string();
            let mut path: Vec<String> = pointer
                .split('/')
                .filter(|p| !p.is_empty())
                .map(|p| p.replace("~1", "/").replace("~0", "~"))
                .collect();
            // A missing property is reported on its parent object: name the property itself.
            if let jsonschema::error::ValidationErrorKind::Required { property } = e.kind()
                && let Some(name) = property.as_str()
            {
                path.push(name.to_owned());
            }
            let field = if path.is_empty() {
                "(body)".to_owned()
            } else {
                path.join(".")
            };
            // `masked` leaves the refused value out: it may be long, or a passcode.
            field_error(&field, &e.masked().to_string())
        })
        .collect()
}

/// Zoom's passcode rule: at most 10 of `[a-z A-Z 0-9 @ - _ *]`.
fn valid_meeting_password(password: &str) -> bool {
    password.chars().count() <= 10
        && password
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '-' | '_' | '*'))
}

/// Validates a create/update meeting body against Zoom's schema and the `start_time` and
/// passcode rules. Returns a warning when `start_time` ends in `Z` and a `timezone` is given
/// (Zoom then ignores the timezone).
pub fn validate_meeting(
    body: &serde_json::Value,
    create: bool,
) -> Result<Option<String>, ApiError> {
    if !body.is_object() {
        return Err(validation_failed(vec![field_error(
            "(body)",
            "The body must be a JSON object (Zoom's meeting fields).",
        )]));
    }
    let validator = if create {
        &*CREATE_VALIDATOR
    } else {
        &*UPDATE_VALIDATOR
    };
    let mut errors = validator
        .as_ref()
        .map(|v| schema_errors(v, body))
        .unwrap_or_default();
    let named =
        |errors: &[serde_json::Value], field: &str| errors.iter().any(|e| e["field"] == field);
    let mut warning = None;
    if let Some(start) = body.get("start_time").and_then(|v| v.as_str()) {
        if !is_zoom_start_time(start) {
            errors.push(field_error(
                "start_time",
                "must be yyyy-MM-ddTHH:mm:ssZ (UTC) or yyyy-MM-ddTHH:mm:ss (local time in `timezone`)",
            ));
        } else if start.ends_with('Z')
            && body
                .get("timezone")
                .and_then(|v| v.as_str())
                .is_some_and(|t| !t.is_empty())
        {
            warning = Some("start_time ends in Z (UTC), so Zoom ignores `timezone`; drop the Z to mean local time in that timezone.".to_owned());
        }
    }
    if let Some(password) = body.get("password").and_then(|v| v.as_str())
        && !valid_meeting_password(password)
        && !named(&errors, "password")
    {
        errors.push(field_error(
            "password",
            "must be at most 10 characters of a-z, A-Z, 0-9, @, -, _ and *",
        ));
    }
    if errors.is_empty() {
        Ok(warning)
    } else {
        Err(validation_failed(errors))
    }
}

pub fn validate_livestream(body: &serde_json::Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(validation_failed(vec![field_error(
            "(body)",
            "The body must be a JSON object with stream_url, stream_key and page_url.",
        )]));
    }
    let errors = LIVESTREAM_VALIDATOR
        .as_ref()
        .map(|v| schema_errors(v, body))
        .unwrap_or_default();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(validation_failed(errors))
    }
}

/// `yyyy-MM-ddTHH:mm:ss` with an optional `Z`, a real calendar date and time.
pub fn is_zoom_start_time(value: &str) -> bool {
    let local = value.strip_suffix('Z').unwrap_or(value);
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(local, &format).is_ok()
}

/// Path segment for a meeting id or UUID. UUIDs that start with `/` or contain `//` must be
/// encoded twice (Zoom decodes once before routing). Zoom's UUIDs are base64 and never hold a
/// `%`, so an id that still does after our router decoded it was already encoded by the
/// caller (as Zoom's docs tell people to): it is decoded first, never encoded a third time.
pub fn meeting_path_segment(id: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::validation("Invalid meeting id: a numeric id or a meeting UUID.").with_extra(
            serde_json::json!({ "errors": [field_error("meetingId", "a numeric id or a meeting UUID")] }),
        )
    };
    let mut id = id.to_owned();
    for _ in 0..2 {
        if !id.contains('%') {
            break;
        }
        id = percent_decode(&id).ok_or_else(invalid)?;
    }
    // Dot segments are in no id (UUIDs are base64), and toward Zoom they would reach another
    // endpoint: URLs resolve `/meetings/..` to `/`, and Zoom decodes `%2F` once before
    // routing, so `../users/me` must not pass either.
    if id.is_empty()
        || id.split('/').any(|s| s == "." || s == "..")
        || id.len() > 200
        || id.contains('%')
        || id.chars().any(char::is_control)
    {
        return Err(invalid());
    }
    let once = urlencoding_component(&id);
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
        assert_eq!((e.status.as_u16(), e.code), (400, "zoom_error"));
        assert_eq!(e.zoom.as_ref().unwrap().code, Some(300));
        assert_eq!(e.to_json()["errors"][0]["field"], "password");
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
    /// The page size the walk started with (Zoom's page tokens keep theirs anyway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
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

/// `from` when only `to` is given: 30 days before (saturating at the calendar's start, so an
/// extreme `to` from a caller cannot overflow).
fn default_recordings_from(to: time::Date) -> time::Date {
    to.checked_sub(time::Duration::days(30))
        .unwrap_or(time::Date::MIN)
}

/// The last day of the one-month window starting at `start`, within `to` (saturating at the
/// calendar's end: a caller's `from`/`to` near year 9999 must not overflow).
fn recordings_window_end(start: time::Date, to: time::Date) -> time::Date {
    start
        .checked_add(time::Duration::days(WINDOW_DAYS - 1))
        .unwrap_or(time::Date::MAX)
        .min(to)
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
    let invalid = || {
        ApiError::validation("`cursor` is not a cursor this API returned.").with_extra(
            serde_json::json!({ "errors": [{ "field": "cursor", "message": "not a cursor this API returned" }] }),
        )
    };
    let cursor: RecordingsCursor = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(invalid)?;
    // A cursor is caller input: its window must lie inside its range.
    let day = |v: &str| time::Date::parse(v, day_format()).ok();
    match (day(&cursor.from), day(&cursor.window), day(&cursor.to)) {
        (Some(from), Some(window), Some(to)) if from <= window && window <= to => Ok(cursor),
        _ => Err(invalid()),
    }
}

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

#[cfg(test)]
mod hostile_input_tests {
    //! Arbitrary caller input and arbitrary Zoom answers: never a panic, never a 5xx of ours
    //! for the caller's mistakes.

    use proptest::prelude::*;

    use super::*;

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
                Err(e) => prop_assert_eq!(e.code, "validation_failed"),
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
            prop_assert!(!e.code.is_empty());
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
