//! docs/benchmarks.md: the run, a summary table with budgets and verdicts, then each figure
//! with its method, and what stands in the way of any figure outside its budget.

use std::fmt::Write;

use crate::cold_start::{ColdSummary, FunctionMemory, HELLO, InitBreakdown, InitInstructions};
use crate::listing::ListingResult;
use crate::machine::{Machine, Packages};
use crate::overhead::{LevelResult, OverheadResult};
use crate::processes::Memory;
use crate::sweep::SweepResult;
use zoom_connector::adapters::aws::dynamo_items::LIST_SHARDS;
use zoom_connector_bench::stats::Percentiles;

/// Budgets of DESIGN.md "Performance budget".
pub const OVERHEAD_BUDGET_US: f64 = 500.0;
pub const INIT_RATIO_BUDGET: f64 = 1.5;
pub const PACKAGE_BUDGET_BYTES: u64 = 5 * 1024 * 1024;
pub const MEMORY_BUDGET_MIB: f64 = 40.0;

/// Published hello-world init durations (REPORT `Init Duration`, average of 10 cold starts,
/// zip packages, 128 MB) from maxday/lambda-perf, data/2025/2025-12-21.json.
const PUBLISHED_SOURCE: &str = "maxday/lambda-perf, daily run of 2025-12-21 (`data/2025/2025-12-21.json` in github.com/maxday/lambda-perf; average `Init Duration` of 10 cold starts, zip package, 128 MB)";
const PUBLISHED: [(&str, f64, f64); 3] = [
    // runtime, arm64 ms, x86_64 ms
    ("Rust (provided.al2023)", 12.919, 16.815),
    ("Python 3.13", 96.034, 97.701),
    ("Node.js 22.x", 123.571, 155.85),
];
/// Max memory used by that Rust hello world (arm64, 128 MB), same source.
const PUBLISHED_RUST_MEMORY_MB: f64 = 14.6;
/// The arm64 packages of the opt-level = 3 build that preceded opt-level = "s".
const OPT3_ZIPPED: [(&str, u64); 6] = [
    ("connect", 4_788_370),
    ("callback", 4_792_208),
    ("actions", 6_520_287),
    ("refresh", 4_486_803),
    ("meeting-events", 6_104_727),
    ("webhooks", 4_740_960),
];

/// The SDK clients each function does not use (its IAM policy in template.yaml calls no
/// action of the service), by the init probe's step names.
const FUNCTION_CLIENTS: [(&str, &[&str]); 6] = [
    ("connect", &["SDK client: EventBridge"]),
    ("callback", &[]),
    ("actions", &[]),
    ("refresh", &[]),
    ("meeting-events", &[]),
    ("webhooks", &[]),
];

#[derive(Debug, Clone)]
pub struct Settings {
    pub quick: bool,
    pub requests_c1: usize,
    pub requests_c32: usize,
    pub requests_memory: usize,
    pub cold_rounds: usize,
    pub sweep_n: usize,
    /// Connection records seeded for the listing figures (measured at a tenth and at all).
    pub listing_n: usize,
}

impl Settings {
    pub fn new(quick: bool, sweep_n: Option<usize>) -> Self {
        if quick {
            Self {
                quick,
                requests_c1: 1000,
                requests_c32: 2000,
                requests_memory: 2000,
                cold_rounds: 3,
                sweep_n: sweep_n.unwrap_or(1000),
                listing_n: 20_000,
            }
        } else {
            Self {
                quick,
                requests_c1: 5000,
                requests_c32: 20_000,
                requests_memory: 12_800,
                cold_rounds: 9,
                sweep_n: sweep_n.unwrap_or(10_000),
                listing_n: 100_000,
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct OverheadSection {
    pub result: OverheadResult,
    /// The stack process's memory after the overhead runs (concurrency up to 32).
    pub stack_memory: Memory,
    /// An older build's `zoom-connector-local` measured as `connector (before)`
    /// (`BENCH_BEFORE_STACK`), if one was named.
    pub before_stack: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StackMemory {
    pub concurrency: usize,
    pub requests: usize,
    pub errors: usize,
    pub baseline: Memory,
    pub after: Memory,
    pub latency: Percentiles,
}

pub struct Report {
    pub machine: Machine,
    pub settings: Settings,
    pub overhead: Result<OverheadSection, String>,
    pub stack_memory: Result<StackMemory, String>,
    pub cold: Result<Vec<ColdSummary>, String>,
    pub function_memory: Result<FunctionMemory, String>,
    pub init_breakdown: Result<InitBreakdown, String>,
    pub instructions: Result<Vec<InitInstructions>, String>,
    /// The init probe's variants under callgrind.
    pub probe_instructions: Vec<(String, Option<u64>)>,
    pub packages: Result<Packages, String>,
    pub sweep: Result<SweepResult, String>,
    pub listing: Result<ListingResult, String>,
    pub loads: Vec<(String, String)>,
    pub total_secs: f64,
}

/// A binary of the older build measured beside the current one (`BENCH_BEFORE_BIN_DIR`).
fn is_before(label: &str) -> bool {
    label.ends_with(crate::cold_start::BEFORE_SUFFIX)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "within" } else { "**outside**" }
}

fn ms(us: f64) -> String {
    format!("{:.3} ms", us / 1000.0)
}

fn signed_ms(us: f64) -> String {
    format!("{:+.3} ms", us / 1000.0)
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The path of an older build's stack (`BENCH_BEFORE_STACK`).
const BEFORE: &str = "connector (before)";

/// Added latency of `name` over `direct` at one level: (p50, p90, p99) in µs.
/// What a path adds over calling Zoom directly for the same call (`direct list` for the
/// list paths, `direct` for the others).
fn added(level: &LevelResult, name: &str) -> Option<(f64, f64, f64)> {
    let base = if name.ends_with(" list") {
        "direct list"
    } else {
        "direct"
    };
    let direct = level.path(base)?.latency;
    let other = level.path(name)?.latency;
    Some((
        other.p50_us - direct.p50_us,
        other.p90_us - direct.p90_us,
        other.p99_us - direct.p99_us,
    ))
}

impl Report {
    pub fn new(machine: Machine, settings: Settings) -> Self {
        Self {
            machine,
            settings,
            overhead: Err("not run".into()),
            stack_memory: Err("not run".into()),
            cold: Err("not run".into()),
            function_memory: Err("not run".into()),
            init_breakdown: Err("not run".into()),
            instructions: Err("not run".into()),
            probe_instructions: Vec::new(),
            packages: Err("not run".into()),
            sweep: Err("not run".into()),
            listing: Err("not run".into()),
            loads: Vec::new(),
            total_secs: 0.0,
        }
    }

    pub fn note_load(&mut self, moment: &str) {
        self.loads
            .push((moment.to_owned(), crate::machine::load_average()));
    }

    /// Summary rows: (figure, measured, budget, within, reference).
    fn rows(&self) -> Vec<(String, String, String, Option<bool>, String)> {
        let mut rows = Vec::new();
        match &self.overhead {
            Ok(o) => {
                for level in &o.result.levels {
                    if let Some((p50, _, _)) = added(level, "connector") {
                        let reference = match added(level, "nginx") {
                            Some((n50, _, _)) => format!("nginx, fixed bearer: {}", signed_ms(n50)),
                            None => o.result.nginx.clone().unwrap_or_default(),
                        };
                        rows.push((
                            format!(
                                "Warm action overhead, p50 added over direct, concurrency {}",
                                level.concurrency
                            ),
                            signed_ms(p50),
                            "≤ 0.5 ms".into(),
                            Some(p50 <= OVERHEAD_BUDGET_US),
                            reference,
                        ));
                    }
                    if let (Some((p50, _, _)), Some((now50, _, _))) =
                        (added(level, BEFORE), added(level, "connector"))
                    {
                        rows.push((
                            format!(
                                "Warm action overhead of the older build (`connector (before)`), p50 added over direct, concurrency {}",
                                level.concurrency
                            ),
                            signed_ms(p50),
                            "≤ 0.5 ms".into(),
                            Some(p50 <= OVERHEAD_BUDGET_US),
                            format!("this build − older build: {}", signed_ms(now50 - p50)),
                        ));
                    }
                    if let Some((p50, _, _)) = added(level, "connector list") {
                        rows.push((
                            format!(
                                "Warm list-action overhead (`GET /zoom/meetings`, a catalogue list), p50 added over direct, concurrency {}",
                                level.concurrency
                            ),
                            signed_ms(p50),
                            "≤ 0.5 ms".into(),
                            Some(p50 <= OVERHEAD_BUDGET_US),
                            "—".into(),
                        ));
                    }
                }
                rows.push((
                    format!(
                        "AWS calls per warm action (local stack on moto, {} actions)",
                        thousands(o.result.connector_actions as u64)
                    ),
                    format!(
                        "{} ({} in total: {})",
                        o.result.aws_calls as f64 / o.result.connector_actions.max(1) as f64,
                        o.result.aws_calls,
                        o.result.aws_operations
                    ),
                    "0".into(),
                    Some(o.result.aws_calls == 0),
                    "—".into(),
                ));
            }
            Err(e) => rows.push((
                "Warm action overhead".into(),
                format!("not measured: {e}"),
                "≤ 0.5 ms".into(),
                None,
                "—".into(),
            )),
        }
        if let Ok(m) = &self.function_memory {
            rows.push((
                format!(
                    "AWS calls per warm action (actions function, {} warm invocations)",
                    m.invocations - 1
                ),
                m.warm_aws_calls.to_string(),
                "0".into(),
                Some(m.warm_aws_calls == 0),
                "—".into(),
            ));
        }
        match &self.cold {
            Ok(cold) => {
                let hello = cold.iter().find(|c| c.function == HELLO);
                for c in cold
                    .iter()
                    .filter(|c| c.function != HELLO && !is_before(&c.function))
                {
                    rows.push((
                        format!("Init (cold start) of `{}` ÷ hello-world", c.function),
                        format!(
                            "{:.2}× ({:.1} ms vs {:.1} ms)",
                            c.ratio_to_hello,
                            c.init_median_ms,
                            hello.map_or(0.0, |h| h.init_median_ms)
                        ),
                        "≤ 1.5×".into(),
                        Some(c.ratio_to_hello <= INIT_RATIO_BUDGET),
                        format!(
                            "published hello-world init, arm64: Rust {:.1} ms, Python {:.1} ms, Node.js {:.1} ms",
                            PUBLISHED[0].1, PUBLISHED[1].1, PUBLISHED[2].1
                        ),
                    ));
                }
            }
            Err(e) => rows.push((
                "Init (cold start)".into(),
                format!("not measured: {e}"),
                "≤ 1.5×".into(),
                None,
                "—".into(),
            )),
        }
        match &self.packages {
            Ok(p) => {
                for s in &p.sizes {
                    let before = OPT3_ZIPPED
                        .iter()
                        .find(|(f, _)| *f == s.function)
                        .map(|(_, b)| format!("opt-level 3 build: {} B", thousands(*b)))
                        .unwrap_or_default();
                    rows.push((
                        format!("Zipped arm64 package of `{}`", s.function),
                        format!(
                            "{} B ({:.2} MiB)",
                            thousands(s.zipped),
                            s.zipped as f64 / 1048576.0
                        ),
                        "≤ 5 MiB".into(),
                        Some(s.zipped <= PACKAGE_BUDGET_BYTES),
                        before,
                    ));
                }
            }
            Err(e) => rows.push((
                "Zipped arm64 packages".into(),
                format!("not measured: {e}"),
                "≤ 5 MiB".into(),
                None,
                "—".into(),
            )),
        }
        match &self.sweep {
            Ok(s) => {
                rows.push((
                    format!(
                        "Sweep: most token writes in any 1-second window ({} connections)",
                        thousands(s.connections as u64)
                    ),
                    format!(
                        "{} (Zoom grants: {})",
                        s.max_writes_any_window, s.max_grants_any_window
                    ),
                    format!("≤ REFRESH_TPS = {}", s.refresh_tps),
                    Some(
                        s.max_writes_any_window <= s.refresh_tps as usize
                            && s.max_grants_any_window <= s.refresh_tps as usize,
                    ),
                    "—".into(),
                ));
                rows.push((
                    format!(
                        "Sweep: time for {} refreshes",
                        thousands(s.connections as u64)
                    ),
                    format!("{:.1} s ({} refreshed)", s.sweep_secs, s.report.refreshed),
                    format!("≤ 1.1 × N / TPS = {:.1} s", s.budget_secs),
                    Some(
                        s.sweep_secs <= s.budget_secs
                            && s.report.refreshed as usize == s.connections,
                    ),
                    format!(
                        "ideal pace N / TPS = {:.1} s",
                        s.connections as f64 / f64::from(s.refresh_tps)
                    ),
                ));
            }
            Err(e) => rows.push((
                "Sweep".into(),
                format!("not measured: {e}"),
                "≤ REFRESH_TPS; ≤ 1.1 × N / TPS".into(),
                None,
                "—".into(),
            )),
        }
        match &self.listing {
            Ok(l) => {
                let largest = l.sizes.iter().copied().max().unwrap_or(0);
                let at = |size: usize| l.pages.iter().filter(move |p| p.table_size == size);
                let max_calls = at(largest).map(|p| p.calls).max().unwrap_or(0);
                let max_items = at(largest).map(|p| p.items_read).max().unwrap_or(0);
                let flat = l.sizes.iter().all(|&size| {
                    at(size).all(|p| {
                        p.calls <= 2 * usize::from(LIST_SHARDS)
                            && p.items_read <= 3 * crate::listing::PAGE as u64
                    })
                });
                rows.push((
                    format!(
                        "Listing: DynamoDB calls / items read per page of {} ({} connections, any depth, with or without status)",
                        crate::listing::PAGE,
                        thousands(largest as u64)
                    ),
                    format!("≤ {max_calls} / ≤ {max_items}"),
                    format!(
                        "flat: ≤ {} / ≤ {}",
                        2 * LIST_SHARDS,
                        3 * crate::listing::PAGE
                    ),
                    Some(flat),
                    l.scans
                        .iter()
                        .rev()
                        .map(|s| {
                            format!(
                                "full scan: {} calls / {} items",
                                s.calls,
                                thousands(s.items_read)
                            )
                        })
                        .next()
                        .unwrap_or_else(|| "—".into()),
                ));
            }
            Err(e) => rows.push((
                "Listing".into(),
                format!("not measured: {e}"),
                "flat per page".into(),
                None,
                "—".into(),
            )),
        }
        match &self.function_memory {
            Ok(m) => rows.push((
                format!(
                    "Peak RSS of the `actions` function after {} queued invocations (Runtime API emulator)",
                    m.invocations
                ),
                format!("{:.1} MiB", mib(m.after_load.hwm_kib)),
                "≤ 40 MiB".into(),
                Some(mib(m.after_load.hwm_kib) <= MEMORY_BUDGET_MIB),
                format!(
                    "published Rust hello world: {PUBLISHED_RUST_MEMORY_MB} MB max memory used{}",
                    self.hello_memory()
                ),
            )),
            Err(e) => rows.push((
                "Peak RSS of the `actions` function".into(),
                format!("not measured: {e}"),
                "≤ 40 MiB".into(),
                None,
                "—".into(),
            )),
        }
        if let Ok(s) = &self.stack_memory {
            rows.push((
                format!(
                    "Peak RSS of the local stack (stand-in, every router in one process) under {} concurrent actions",
                    s.concurrency
                ),
                format!("{:.1} MiB", mib(s.after.hwm_kib)),
                "≤ 40 MiB".into(),
                Some(mib(s.after.hwm_kib) <= MEMORY_BUDGET_MIB),
                "—".into(),
            ));
        }
        rows
    }

    /// The hello-world baseline's peak memory measured in this run, if any.
    fn hello_memory(&self) -> String {
        match &self.cold {
            Ok(cold) => cold
                .iter()
                .find(|c| c.function == HELLO)
                .map(|h| format!("; hello-lambda here: {:.1} MiB", h.hwm_mib_median))
                .unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// A few lines for the terminal.
    pub fn summary_text(&self) -> String {
        let mut out = String::new();
        for (figure, measured, budget, ok, _) in self.rows() {
            let mark = match ok {
                Some(true) => "ok     ",
                Some(false) => "OUTSIDE",
                None => "n/a    ",
            };
            let _ = writeln!(out, "{mark} {figure}: {measured} (budget {budget})");
        }
        out
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_run(&mut out);
        self.render_summary(&mut out);
        self.render_overhead(&mut out);
        self.render_cold(&mut out);
        self.render_packages(&mut out);
        self.render_sweep(&mut out);
        self.render_listing(&mut out);
        self.render_memory(&mut out);
        self.render_outside(&mut out);
        self.render_limits(&mut out);
        out
    }

    fn render_run(&self, out: &mut String) {
        let m = &self.machine;
        let _ = writeln!(out, "# Benchmarks\n");
        let _ = writeln!(
            out,
            "Written by `make bench` (`scripts/bench.sh`, which builds the release binaries and runs \
             `zoom-bench run` from `infra/bench`). Rerun it rather than editing this file; \
             `scripts/bench.sh --quick` is the short version. Budgets are those of DESIGN.md \
             (\"Performance budget\"). A benchmark, not a test: nothing fails on a time.\n"
        );
        let _ = writeln!(out, "## Run\n");
        let _ = writeln!(out, "| | |\n|---|---|");
        let _ = writeln!(out, "| Date (UTC) | {} |", m.date);
        let _ = writeln!(
            out,
            "| Commit | `{}` (plus the working tree at that moment) |",
            m.commit
        );
        let _ = writeln!(out, "| CPU | {} |", m.cpu);
        let _ = writeln!(out, "| Cores | {} |", m.cores);
        let _ = writeln!(out, "| Memory | {} |", m.memory);
        let _ = writeln!(out, "| Kernel | {} |", m.kernel);
        let _ = writeln!(out, "| Release profile | `{}` |", m.release_profile);
        let _ = writeln!(
            out,
            "| Mode | {} (sweep of {} connections, {} cold starts per binary) |",
            if self.settings.quick { "quick" } else { "full" },
            thousands(self.settings.sweep_n as u64),
            self.settings.cold_rounds
        );
        let loads = self
            .loads
            .iter()
            .map(|(at, l)| format!("{at}: {l}"))
            .collect::<Vec<_>>()
            .join("; ");
        let _ = writeln!(out, "| Load average (1/5/15 min) | {loads} |");
        let _ = writeln!(
            out,
            "| Duration of the measurements | {:.0} s |",
            self.total_secs
        );
        let build = std::env::var("BENCH_BUILD_SECS").map_or_else(
            |_| "not timed (zoom-bench run directly)".to_owned(),
            |s| {
                format!(
                    "{s} s (`cargo build --release` in scripts/bench.sh, before the measurements)"
                )
            },
        );
        let _ = writeln!(out, "| Release build | {build} |\n");
        let _ = writeln!(
            out,
            "The machine is shared with other builds: a load average well above 0 means the figures \
             carry noise from them; ratios and same-run comparisons (connector vs direct vs nginx, \
             function vs hello-world) hold up better than absolute times.\n"
        );
    }

    fn render_summary(&self, out: &mut String) {
        let _ = writeln!(out, "## Summary\n");
        let _ = writeln!(out, "| Figure | Measured | Budget | Verdict | Reference |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for (figure, measured, budget, ok, reference) in self.rows() {
            let v = ok.map_or("not measured", verdict);
            let _ = writeln!(
                out,
                "| {figure} | {measured} | {budget} | {v} | {reference} |"
            );
        }
        let _ = writeln!(out);
    }

    fn render_overhead(&self, out: &mut String) {
        let _ = writeln!(out, "## Action overhead\n");
        let _ = writeln!(
            out,
            "One load generator (in `zoom-bench`, reqwest with kept-alive connections) sends the same \
             Zoom call several ways, interleaved request by request from every worker so all paths see \
             the same moments and the same load:\n\n\
             - **direct**: `GET /v2/users/me` at the Zoom simulator with the connection's access token;\n\
             - **connector**: `GET /connections/{{id}}/zoom/me` on the release `zoom-connector-local` \
             binary (every router, `--store aws`: Secrets Manager and DynamoDB on moto), which checks \
             the API key, takes the cached token and calls the same simulator;\n\
             - **nginx** (reference): Debian's nginx on loopback proxying to the same simulator URL with a \
             fixed `Authorization` header and kept-alive upstream connections;\n\
             - **connector (before)**, when present: the same route on an older build of \
             `zoom-connector-local` (`BENCH_BEFORE_STACK`) with its own connection, Zoom user and \
             moto resources, for a before/after of the old route in the same moments;\n\
             - **direct list** and **connector list**: the same comparison for a catalogue list action, \
             `GET /v2/users/me/meetings?page_size=30` against `GET /connections/{{id}}/zoom/meetings?page_size=30` \
             (the query checked against Zoom's schema, the answer re-shaped behind a cursor).\n\n\
             The simulator runs in the bench process; nginx and each connector path in a process of its own \
             (with its own connection and Zoom user), so no path queues behind another's requests. \
             A warm-up of 300 requests per path comes first (caches filled, connections open). The \
             connector's AWS endpoint is a counting proxy in front of moto: every request reaching moto \
             during the measured runs is counted.\n"
        );
        match &self.overhead {
            Ok(o) => {
                for level in &o.result.levels {
                    let _ = writeln!(
                        out,
                        "**Concurrency {}** ({:.1} s):\n",
                        level.concurrency, level.wall_secs
                    );
                    let _ = writeln!(
                        out,
                        "| Path | Requests | Errors | p50 | p90 | p99 | Added p50 | Added p90 | Added p99 |"
                    );
                    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
                    for p in &level.paths {
                        let (a50, a90, a99) = if p.name.starts_with("direct") {
                            ("—".to_owned(), "—".to_owned(), "—".to_owned())
                        } else {
                            added(level, p.name).map_or_else(
                                || ("?".into(), "?".into(), "?".into()),
                                |(a, b, c)| (signed_ms(a), signed_ms(b), signed_ms(c)),
                            )
                        };
                        let _ = writeln!(
                            out,
                            "| {} | {} | {} | {} | {} | {} | {a50} | {a90} | {a99} |",
                            p.name,
                            p.latency.count,
                            p.errors,
                            ms(p.latency.p50_us),
                            ms(p.latency.p90_us),
                            ms(p.latency.p99_us)
                        );
                    }
                    let _ = writeln!(out);
                }
                let _ = writeln!(
                    out,
                    "AWS calls that reached moto during the {} measured connector actions: **{}** ({}).\n",
                    o.result.connector_actions, o.result.aws_calls, o.result.aws_operations
                );
                if let Some(note) = &o.result.nginx {
                    let _ = writeln!(out, "nginx reference: {note}.\n");
                }
                if let Some(binary) = &o.before_stack {
                    let _ = writeln!(out, "connector (before): `{binary}`.\n");
                }
            }
            Err(e) => {
                let _ = writeln!(out, "Not measured: {e}\n");
            }
        }
    }

    pub fn render_cold(&self, out: &mut String) {
        let _ = writeln!(out, "## Cold start\n");
        let _ = writeln!(
            out,
            "`zoom-bench` carries a minimal Lambda Runtime API (`GET /2018-06-01/runtime/invocation/next`, \
             `POST .../invocation/{{id}}/response` and `/error`, `POST /2018-06-01/runtime/init/error`). For \
             each cold start it queues one invocation, starts the function's x86_64 release binary \
             (`target/release/<fn>`, same profile as the arm64 packages) with a clean environment as \
             Lambda sets it for a custom runtime (`AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`, \
             `..._MEMORY_SIZE`, `..._VERSION`, `..._LOG_GROUP_NAME`, `..._LOG_STREAM_NAME`, `AWS_REGION`, \
             credentials, `AWS_ENDPOINT_URL` to moto through the counting proxy) plus the function's own \
             variables from template.yaml, and measures **init** = exec until the first `next` poll (where \
             Lambda's `Init Duration` ends) and the first invocation (delivery until the answer). \
             The baseline is `hello-lambda` from the same crate: `lambda_runtime::run` of an echo \
             handler under `#[tokio::main]`, built in the same `cargo build --release`. One untimed round \
             warms the page cache; then {} rounds, each starting every binary once in a rotating order. \
             Medians are reported; the ratio is median ÷ hello-world's median.\n",
            self.settings.cold_rounds
        );
        let _ = writeln!(
            out,
            "First invocations: `connect` POST /connect/sessions (API key), `callback` GET /oauth/callback with \
             an unknown state, `actions` GET /healthz, `webhooks` a signed `endpoint.url_validation`, `refresh` a \
             scheduled event (the sweep finds nothing due), `meeting-events` an SQS batch of one meeting for a \
             seeded connection (the simulator creates it).\n"
        );
        match &self.cold {
            Ok(cold) => {
                let _ = writeln!(
                    out,
                    "| Binary | Init median | min | max | × hello | 1st invocation median | VmHWM | AWS calls in init | AWS calls in 1st invocation | 1st answer |"
                );
                let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
                for c in cold {
                    let _ = writeln!(
                        out,
                        "| `{}` | {:.1} ms | {:.1} | {:.1} | {:.2}× | {:.1} ms | {:.1} MiB | {} | {} | {} |",
                        c.function,
                        c.init_median_ms,
                        c.init_min_ms,
                        c.init_max_ms,
                        c.ratio_to_hello,
                        c.first_invocation_median_ms,
                        c.hwm_mib_median,
                        c.init_aws_calls,
                        c.first_invocation_aws_calls,
                        c.outcome
                    );
                }
                let _ = writeln!(out);
            }
            Err(e) => {
                let _ = writeln!(out, "Not measured: {e}\n");
            }
        }
        let _ = writeln!(
            out,
            "Published reference ({PUBLISHED_SOURCE}). These are measured on Lambda itself and include \
             the platform's share of init; the bench's figures are process start on this machine, so \
             compare ratios, not milliseconds:\n"
        );
        let _ = writeln!(out, "| Hello world | arm64 | x86_64 |\n|---|---|---|");
        for (runtime, arm, x86) in PUBLISHED {
            let _ = writeln!(out, "| {runtime} | {arm:.1} ms | {x86:.1} ms |");
        }
        let _ = writeln!(out);
        self.render_breakdown(out);
        self.render_instructions(out);
    }

    fn render_breakdown(&self, out: &mut String) {
        let b = match &self.init_breakdown {
            Ok(b) => b,
            Err(e) => {
                let _ = writeln!(out, "Init breakdown not measured: {e}\n");
                return;
            }
        };
        let _ = writeln!(
            out,
            "Where a function's init goes: the steps of `zoom_connector::wiring::lambda::init` and the actions router, \
             timed one by one in fresh processes with the `actions` function's environment \
             (`zoom-bench init-probe`, median of {} runs each; process start and the tokio runtime are in \
             hello-world's figure too), then the process's first AWS request (DynamoDB `DescribeTable` on moto \
             over HTTP, where the SDK builds its TLS connector and parses the roots it trusts). **product** is \
             the code as it is: the SDK's HTTPS client trusts the five Amazon Trust Services roots compiled in \
             (plus `AWS_CA_BUNDLE`'s certificates when set; `shared/src/adapters/aws_http.rs`), the Zoom client \
             the Mozilla roots of `webpki-roots`, already parsed; the SDK builds its TLS connector on the first \
             request, not once more per client at construction; region and credentials come from the \
             environment when it holds them (`aws_env.rs`) rather than through the default chains. **system** \
             is the SDK configuration as it was before issue 18: `aws_config`'s default client, which reads and \
             parses the system CA certificates (the bundle and every file of /etc/ssl/certs) while it loads, \
             and the default region and credentials chains (which build an STS and an IMDS client). **mozilla** is product with the SDK \
             trusting the whole Mozilla set (118 roots; as PEM, the only form the SDK takes) instead of the \
             Amazon roots.\n",
            b.runs
        );
        let _ = write!(out, "| Step |");
        for v in &b.variants {
            let _ = write!(out, " {v} |");
        }
        let _ = writeln!(out, "\n|---|{}", "---|".repeat(b.variants.len()));
        for (step, times) in &b.steps {
            let _ = write!(out, "| {step} |");
            for t in times {
                let _ = write!(out, " {t:.2} ms |");
            }
            let _ = writeln!(out);
        }
        let _ = write!(out, "| **init total** |");
        for t in b.totals() {
            let _ = write!(out, " **{t:.2} ms** |");
        }
        let _ = write!(out, "\n| first AWS request after init |");
        for t in &b.first_request {
            let _ = write!(out, " {t:.2} ms |");
        }
        let _ = writeln!(out, "\n");
        let client = |name: &str| b.step(name, "product").unwrap_or(0.0);
        let savings = FUNCTION_CLIENTS
            .iter()
            .map(|(function, unused)| {
                let saved: f64 = unused.iter().map(|c| client(c)).sum();
                if unused.is_empty() {
                    format!("`{function}` 0 (uses all three)")
                } else {
                    format!(
                        "`{function}` {saved:.2} ms (no {})",
                        unused
                            .iter()
                            .map(|c| c.trim_start_matches("SDK client: "))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "Each function building only the SDK clients it uses (its IAM policy in template.yaml names the \
             services it calls) would save the steps of the clients it does not use: {savings}. The clients \
             cost {:.2} ms (Secrets Manager, the first, pays for shared setup), {:.2} ms (DynamoDB) and \
             {:.2} ms (EventBridge) here.\n",
            client("SDK client: Secrets Manager"),
            client("SDK client: DynamoDB"),
            client("SDK client: EventBridge"),
        );
    }

    fn render_instructions(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "Instructions of init, counted by callgrind (`valgrind --tool=callgrind`: user-space instructions, \
             the same from run to run where times are not; this machine's VM has no hardware counters for \
             `perf stat`): each binary started with the environment above but a closed port as the Runtime \
             API, so it runs its init, fails its first poll and exits (hello-world the same way); page faults of \
             the same run outside valgrind (`perf stat -e page-faults`), and the dynamic relocations the loader \
             applies (`.rela.dyn`, `readelf`). Size is the x86_64 release binary (stripped) the cold starts \
             ran. Rows marked (before), when present, are an older build's binaries (`BENCH_BEFORE_BIN_DIR`, or \
             `zoom-bench cold --before-bin-dir`) measured in the same way.\n"
        );
        match &self.instructions {
            Ok(rows) => {
                let hello = rows
                    .iter()
                    .find(|r| r.binary == HELLO)
                    .and_then(|r| r.instructions);
                let _ = writeln!(
                    out,
                    "| Binary | Instructions | × hello | Page faults | Relocations | Size |\n|---|---|---|---|---|---|"
                );
                for r in rows {
                    let count = r.instructions.map_or("not measured".into(), thousands);
                    let ratio = match (r.instructions, hello) {
                        (Some(n), Some(h)) if h > 0 => format!("{:.2}×", n as f64 / h as f64),
                        _ => "—".into(),
                    };
                    let _ = writeln!(
                        out,
                        "| `{}` | {count} | {ratio} | {} | {} | {} |",
                        r.binary,
                        r.page_faults.map_or("—".into(), thousands),
                        r.relocations.map_or("—".into(), thousands),
                        thousands(r.size_bytes)
                    );
                }
                let _ = writeln!(out);
            }
            Err(e) => {
                let _ = writeln!(out, "Not measured: {e}\n");
            }
        }
        if !self.probe_instructions.is_empty() {
            let _ = writeln!(
                out,
                "The init probe under callgrind (`zoom-bench init-probe --variant … --no-request`, the whole \
                 process, the probe's own start included):\n\n| Variant | Instructions |\n|---|---|"
            );
            for (variant, count) in &self.probe_instructions {
                let _ = writeln!(
                    out,
                    "| {variant} | {} |",
                    count.map_or("not measured".into(), thousands)
                );
            }
            let _ = writeln!(out);
        }
    }

    pub fn render_packages(&self, out: &mut String) {
        let _ = writeln!(out, "## Package size\n");
        match &self.packages {
            Ok(p) => {
                let _ = writeln!(
                    out,
                    "`scripts/package-sizes.sh`: each function's arm64 `bootstrap` from `target/lambda/<fn>/` \
                     (built by `cargo lambda build --release --arm64`, `scripts/build.sh`), zipped with \
                     deflate level 9 as the deployment package. Newest bootstrap built {}; the release \
                     profile at bench time is `{}` (this bench does not rebuild arm64: a build takes about \
                     ten minutes here). The opt-level 3 column is the build before opt-level = \"s\".\n",
                    p.built, self.machine.release_profile
                );
                let _ = writeln!(
                    out,
                    "| Function | bootstrap | zipped | opt-level 3 zipped | budget |\n|---|---|---|---|---|"
                );
                for s in &p.sizes {
                    let before = OPT3_ZIPPED
                        .iter()
                        .find(|(f, _)| *f == s.function)
                        .map_or("—".into(), |(_, b)| thousands(*b));
                    let _ = writeln!(
                        out,
                        "| `{}` | {} | {} | {} | {} |",
                        s.function,
                        thousands(s.bootstrap),
                        thousands(s.zipped),
                        before,
                        verdict(s.zipped <= PACKAGE_BUDGET_BYTES)
                    );
                }
                let _ = writeln!(out);
            }
            Err(e) => {
                let _ = writeln!(out, "Not measured: {e}\n");
            }
        }
    }

    fn render_sweep(&self, out: &mut String) {
        let _ = writeln!(out, "## Sweep rate\n");
        let _ = writeln!(
            out,
            "In the bench process: a `Connector` on the embedded store (SQLite, as the local stack uses) whose \
             secret store is wrapped to note the moment of every `put_secret`, and the Zoom simulator with \
             its token endpoint delayed by 150 ms (`set_latency(FaultTarget::Token, 150 ms)`). N users get real \
             tokens through the simulator's authorize + code exchange; their records and secrets are written \
             straight through the store's ports, all due. Then one `run_sweep` with `REFRESH_TPS=40` (deadline \
             far enough not to cut it short). Writes per second are checked in every sliding one-second window \
             (the strictest reading) by the moment each write was issued, which is what the pacer governs and \
             what Secrets Manager's request quota counts; the moment each write was stored (issue + the \
             store's latency) is shown too. Zoom's grants are checked the same way from \
             `sim.refresh_grant_times()`.\n"
        );
        match &self.sweep {
            Ok(s) => {
                let _ = writeln!(out, "| | |\n|---|---|");
                let _ = writeln!(
                    out,
                    "| Due connections (N) | {} |",
                    thousands(s.connections as u64)
                );
                let _ = writeln!(
                    out,
                    "| Seeding (tokens + records + secrets) | {:.1} s |",
                    s.seed_secs
                );
                let _ = writeln!(
                    out,
                    "| Sweep report | scanned {}, refreshed {}, skipped {}, failed {} |",
                    s.report.scanned, s.report.refreshed, s.report.skipped, s.report.failed
                );
                let _ = writeln!(
                    out,
                    "| Token writes / Zoom grants | {} / {} |",
                    s.writes, s.grants
                );
                let _ = writeln!(
                    out,
                    "| Most writes in any 1-s window (in one calendar second) | {} ({}) |",
                    s.max_writes_any_window, s.max_writes_whole_second
                );
                let _ = writeln!(
                    out,
                    "| Most writes in any 1-s window by the moment each was stored | {} |",
                    s.max_stored_any_window
                );
                let _ = writeln!(
                    out,
                    "| Most Zoom grants in any 1-s window | {} |",
                    s.max_grants_any_window
                );
                let _ = writeln!(
                    out,
                    "| Mean writes per second | {:.2} |",
                    s.mean_writes_per_sec
                );
                let _ = writeln!(
                    out,
                    "| Sweep time / budget 1.1 × N / TPS | {:.1} s / {:.1} s |\n",
                    s.sweep_secs, s.budget_secs
                );
            }
            Err(e) => {
                let _ = writeln!(out, "Not measured: {e}\n");
            }
        }
    }

    /// The listing section alone (also what `zoom-bench listing` prints).
    pub fn render_listing(&self, out: &mut String) {
        let _ = writeln!(out, "## Listing connections\n");
        let _ = writeln!(
            out,
            "`GET /connections` pages come from two sparse GSIs of the connections table: `list-index` \
             (hash `list_shard`, {LIST_SHARDS} shards from a hash of the id; range `id`) and `list-status-index` \
             (hash `{{status}}#{{shard}}`; range `id`). A page queries every shard of one index with \
             `id > :after` and a small `Limit`, merges them in id order and reads on in a shard only when \
             its buffer runs out. On moto, in the bench process: the records are seeded with \
             `BatchWriteItem` (the items `put_connection` writes), one in five `needs_reauth`, the rest \
             `active`; pages of {} are read through `DynamoConnectionStore::list_page` at two table sizes. \
             Calls are the requests the counting proxy saw during the page; items read are the queries' \
             `ScannedCount`, which read units are charged on. Times are moto's: its `Query` walks the whole \
             table in Python, so they grow with the table here, unlike on DynamoDB where a query reads only \
             what it returns. The last column group is the listing before the indexes: one filtered `Scan` \
             of the whole table per page.\n",
            crate::listing::PAGE
        );
        match &self.listing {
            Ok(l) => {
                let _ = writeln!(
                    out,
                    "Seeding: {:.0} s; `active` share {:.0} %.\n",
                    l.seed_secs,
                    l.active_share * 100.0
                );
                let _ = writeln!(
                    out,
                    "| Table size | Page | Returned | DynamoDB calls | Items read | Median time (moto) |\n|---|---|---|---|---|---|"
                );
                for p in &l.pages {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | {} | {:.0} ms |",
                        thousands(p.table_size as u64),
                        p.page,
                        p.returned,
                        p.calls,
                        p.items_read,
                        p.median_ms
                    );
                }
                for s in &l.scans {
                    let _ = writeln!(
                        out,
                        "| {} | before: one page by a filtered `Scan` | {} | {} | {} | {:.0} ms |",
                        thousands(s.table_size as u64),
                        crate::listing::PAGE,
                        s.calls,
                        thousands(s.items_read),
                        s.secs * 1000.0
                    );
                }
                let _ = writeln!(out);
            }
            Err(e) => {
                let _ = writeln!(out, "Not measured: {e}\n");
            }
        }
    }

    fn render_memory(&self, out: &mut String) {
        let _ = writeln!(out, "## Memory\n");
        let _ = writeln!(
            out,
            "Peak resident memory is `VmHWM` from `/proc/<pid>/status`. **The function**: the release `actions` \
             binary under the Runtime API emulator, AWS on moto, gets 64 invocations of \
             `GET /connections/{{id}}/zoom/me` queued at once. A Lambda container hands a function one \
             invocation at a time (64 concurrent requests are 64 containers), so this is the memory one \
             container needs for a cold action followed by warm ones. **The stand-in**: the release local \
             stack (every router in one process, AWS adapters on moto) serving 64 truly concurrent actions, \
             an upper bound for a single process.\n"
        );
        match &self.function_memory {
            Ok(m) => {
                let _ = writeln!(out, "| `actions` function | |\n|---|---|");
                let _ = writeln!(
                    out,
                    "| VmHWM after init / after {} invocations | {:.1} MiB / {:.1} MiB |",
                    m.invocations,
                    mib(m.after_init.hwm_kib),
                    mib(m.after_load.hwm_kib)
                );
                let _ = writeln!(
                    out,
                    "| VmRSS after the invocations | {:.1} MiB |",
                    mib(m.after_load.rss_kib)
                );
                let _ = writeln!(out, "| Answers | {} |", m.statuses);
                let _ = writeln!(
                    out,
                    "| First (cold) action | {:.1} ms; AWS calls: {} |",
                    m.cold_action_ms, m.cold_action_aws_calls
                );
                let _ = writeln!(
                    out,
                    "| Warm actions | median {:.2} ms; AWS calls in all {} of them: {} |\n",
                    m.warm_action_median_ms,
                    m.invocations - 1,
                    m.warm_aws_calls
                );
            }
            Err(e) => {
                let _ = writeln!(out, "Function not measured: {e}\n");
            }
        }
        match &self.stack_memory {
            Ok(s) => {
                let _ = writeln!(out, "| Local stack (stand-in) | |\n|---|---|");
                let _ = writeln!(
                    out,
                    "| VmHWM after start + connect / after the load | {:.1} MiB / {:.1} MiB |",
                    mib(s.baseline.hwm_kib),
                    mib(s.after.hwm_kib)
                );
                let _ = writeln!(
                    out,
                    "| Load | {} actions from {} concurrent workers, {} errors; p50 {}, p99 {} |",
                    s.requests,
                    s.concurrency,
                    s.errors,
                    ms(s.latency.p50_us),
                    ms(s.latency.p99_us)
                );
                if let Ok(o) = &self.overhead {
                    let _ = writeln!(
                        out,
                        "| VmHWM of the overhead run's stack (up to 32 concurrent) | {:.1} MiB |",
                        mib(o.stack_memory.hwm_kib)
                    );
                }
                let _ = writeln!(out);
            }
            Err(e) => {
                let _ = writeln!(out, "Stand-in not measured: {e}\n");
            }
        }
    }

    fn render_outside(&self, out: &mut String) {
        let _ = writeln!(out, "## Figures outside their budget\n");
        let outside: Vec<_> = self
            .rows()
            .into_iter()
            .filter(|r| r.3 == Some(false))
            .collect();
        if outside.is_empty() {
            let _ = writeln!(out, "None in this run.\n");
            return;
        }
        for (figure, measured, budget, _, _) in &outside {
            let _ = writeln!(out, "- {figure}: {measured} (budget {budget})");
        }
        let _ = writeln!(out);
        let _ = write!(out, "{}", crate::report::analysis(self));
    }

    fn render_limits(&self, out: &mut String) {
        let _ = writeln!(out, "## What this bench does not measure\n");
        let _ = writeln!(
            out,
            "- Lambda itself: cold starts here are process starts on an x86_64 host (the packages are \
             arm64); Lambda adds fetching and unpacking the package and starting the sandbox, which grow \
             with package size. The hello-world ratio cancels the shared part, not that.\n\
             - Real AWS latency: moto answers on loopback in about a millisecond; a first invocation's \
             Secrets Manager and DynamoDB calls take longer on AWS.\n\
             - Real Zoom: the simulator answers at once (the sweep adds 150 ms to the token endpoint on \
             purpose).\n\
             - The arm64 binaries' speed: they are built but cannot run on this x86_64 machine.\n"
        );
    }
}

/// Why figures are outside their budget, from what this run measured.
pub fn analysis(report: &Report) -> String {
    let mut out = String::new();
    if let Ok(p) = &report.packages {
        let over: Vec<_> = p
            .sizes
            .iter()
            .filter(|s| s.zipped > PACKAGE_BUDGET_BYTES)
            .collect();
        if !over.is_empty() {
            let _ = writeln!(
                out,
                "**Package size.** Over: {}. `actions` and `meeting-events` are the two functions that \
                 link `jsonschema` (the meeting-body validation against Zoom's published schema in \
                 `services/actions.rs`, with its regex engines) and are about 1 MB (zipped) larger than the \
                 other four. Tried: `opt-level = \"s\"` instead of 3 (see the table); `lto = \"fat\"`, \
                 `codegen-units = 1`, `strip`, `panic = \"abort\"` were already on. What would bring them under: \
                 validating meeting bodies without a general JSON Schema engine (typed serde structs for the \
                 fields Zoom checks, or a schema compiled to code at build time), so `jsonschema`, \
                 `fancy-regex` and `regex` drop out of these two binaries.\n",
                over.iter()
                    .map(|s| format!("`{}` {} B", s.function, thousands(s.zipped)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    if let Ok(cold) = &report.cold {
        let over: Vec<_> = cold
            .iter()
            .filter(|c| {
                c.function != HELLO
                    && !is_before(&c.function)
                    && c.ratio_to_hello > INIT_RATIO_BUDGET
            })
            .collect();
        let hello = cold.iter().find(|c| c.function == HELLO);
        if let (false, Some(hello)) = (over.is_empty(), hello) {
            let _ = write!(
                out,
                "**Init.** Over: {}. Hello-world is ready in {:.1} ms; the functions need {:.1}–{:.1} ms \
                 and make no AWS call during init (the counting proxy saw none), so the extra is CPU spent \
                 building clients.",
                over.iter()
                    .map(|c| format!("`{}` {:.2}×", c.function, c.ratio_to_hello))
                    .collect::<Vec<_>>()
                    .join(", "),
                hello.init_median_ms,
                over.iter()
                    .map(|c| c.init_median_ms)
                    .fold(f64::INFINITY, f64::min),
                over.iter().map(|c| c.init_median_ms).fold(0.0, f64::max),
            );
            if let Ok(b) = &report.init_breakdown {
                let totals = b.totals();
                let product = totals.first().copied().unwrap_or(0.0);
                let subscriber = b.step("log subscriber", "product").unwrap_or(0.0);
                let sdk = b.step("SDK configuration", "product").unwrap_or(0.0);
                let clients: f64 = ["Secrets Manager", "DynamoDB", "EventBridge"]
                    .iter()
                    .filter_map(|c| b.step(c, "product"))
                    .sum();
                let least = over
                    .iter()
                    .map(|c| c.init_median_ms)
                    .fold(f64::INFINITY, f64::min);
                let outside = (least - hello.init_median_ms - product).max(0.0);
                let _ = writeln!(
                    out,
                    " The probe times `lambda::init` at {product:.2} ms in all: the SDK configuration \
                     {sdk:.2} ms, the three SDK clients {clients:.2} ms, the log subscriber {subscriber:.2} ms. \
                     That leaves about {outside:.1} ms of the smallest function's extra outside `lambda::init`: \
                     loading a binary that links the SDK, rustls and axum (see the sizes and instruction counts \
                     above: more pages to fault in and relocate, more static initialisation) before `main` runs.\n"
                );
            } else {
                let _ = writeln!(out);
            }
            let rust = PUBLISHED[0].1;
            let extra =
                over.iter().map(|c| c.init_median_ms).fold(0.0, f64::max) - hello.init_median_ms;
            let _ = writeln!(
                out,
                "For scale: on Lambda a Rust hello world's init is {rust:.1} ms (arm64, published), most of it \
                 the platform's; the same {extra:.1} ms of extra work on top would be about {:.1}× that (a rough \
                 estimate: Graviton cores and this machine's differ). The budget compares against the hello \
                 world of the same run, where the platform's share is absent, which makes it strict.\n",
                (rust + extra) / rust
            );
        }
    }
    if let Ok(s) = &report.sweep
        && s.max_writes_any_window > s.refresh_tps as usize
    {
        let _ = writeln!(
            out,
            "**Sweep pace.** {} writes were issued within one second (REFRESH_TPS = {}). The pacer spaces \
             slots by 1/TPS (rounded up), so more than TPS issued writes in a window means a write went out \
             without a slot: look at the refresh paths that call `write_tokens` outside `SweepPace`.\n",
            s.max_writes_any_window, s.refresh_tps
        );
    }
    if let Ok(o) = &report.overhead {
        for level in &o.result.levels {
            if let Some((p50, _, _)) = added(level, "connector")
                && p50 > OVERHEAD_BUDGET_US
            {
                let nginx = added(level, "nginx")
                    .map(|(n, _, _)| {
                        format!(
                            " nginx, doing far less, adds {} at the same moments.",
                            signed_ms(n)
                        )
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "**Overhead at concurrency {}.** The connector adds {} at p50.{nginx} With {} workers on {} \
                     the load generator, the simulator, the connector process and nginx share two cores: every \
                     path queues for CPU, and the connector path, which takes two loopback hops and one more \
                     process, queues twice.\n",
                    level.concurrency,
                    signed_ms(p50),
                    level.concurrency,
                    report.machine.cores
                );
            }
        }
    }
    out
}
