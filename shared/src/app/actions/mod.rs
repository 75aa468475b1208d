//! Zoom actions for a connection: one call path ([`Connector::call_zoom`]) that finds a token,
//! refreshes once on 401, retries safe calls on 5xx, and maps Zoom's errors; the routes on
//! top of it; request validation against Zoom's own OpenAPI description.

use std::time::Duration;

use bytes::Bytes;
use http::Method;

use super::jittered;
use super::tokens::TokenNeed;
use super::{Connector, ZOOM_API_TIMEOUT};
use crate::zoom::errors::{map_zoom_error, transport_error, unreadable_answer};

pub mod catalogue;
pub mod meetings;
pub mod recordings;
use crate::domain::error::ApiError;
use crate::ports::{ZoomRequest, ZoomResponse};
use crate::secret::SecretString;
use crate::zoom::retry;

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
    /// [`retry::CALL_BUDGET`]; anything else is answered as Zoom gave it (success) or mapped (error)
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
            let delay = jittered(Duration::from_millis(200 << retries));
            let attempt = match &result {
                Ok(r) => retry::Attempt::Answered(r.status),
                Err(_) => retry::Attempt::TransportFailed,
            };
            let decision = retry::decide(
                attempt,
                &retry::Progress {
                    safe,
                    retries,
                    elapsed: started.elapsed(),
                    wait: delay,
                    attempt_timeout: ZOOM_API_TIMEOUT,
                    time_left: crate::deadline::remaining(),
                },
            );
            if decision.retry {
                retries += 1;
                tracing::debug!(reason = decision.reason, "zoom call failed; retrying");
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
        serde_json::from_slice(&response.body).map_err(|_| unreadable_answer())
    }
}
