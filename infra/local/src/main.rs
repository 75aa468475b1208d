//! `zoom-connector-local`: the whole connector as one process (see docs/architecture.md).

mod stack;

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StoreKind {
    /// The embedded durable store in the data dir (SQLite).
    Local,
    /// The real AWS adapters (set AWS_ENDPOINT_URL to use moto).
    Aws,
}

/// Runs every HTTP function on one port, the refresh sweep on a timer, meeting events from an
/// in-process queue, and (without ZOOM_CLIENT_ID) a built-in Zoom simulator.
#[derive(Debug, Parser)]
#[command(name = "zoom-connector-local", version)]
pub struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Where the embedded store, the API key and the webhook token live.
    #[arg(long, default_value = "./.connector-data")]
    pub data_dir: PathBuf,
    #[arg(long, value_enum, default_value = "local")]
    pub store: StoreKind,
    /// Seconds between scheduled sweeps.
    #[arg(long, default_value_t = 600)]
    pub sweep_interval: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    zoom_connector::telemetry::init_local();
    match stack::run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
