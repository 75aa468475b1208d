//! `zoom-sim --port N`: the Zoom simulator with its default app, for `make dev` and manual tests.

use std::net::SocketAddr;

use clap::Parser;
use zoom_sim::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimConfig, ZoomSim};

#[derive(Parser, Debug)]
#[command(
    name = "zoom-sim",
    about = "Simulates Zoom's OAuth and REST API on 127.0.0.1"
)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where `POST /_sim/deauthorize` delivers the signed `app_deauthorized` webhook.
    #[arg(long, env = "ZOOM_SIM_WEBHOOK_TARGET")]
    webhook_target: Option<String>,
    /// Secret token the webhooks are signed with.
    #[arg(long, env = "ZOOM_WEBHOOK_SECRET_TOKEN", hide_env_values = true)]
    webhook_secret_token: Option<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let sim = ZoomSim::with_defaults_and_config(SimConfig {
        webhook_target: args.webhook_target,
        webhook_secret_token: args.webhook_secret_token,
        ..SimConfig::default()
    });
    let running = sim
        .start_on(SocketAddr::from(([127, 0, 0, 1], args.port)))
        .await?;
    println!("zoom-sim listening on {}", running.base_url);
    println!("  client_id={DEFAULT_CLIENT_ID} client_secret={DEFAULT_CLIENT_SECRET}");
    println!(
        "  oauth: {}  api: {}  control: {}/_sim/",
        running.oauth_url(),
        running.api_url(),
        running.base_url
    );
    shutdown_signal().await;
    running.shutdown().await;
    Ok(())
}

/// SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
