//! `zoom-bench`: the connector's benchmarks (`make bench`), measured against the Zoom
//! simulator and moto on loopback, written to docs/benchmarks.md. See docs/benchmarks.md for
//! the method; this is a benchmark, not a test: nothing here asserts a time.
//!
//! - `zoom-bench run [--quick] [--sweep-n N] [--out PATH]`: every figure, then the report.
//! - `zoom-bench init-probe`: times the steps of a function's init in a fresh process (the
//!   bench runs it with a function's environment and prints the medians).

mod cold_start;
mod counting_proxy;
mod init_probe;
mod listing;
mod machine;
mod moto;
mod overhead;
mod processes;
mod report;
mod seed;
mod sweep;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use zoom_connector::adapters::aws::{AwsSecretStore, DynamoConnectionStore};
use zoom_connector::adapters::zoom_http::{HttpZoomOAuth, http_client};
use zoom_connector::app::ZOOM_OAUTH_TIMEOUT;
use zoom_connector::ports::ZoomOAuth;
use zoom_sim::{SimUser, ZoomSim};

use crate::counting_proxy::CountingProxy;
use crate::overhead::Target;
use crate::processes::Memory;
use crate::report::{Report, Settings, StackMemory};

/// A failure of the bench itself (a process that did not start, an unexpected answer).
#[derive(Debug)]
pub struct BenchError(String);

impl BenchError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

macro_rules! bench_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for BenchError {
            fn from(e: $t) -> Self {
                Self(e.to_string())
            }
        }
    )*};
}
bench_error_from!(
    std::io::Error,
    reqwest::Error,
    serde_json::Error,
    &str,
    String
);

#[derive(Debug, Parser)]
#[command(
    name = "zoom-bench",
    about = "Benchmarks of the Zoom connector (make bench)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measures every figure and writes the report.
    Run {
        /// Fewer samples and a 1,000-connection sweep (about 3 minutes).
        #[arg(long)]
        quick: bool,
        /// Due connections in the sweep (default 10,000; 1,000 with --quick).
        #[arg(long)]
        sweep_n: Option<usize>,
        /// Where the report goes.
        #[arg(long, default_value = "docs/benchmarks.md")]
        out: PathBuf,
    },
    /// Only the listing figures (`GET /connections` from its indexes on moto); prints the
    /// report's section.
    Listing {
        /// Connection records to seed (measured at a tenth of it and at all of it).
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        /// Timed runs of each page.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Times the steps of a function's init (run by `run` in a fresh process).
    InitProbe {
        /// `product`: the steps as `lambda::init` takes them; `system`: the SDK on the
        /// system's CA certificates (before issue 18); `mozilla`: the SDK on the whole
        /// Mozilla root set.
        #[arg(long, value_enum, default_value = "product")]
        variant: init_probe::Variant,
        /// Stop after init (no first AWS request): for instruction counts.
        #[arg(long)]
        no_request: bool,
    },
    /// Only the package sizes of `make build`'s arm64 packages; prints the report's section.
    Packages,
    /// Only the cold-start figures (init, first invocation, init breakdown, instructions,
    /// sizes); prints the report's section.
    Cold {
        /// Cold starts per binary (after one untimed round).
        #[arg(long, default_value_t = 9)]
        rounds: usize,
        /// Where the binaries are (default: beside this one), e.g. an older build's.
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// An older build's binaries, measured in the same rounds for a before/after.
        #[arg(long, env = "BENCH_BEFORE_BIN_DIR")]
        before_bin_dir: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run {
            quick,
            sweep_n,
            out,
        } => run(Settings::new(quick, sweep_n), out).await,
        Command::Listing { n, rounds } => listing_only(n, rounds).await,
        Command::InitProbe {
            variant,
            no_request,
        } => init_probe::run(variant, !no_request).await,
        Command::Packages => packages_only(),
        Command::Cold {
            rounds,
            bin_dir,
            before_bin_dir,
        } => cold_only(rounds, bin_dir, before_bin_dir).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zoom-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (this crate sits in infra/bench).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn progress(message: &str) {
    eprintln!(
        "[{}] {message}",
        time::OffsetDateTime::now_utc()
            .format(&time::macros::format_description!(
                "[hour]:[minute]:[second]"
            ))
            .unwrap_or_default()
    );
}

async fn run(settings: Settings, out: PathBuf) -> Result<(), BenchError> {
    let started = Instant::now();
    let root = workspace_root();
    let exe = std::env::current_exe()?;
    let bin_dir = exe
        .parent()
        .ok_or("the bench binary has no directory")?
        .to_path_buf();
    let mut needed = vec![
        "zoom-connector-local".to_owned(),
        cold_start::HELLO.to_owned(),
    ];
    needed.extend(cold_start::FUNCTIONS.iter().map(|f| (*f).to_owned()));
    let missing: Vec<&String> = needed
        .iter()
        .filter(|b| !bin_dir.join(b).exists())
        .collect();
    if !missing.is_empty() {
        return Err(BenchError::new(format!(
            "missing release binaries in {}: {missing:?} (scripts/bench.sh builds them)",
            bin_dir.display()
        )));
    }
    let log_dir = root.join("target/bench-logs");
    std::fs::create_dir_all(&log_dir)?;
    // An older build's binaries to measure beside these (a before/after), if named.
    let before = std::env::var_os("BENCH_BEFORE_BIN_DIR")
        .map(std::fs::canonicalize)
        .transpose()?;
    let mut report = Report::new(machine::Machine::collect(&root), settings.clone());

    progress("starting moto and the counting proxy");
    let moto = moto::Moto::start()?;
    let proxy = CountingProxy::start(&moto.endpoint).await?;
    let sdk = moto::sdk_config(&moto.endpoint).await;
    let sim = ZoomSim::with_defaults();
    let running = sim.start().await?;
    let sim_url = running.base_url.clone();

    report.note_load("start");
    progress("action overhead (direct / connector / nginx, concurrency 1 and 32)");
    let before_stack = std::env::var_os("BENCH_BEFORE_STACK").map(PathBuf::from);
    report.overhead = overhead_section(
        &settings,
        &bin_dir,
        before_stack.as_deref(),
        &log_dir,
        &sim,
        &running,
        &proxy,
        &sdk,
    )
    .await
    .map_err(|e| e.to_string());
    report.note_load("after overhead");

    progress("memory of the local stack under 64 concurrent actions");
    report.stack_memory = stack_memory(&settings, &bin_dir, &log_dir, &sim, &sim_url, &proxy, &sdk)
        .await
        .map_err(|e| e.to_string());

    progress("cold starts under the Runtime API emulator");
    match function_env(&bin_dir, &log_dir, &sim, &sim_url, &proxy, &sdk).await {
        Ok(env) => {
            report.cold =
                cold_start::measure(&env, &proxy, settings.cold_rounds, before.as_deref())
                    .await
                    .map_err(|e| e.to_string());
            progress("actions function: 64 invocations, peak memory");
            report.function_memory = cold_start::actions_memory(&env, &proxy, 64)
                .await
                .map_err(|e| e.to_string());
            progress("init breakdown (init-probe)");
            report.init_breakdown = cold_start::init_breakdown(&env, &exe, settings.cold_rounds)
                .map_err(|e| e.to_string());
            progress("instructions of init (callgrind) and binary sizes");
            report.instructions =
                cold_start::init_instructions(&env, before.as_deref()).map_err(|e| e.to_string());
            report.probe_instructions = cold_start::probe_instructions(&env, &exe);
        }
        Err(e) => report.cold = Err(e.to_string()),
    }
    report.note_load("after cold starts");

    report.packages = machine::package_sizes(&root);

    progress(&format!(
        "sweep: {} due connections, REFRESH_TPS=40, token latency 150 ms",
        settings.sweep_n
    ));
    let sweep_dir = tempfile::tempdir()?;
    report.sweep = sweep::run(settings.sweep_n, 40, sweep_dir.path())
        .await
        .map_err(|e| e.to_string());
    report.note_load("after sweep");

    progress(&format!(
        "listing: {} connections on moto, pages of {}",
        settings.listing_n,
        listing::PAGE
    ));
    report.listing = listing::run(
        &moto.endpoint,
        &[settings.listing_n / 10, settings.listing_n],
        1,
    )
    .await
    .map_err(|e| e.to_string());
    report.note_load("after listing");

    report.total_secs = started.elapsed().as_secs_f64();
    let out = if out.is_absolute() {
        out
    } else {
        root.join(out)
    };
    std::fs::write(&out, report.render())?;
    progress(&format!(
        "wrote {} ({:.0} s)",
        out.display(),
        report.total_secs
    ));
    eprintln!("{}", report.summary_text());
    Ok(())
}

/// `zoom-bench cold`: the cold-start figures alone (of the binaries in `bin_dir`, default
/// beside this one), on a moto and simulator of their own.
async fn cold_only(
    rounds: usize,
    bin_dir: Option<PathBuf>,
    before: Option<PathBuf>,
) -> Result<(), BenchError> {
    let before = before.map(std::fs::canonicalize).transpose()?;
    let root = workspace_root();
    let exe = std::env::current_exe()?;
    let bin_dir = match bin_dir {
        // The functions start in their own directory: a relative path would not hold there.
        Some(dir) => std::fs::canonicalize(dir)?,
        None => exe
            .parent()
            .ok_or("the bench binary has no directory")?
            .to_path_buf(),
    };
    let log_dir = root.join("target/bench-logs");
    std::fs::create_dir_all(&log_dir)?;
    let mut settings = Settings::new(false, None);
    settings.cold_rounds = rounds;
    let mut report = Report::new(machine::Machine::collect(&root), settings);
    let moto = moto::Moto::start()?;
    let proxy = CountingProxy::start(&moto.endpoint).await?;
    let sdk = moto::sdk_config(&moto.endpoint).await;
    let sim = ZoomSim::with_defaults();
    let running = sim.start().await?;
    let env = function_env(&bin_dir, &log_dir, &sim, &running.base_url, &proxy, &sdk).await?;
    progress(&format!("cold starts of {}", bin_dir.display()));
    report.cold = cold_start::measure(&env, &proxy, rounds, before.as_deref())
        .await
        .map_err(|e| e.to_string());
    progress("init breakdown (init-probe)");
    report.init_breakdown =
        cold_start::init_breakdown(&env, &exe, rounds).map_err(|e| e.to_string());
    progress("instructions of init (callgrind) and binary sizes");
    report.instructions =
        cold_start::init_instructions(&env, before.as_deref()).map_err(|e| e.to_string());
    report.probe_instructions = cold_start::probe_instructions(&env, &exe);
    let mut out = String::new();
    report.render_cold(&mut out);
    println!("{out}");
    eprintln!("{}", report.summary_text());
    Ok(())
}

/// `zoom-bench packages`: the package-size section alone (after `make build`).
fn packages_only() -> Result<(), BenchError> {
    let root = workspace_root();
    let mut report = Report::new(machine::Machine::collect(&root), Settings::new(false, None));
    report.packages = machine::package_sizes(&root);
    let mut out = String::new();
    report.render_packages(&mut out);
    println!("{out}");
    eprintln!("{}", report.summary_text());
    Ok(())
}

/// `zoom-bench listing`: the listing figures alone, on a moto of their own.
async fn listing_only(n: usize, rounds: usize) -> Result<(), BenchError> {
    let root = workspace_root();
    let mut report = Report::new(machine::Machine::collect(&root), Settings::new(false, None));
    let moto = moto::Moto::start()?;
    report.listing = listing::run(&moto.endpoint, &[(n / 10).max(1), n], rounds)
        .await
        .map_err(|e| e.to_string());
    let mut out = String::new();
    report.render_listing(&mut out);
    println!("{out}");
    eprintln!("{}", report.summary_text());
    Ok(())
}

/// A release stack on its own moto resources, with `user` (added to the simulator) connected
/// through its real routes.
struct ConnectedStack {
    stack: processes::LocalStack,
    api_key: String,
    connection: String,
    /// The user's access token at the simulator, for the direct paths.
    token: String,
}

async fn connected_stack(
    binary: &Path,
    user: &str,
    log_dir: &Path,
    sim: &ZoomSim,
    running: &zoom_sim::RunningSim,
    proxy: &CountingProxy,
    sdk: &aws_config::SdkConfig,
) -> Result<ConnectedStack, BenchError> {
    let resources = moto::create_resources(sdk).await?;
    let stack = processes::spawn_local_stack(
        binary,
        &format!("zoom-connector-local-{user}"),
        &running.base_url,
        &proxy.endpoint,
        &resources,
        log_dir,
    )?;
    sim.add_user(SimUser::new(
        user,
        &format!("{user}-account"),
        &format!("{user}@example.com"),
        "Bench",
        user,
    ));
    let connection =
        processes::connect_through(&stack.base_url, &resources.api_key, sim, user).await?;
    let token = sim
        .latest_tokens(user, zoom_sim::DEFAULT_CLIENT_ID)
        .ok_or("the simulator has no tokens for the connected user")?
        .access_token;
    Ok(ConnectedStack {
        stack,
        api_key: resources.api_key,
        connection,
        token,
    })
}

/// The overhead targets: each connector path on a stack process of its own (so no path
/// queues behind another's requests), the direct calls with the same users' tokens, nginx.
#[allow(clippy::too_many_arguments)]
async fn overhead_section(
    settings: &Settings,
    bin_dir: &Path,
    before_stack: Option<&Path>,
    log_dir: &Path,
    sim: &ZoomSim,
    running: &zoom_sim::RunningSim,
    proxy: &CountingProxy,
    sdk: &aws_config::SdkConfig,
) -> Result<report::OverheadSection, BenchError> {
    let binary = bin_dir.join("zoom-connector-local");
    let me = connected_stack(&binary, "bench-me", log_dir, sim, running, proxy, sdk).await?;
    let list = connected_stack(&binary, "bench-list", log_dir, sim, running, proxy, sdk).await?;
    // Ten meetings, so the list path answers a real page (about 10 KB).
    let client = reqwest::Client::new();
    for i in 0..10 {
        client
            .post(format!("{}/connections/{}/zoom/meetings", list.stack.base_url, list.connection))
            .bearer_auth(&list.api_key)
            .json(&serde_json::json!({ "topic": format!("Bench {i}"), "type": 2, "start_time": "2026-12-01T09:00:00Z", "duration": 30 }))
            .send()
            .await?
            .error_for_status()?;
    }
    let mut targets = vec![
        Target {
            name: "direct",
            url: format!("{}/users/me", running.api_url()),
            bearer: Some(me.token.clone()),
        },
        Target {
            name: "connector",
            url: format!(
                "{}/connections/{}/zoom/me",
                me.stack.base_url, me.connection
            ),
            bearer: Some(me.api_key.clone()),
        },
        Target {
            name: "direct list",
            url: format!("{}/users/me/meetings?page_size=30", running.api_url()),
            bearer: Some(list.token.clone()),
        },
        Target {
            name: "connector list",
            url: format!(
                "{}/connections/{}/zoom/meetings?page_size=30",
                list.stack.base_url, list.connection
            ),
            bearer: Some(list.api_key.clone()),
        },
    ];
    // An older build of the stack, for a same-run before/after of the old route.
    let before = match before_stack {
        Some(older) => {
            let b =
                connected_stack(older, "bench-before", log_dir, sim, running, proxy, sdk).await?;
            targets.push(Target {
                name: "connector (before)",
                url: format!("{}/connections/{}/zoom/me", b.stack.base_url, b.connection),
                bearer: Some(b.api_key.clone()),
            });
            Some(b)
        }
        None => None,
    };
    let (nginx, nginx_note) = match processes::find_nginx() {
        Some(path) => match processes::start_nginx(&path, running.addr, &me.token).await {
            Ok(n) => (Some(n), None),
            Err(e) => (None, Some(format!("nginx did not start: {e}"))),
        },
        None => (
            None,
            Some(
                "nginx is not installed (scripts/bench.sh tries `apt-get install -y nginx-light`)"
                    .into(),
            ),
        ),
    };
    if let Some(n) = &nginx {
        targets.push(Target {
            name: "nginx",
            url: n.url.clone(),
            bearer: None,
        });
    }
    let levels = [(1, settings.requests_c1), (32, settings.requests_c32)];
    let result = overhead::run(&targets, &levels, proxy, nginx_note).await?;
    let stack_memory = Memory::of(me.stack.process.pid())?;
    drop(before);
    Ok(report::OverheadSection {
        result,
        stack_memory,
        before_stack: before_stack.map(|p| p.display().to_string()),
    })
}

async fn stack_memory(
    settings: &Settings,
    bin_dir: &Path,
    log_dir: &Path,
    sim: &ZoomSim,
    sim_url: &str,
    proxy: &CountingProxy,
    sdk: &aws_config::SdkConfig,
) -> Result<StackMemory, BenchError> {
    let resources = moto::create_resources(sdk).await?;
    let stack = processes::spawn_local_stack(
        &bin_dir.join("zoom-connector-local"),
        "zoom-connector-local-memory",
        sim_url,
        &proxy.endpoint,
        &resources,
        log_dir,
    )?;
    let user = SimUser::new(
        "bench-memory",
        "bench-memory-account",
        "memory@example.com",
        "Bench",
        "Memory",
    );
    sim.add_user(user.clone());
    let connection =
        processes::connect_through(&stack.base_url, &resources.api_key, sim, &user.id).await?;
    let baseline = Memory::of(stack.process.pid())?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .timeout(Duration::from_secs(30))
        .build()?;
    let target = Target {
        name: "connector",
        url: format!("{}/connections/{connection}/zoom/me", stack.base_url),
        bearer: Some(resources.api_key.clone()),
    };
    let level = overhead::measure_level(&http, &[target], 64, settings.requests_memory).await;
    let after = Memory::of(stack.process.pid())?;
    let path = level.paths.first().cloned().ok_or("no measurement")?;
    Ok(StackMemory {
        concurrency: 64,
        requests: path.latency.count + path.errors,
        errors: path.errors,
        baseline,
        after,
        latency: path.latency,
    })
}

/// Fresh resources on moto, a seeded connection, and the functions' environment.
async fn function_env(
    bin_dir: &Path,
    log_dir: &Path,
    sim: &ZoomSim,
    sim_url: &str,
    proxy: &CountingProxy,
    sdk: &aws_config::SdkConfig,
) -> Result<cold_start::FunctionEnv, BenchError> {
    let resources = moto::create_resources(sdk).await?;
    let oauth_url = url::Url::parse(sim_url).map_err(|e| BenchError::new(e.to_string()))?;
    let oauth: Arc<dyn ZoomOAuth> = Arc::new(HttpZoomOAuth::new(
        http_client(),
        &oauth_url,
        ZOOM_OAUTH_TIMEOUT,
    ));
    let issued = seed::issue_tokens(sim, oauth, "bench-function", 1, 1).await?;
    let first = issued.first().ok_or("no tokens issued")?;
    let now = time::OffsetDateTime::now_utc();
    // Not due for a day: the sweep in the cold runs finds nothing to refresh.
    let (record, secret) = seed::connection_for(first, now, now.unix_timestamp() + 86_400);
    // Straight to moto, not through the counting proxy.
    seed::write_connection(
        &AwsSecretStore::new(sdk),
        &DynamoConnectionStore::new(sdk, resources.table.clone()),
        &resources.prefix,
        &record,
        &secret,
    )
    .await?;
    Ok(cold_start::FunctionEnv {
        bin_dir: bin_dir.to_path_buf(),
        log_dir: log_dir.to_path_buf(),
        aws_endpoint: proxy.endpoint.clone(),
        sim_url: sim_url.to_owned(),
        resources,
        connection_id: record.id,
    })
}
