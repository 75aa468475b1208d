//! An API Gateway HTTP API in front of function pools, as AWS documents it for Lambda proxy
//! integrations with payload format 2.0 on the `$default` stage: route selection on the path
//! decoded once, the 2.0 event (see [`event`]), the 2.0 answer mapping, API Gateway's own
//! answers (`404 Not Found` with no function run, `413`, `500 Internal Server Error`,
//! `503 Service Unavailable`) and its 30 s integration limit.

pub mod event;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::pool::{FunctionPool, Outcome};
pub use event::{IncomingRequest, http_event};

/// HTTP APIs give an integration at most 30 s.
pub const INTEGRATION_LIMIT: Duration = Duration::from_secs(30);
/// HTTP APIs accept request bodies up to 10 MB.
pub const BODY_LIMIT: usize = 10 * 1024 * 1024;

/// One route: `METHOD /path` (or `ANY`), `{name}` one segment, `{name+}` greedy, served by the
/// function `function`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub function: String,
}

impl Route {
    pub fn new(method: &str, path: &str, function: &str) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            function: function.to_owned(),
        }
    }

    /// `GET /connections/{id}`: the event's `routeKey`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The path parameters when `path` (already decoded) matches this route's path.
    fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let mut template = self.path.trim_start_matches('/').split('/');
        let mut segments = path.strip_prefix('/')?.split('/');
        let mut parameters = Vec::new();
        loop {
            match (template.next(), segments.next()) {
                (None, None) => return Some(parameters),
                (Some(t), Some(s)) => {
                    if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                        if let Some(greedy) = name.strip_suffix('+') {
                            let rest: Vec<&str> = std::iter::once(s).chain(segments).collect();
                            let value = rest.join("/");
                            if value.is_empty() {
                                return None;
                            }
                            parameters.push((greedy.to_owned(), value));
                            return Some(parameters);
                        }
                        if s.is_empty() {
                            return None;
                        }
                        parameters.push((name.to_owned(), s.to_owned()));
                    } else if t != s {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }

    /// Higher wins: a route without a greedy variable, then more literal segments, then a
    /// method match over `ANY` (AWS: "the most-specific match").
    fn specificity(&self) -> (bool, usize, bool) {
        let segments = self.path.split('/').filter(|s| !s.is_empty());
        let literal = segments.clone().filter(|s| !s.starts_with('{')).count();
        let greedy = self.path.contains("+}");
        (!greedy, literal, self.method != "ANY")
    }
}

/// The route API Gateway picks for a request, with its path parameters; `None` is its own
/// 404.
pub fn select_route<'a>(
    routes: &'a [Route],
    method: &str,
    decoded_path: &str,
) -> Option<(&'a Route, Vec<(String, String)>)> {
    routes
        .iter()
        .filter(|r| r.method == "ANY" || r.method.eq_ignore_ascii_case(method))
        .filter_map(|r| r.matches(decoded_path).map(|p| (r, p)))
        .max_by_key(|(r, _)| r.specificity())
}

/// Decodes `%XX` escapes once (what API Gateway does to the path before routing); invalid
/// escapes stay as they are. `+` is not a space in a path.
pub fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Gateway {
    routes: Vec<Route>,
    functions: HashMap<String, Arc<FunctionPool>>,
    integration_limit: Duration,
}

/// A listening front; bind first (the functions need its URL as their public URL), then
/// [`BoundGateway::serve`].
pub struct BoundGateway {
    listener: tokio::net::TcpListener,
    pub url: String,
}

/// The running front; it stops when dropped.
pub struct ApiGateway {
    pub url: String,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for ApiGateway {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl ApiGateway {
    pub async fn bind() -> std::io::Result<BoundGateway> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        Ok(BoundGateway { listener, url })
    }
}

impl BoundGateway {
    /// Serves `routes`, each on the pool named by its `function`.
    pub fn serve(
        self,
        routes: Vec<Route>,
        functions: HashMap<String, Arc<FunctionPool>>,
    ) -> ApiGateway {
        self.serve_with_limit(routes, functions, INTEGRATION_LIMIT)
    }

    /// As [`BoundGateway::serve`] with another integration limit (tests of the 503).
    pub fn serve_with_limit(
        self,
        routes: Vec<Route>,
        functions: HashMap<String, Arc<FunctionPool>>,
        integration_limit: Duration,
    ) -> ApiGateway {
        let state = Arc::new(Gateway {
            routes,
            functions,
            integration_limit,
        });
        let app = axum::Router::new().fallback(front).with_state(state);
        let listener = self.listener;
        let handle = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        ApiGateway {
            url: self.url,
            handle,
        }
    }
}

fn message(status: StatusCode, text: &str) -> Response {
    let mut response = (
        status,
        [("content-type", "application/json")],
        serde_json::json!({ "message": text }).to_string(),
    )
        .into_response();
    add_request_id(&mut response, &event::request_id());
    response
}

fn add_request_id(response: &mut Response, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert("apigw-requestid", value);
    }
}

async fn front(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let raw_path = parts.uri.path().to_owned();
    let decoded = percent_decode(&raw_path);
    let Some((route, parameters)) = select_route(&gateway.routes, parts.method.as_str(), &decoded)
    else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let Some(pool) = gateway.functions.get(&route.function) else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let incoming = IncomingRequest {
        method: parts.method.as_str().to_owned(),
        decoded_path: decoded,
        raw_query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        source_ip: peer.ip().to_string(),
        protocol: format!("{:?}", parts.version),
        port: parts
            .headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.rsplit_once(':'))
            .map(|(_, p)| p.to_owned())
            .unwrap_or_else(|| "80".into()),
    };
    let event = http_event(&incoming, route, &parameters);
    let request_id = event["requestContext"]["requestId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // The invocation runs on its own, as on AWS: a client that hangs up, or API Gateway
    // giving up after its limit, does not stop the function.
    let pool = pool.clone();
    let invocation = tokio::spawn(async move { pool.invoke(event).await });
    let outcome = tokio::time::timeout(gateway.integration_limit, invocation).await;
    let mut response = match outcome {
        Ok(Ok(Outcome::Response(body))) => function_response(&body),
        Ok(Ok(Outcome::FunctionError(_)) | Err(_)) => {
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
        Ok(Ok(Outcome::TimedOut)) | Err(_) => {
            message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
    };
    add_request_id(&mut response, &request_id);
    response
}

/// Maps a function's payload 2.0 answer to the HTTP answer. Valid JSON without `statusCode`
/// is taken as a 200 JSON body (AWS's documented inference); anything else that is not a
/// well-formed answer is API Gateway's 500.
pub fn function_response(body: &[u8]) -> Response {
    let internal = || message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return internal();
    };
    let Some(object) = answer.as_object().filter(|o| o.contains_key("statusCode")) else {
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            Bytes::copy_from_slice(body),
        )
            .into_response();
    };
    let Some(status) = object["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
    else {
        return internal();
    };
    let text = object.get("body").and_then(|b| b.as_str()).unwrap_or("");
    let bytes = if object.get("isBase64Encoded").and_then(|b| b.as_bool()) == Some(true) {
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(b) => b,
            Err(_) => return internal(),
        }
    } else {
        text.as_bytes().to_vec()
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let mut add = |name: &str, value: &str| -> bool {
        match (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                headers.append(n, v);
                true
            }
            _ => false,
        }
    };
    let mut well_formed = true;
    if let Some(map) = object.get("headers").and_then(|h| h.as_object()) {
        for (name, value) in map {
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            well_formed &= add(name, &value);
        }
    }
    if let Some(map) = object.get("multiValueHeaders").and_then(|h| h.as_object()) {
        for (name, values) in map {
            for value in values.as_array().into_iter().flatten() {
                well_formed &= add(name, value.as_str().unwrap_or_default());
            }
        }
    }
    for cookie in object
        .get("cookies")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
    {
        well_formed &= add("set-cookie", cookie.as_str().unwrap_or_default());
    }
    if !well_formed {
        return internal();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Vec<Route> {
        vec![
            Route::new("GET", "/connections", "actions"),
            Route::new("GET", "/connections/{id}", "actions"),
            Route::new(
                "GET",
                "/connections/{id}/zoom/meetings/{meetingId}/recordings",
                "actions",
            ),
            Route::new("ANY", "/connections/{id}/proxy/{proxy+}", "actions"),
            Route::new("GET", "/connections/special", "other"),
        ]
    }

    #[test]
    fn routes_match_one_segment_per_parameter_and_greedy_proxies() {
        let routes = routes();
        let (route, params) = select_route(&routes, "GET", "/connections/abc").unwrap();
        assert_eq!(route.key(), "GET /connections/{id}");
        assert_eq!(params, vec![("id".to_owned(), "abc".to_owned())]);
        // A literal route beats a parameter.
        let (route, _) = select_route(&routes, "GET", "/connections/special").unwrap();
        assert_eq!(route.function, "other");
        let (route, params) =
            select_route(&routes, "PATCH", "/connections/c1/proxy/users/me/settings").unwrap();
        assert_eq!(route.key(), "ANY /connections/{id}/proxy/{proxy+}");
        assert_eq!(
            params[1],
            ("proxy".to_owned(), "users/me/settings".to_owned())
        );
        assert!(select_route(&routes, "DELETE", "/connections").is_none());
        assert!(select_route(&routes, "GET", "/connections/").is_none());
    }

    #[test]
    fn the_path_is_decoded_once_before_routing() {
        let routes = routes();
        let single = percent_decode("/connections/c/zoom/meetings/ab%2FcdEF%3D%3D/recordings");
        assert_eq!(single, "/connections/c/zoom/meetings/ab/cdEF==/recordings");
        assert!(select_route(&routes, "GET", &single).is_none());
        let double =
            percent_decode("/connections/c/zoom/meetings/ab%252FcdEF%253D%253D/recordings");
        let (_, params) = select_route(&routes, "GET", &double).unwrap();
        assert_eq!(params[1].1, "ab%2FcdEF%3D%3D");
        assert_eq!(percent_decode("/a+b%zz%4"), "/a+b%zz%4");
    }

    async fn parts(response: Response) -> (u16, Vec<(String, String)>, String) {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn answers_map_like_payload_2_0() {
        // The response shape of AWS's documentation (cookies, headers, base64 body).
        let answer = serde_json::json!({
            "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
            "isBase64Encoded": true,
            "statusCode": 201,
            "headers": { "content-type": "text/plain" },
            "multiValueHeaders": { "x-many": ["1", "2"] },
            "body": base64::engine::general_purpose::STANDARD.encode("Hello from Lambda!")
        });
        let (status, headers, body) = parts(function_response(answer.to_string().as_bytes())).await;
        assert_eq!((status, body.as_str()), (201, "Hello from Lambda!"));
        let all = |name: &str| -> Vec<&str> {
            headers
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(all("set-cookie"), vec!["a=1; Path=/", "b=2; HttpOnly"]);
        assert_eq!(all("x-many"), vec!["1", "2"]);
        assert_eq!(all("content-type"), vec!["text/plain"]);

        // JSON without a status code: a 200 JSON answer.
        let (status, headers, body) = parts(function_response(br#"{"ok":true}"#)).await;
        assert_eq!((status, body.as_str()), (200, r#"{"ok":true}"#));
        assert!(headers.contains(&("content-type".into(), "application/json".into())));
        // Not JSON, or a status code that is not one: API Gateway's own 500.
        for malformed in [
            &b"not json"[..],
            br#"{"statusCode":"abc"}"#,
            br#"{"statusCode":99}"#,
        ] {
            let (status, _, body) = parts(function_response(malformed)).await;
            assert_eq!(
                (status, body.as_str()),
                (500, r#"{"message":"Internal Server Error"}"#)
            );
        }
    }
}
