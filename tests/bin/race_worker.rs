//! A separate OS process for the refresh-race tests (tests/e2e/refresh.rs): it builds its own
//! connector on the shared store, exactly as a Lambda container or a second local stack
//! would, waits for a common start moment, fires concurrent `GET /users/me` actions for one
//! connection, and prints one JSON line `{ "ok", "failures": [..] }`.
//!
//! Usage: `race_worker <connection_id> <requests> <start_at_unix_millis>` with the connector's
//! configuration in the environment, plus `RACE_BACKEND=local` and `RACE_DATA_DIR` for the
//! embedded store, or `RACE_BACKEND=aws` and the standard AWS variables (moto).
//!
//! Two more modes serve the crash tests (tests/e2e/faults.rs), which kill the process with
//! SIGKILL in the middle of its work:
//! - `race_worker refresh <connection_id>`: one forced refresh; prints `{ "ok", "error"? }`.
//! - `race_worker event <message_body>`: one meeting event; prints `{ "outcome" }`.
//!
//! With `RACE_HANG_AT=token_write` the worker stops for good just before storing a
//! connection's new tokens (Zoom has already rotated them); with
//! `RACE_HANG_AT=meeting_published` just before publishing `Zoom Meeting Created` (Zoom has
//! created the meeting, the idempotency record is not yet done). It prints
//! `hang: <point>` first, so the test knows when to kill it.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use e2e_tests::fakes::{BeforeSecretWrite, HookedSecrets, SecretWrite};
use zoom_connector::adapters::local::LocalStore;
use zoom_connector::app::actions::ZoomCall;
use zoom_connector::app::tokens::TokenNeed;
use zoom_connector::app::{Connector, events};
use zoom_connector::config::Config;
use zoom_connector::ports::{EventBus, StoreResult};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, mode, id] if mode == "refresh" => forced_refresh(id).await,
        [_, mode, body] if mode == "event" => meeting_event(body).await,
        [_, id, requests, start_at] => race(id, requests, start_at).await,
        _ => {
            eprintln!(
                "usage: race_worker <connection_id> <requests> <start_at_unix_millis>\n       \
                 race_worker refresh <connection_id>\n       race_worker event <message_body>"
            );
            std::process::exit(2);
        }
    }
}

/// The connector of this process, on the backend the environment names.
async fn connector() -> Connector {
    let config = Config::from_env().expect("connector configuration");
    let mut connector = match std::env::var("RACE_BACKEND").as_deref() {
        Ok("aws") => zoom_connector::wiring::aws_connector(config).await,
        _ => {
            let dir = std::env::var("RACE_DATA_DIR").expect("RACE_DATA_DIR");
            let store = LocalStore::open(std::path::Path::new(&dir)).expect("open the store");
            zoom_connector::wiring::local_connector(config, store)
        }
    };
    match std::env::var("RACE_HANG_AT").as_deref() {
        Ok("token_write") => {
            connector.secrets = Arc::new(HookedSecrets {
                inner: connector.secrets.clone(),
                hook: HangBeforeTokenWrite,
            });
        }
        Ok("meeting_published") => {
            connector.bus = Arc::new(HangBeforeMeetingPublished(connector.bus.clone()));
        }
        _ => {}
    }
    connector
}

/// Tells the test where the worker stopped, then never returns.
async fn hang(point: &str) {
    println!("hang: {point}");
    std::io::stdout().flush().ok();
    std::future::pending::<()>().await;
}

/// Stops before a connection's tokens are written (other secrets pass).
struct HangBeforeTokenWrite;

#[async_trait]
impl BeforeSecretWrite for HangBeforeTokenWrite {
    async fn before(&self, name: &str, write: SecretWrite) -> StoreResult<()> {
        if write == SecretWrite::Update && name.contains("/connections/") {
            hang("token_write").await;
        }
        Ok(())
    }
}

/// Stops before `Zoom Meeting Created` is published (other events pass).
struct HangBeforeMeetingPublished(Arc<dyn EventBus>);

#[async_trait]
impl EventBus for HangBeforeMeetingPublished {
    async fn publish(&self, detail_type: &str, detail: &serde_json::Value) -> StoreResult<()> {
        if detail_type == events::MEETING_CREATED {
            hang("meeting_published").await;
        }
        self.0.publish(detail_type, detail).await
    }
}

async fn forced_refresh(id: &str) {
    let connector = connector().await;
    let outcome = connector.obtain_token(id, TokenNeed::Always).await;
    match outcome {
        Ok(_) => println!("{}", serde_json::json!({ "ok": true })),
        Err(e) => println!("{}", serde_json::json!({ "ok": false, "error": e.code })),
    }
}

async fn meeting_event(body: &str) {
    let connector = connector().await;
    let outcome = connector.process_meeting_event(body).await;
    println!(
        "{}",
        serde_json::json!({ "outcome": format!("{outcome:?}") })
    );
}

async fn race(id: &str, requests: &str, start_at: &str) {
    let requests: usize = requests.parse().expect("a request count");
    let start_at: u64 = start_at.parse().expect("a start time in unix millis");
    let connector = connector().await;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let wait = Duration::from_millis(start_at).saturating_sub(now);
    tokio::time::sleep(wait).await;

    let calls = (0..requests).map(|_| {
        let connector = connector.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            match connector.call_zoom(&id, &ZoomCall::get("/users/me")).await {
                Ok(r) if r.status == 200 => Ok(()),
                Ok(r) => Err(format!("zoom status {}", r.status)),
                Err(e) => Err(format!("{} {}", e.status.as_u16(), e.code)),
            }
        })
    });
    let mut ok = 0;
    let mut failures = Vec::new();
    for outcome in futures::future::join_all(calls).await {
        match outcome {
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(format!("task failed: {e}")),
        }
    }
    println!("{}", serde_json::json!({ "ok": ok, "failures": failures }));
}
