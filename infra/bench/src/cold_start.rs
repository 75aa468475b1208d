//! Cold start: each function's release binary started under the Runtime API emulator with the
//! environment Lambda gives it (AWS on moto through the counting proxy), next to the
//! hello-world baseline. Init = exec until the first `next` poll; then the first invocation.
//! Also the actions function's memory under 64 invocations, and a breakdown of init.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::BenchError;
use crate::counting_proxy::{AwsCall, CountingProxy, summarize};
use crate::moto::{ACCESS_KEY, REGION, Resources, SECRET_KEY};
use crate::processes::{Guarded, Memory};
use lambda_emulator::runtime_api::{Invocation, RuntimeApi, RuntimeEvent, http_event, http_status};
use zoom_connector_bench::stats::median;

pub const HELLO: &str = "hello-lambda";
pub const FUNCTIONS: [&str; 6] = [
    "connect",
    "callback",
    "actions",
    "refresh",
    "meeting-events",
    "webhooks",
];

/// What every function process gets.
pub struct FunctionEnv {
    pub bin_dir: PathBuf,
    pub log_dir: PathBuf,
    pub aws_endpoint: String,
    pub sim_url: String,
    pub resources: Resources,
    /// A connection seeded on moto (meeting events and the memory run use it).
    pub connection_id: String,
}

impl FunctionEnv {
    /// The variables Lambda sets for a custom runtime plus the function's own (template.yaml).
    pub fn vars(&self, function: &str, runtime_api: &str) -> Vec<(String, String)> {
        let prefix = &self.resources.prefix;
        let mut vars: Vec<(String, String)> = [
            ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
            ("LANG", "en_US.UTF-8".to_owned()),
            ("TZ", ":UTC".to_owned()),
            ("LAMBDA_TASK_ROOT", self.bin_dir.display().to_string()),
            ("_HANDLER", "bootstrap".to_owned()),
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function}"),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("2026/01/01/[$LATEST]{}", uuid::Uuid::new_v4().simple()),
            ),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_SESSION_TOKEN", "bench-session".to_owned()),
            ("AWS_ENDPOINT_URL", self.aws_endpoint.clone()),
            (
                "CONNECTOR_PUBLIC_URL",
                "https://bench.example.com".to_owned(),
            ),
            ("CONNECTOR_UI_ORIGINS", "https://app.example.com".to_owned()),
            ("ZOOM_OAUTH_URL", self.sim_url.clone()),
            ("ZOOM_API_URL", format!("{}/v2", self.sim_url)),
            ("PLATFORM_APP_SECRET_ID", format!("{prefix}/platform-app")),
            ("CONNECTOR_SECRET_ID", format!("{prefix}/connector")),
            ("REFRESH_AHEAD_SECS", "300".to_owned()),
            ("KEEPALIVE_HOURS", "24".to_owned()),
            ("REFRESH_MODE", "lazy".to_owned()),
            ("REFRESH_TPS", "40".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        vars.extend(
            self.resources
                .env()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v)),
        );
        vars
    }

    /// The first invocation each function gets in the cold-start runs.
    pub fn first_event(&self, function: &str) -> serde_json::Value {
        let bearer = format!("Bearer {}", self.resources.api_key);
        match function {
            "connect" => http_event(
                "POST",
                "/connect/sessions",
                "",
                &[
                    ("authorization", &bearer),
                    ("content-type", "application/json"),
                ],
                Some(r#"{"auth_type":"platform_app"}"#),
            ),
            "callback" => http_event(
                "GET",
                "/oauth/callback",
                "code=bench-code&state=bench-unknown-state",
                &[],
                None,
            ),
            "actions" => http_event("GET", "/healthz", "", &[], None),
            "webhooks" => {
                let body = zoom_sim::webhook::url_validation_event("bench-plain-token").to_string();
                let ts = time::OffsetDateTime::now_utc().unix_timestamp();
                let signature = zoom_sim::webhook::sign_webhook(
                    &self.resources.webhook_secret,
                    ts,
                    body.as_bytes(),
                );
                http_event(
                    "POST",
                    "/webhooks/zoom",
                    "",
                    &[
                        ("content-type", "application/json"),
                        ("x-zm-request-timestamp", &ts.to_string()),
                        ("x-zm-signature", &signature),
                    ],
                    Some(&body),
                )
            }
            "refresh" => serde_json::json!({
                "version": "0",
                "id": uuid::Uuid::new_v4().to_string(),
                "detail-type": "Scheduled Event",
                "source": "aws.scheduler",
                "account": "123456789012",
                "time": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "region": REGION,
                "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/zoom-connector-sweep"],
                "detail": {}
            }),
            "meeting-events" => {
                let body = serde_json::json!({
                    "idempotency_key": format!("bench-{}", uuid::Uuid::new_v4().simple()),
                    "connection_id": self.connection_id,
                    "meeting": { "topic": "Bench", "type": 2, "start_time": "2030-01-01T10:00:00Z", "duration": 30 }
                });
                serde_json::json!({ "Records": [{
                    "messageId": uuid::Uuid::new_v4().to_string(),
                    "receiptHandle": "bench-receipt",
                    "body": body.to_string(),
                    "attributes": {
                        "ApproximateReceiveCount": "1",
                        "SentTimestamp": "1767225600000",
                        "SenderId": "123456789012",
                        "ApproximateFirstReceiveTimestamp": "1767225600000"
                    },
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:zoom-connector-meeting-events",
                    "awsRegion": REGION
                }]})
            }
            _ => serde_json::json!({ "bench": true }),
        }
    }
}

/// Whether a function's answer means it did its work: an HTTP status, or the SQS batch
/// answer, or the sweep report.
fn judge(function: &str, body: &[u8]) -> String {
    if let Some(status) = http_status(body) {
        return format!("HTTP {status}");
    }
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    match function {
        "meeting-events" => match value["batchItemFailures"].as_array() {
            Some(f) if f.is_empty() => "settled".into(),
            Some(f) => format!("{} batch item failures", f.len()),
            None => "unexpected answer".into(),
        },
        "refresh" => format!(
            "sweep: scanned {}",
            value["scanned"].as_u64().unwrap_or_default()
        ),
        _ => "ok".into(),
    }
}

/// One cold start.
#[derive(Debug, Clone)]
pub struct ColdRun {
    pub init: Duration,
    pub first_invocation: Duration,
    pub init_calls: Vec<AwsCall>,
    pub invocation_calls: Vec<AwsCall>,
    pub outcome: String,
    /// Peak memory once the first invocation was answered.
    pub memory: Memory,
}

fn spawn_function(
    env: &FunctionEnv,
    function: &str,
    runtime_api: &str,
) -> Result<Guarded, BenchError> {
    spawn_binary(env, &env.bin_dir.join(function), function, runtime_api)
}

fn spawn_binary(
    env: &FunctionEnv,
    binary: &Path,
    function: &str,
    runtime_api: &str,
) -> Result<Guarded, BenchError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(env.log_dir.join(format!("{function}.log")))?;
    let child = Command::new(binary)
        .env_clear()
        .envs(env.vars(function, runtime_api))
        .current_dir(&env.bin_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| BenchError::new(format!("{} could not start: {e}", binary.display())))?;
    Ok(Guarded { child })
}

async fn wait_ready(
    api: &mut RuntimeApi,
    function: &str,
    log_dir: &Path,
) -> Result<Instant, BenchError> {
    match api.next_event(Duration::from_secs(20)).await {
        Some(RuntimeEvent::NextPolled { at }) => Ok(at),
        Some(RuntimeEvent::InitError { body, .. }) => Err(BenchError::new(format!(
            "{function} reported an init error: {}",
            String::from_utf8_lossy(&body)
        ))),
        other => Err(BenchError::new(format!(
            "{function} did not poll for work ({other:?}); see {}",
            log_dir.join(format!("{function}.log")).display()
        ))),
    }
}

/// Waits for the function to take the next invocation and answer it: (delivered, answered,
/// what the answer says).
async fn wait_answer(
    api: &mut RuntimeApi,
    function: &str,
) -> Result<(Instant, Instant, String), BenchError> {
    let mut delivered: Option<(String, Instant)> = None;
    loop {
        let event = api.next_event(Duration::from_secs(60)).await;
        let (id, at, outcome) = match event {
            Some(RuntimeEvent::NextPolled { .. }) => continue,
            Some(RuntimeEvent::Delivered { id, at }) => {
                delivered = Some((id, at));
                continue;
            }
            Some(RuntimeEvent::Response { id, at, body }) => (id, at, judge(function, &body)),
            Some(RuntimeEvent::Error { id, at, body }) => {
                (id, at, format!("error: {}", String::from_utf8_lossy(&body)))
            }
            Some(RuntimeEvent::InitError { body }) => {
                return Err(BenchError::new(format!(
                    "{function} init error: {}",
                    String::from_utf8_lossy(&body)
                )));
            }
            None => return Err(BenchError::new(format!("{function} never answered"))),
        };
        return match delivered {
            Some((expected, from)) if expected == id => Ok((from, at, outcome)),
            _ => Err(BenchError::new(format!(
                "{function} answered invocation {id}, which it was not given"
            ))),
        };
    }
}

/// Starts `function` with its first invocation already queued; measures init and that
/// invocation.
pub async fn cold_run(
    env: &FunctionEnv,
    proxy: &CountingProxy,
    binary: &Path,
    function: &str,
) -> Result<ColdRun, BenchError> {
    let mut api = RuntimeApi::start(function).await?;
    api.enqueue(Invocation::new(env.first_event(function)));
    let started = Instant::now();
    let process = spawn_binary(env, binary, function, &api.address)?;
    let ready = wait_ready(&mut api, function, &env.log_dir).await?;
    let (from, to, outcome) = wait_answer(&mut api, function).await?;
    let memory = Memory::of(process.pid())?;
    drop(process);
    Ok(ColdRun {
        init: ready - started,
        first_invocation: to - from,
        init_calls: proxy.calls_between(started, ready),
        invocation_calls: proxy.calls_between(from, to),
        outcome,
        memory,
    })
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ColdSummary {
    pub function: String,
    pub runs: usize,
    pub init_median_ms: f64,
    pub init_min_ms: f64,
    pub init_max_ms: f64,
    pub ratio_to_hello: f64,
    pub first_invocation_median_ms: f64,
    pub hwm_mib_median: f64,
    pub init_aws_calls: String,
    pub first_invocation_aws_calls: String,
    pub outcome: String,
}

/// `rounds` cold starts of the hello-world binary and of every function, interleaved round
/// by round (after one untimed round that warms the page cache).
/// The binaries of a cold-start run: (label, path, function), hello-world first; with
/// `before`, the same binaries of an older build too, labelled "<name> (before)".
pub fn binaries(env: &FunctionEnv, before: Option<&Path>) -> Vec<(String, PathBuf, &'static str)> {
    let mut names = vec![HELLO];
    names.extend(FUNCTIONS);
    let mut all: Vec<(String, PathBuf, &'static str)> = names
        .iter()
        .map(|n| ((*n).to_owned(), env.bin_dir.join(n), *n))
        .collect();
    if let Some(dir) = before {
        all.extend(
            names
                .iter()
                .map(|n| (format!("{n} {BEFORE_SUFFIX}"), dir.join(n), *n)),
        );
    }
    all
}

/// The label suffix of an older build's binaries.
pub const BEFORE_SUFFIX: &str = "(before)";

pub async fn measure(
    env: &FunctionEnv,
    proxy: &CountingProxy,
    rounds: usize,
    before: Option<&Path>,
) -> Result<Vec<ColdSummary>, BenchError> {
    let binaries = binaries(env, before);
    let mut runs: Vec<Vec<ColdRun>> = vec![Vec::new(); binaries.len()];
    for round in 0..=rounds {
        // Rotate the order so no function always runs right after the same one.
        for k in 0..binaries.len() {
            let i = (k + round) % binaries.len();
            let (_, path, function) = &binaries[i];
            let run = cold_run(env, proxy, path, function).await?;
            if round > 0 {
                runs[i].push(run);
            }
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let hello_init = median(&runs[0].iter().map(|r| ms(r.init)).collect::<Vec<_>>());
    Ok(binaries
        .iter()
        .map(|(label, _, _)| label)
        .zip(runs)
        .map(|(name, runs)| {
            let inits: Vec<f64> = runs.iter().map(|r| ms(r.init)).collect();
            let firsts: Vec<f64> = runs.iter().map(|r| ms(r.first_invocation)).collect();
            let init = median(&inits);
            let last = runs.last();
            ColdSummary {
                function: name.clone(),
                runs: runs.len(),
                init_median_ms: init,
                init_min_ms: inits.iter().copied().fold(f64::INFINITY, f64::min),
                init_max_ms: inits.iter().copied().fold(0.0, f64::max),
                ratio_to_hello: if hello_init > 0.0 {
                    init / hello_init
                } else {
                    0.0
                },
                first_invocation_median_ms: median(&firsts),
                hwm_mib_median: median(
                    &runs.iter().map(|r| r.memory.hwm_mib()).collect::<Vec<_>>(),
                ),
                init_aws_calls: last.map(|r| summarize(&r.init_calls)).unwrap_or_default(),
                first_invocation_aws_calls: last
                    .map(|r| summarize(&r.invocation_calls))
                    .unwrap_or_default(),
                outcome: last.map(|r| r.outcome.clone()).unwrap_or_default(),
            }
        })
        .collect())
}

/// The actions function under many invocations, as one Lambda container sees them: the
/// runtime hands them over one at a time, however many are waiting.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FunctionMemory {
    pub invocations: usize,
    pub after_init: Memory,
    pub after_load: Memory,
    pub statuses: String,
    pub cold_action_ms: f64,
    pub cold_action_aws_calls: String,
    pub warm_action_median_ms: f64,
    /// AWS calls made by every invocation but the first (warm ones).
    pub warm_aws_calls: usize,
}

pub async fn actions_memory(
    env: &FunctionEnv,
    proxy: &CountingProxy,
    invocations: usize,
) -> Result<FunctionMemory, BenchError> {
    let function = "actions";
    let mut api = RuntimeApi::start(function).await?;
    let process = spawn_function(env, function, &api.address)?;
    wait_ready(&mut api, function, &env.log_dir).await?;
    let after_init = Memory::of(process.pid())?;
    let bearer = format!("Bearer {}", env.resources.api_key);
    let path = format!("/connections/{}/zoom/me", env.connection_id);
    for _ in 0..invocations {
        api.enqueue(Invocation::new(http_event(
            "GET",
            &path,
            "",
            &[("authorization", &bearer)],
            None,
        )));
    }
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    let mut warm = Vec::new();
    let mut cold = (0.0, String::new());
    let mut warm_calls = 0;
    for i in 0..invocations {
        let (from, to, outcome) = wait_answer(&mut api, function).await?;
        let calls = proxy.calls_between(from, to);
        let took = (to - from).as_secs_f64() * 1000.0;
        if i == 0 {
            cold = (took, summarize(&calls));
        } else {
            warm.push(took);
            warm_calls += calls.len();
        }
        *statuses.entry(outcome).or_default() += 1;
    }
    // Waiting for the next invocation now: the high-water mark includes all of them.
    let after_load = Memory::of(process.pid())?;
    drop(process);
    Ok(FunctionMemory {
        invocations,
        after_init,
        after_load,
        statuses: statuses
            .into_iter()
            .map(|(s, n)| format!("{s} ×{n}"))
            .collect::<Vec<_>>()
            .join(", "),
        cold_action_ms: cold.0,
        cold_action_aws_calls: cold.1,
        warm_action_median_ms: median(&warm),
        warm_aws_calls: warm_calls,
    })
}

/// The init steps, median of fresh `zoom-bench init-probe` processes of each variant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InitBreakdown {
    pub runs: usize,
    /// Variant names, in the order of each step's figures.
    pub variants: Vec<String>,
    /// (step, median ms per variant)
    pub steps: Vec<(String, Vec<f64>)>,
    /// The first AWS request after init (median ms per variant).
    pub first_request: Vec<f64>,
}

impl InitBreakdown {
    /// The sum of the steps, per variant.
    pub fn totals(&self) -> Vec<f64> {
        (0..self.variants.len())
            .map(|v| self.steps.iter().map(|(_, t)| t[v]).sum())
            .collect()
    }

    /// One variant's figure of the first step whose name holds `needle`.
    pub fn step(&self, needle: &str, variant: &str) -> Option<f64> {
        let v = self.variants.iter().position(|n| n == variant)?;
        self.steps
            .iter()
            .find(|(n, _)| n.contains(needle))
            .map(|(_, t)| t[v])
    }
}

struct ProbeRun {
    steps: Vec<(String, f64)>,
    first_request: f64,
}

fn probe_once(env: &FunctionEnv, probe: &Path, variant: &str) -> Result<ProbeRun, BenchError> {
    let output = Command::new(probe)
        .args(["init-probe", "--variant", variant])
        .env_clear()
        .envs(env.vars("actions", "127.0.0.1:9"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()?;
    let line = String::from_utf8_lossy(&output.stdout);
    let value: serde_json::Value = serde_json::from_str(line.trim())
        .map_err(|e| BenchError::new(format!("init-probe printed {line:?}: {e}")))?;
    Ok(ProbeRun {
        steps: value["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                (
                    s["step"].as_str().unwrap_or("?").to_owned(),
                    s["ms"].as_f64().unwrap_or(0.0),
                )
            })
            .collect(),
        first_request: value["first_request_ms"].as_f64().unwrap_or(0.0),
    })
}

/// Runs the probe `runs` times per variant, alternating, with a function's environment.
pub fn init_breakdown(
    env: &FunctionEnv,
    probe: &Path,
    runs: usize,
) -> Result<InitBreakdown, BenchError> {
    let variants = crate::init_probe::Variant::ALL;
    let mut all: Vec<Vec<ProbeRun>> = variants.iter().map(|_| Vec::new()).collect();
    for _ in 0..runs {
        for (i, v) in variants.iter().enumerate() {
            all[i].push(probe_once(env, probe, v.name())?);
        }
    }
    let names: Vec<String> = all[0]
        .first()
        .map(|r| r.steps.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    let median_of = |runs: &[ProbeRun], i: usize| {
        median(
            &runs
                .iter()
                .filter_map(|r| r.steps.get(i).map(|(_, t)| *t))
                .collect::<Vec<_>>(),
        )
    };
    Ok(InitBreakdown {
        runs,
        variants: variants.iter().map(|v| v.name().to_owned()).collect(),
        steps: names
            .into_iter()
            .enumerate()
            .map(|(i, name)| (name, all.iter().map(|r| median_of(r, i)).collect()))
            .collect(),
        first_request: all
            .iter()
            .map(|r| median(&r.iter().map(|p| p.first_request).collect::<Vec<_>>()))
            .collect(),
    })
}

/// Instructions (callgrind's `Ir`, user space, stable from run to run where wall-clock time is
/// not) of each binary's init, and its size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InitInstructions {
    pub binary: String,
    /// Whole process: start, init, one failed poll of the Runtime API (a closed port), exit.
    pub instructions: Option<u64>,
    /// Page faults of the same run, outside callgrind (`perf stat -e page-faults`).
    pub page_faults: Option<u64>,
    /// Dynamic relocations the loader applies at start (`.rela.dyn` entries; `readelf`).
    pub relocations: Option<u64>,
    pub size_bytes: u64,
}

/// Page faults of one run of `binary` (same environment as the callgrind run).
fn page_faults(binary: &Path, vars: Vec<(String, String)>) -> Option<u64> {
    let perf = ["/usr/bin/perf", "/usr/local/bin/perf"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())?;
    let mut args: Vec<String> = ["stat", "-x,", "-e", "page-faults", "--"]
        .map(str::to_owned)
        .into();
    args.push(binary.to_string_lossy().into_owned());
    stderr_of(&perf, args, vars)?
        .lines()
        .find(|l| l.contains("page-faults"))
        .and_then(|l| l.split(',').next())
        .and_then(|n| n.trim().parse().ok())
}

/// Entries of the binary's `.rela.dyn` (24 bytes each on x86_64), from `readelf -SW`.
fn relocations(binary: &Path) -> Option<u64> {
    let output = Command::new("readelf")
        .args(["-SW"])
        .arg(binary)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().find(|l| l.contains(".rela.dyn"))?;
    // [Nr] Name Type Address Off Size ES ...
    let fields: Vec<&str> = line.split(']').nth(1)?.split_whitespace().collect();
    let size = u64::from_str_radix(fields.get(4)?, 16).ok()?;
    Some(size / 24)
}

/// The valgrind binary, when installed.
pub fn valgrind() -> Option<PathBuf> {
    ["/usr/bin/valgrind", "/usr/local/bin/valgrind"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Runs `command` under callgrind and reads the instruction count it reports at exit.
fn callgrind(valgrind: &Path, mut args: Vec<String>, vars: Vec<(String, String)>) -> Option<u64> {
    let mut all = vec![
        "--tool=callgrind".to_owned(),
        "--callgrind-out-file=/dev/null".to_owned(),
    ];
    all.append(&mut args);
    stderr_of(valgrind, all, vars)?
        .lines()
        .find_map(|l| {
            l.split_once("Collected :")
                .map(|(_, n)| n.trim().to_owned())
        })
        .and_then(|n| n.parse().ok())
}

/// Every binary's init under callgrind: the Runtime API address is a closed port, so the
/// process runs its init, fails its first poll and exits (hello-world the same way).
pub fn init_instructions(
    env: &FunctionEnv,
    before: Option<&Path>,
) -> Result<Vec<InitInstructions>, BenchError> {
    let valgrind = valgrind();
    binaries(env, before)
        .into_iter()
        .map(|(label, binary, name)| {
            let size_bytes = std::fs::metadata(&binary)?.len();
            let instructions = valgrind.as_deref().and_then(|v| {
                callgrind(
                    v,
                    vec![binary.display().to_string()],
                    env.vars(name, "127.0.0.1:9"),
                )
            });
            Ok(InitInstructions {
                binary: label,
                instructions,
                page_faults: page_faults(&binary, env.vars(name, "127.0.0.1:9")),
                relocations: relocations(&binary),
                size_bytes,
            })
        })
        .collect()
}

/// The init probe of each variant under callgrind (no first request): the instruction
/// difference between the variants is what the trust store costs.
pub fn probe_instructions(env: &FunctionEnv, probe: &Path) -> Vec<(String, Option<u64>)> {
    let Some(valgrind) = valgrind() else {
        return Vec::new();
    };
    crate::init_probe::Variant::ALL
        .iter()
        .map(|v| {
            let args = vec![
                probe.display().to_string(),
                "init-probe".into(),
                "--variant".into(),
                v.name().into(),
                "--no-request".into(),
            ];
            (
                v.name().to_owned(),
                callgrind(&valgrind, args, env.vars("actions", "127.0.0.1:9")),
            )
        })
        .collect()
}

/// Runs a measuring tool on a clean environment and returns what it printed on stderr.
fn stderr_of(tool: &Path, args: Vec<String>, vars: Vec<(String, String)>) -> Option<String> {
    let output = Command::new(tool)
        .args(args)
        .env_clear()
        .envs(vars)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&output.stderr).into_owned())
}
