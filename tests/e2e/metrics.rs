//! The connector's metrics port sees what happened, on both backends: Zoom answers, action
//! latency, refreshes, token writes, published events, webhook deliveries, and no connection
//! id anywhere in the counters.

use e2e_tests::stack::{Backend, StackOptions, TestStack};
use reqwest::Method;
use zoom_connector::metrics::Total;

e2e_tests::on_both_backends!(
    metrics_local, metrics_aws;
    counters_follow_the_flows,
);

fn count(totals: &[Total], name: &str, value: Option<&str>) -> f64 {
    totals
        .iter()
        .find(|t| t.name == name && t.value.as_deref() == value)
        .map_or(0.0, |t| t.count)
}

async fn counters_follow_the_flows(backend: Backend) {
    let stack = TestStack::start(StackOptions::new(backend)).await;
    let id = stack.connect_platform().await;
    for _ in 0..2 {
        let r = stack
            .backend(Method::GET, &format!("/connections/{id}/zoom/me"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = stack
        .backend(Method::POST, &format!("/connections/{id}/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A webhook with a bad signature.
    let r = stack
        .http
        .post(stack.url("/webhooks/zoom"))
        .header("x-zm-request-timestamp", "1")
        .header("x-zm-signature", "v0=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let totals = stack.connector.metrics.snapshot();
    // /users/me from the callback and the two actions.
    assert!(
        count(&totals, "ZoomResponses", Some("2xx")) >= 3.0,
        "{totals:?}"
    );
    let latency = totals.iter().find(|t| t.name == "ActionLatency").unwrap();
    assert_eq!(
        latency.count, 2.0,
        "the two actions, not the management routes"
    );
    assert!(latency.sum.unwrap() > 0.0);
    assert_eq!(count(&totals, "Refreshes", Some("refreshed")), 1.0);
    assert_eq!(count(&totals, "TokenWrites", Some("stored")), 1.0);
    assert!(count(&totals, "EventsPublished", Some("published")) >= 1.0);
    assert_eq!(count(&totals, "WebhookDeliveries", Some("rejected")), 1.0);
    let text = format!("{totals:?}");
    assert!(!text.contains(&id), "{text}");
}
