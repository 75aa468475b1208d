//! The deployed path for tests: each function's real binary (target/debug/<name>) in a pool
//! of Lambda-like processes behind an API Gateway HTTP API emulator (lambda-emulator), with
//! the Timeout, MemorySize, Environment and routes template.yaml gives it, against moto and the
//! Zoom simulator. Each function reaches moto through its own recording proxy, so what it calls
//! can be checked against its IAM policy: every stack adds its calls to
//! `target/deployed-aws-calls.json` when it is dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use lambda_emulator::apigw::{ApiGateway, Route};
use lambda_emulator::pool::{FunctionConfig, FunctionPool, Outcome};
use zoom_connector::app::Connector;
use zoom_connector::config::Config;
use zoom_sim::{RunningSim, ZoomSim};

use crate::faultproxy::{AwsCall, FaultProxy};
use crate::front::{Front, captured_events};
use crate::stack::{
    AwsResources, create_bus_with_capture, create_kms_key, create_table, ports_for, seed_secrets,
    unique,
};

/// What template.yaml says about one function (tests/template/describe.py).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TemplateFunction {
    pub resource: String,
    pub timeout: u64,
    pub memory: u32,
    pub environment: Vec<String>,
    pub routes: Vec<(String, String)>,
}

fn python() -> PathBuf {
    std::env::var_os("MOTO_PYTHON").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python")),
        PathBuf::from,
    )
}

/// The template's functions by binary name (read once per test binary).
pub fn template_functions() -> &'static BTreeMap<String, TemplateFunction> {
    static FUNCTIONS: OnceLock<BTreeMap<String, TemplateFunction>> = OnceLock::new();
    FUNCTIONS.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/template/describe.py");
        let output = std::process::Command::new(python())
            .arg(script)
            .output()
            .unwrap_or_else(|e| panic!("{} {script}: {e}", python().display()));
        assert!(
            output.status.success(),
            "{script} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("describe.py prints JSON")
    })
}

/// `target/` and `target/debug/` of this test binary (`target/debug/deps/e2e-…`).
fn target_dirs() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .to_path_buf();
    let target = profile
        .parent()
        .map_or_else(|| profile.clone(), PathBuf::from);
    (target, profile)
}

/// A function binary built next to this test binary; never skipped when missing.
pub fn function_binary(name: &str) -> PathBuf {
    let binary = target_dirs().1.join(name);
    assert!(
        binary.is_file(),
        "{} is missing: run cargo build --workspace --bins first",
        binary.display()
    );
    binary
}

/// Changes to what the template gives the functions, for fault tests.
#[derive(Debug, Clone, Default)]
pub struct DeployedOptions {
    timeouts: Vec<(&'static str, Duration)>,
    env: Vec<(&'static str, &'static str, String)>,
    ui_origins: Option<String>,
}

impl DeployedOptions {
    /// `function` gets `timeout` instead of the template's Timeout.
    pub fn timeout(mut self, function: &'static str, timeout: Duration) -> Self {
        self.timeouts.push((function, timeout));
        self
    }

    /// `CONNECTOR_UI_ORIGINS` of every function (the integration UI's origins).
    pub fn ui_origins(mut self, origins: &str) -> Self {
        self.ui_origins = Some(origins.to_owned());
        self
    }

    /// `function` gets `name=value` on top of its environment.
    pub fn env(mut self, function: &'static str, name: &'static str, value: &str) -> Self {
        self.env.push((function, name, value.to_owned()));
        self
    }
}

pub const ACCESS_KEY: &str = "testing";
pub const REGION: &str = "us-east-1";

pub struct DeployedStack {
    /// The API Gateway front (its URL is also the functions' CONNECTOR_PUBLIC_URL), the API
    /// key and a client; the flow helpers come from it.
    pub front: Front,
    pub webhook_secret: String,
    pub sim: ZoomSim,
    pub running_sim: RunningSim,
    /// A connector in the test process on the same moto resources, to seed and inspect.
    pub connector: Connector,
    pub aws: AwsResources,
    /// The stage the resources are named for (as template.yaml names them).
    pub stage: String,
    /// Where each function process's stdout/stderr go (`<function>-<n>.log`).
    pub log_dir: std::path::PathBuf,
    pools: HashMap<String, Arc<FunctionPool>>,
    proxies: BTreeMap<String, FaultProxy>,
    _gateway: ApiGateway,
}

impl DeployedStack {
    pub async fn start() -> Self {
        Self::start_with(DeployedOptions::default()).await
    }

    pub async fn start_with(options: DeployedOptions) -> Self {
        let functions = template_functions();
        let sim = ZoomSim::with_defaults();
        sim.set_auto_approve(true);
        let running_sim = sim.start().await.expect("start simulator");

        // The names template.yaml gives the resources, for a stage of our own.
        let stage = unique("e2e");
        let prefix = format!("zoom-connector/{stage}");
        let sdk = crate::moto::moto().sdk_config().await;
        let table = format!("zoom-connector-{stage}-ConnectionsTable");
        let bus = format!("zoom-connector-{stage}");
        create_table(&sdk, &table).await;
        let capture_queue_url = create_bus_with_capture(&sdk, &bus).await;
        let pending_tokens_key = create_kms_key(&sdk).await;
        let aws = AwsResources {
            sdk,
            table,
            bus,
            prefix: prefix.clone(),
            capture_queue_url,
            pending_tokens_key,
        };

        let front = ApiGateway::bind().await.expect("bind the API front");
        let test_values: HashMap<&str, String> = HashMap::from([
            ("CONNECTIONS_TABLE", aws.table.clone()),
            ("SECRETS_PREFIX", prefix.clone()),
            ("EVENT_BUS_NAME", aws.bus.clone()),
            ("PLATFORM_APP_SECRET_ID", format!("{prefix}/platform-app")),
            ("CONNECTOR_SECRET_ID", format!("{prefix}/connector")),
            ("PENDING_TOKENS_KEY_ID", aws.pending_tokens_key.clone()),
            ("CONNECTOR_PUBLIC_URL", front.url.clone()),
            (
                "CONNECTOR_UI_ORIGINS",
                options
                    .ui_origins
                    .clone()
                    .unwrap_or_else(|| "https://app.example.com".to_owned()),
            ),
            ("REFRESH_AHEAD_SECS", "300".to_owned()),
            ("KEEPALIVE_HOURS", "24".to_owned()),
            ("REFRESH_MODE", "lazy".to_owned()),
            ("REFRESH_TPS", "40".to_owned()),
            ("RUST_LOG", "info".to_owned()),
            ("PLATFORM_CLIENT_ID", zoom_sim::DEFAULT_CLIENT_ID.to_owned()),
            ("CONNECTOR_STAGE", stage.clone()),
        ]);
        // Not in the template (production talks to zoom.us): the simulator.
        let zoom = [
            ("ZOOM_OAUTH_URL", running_sim.oauth_url()),
            ("ZOOM_API_URL", running_sim.api_url()),
        ];

        let config = Config::from_lookup(
            |k| {
                test_values
                    .get(k)
                    .cloned()
                    .or_else(|| zoom.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            },
            None,
        )
        .expect("test config");
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let (ports, _) = ports_for(&config, Some(&aws), data_dir.path());
        let connector = Connector::new(config, ports);
        let api_key = zoom_connector::secret::random_token(24);
        let webhook_secret = zoom_connector::secret::random_token(24);
        seed_secrets(&connector, &api_key, &webhook_secret).await;

        let log_dir = target_dirs().0.join("deployed-logs").join(&stage);
        let mut pools = HashMap::new();
        let mut proxies = BTreeMap::new();
        let mut routes = Vec::new();
        for (name, function) in functions {
            let proxy = FaultProxy::in_front_of_moto().await;
            let mut env: Vec<(String, String)> = function
                .environment
                .iter()
                .map(|var| {
                    let value = test_values.get(var.as_str()).unwrap_or_else(|| {
                        panic!(
                            "template.yaml gives {name} {var}: add a test value in tests/src/deployed.rs"
                        )
                    });
                    (var.clone(), value.clone())
                })
                .collect();
            env.extend(zoom.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            env.extend(
                [
                    ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
                    ("AWS_SECRET_ACCESS_KEY", ACCESS_KEY),
                    ("AWS_SESSION_TOKEN", "deployed-e2e"),
                ]
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
            );
            env.push(("AWS_ENDPOINT_URL".to_owned(), proxy.endpoint.clone()));
            env.extend(
                options
                    .env
                    .iter()
                    .filter(|(f, _, _)| f == name)
                    .map(|(_, k, v)| ((*k).to_owned(), v.clone())),
            );
            let timeout = options
                .timeouts
                .iter()
                .find(|(f, _)| f == name)
                .map_or(Duration::from_secs(function.timeout), |(_, t)| *t);
            let pool = FunctionPool::new(FunctionConfig {
                name: name.clone(),
                binary: function_binary(name),
                env,
                timeout,
                memory_mb: function.memory,
                region: REGION.to_owned(),
                max_instances: 4,
                log_dir: log_dir.clone(),
            });
            pools.insert(name.clone(), Arc::new(pool));
            proxies.insert(name.clone(), proxy);
            routes.extend(
                function
                    .routes
                    .iter()
                    .map(|(method, path)| Route::new(method, path, name)),
            );
        }
        let url = front.url.clone();
        let gateway = front.serve(routes, pools.clone());
        Self {
            front: Front::new(url, api_key),
            webhook_secret,
            sim,
            running_sim,
            connector,
            aws,
            stage,
            log_dir,
            pools,
            proxies,
            _gateway: gateway,
        }
    }

    /// Everything `function`'s processes wrote so far (stdout and stderr).
    pub fn function_logs(&self, function: &str) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(&self.log_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{function}-")) && name.ends_with(".log") {
                out.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        out
    }

    /// Invokes a function directly, as an event source does (SQS, Scheduler).
    pub async fn invoke(&self, function: &str, event: serde_json::Value) -> Outcome {
        self.pools
            .get(function)
            .unwrap_or_else(|| panic!("no function {function} in template.yaml"))
            .invoke(event)
            .await
    }

    /// Processes started so far for `function`.
    pub fn processes_started(&self, function: &str) -> usize {
        self.pools
            .get(function)
            .map_or(0, |p| p.processes_started())
    }

    /// The AWS calls each function made so far.
    pub fn aws_calls(&self) -> BTreeMap<String, Vec<AwsCall>> {
        self.proxies
            .iter()
            .map(|(name, proxy)| (name.clone(), proxy.calls()))
            .collect()
    }

    /// Makes `function`'s AWS calls whose `X-Amz-Target` starts with `target` this slow (zero:
    /// back to normal).
    pub fn slow_aws(&self, function: &str, target: &str, delay: Duration) {
        let proxy = &self.proxies[function];
        proxy.clear();
        if !delay.is_zero() {
            let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            proxy.inject(target, crate::faultproxy::AwsFault::SlowMs(ms), None);
        }
    }

    /// Events published so far (read from the bus's capture queue; each is read once).
    pub async fn events(&self) -> Vec<(String, serde_json::Value)> {
        captured_events(&self.aws.sdk, &self.aws.capture_queue_url).await
    }

    fn recorded_run(&self) -> RecordedRun {
        RecordedRun {
            stage: self.stage.clone(),
            table: self.aws.table.clone(),
            calls: self
                .aws_calls()
                .into_iter()
                .map(|(name, calls)| (name, calls.into_iter().collect()))
                .collect(),
        }
    }

    /// Checks every AWS call this stack's functions made so far against each function's IAM
    /// policy in template.yaml (tests/template/iam_calls.py): a call AWS would refuse fails.
    pub fn assert_aws_calls_allowed_by_iam(&self) {
        let path = target_dirs()
            .0
            .join(format!("deployed-aws-calls-{}.json", self.stage));
        write_runs(&path, &[self.recorded_run()]);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/template/iam_calls.py");
        let output = std::process::Command::new(python())
            .args([script, &path.display().to_string(), "--quiet"])
            .output()
            .unwrap_or_else(|e| panic!("{} {script}: {e}", python().display()));
        assert!(
            output.status.success(),
            "AWS calls the functions' IAM policies would refuse:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// One stack's AWS calls by function, in the form tests/template/iam_calls.py reads.
#[derive(serde::Serialize)]
struct RecordedRun {
    stage: String,
    table: String,
    calls: BTreeMap<String, BTreeSet<AwsCall>>,
}

/// The runs of every stack of this test binary so far.
static RECORDED: Mutex<Vec<RecordedRun>> = Mutex::new(Vec::new());

fn write_runs(path: &std::path::Path, runs: &[RecordedRun]) {
    let json = serde_json::json!({ "runs": runs });
    std::fs::write(path, json.to_string()).expect("write the recorded AWS calls");
}

impl std::ops::Deref for DeployedStack {
    type Target = Front;

    fn deref(&self) -> &Front {
        &self.front
    }
}

impl Drop for DeployedStack {
    fn drop(&mut self) {
        let mut recorded = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
        recorded.push(self.recorded_run());
        // Rewritten whole after each stack, so the file is complete whichever ends last;
        // scripts/test.sh lists the grants no run used from it.
        let path = target_dirs().0.join("deployed-aws-calls.json");
        let json = serde_json::json!({ "runs": &*recorded });
        let _ = std::fs::write(path, json.to_string());
    }
}

/// An SQS record as Lambda's event source mapping delivers it.
pub fn sqs_record(message_id: &str, body: &str) -> serde_json::Value {
    serde_json::json!({
        "messageId": message_id,
        "receiptHandle": format!("AQEB{}", unique("receipt")),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1764504000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1764504000001"
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:zoom-connector-e2e-meetings",
        "awsRegion": "us-east-1"
    })
}
