//! The connector's own metrics: one catalogue (data), a small port the services record
//! through, an in-memory sink (local stack, tests: `GET /local/metrics`) and a CloudWatch
//! Embedded Metric Format sink (Lambda: one JSON log line per metric and dimension value,
//! written when an invocation ends; CloudWatch turns them into metrics, no API call).
//!
//! Dimensions are few and bounded by construction: the function and at most one metric
//! dimension whose values are `&'static str` from the catalogue. A connection id, a user or
//! anything else unbounded cannot be a dimension.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

/// The namespace is `ZoomConnector/{stage}` on AWS (the alarms use it), `ZoomConnector/local`
/// locally.
pub const NAMESPACE_PREFIX: &str = "ZoomConnector";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Metric {
    /// Token refreshes by outcome.
    Refreshes,
    /// Writes of rotated tokens to the secret store, by outcome.
    TokenWrites,
    /// Zoom REST answers by status class (`2xx`, `4xx`, `5xx`, `timeout`).
    ZoomResponses,
    /// Zoom answers 429.
    ZoomRateLimited,
    /// Time from an action's start to its answer, in milliseconds.
    ActionLatency,
    /// Events put on the bus, by outcome.
    EventsPublished,
    /// Zoom webhook deliveries by outcome.
    WebhookDeliveries,
    /// Meeting events (queue messages) by outcome.
    MeetingEvents,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    Count,
    Milliseconds,
}

/// One catalogue entry: what the code emits and what alarms and dashboards may name.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MetricDef {
    pub metric: Metric,
    pub name: &'static str,
    pub unit: Unit,
    /// The metric's own dimension, if any, and its only possible values.
    pub dimension: Option<&'static str>,
    pub values: &'static [&'static str],
    pub help: &'static str,
}

pub const OUTCOME: &str = "Outcome";
pub const STATUS_CLASS: &str = "StatusClass";
/// Every metric carries this dimension too (the function's short name, e.g. `actions`).
pub const FUNCTION: &str = "Function";

pub const CATALOGUE: &[MetricDef] = &[
    MetricDef {
        metric: Metric::Refreshes,
        name: "Refreshes",
        unit: Unit::Count,
        dimension: Some(OUTCOME),
        values: &["refreshed", "failed", "needs_reauth", "deferred"],
        help: "token refreshes: refreshed; failed (Zoom 5xx/timeout/refused, old tokens kept); needs_reauth (invalid_grant); deferred (too little time left)",
    },
    MetricDef {
        metric: Metric::TokenWrites,
        name: "TokenWrites",
        unit: Unit::Count,
        dimension: Some(OUTCOME),
        values: &["stored", "pending", "moved", "failed"],
        help: "rotated tokens written to the secret store; pending = Secrets Manager refused them and the sealed pending copy holds them; moved = a pending copy reached the secret store; failed = held only in one container's memory",
    },
    MetricDef {
        metric: Metric::ZoomResponses,
        name: "ZoomResponses",
        unit: Unit::Count,
        dimension: Some(STATUS_CLASS),
        values: &["2xx", "3xx", "4xx", "5xx", "timeout"],
        help: "answers of Zoom's REST API by status class",
    },
    MetricDef {
        metric: Metric::ZoomRateLimited,
        name: "ZoomRateLimited",
        unit: Unit::Count,
        dimension: None,
        values: &[],
        help: "Zoom REST answers 429",
    },
    MetricDef {
        metric: Metric::ActionLatency,
        name: "ActionLatency",
        unit: Unit::Milliseconds,
        dimension: None,
        values: &[],
        help: "an action (connections/{id}/zoom/**, proxy) from start to answer",
    },
    MetricDef {
        metric: Metric::EventsPublished,
        name: "EventsPublished",
        unit: Unit::Count,
        dimension: Some(OUTCOME),
        values: &["published", "failed"],
        help: "events put on the bus",
    },
    MetricDef {
        metric: Metric::WebhookDeliveries,
        name: "WebhookDeliveries",
        unit: Unit::Count,
        dimension: Some(OUTCOME),
        values: &[
            "published",
            "handled",
            "duplicate",
            "ignored",
            "rejected",
            "failed",
        ],
        help: "Zoom webhook deliveries: published (on the bus); handled (URL validation, deauthorization); duplicate; ignored (no use for it); rejected (signature, body: 4xx); failed (5xx, Zoom delivers again)",
    },
    MetricDef {
        metric: Metric::MeetingEvents,
        name: "MeetingEvents",
        unit: Unit::Count,
        dimension: Some(OUTCOME),
        values: &["settled", "retried", "dead_lettered"],
        help: "meeting events: settled (created or failed for good); retried (transient, delivered again); dead_lettered (last delivery failed)",
    },
];

impl Metric {
    pub fn def(self) -> &'static MetricDef {
        CATALOGUE
            .iter()
            .find(|d| d.metric == self)
            .expect("every metric is in the catalogue")
    }
}

/// Where the services record metrics.
pub trait MetricsSink: Send + Sync {
    /// Adds `value` to `metric` (a count, or one latency sample) under `dimension`, which
    /// must be one of the metric's catalogue values (`None` for metrics without one).
    fn record(&self, metric: Metric, dimension: Option<&'static str>, value: f64);
    /// Writes what was recorded since the last flush (EMF); a no-op in memory.
    fn flush(&self) {}
    /// Totals since start, for `GET /local/metrics` and tests.
    fn snapshot(&self) -> Vec<Total>;
}

/// A running total as `GET /local/metrics` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Total {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimension: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Counts: the sum. Latencies: the number of samples.
    pub count: f64,
    /// Latencies only: the sum of the samples (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
}

type Key = (Metric, Option<&'static str>);

#[derive(Default, Clone)]
struct Agg {
    count: f64,
    sum: f64,
    samples: Vec<f64>,
}

fn checked(metric: Metric, dimension: Option<&'static str>) -> Option<&'static str> {
    let def = metric.def();
    match dimension {
        Some(v) if def.values.contains(&v) => Some(v),
        Some(v) => {
            debug_assert!(false, "{v} is not a value of {}", def.name);
            None
        }
        None => None,
    }
}

/// In-memory totals.
#[derive(Default)]
pub struct MemoryMetrics {
    totals: Mutex<BTreeMap<Key, Agg>>,
}

impl MemoryMetrics {
    fn add(&self, metric: Metric, dimension: Option<&'static str>, value: f64) {
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let agg = totals.entry((metric, dimension)).or_default();
        match metric.def().unit {
            Unit::Count => agg.count += value,
            Unit::Milliseconds => {
                agg.count += 1.0;
                agg.sum += value;
            }
        }
    }
}

impl MetricsSink for MemoryMetrics {
    fn record(&self, metric: Metric, dimension: Option<&'static str>, value: f64) {
        self.add(metric, checked(metric, dimension), value);
    }

    fn snapshot(&self) -> Vec<Total> {
        let totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        totals
            .iter()
            .map(|((metric, value), agg)| {
                let def = metric.def();
                Total {
                    name: def.name.to_owned(),
                    dimension: value.and(def.dimension).map(str::to_owned),
                    value: value.map(str::to_owned),
                    count: agg.count,
                    sum: (def.unit == Unit::Milliseconds).then_some(agg.sum),
                }
            })
            .collect()
    }
}

/// EMF on stdout (Lambda's log stream): totals like [`MemoryMetrics`], plus what was
/// recorded since the last flush, written as one line per metric and dimension value.
pub struct EmfMetrics {
    namespace: String,
    function: String,
    totals: MemoryMetrics,
    pending: Mutex<BTreeMap<Key, Agg>>,
    out: Box<dyn Fn(&str) + Send + Sync>,
}

/// CloudWatch takes at most 100 values in one EMF array.
const MAX_VALUES: usize = 100;

impl EmfMetrics {
    pub fn new(stage: &str, function: &str, out: Box<dyn Fn(&str) + Send + Sync>) -> Self {
        Self {
            namespace: format!("{NAMESPACE_PREFIX}/{stage}"),
            function: function.to_owned(),
            totals: MemoryMetrics::default(),
            pending: Mutex::new(BTreeMap::new()),
            out,
        }
    }

    /// On Lambda: stage and function from `CONNECTOR_STAGE` and the function's name
    /// (`zoom-connector-{stage}-{function}`), lines to stdout.
    pub fn from_lambda_env() -> Self {
        let stage = std::env::var("CONNECTOR_STAGE").unwrap_or_else(|_| "default".into());
        let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
        let function = name
            .strip_prefix(&format!("zoom-connector-{stage}-"))
            .unwrap_or(&name)
            .to_owned();
        Self::new(&stage, &function, Box::new(|line| println!("{line}")))
    }

    /// The EMF lines of one flush.
    fn lines(&self, pending: BTreeMap<Key, Agg>, timestamp_ms: i64) -> Vec<String> {
        let mut lines = Vec::new();
        for ((metric, value), agg) in pending {
            let def = metric.def();
            let mut dims = vec![FUNCTION];
            if let (Some(dim), Some(_)) = (def.dimension, value) {
                dims.push(dim);
            }
            // Per function, and across functions (what the alarms use).
            let dimension_sets: Vec<Vec<&str>> = vec![dims.clone(), dims[1..].to_vec()];
            let values: Vec<serde_json::Value> = match def.unit {
                Unit::Count => vec![agg.count.into()],
                Unit::Milliseconds => agg
                    .samples
                    .chunks(MAX_VALUES)
                    .map(|c| serde_json::json!(c))
                    .collect(),
            };
            for v in values {
                let mut line = serde_json::json!({
                    "_aws": {
                        "Timestamp": timestamp_ms,
                        "CloudWatchMetrics": [{
                            "Namespace": self.namespace,
                            "Dimensions": dimension_sets,
                            "Metrics": [{ "Name": def.name, "Unit": def.unit }],
                        }],
                    },
                    FUNCTION: self.function,
                });
                if let (Some(dim), Some(value)) = (def.dimension, value) {
                    line[dim] = value.into();
                }
                line[def.name] = v;
                lines.push(line.to_string());
            }
        }
        lines
    }
}

impl MetricsSink for EmfMetrics {
    fn record(&self, metric: Metric, dimension: Option<&'static str>, value: f64) {
        let dimension = checked(metric, dimension);
        self.totals.add(metric, dimension, value);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let agg = pending.entry((metric, dimension)).or_default();
        match metric.def().unit {
            Unit::Count => agg.count += value,
            Unit::Milliseconds => agg.samples.push(value),
        }
    }

    fn flush(&self) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if pending.is_empty() {
            return;
        }
        let now = time::OffsetDateTime::now_utc();
        let ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        for line in self.lines(pending, ms) {
            (self.out)(&line);
        }
    }

    fn snapshot(&self) -> Vec<Total> {
        self.totals.snapshot()
    }
}

/// The catalogue as JSON (checked in as `tests/template/metrics.json` for the template test).
pub fn catalogue_json() -> String {
    let mut json = serde_json::to_string_pretty(&serde_json::json!({
        "namespace_prefix": NAMESPACE_PREFIX,
        "function_dimension": FUNCTION,
        "metrics": CATALOGUE,
    }))
    .unwrap_or_default();
    json.push('\n');
    json
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
