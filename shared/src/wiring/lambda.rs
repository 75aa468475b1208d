//! Running on Lambda: the HTTP functions serve their axum router through `lambda_http`.

pub use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::app::Connector;
use crate::app::meeting_events::SQS_MAX_RECEIVE_COUNT;
use crate::config::Config;
use crate::metrics::Metric;

/// Reads the configuration, builds the AWS adapters once per container, and logs in JSON.
pub async fn init() -> Result<Connector, lambda_http::Error> {
    crate::telemetry::init_lambda();
    let config = Config::from_env()?;
    // A CA bundle the operator named but that cannot be used fails init, not every AWS call.
    crate::adapters::aws::https::ca_bundle_from_env().map_err(|e| e.to_string())?;
    let mut connector = crate::wiring::aws_connector(config).await;
    connector.metrics = std::sync::Arc::new(crate::metrics::EmfMetrics::from_lambda_env());
    Ok(connector)
}

/// Serves an HTTP function's router (API Gateway HTTP API, payload 2.0): each request runs
/// under its invocation's deadline, with the path API Gateway routed on.
/// The metrics recorded during a request are written (EMF) once it is answered.
pub async fn serve(connector: Connector, router: axum::Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(tower::service_fn(move |request: Request| {
        let deadline = request
            .lambda_context_ref()
            .map(|context| crate::deadline::from_lambda(context.deadline()));
        let request = with_route_path(request);
        let answer = crate::deadline::within(
            deadline,
            tower::ServiceExt::oneshot(router.clone(), request),
        );
        let metrics = connector.metrics.clone();
        async move {
            let answer = answer.await;
            metrics.flush();
            answer
        }
    }))
    .await
}

/// API Gateway HTTP APIs hand the function `rawPath` already percent-decoded, so a meeting
/// UUID holding `/` arrives split into several segments, and a custom domain's base path (API
/// mapping) is in it too. The route API Gateway matched (`routeKey`) and its `pathParameters`
/// are exact: the request's path is rebuilt from them, encoded, so the router sees what the
/// local stack sees. Requests without a matched route keep `lambda_http`'s path.
pub fn with_route_path(mut request: Request) -> Request {
    let Some(path) = route_path_of(&request) else {
        return request;
    };
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let mut parts = request.uri().clone().into_parts();
    if let Ok(path_and_query) = format!("{path}{query}").parse() {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

fn route_path_of(request: &Request) -> Option<String> {
    let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else {
        return None;
    };
    let (_method, template) = context.route_key.as_deref()?.split_once(' ')?;
    let parameters = request.path_parameters_ref();
    route_path(template, |name| parameters.and_then(|p| p.first(name)))
}

/// What a path segment must not hold literally: reserved delimiters, `%` (a decoded value may
/// contain one, e.g. a client's double-encoded `%252F` arrives as `%2F`), and what is not
/// allowed in a URI path at all.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The encoded path of a route template (`/connections/{id}/proxy/{proxy+}`) with its
/// parameters' decoded values; `None` when a parameter is missing. A `{name}` value is one
/// segment (a `/` in it is encoded); a greedy `{name+}` value keeps its `/` separators.
pub fn route_path<'a>(
    template: &str,
    parameter: impl Fn(&str) -> Option<&'a str>,
) -> Option<String> {
    let mut path = String::with_capacity(template.len() + 32);
    for segment in template.trim_start_matches('/').split('/') {
        path.push('/');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            None => path.push_str(segment),
            Some(name) => match name.strip_suffix('+') {
                Some(greedy) => {
                    let value = parameter(greedy)?;
                    let pieces: Vec<String> = value
                        .split('/')
                        .map(|piece| utf8_percent_encode(piece, SEGMENT).to_string())
                        .collect();
                    path.push_str(&pieces.join("/"));
                }
                None => path.push_str(&utf8_percent_encode(parameter(name)?, SEGMENT).to_string()),
            },
        }
    }
    Some(path)
}

/// The `meeting-events` Lambda handler: one SQS batch in, the messages to deliver again out
/// (`ReportBatchItemFailures`).
pub async fn handle_sqs_event(connector: &Connector, event: SqsEvent) -> SqsBatchResponse {
    // A message failing on its last receive goes to the DLQ (the queue's maxReceiveCount).
    let last_receive: std::collections::HashSet<String> = event
        .records
        .iter()
        .filter(|m| {
            m.attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse::<u32>().ok())
                .is_some_and(|c| c >= SQS_MAX_RECEIVE_COUNT)
        })
        .filter_map(|m| m.message_id.clone())
        .collect();
    let messages: Vec<(String, String)> = event
        .records
        .into_iter()
        .filter_map(|m| match m.message_id {
            Some(id) if !id.is_empty() => Some((id, m.body.unwrap_or_default())),
            // SQS always sets it; without one the message could not be reported for retry.
            _ => {
                tracing::error!("SQS message without a message id skipped");
                None
            }
        })
        .collect();
    let total = messages.len();
    let failed = connector.process_meeting_batch(messages).await;
    let dead = failed
        .iter()
        .filter(|id| last_receive.contains(*id))
        .count();
    for (outcome, n) in [
        ("settled", total - failed.len()),
        ("retried", failed.len() - dead),
        ("dead_lettered", dead),
    ] {
        if n > 0 {
            connector
                .metrics
                .record(Metric::MeetingEvents, Some(outcome), n as f64);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(template: &str, params: &[(&str, &'static str)]) -> Option<String> {
        let params = params.to_vec();
        route_path(template, move |name| {
            params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        })
    }

    #[test]
    fn one_segment_parameters_keep_their_slashes_encoded() {
        let template = "/connections/{id}/zoom/meetings/{meetingId}/recordings";
        for (uuid, encoded) in [
            ("4444AAAiAAAAAiAiAiiAii==", "4444AAAiAAAAAiAiAiiAii=="),
            ("/wBBV/E2K1yN0d7IldFA+w==", "%2FwBBV%2FE2K1yN0d7IldFA+w=="),
            ("ab//cd+=", "ab%2F%2Fcd+="),
            // A client's double encoding, decoded once by API Gateway, stays one level encoded.
            ("%2FwBBV%2FE2K1", "%252FwBBV%252FE2K1"),
        ] {
            assert_eq!(
                path(template, &[("id", "conn_1"), ("meetingId", uuid)]).unwrap(),
                format!("/connections/conn_1/zoom/meetings/{encoded}/recordings")
            );
        }
    }

    #[test]
    fn greedy_parameters_keep_their_separators() {
        let template = "/connections/{id}/proxy/{proxy+}";
        assert_eq!(
            path(
                template,
                &[("id", "c"), ("proxy", "meetings/%2Fab==/recordings")]
            )
            .unwrap(),
            "/connections/c/proxy/meetings/%252Fab==/recordings"
        );
        assert_eq!(
            path(template, &[("id", "c"), ("proxy", "users/me?x#y")]).unwrap(),
            "/connections/c/proxy/users/me%3Fx%23y"
        );
    }

    #[test]
    fn a_missing_parameter_keeps_the_request_as_it_came() {
        assert_eq!(path("/connections/{id}", &[]), None);
        assert_eq!(path("/healthz", &[]).unwrap(), "/healthz");
    }

    /// An API Gateway HTTP API event as AWS documents it (payload 2.0), for a UUID sent
    /// double-encoded: `rawPath` is decoded, `pathParameters` holds the parameter.
    #[test]
    fn the_router_sees_the_route_path_not_the_decoded_raw_path() {
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "GET /connections/{id}/zoom/meetings/{meetingId}/recordings",
            "rawPath": "/connections/conn_1/zoom/meetings//wBBV/E2K1yN0d7IldFA+w==/recordings",
            "rawQueryString": "a=1",
            "cookies": ["zc_state=abc"],
            "headers": { "host": "abc123.execute-api.us-east-1.amazonaws.com", "x-forwarded-proto": "https" },
            "queryStringParameters": { "a": "1" },
            "pathParameters": { "id": "conn_1", "meetingId": "/wBBV/E2K1yN0d7IldFA+w==" },
            "requestContext": {
                "accountId": "123456789012", "apiId": "abc123",
                "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
                "http": { "method": "GET", "path": "/connections/conn_1/zoom/meetings//wBBV/E2K1yN0d7IldFA+w==/recordings",
                          "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "agent" },
                "requestId": "id", "routeKey": "GET /connections/{id}/zoom/meetings/{meetingId}/recordings",
                "stage": "$default", "time": "12/Mar/2020:19:03:58 +0000", "timeEpoch": 1583348638390u64
            },
            "isBase64Encoded": false
        });
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let request = with_route_path(request);
        assert_eq!(
            request.uri().path(),
            "/connections/conn_1/zoom/meetings/%2FwBBV%2FE2K1yN0d7IldFA+w==/recordings"
        );
        assert_eq!(request.uri().query(), Some("a=1"));
        assert_eq!(request.headers()["cookie"], "zc_state=abc");
    }

    /// Behind a custom domain with an API mapping (`https://zoom.example.com/v1`), `rawPath`
    /// carries the mapping's base path while the route does not: the router sees the route.
    #[test]
    fn a_custom_domain_base_path_does_not_reach_the_router() {
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "GET /connections/{id}",
            "rawPath": "/v1/connections/conn_1",
            "rawQueryString": "",
            "headers": { "host": "zoom.example.com" },
            "pathParameters": { "id": "conn_1" },
            "requestContext": {
                "domainName": "zoom.example.com",
                "http": { "method": "GET", "path": "/v1/connections/conn_1", "protocol": "HTTP/1.1",
                          "sourceIp": "192.0.2.1", "userAgent": "agent" },
                "requestId": "id", "routeKey": "GET /connections/{id}", "stage": "$default",
                "time": "12/Mar/2020:19:03:58 +0000", "timeEpoch": 1583348638390u64
            },
            "isBase64Encoded": false
        });
        let request = with_route_path(lambda_http::request::from_str(&event.to_string()).unwrap());
        assert_eq!(request.uri().path(), "/connections/conn_1");
        assert_eq!(request.uri().host(), Some("zoom.example.com"));
    }
}
