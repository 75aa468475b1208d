//! The EMF lines' shape (as CloudWatch documents it), the totals, and the checked-in
//! catalogue dump that the template test reads.

use std::sync::Arc;

use super::*;

fn emf() -> (EmfMetrics, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let m = EmfMetrics::new(
        "prod",
        "actions",
        Box::new(move |l| sink.lock().unwrap().push(l.to_owned())),
    );
    (m, lines)
}

#[test]
fn emf_lines_have_the_documented_shape() {
    let (m, lines) = emf();
    m.record(Metric::Refreshes, Some("refreshed"), 1.0);
    m.record(Metric::Refreshes, Some("refreshed"), 1.0);
    m.record(Metric::ZoomRateLimited, None, 1.0);
    for ms in [3.0, 5.0] {
        m.record(Metric::ActionLatency, None, ms);
    }
    m.flush();
    let lines: Vec<serde_json::Value> = lines
        .lock()
        .unwrap()
        .iter()
        .map(|l| {
            assert!(!l.contains('\n'));
            serde_json::from_str(l).unwrap()
        })
        .collect();
    assert_eq!(lines.len(), 3);
    let refreshes = lines.iter().find(|l| l.get("Refreshes").is_some()).unwrap();
    let directive = &refreshes["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "ZoomConnector/prod");
    assert_eq!(
        directive["Dimensions"],
        serde_json::json!([["Function", "Outcome"], ["Outcome"]])
    );
    assert_eq!(
        directive["Metrics"],
        serde_json::json!([{ "Name": "Refreshes", "Unit": "Count" }])
    );
    assert!(refreshes["_aws"]["Timestamp"].as_i64().unwrap() > 1_600_000_000_000);
    assert_eq!(refreshes["Function"], "actions");
    assert_eq!(refreshes["Outcome"], "refreshed");
    assert_eq!(refreshes["Refreshes"], 2.0);
    let latency = lines
        .iter()
        .find(|l| l.get("ActionLatency").is_some())
        .unwrap();
    assert_eq!(latency["ActionLatency"], serde_json::json!([3.0, 5.0]));
    assert_eq!(
        latency["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([["Function"], []])
    );
    // Flushed: nothing twice; the totals stay.
    m.flush();
    assert_eq!(m.snapshot().len(), 3);
}

#[test]
fn totals_count_and_time() {
    let m = MemoryMetrics::default();
    m.record(Metric::WebhookDeliveries, Some("published"), 1.0);
    m.record(Metric::ActionLatency, None, 4.0);
    m.record(Metric::ActionLatency, None, 6.0);
    let totals = m.snapshot();
    let t = totals.iter().find(|t| t.name == "ActionLatency").unwrap();
    assert_eq!((t.count, t.sum), (2.0, Some(10.0)));
    let t = totals
        .iter()
        .find(|t| t.name == "WebhookDeliveries")
        .unwrap();
    assert_eq!(t.dimension.as_deref(), Some("Outcome"));
    assert_eq!(t.value.as_deref(), Some("published"));
}

#[test]
fn the_catalogue_is_complete_and_bounded() {
    let mut names: Vec<_> = CATALOGUE.iter().map(|d| d.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), CATALOGUE.len());
    for d in CATALOGUE {
        assert_eq!(d.metric.def().name, d.name);
        assert_eq!(d.dimension.is_some(), !d.values.is_empty(), "{}", d.name);
        assert!(d.values.len() <= 8, "{}: few dimension values", d.name);
    }
}

/// `tests/template/metrics.json` is what the template test checks the alarms against: it
/// must be this code's catalogue. Regenerate with
/// `UPDATE_METRICS_JSON=1 cargo test -p zoom-connector metrics`.
#[test]
fn the_checked_in_catalogue_matches_the_code() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/template/metrics.json"
    );
    if std::env::var_os("UPDATE_METRICS_JSON").is_some() {
        std::fs::write(path, catalogue_json()).unwrap();
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(
        checked_in,
        catalogue_json(),
        "tests/template/metrics.json is stale: run with UPDATE_METRICS_JSON=1"
    );
}
