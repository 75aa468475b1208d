//! A separate OS process for the refresh-race tests (tests/e2e/refresh.rs): it builds its own
//! connector on the shared store, exactly as a Lambda container or a second local stack
//! would, waits for a common start moment, fires concurrent `GET /users/me` actions for one
//! connection, and prints one JSON line `{ "ok", "failures": [..] }`.
//!
//! Usage: `race_worker <connection_id> <requests> <start_at_unix_millis>` with the connector's
//! configuration in the environment, plus `RACE_BACKEND=local` and `RACE_DATA_DIR` for the
//! embedded store, or `RACE_BACKEND=aws` and the standard AWS variables (moto).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zoom_connector::adapters::local::LocalStore;
use zoom_connector::config::Config;
use zoom_connector::services::Connector;
use zoom_connector::services::actions::ZoomCall;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, id, requests, start_at] = args.as_slice() else {
        eprintln!("usage: race_worker <connection_id> <requests> <start_at_unix_millis>");
        std::process::exit(2);
    };
    let requests: usize = requests.parse().expect("a request count");
    let start_at: u64 = start_at.parse().expect("a start time in unix millis");
    let config = Config::from_env().expect("connector configuration");
    let connector = match std::env::var("RACE_BACKEND").as_deref() {
        Ok("aws") => Connector::aws(config).await,
        _ => {
            let dir = std::env::var("RACE_DATA_DIR").expect("RACE_DATA_DIR");
            let store = LocalStore::open(std::path::Path::new(&dir)).expect("open the store");
            Connector::local(config, store)
        }
    };

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let wait = Duration::from_millis(start_at).saturating_sub(now);
    tokio::time::sleep(wait).await;

    let calls = (0..requests).map(|_| {
        let connector = connector.clone();
        let id = id.clone();
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
