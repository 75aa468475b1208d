//! The payload format 2.0 event API Gateway sends a Lambda proxy integration ("Create AWS
//! Lambda proxy integrations for HTTP APIs in API Gateway"): `rawPath` is the path decoded
//! once, `rawQueryString` is as sent, `queryStringParameters` decoded with repeated names
//! joined by `,`, header names lower-cased with repeated headers joined by `,`, the `Cookie`
//! header moved to a `cookies` array, and bodies that are not text or JSON base64-encoded.

use std::collections::BTreeMap;

use axum::body::Bytes;
use base64::Engine;
use serde_json::{Map, Value, json};

use super::{Route, percent_decode};

pub const ACCOUNT_ID: &str = "123456789012";
pub const API_ID: &str = "e2eapi0001";

/// What the front received, before API Gateway turns it into an event.
#[derive(Debug, Clone)]
pub struct IncomingRequest {
    pub method: String,
    /// The request path, percent-decoded once.
    pub decoded_path: String,
    /// The query string exactly as sent (no `?`).
    pub raw_query: String,
    /// Header names and values as received, in order (names in any case).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub source_ip: String,
    /// `HTTP/1.1`.
    pub protocol: String,
    /// The port the client connected to (`x-forwarded-port`).
    pub port: String,
}

/// An API Gateway request id (`JKJaXmPLvHcESHA=`-like).
pub fn request_id() -> String {
    let uuid = uuid::Uuid::new_v4();
    base64::engine::general_purpose::STANDARD.encode(&uuid.as_bytes()[..11])
}

/// Whether API Gateway passes a body of this content type as text (else base64).
fn is_text(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence == "application/json"
        || essence.ends_with("+json")
        || essence == "application/xml"
        || essence.ends_with("+xml")
        || essence == "application/javascript"
}

fn query_parameters(raw_query: &str) -> Map<String, Value> {
    let mut joined: BTreeMap<String, String> = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (percent_decode(name), percent_decode(value));
        joined
            .entry(name)
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    joined
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

/// The event for `request`, routed to `route` with its path `parameters` (decoded values).
pub fn http_event(
    request: &IncomingRequest,
    route: &Route,
    parameters: &[(String, String)],
) -> Value {
    let now = time::OffsetDateTime::now_utc();
    let mut headers: Map<String, Value> = Map::new();
    let mut cookies: Vec<Value> = Vec::new();
    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| Value::String(c.to_owned())),
            );
            continue;
        }
        match headers.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(value);
            }
            _ => {
                headers.insert(name, Value::String(value.clone()));
            }
        }
    }
    let trace = format!(
        "Root=1-{:08x}-{}",
        now.unix_timestamp(),
        &uuid::Uuid::new_v4().simple().to_string()[..24]
    );
    let forwarded = [
        ("x-forwarded-for", request.source_ip.clone()),
        ("x-forwarded-port", request.port.clone()),
        ("x-forwarded-proto", "http".to_owned()),
        ("x-amzn-trace-id", trace),
    ];
    for (name, value) in forwarded {
        headers.insert(name.to_owned(), Value::String(value));
    }
    let host = headers
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("localhost")
        .to_owned();
    let domain_prefix = host.split([':', '.']).next().unwrap_or_default().to_owned();
    let user_agent = headers
        .get("user-agent")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let time_format = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    let route_key = route.key();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.decoded_path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": host,
            "domainPrefix": domain_prefix,
            "http": {
                "method": request.method,
                "path": request.decoded_path,
                "protocol": request.protocol,
                "sourceIp": request.source_ip,
                "userAgent": user_agent
            },
            "requestId": request_id(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format(time_format).unwrap_or_default(),
            "timeEpoch": i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or_default()
        },
        "isBase64Encoded": false
    });
    // Optional fields are left out when empty, as API Gateway does.
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    let query = query_parameters(&request.raw_query);
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !parameters.is_empty() {
        event["pathParameters"] = parameters
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>()
            .into();
    }
    if !request.body.is_empty() {
        let content_type = request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str());
        match std::str::from_utf8(&request.body) {
            Ok(text) if is_text(content_type) => event["body"] = Value::String(text.to_owned()),
            _ => {
                event["body"] =
                    Value::String(base64::engine::general_purpose::STANDARD.encode(&request.body));
                event["isBase64Encoded"] = Value::Bool(true);
            }
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published payload 2.0 example (the developer guide page named above).
    const AWS_EXAMPLE: &str = include_str!("aws_payload_2_0_example.json");
    /// Fields of the example that need features this API does not use: mTLS, a JWT
    /// authorizer, stage variables.
    const NOT_USED_HERE: [&str; 3] = ["authentication", "authorizer", "stageVariables"];

    fn request(headers: &[(&str, &str)], body: &str) -> IncomingRequest {
        IncomingRequest {
            method: "POST".into(),
            decoded_path: "/my/path".into(),
            raw_query: "parameter1=value1&parameter1=value2&parameter2=value".into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: Bytes::copy_from_slice(body.as_bytes()),
            source_ip: "192.0.2.1".into(),
            protocol: "HTTP/1.1".into(),
            port: "443".into(),
        }
    }

    /// The JSON type of each value, recursively; object keys kept (minus `skip`).
    fn shape(value: &Value, skip: &[&str]) -> Value {
        match value {
            Value::Object(map) => map
                .iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), shape(v, skip)))
                .collect::<Map<_, _>>()
                .into(),
            Value::Array(items) => items.iter().map(|v| shape(v, skip)).collect(),
            Value::String(_) => "string".into(),
            Value::Number(_) => "number".into(),
            Value::Bool(_) => "bool".into(),
            Value::Null => "null".into(),
        }
    }

    fn without_dynamic_maps(mut shape: Value) -> Value {
        // Header and parameter names differ between requests; their values are strings.
        for key in ["headers", "queryStringParameters", "pathParameters"] {
            let map = shape[key].as_object().cloned().unwrap_or_default();
            assert!(map.values().all(|v| v == "string"), "{key}: {map:?}");
            shape[key] = "map of strings".into();
        }
        shape
    }

    #[test]
    fn the_event_has_the_keys_and_shapes_of_aws_example() {
        let example: Value = serde_json::from_str(AWS_EXAMPLE).unwrap();
        let route = Route::new("POST", "/my/{p}", "f");
        let event = http_event(
            &request(
                &[
                    ("Header1", "value1"),
                    ("header2", "value1"),
                    ("Header2", "value2"),
                    ("Cookie", "cookie1; cookie2"),
                    ("User-Agent", "agent"),
                    ("Host", "id.execute-api.us-east-1.amazonaws.com"),
                    ("content-type", "text/plain"),
                ],
                "Hello from Lambda",
            ),
            &route,
            &[("parameter1".into(), "value1".into())],
        );
        assert_eq!(
            without_dynamic_maps(shape(&event, &[])),
            without_dynamic_maps(shape(&example, &NOT_USED_HERE))
        );
        // The values the example shows for the same request.
        for key in [
            "rawPath",
            "rawQueryString",
            "cookies",
            "queryStringParameters",
            "body",
        ] {
            assert_eq!(event[key], example[key], "{key}");
        }
        assert_eq!(event["headers"]["header1"], "value1");
        assert_eq!(event["headers"]["header2"], "value1,value2");
        assert!(event["headers"].get("cookie").is_none());
        let context = &event["requestContext"];
        assert_eq!(context["http"], example["requestContext"]["http"]);
        assert_eq!(context["domainPrefix"], "id");
        assert_eq!(context["stage"], "$default");
        // The matched route, not `$default` (this API has no `$default` route).
        assert_eq!(event["routeKey"], "POST /my/{p}");
        assert_eq!(context["routeKey"], "POST /my/{p}");
        let time = context["time"].as_str().unwrap();
        assert_eq!(time.len(), "12/Mar/2020:19:03:58 +0000".len(), "{time}");
    }

    #[test]
    fn form_and_binary_bodies_are_base64() {
        let route = Route::new("POST", "/connect", "connect");
        for (content_type, encoded) in [
            (Some("application/x-www-form-urlencoded"), true),
            (Some("application/octet-stream"), true),
            (None, true),
            (Some("application/json; charset=utf-8"), false),
            (Some("text/html"), false),
        ] {
            let mut headers = vec![];
            if let Some(ct) = content_type {
                headers.push(("content-type", ct));
            }
            let event = http_event(&request(&headers, "a=1&b=%2F"), &route, &[]);
            assert_eq!(event["isBase64Encoded"], encoded, "{content_type:?}");
            if encoded {
                assert_eq!(event["body"], "YT0xJmI9JTJG");
            } else {
                assert_eq!(event["body"], "a=1&b=%2F");
            }
        }
        // No body: no `body`, no path parameters, no cookies.
        let mut bare = request(&[], "");
        bare.raw_query.clear();
        let event = http_event(&bare, &route, &[]);
        for absent in ["body", "pathParameters", "cookies", "queryStringParameters"] {
            assert!(event.get(absent).is_none(), "{absent}");
        }
    }

    #[test]
    fn query_parameters_are_decoded_and_joined() {
        let query = query_parameters("a=1&a=%2F2&b&c=x%20y+z");
        assert_eq!(query["a"], "1,/2");
        assert_eq!(query["b"], "");
        assert_eq!(query["c"], "x y+z");
    }
}
