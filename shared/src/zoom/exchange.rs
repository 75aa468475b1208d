//! One HTTP exchange with Zoom's REST API, as the `ZoomApi` port carries it.

use std::time::Duration;

use bytes::Bytes;

use crate::secret::SecretString;

/// One request to Zoom's REST API.
#[derive(Debug, Clone)]
pub struct ZoomRequest {
    pub method: http::Method,
    /// API base, e.g. `https://api.zoom.us/v2`.
    pub base: String,
    /// Already percent-encoded path below the base, starting with `/`.
    pub path: String,
    /// Raw query string without `?`.
    pub query: Option<String>,
    pub body: Option<Bytes>,
    pub content_type: Option<String>,
    pub access_token: SecretString,
    pub timeout: Duration,
}

/// Zoom's answer: status, the headers worth passing on, and the body.
#[derive(Debug, Clone)]
pub struct ZoomResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl ZoomResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ZoomTransportError {
    #[error("zoom did not answer in time")]
    Timeout,
    #[error("could not reach zoom: {0}")]
    Connect(String),
}
