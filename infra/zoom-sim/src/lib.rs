//! A Zoom simulator for tests and local development.
//!
//! It speaks Zoom's OAuth 2.0 (authorize with a consent page, token, revoke) and the REST
//! subset the connector uses, behaves like Zoom where clients can tell the difference
//! (rotation, re-authorization, error bodies, rate-limit headers, UUID encoding, recording
//! windows), and gives tests control (faults, latency, clock) and observation (requests,
//! counters). A control API under `/_sim/` exposes the same over HTTP.
//!
//! Every operation of Zoom's description (`shared/zoom/meetings-api-subset.openapi.json`) is
//! served, each accepting the scopes the description lists for it ([`scopes`]). Meetings in
//! progress, past meetings and AI Companion summaries are set up through the methods and
//! routes listed in the `catalogue` module (`start_meeting`, `join_participants`,
//! `end_meeting`, `add_past_meeting`, `set_meeting_summary`); `next_page_token`s (15 minutes)
//! and `download_access_token`s (`ttl`) expire on the clock [`ZoomSim::advance_clock`] moves.

// Handlers short-circuit with a finished `Response` as the error value; boxing it would only add
// noise on paths that are not hot.
#![allow(clippy::result_large_err)]

mod api;
mod catalogue;
pub mod contract;
mod control;
mod entities;
mod faults;
mod listing;
mod meeting_extras;
mod meetings;
mod oauth;
mod occurrences;
mod paging;
mod past_meetings;
mod record;
mod recording_routes;
mod recordings;
mod registrants;
mod rest;
pub mod scopes;
mod state;
mod types;
mod tz;
mod util;
pub mod webhook;
mod webinars;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use serde::Serialize;
use time::OffsetDateTime;

use state::{App, Inner, RefreshState};
pub use types::{
    Counters, Fault, FaultTarget, RecordedRequest, SimConfig, SimMeetingSummary, SimParticipant,
    SimPastMeeting, SimRecording, SimRecordingFile, SimSummaryDetail, SimUser,
};
pub use util::{needs_double_encoding, random_meeting_id, random_meeting_uuid};

/// The app `ZoomSim::with_defaults()` registers (and `make dev` uses).
pub const DEFAULT_CLIENT_ID: &str = "sim-platform-client";
pub const DEFAULT_CLIENT_SECRET: &str = "sim-platform-secret";
/// The user every simulator starts with, signed in.
pub const DEFAULT_USER_ID: &str = "sim-user-1";

/// The simulator: cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct ZoomSim {
    inner: Arc<Mutex<Inner>>,
}

/// A simulator serving on a loopback port; the server stops when this is dropped.
pub struct RunningSim {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    pub addr: SocketAddr,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSim {
    /// Base of `/oauth/authorize`, `/oauth/token`, `/oauth/revoke` (what `ZOOM_OAUTH_URL` wants).
    pub fn oauth_url(&self) -> String {
        self.base_url.clone()
    }

    /// Base of the REST API (what `ZOOM_API_URL` wants).
    pub fn api_url(&self) -> String {
        format!("{}/v2", self.base_url)
    }

    /// Stops serving (open connections of hanging requests are left to the runtime).
    pub async fn shutdown(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
            let _ = handle.await;
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

/// The live tokens of one user and app (see `ZoomSim::latest_tokens`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
}

/// What `ZoomSim::deauthorize` did.
#[derive(Clone, Debug, Serialize)]
pub struct DeauthorizeOutcome {
    /// Apps whose tokens for the user were revoked.
    pub revoked_clients: Vec<String>,
    pub webhooks: Vec<WebhookDelivery>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WebhookDelivery {
    pub client_id: String,
    pub target: String,
    /// Status the target answered, when it answered.
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl Default for ZoomSim {
    fn default() -> Self {
        Self::new(SimConfig::default())
    }
}

impl ZoomSim {
    /// A simulator with one signed-in user (`sim-user-1`, Ada Lovelace) and no apps.
    pub fn new(config: SimConfig) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner::new(config))),
        }
    }

    /// `new(SimConfig::default())` plus the default app, which accepts any loopback redirect URI.
    pub fn with_defaults() -> Self {
        Self::with_defaults_and_config(SimConfig::default())
    }

    /// `new(config)` plus the default app, which accepts any loopback redirect URI.
    pub fn with_defaults_and_config(config: SimConfig) -> Self {
        let sim = Self::new(config);
        sim.register_app(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET);
        sim.allow_loopback_redirects(DEFAULT_CLIENT_ID);
        sim
    }

    /// The state; a poisoned lock is recovered because every mutation leaves it consistent.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every route (Zoom's and `/_sim/`), without a prefix.
    pub fn router(&self) -> Router {
        let zoom = Router::new()
            .route("/oauth/authorize", get(oauth::authorize))
            .route("/oauth/authorize/decision", post(oauth::decision))
            .route("/oauth/token", post(oauth::token))
            .route("/oauth/revoke", post(oauth::revoke))
            .merge(api::routes())
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                record::record_requests,
            ));
        zoom.merge(control::routes())
            .merge(catalogue::routes())
            .with_state(self.clone())
    }

    /// Serves on `127.0.0.1` on a free port.
    pub async fn start(&self) -> std::io::Result<RunningSim> {
        self.start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Serves on `addr` (port 0 picks a free one).
    pub async fn start_on(&self, addr: SocketAddr) -> std::io::Result<RunningSim> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let router = self.router();
        let handle = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "zoom-sim server stopped");
            }
        });
        Ok(RunningSim {
            base_url: format!("http://{addr}"),
            addr,
            handle: Some(handle),
        })
    }

    // ---- apps and users -----------------------------------------------------------------

    /// Registers (or re-keys) an OAuth app. Redirect URIs are allowed separately.
    pub fn register_app(&self, client_id: &str, client_secret: &str) {
        let mut inner = self.lock();
        match inner.apps.get_mut(client_id) {
            Some(app) => client_secret.clone_into(&mut app.secret),
            None => {
                inner.apps.insert(
                    client_id.to_owned(),
                    App {
                        secret: client_secret.to_owned(),
                        redirect_uris: HashSet::new(),
                        allow_loopback: false,
                        scopes: state::DEFAULT_SCOPES
                            .iter()
                            .map(|s| (*s).to_owned())
                            .collect(),
                    },
                );
            }
        }
    }

    /// Allows one exact redirect URI for an app (ignored for unknown apps).
    pub fn allow_redirect_uri(&self, client_id: &str, redirect_uri: &str) {
        match self.lock().apps.get_mut(client_id) {
            Some(app) => {
                app.redirect_uris.insert(redirect_uri.to_owned());
            }
            None => tracing::warn!(client_id, "allow_redirect_uri for an unregistered app"),
        }
    }

    /// Allows any `http(s)` redirect URI on `127.0.0.1`, `localhost` or `[::1]` for an app.
    pub fn allow_loopback_redirects(&self, client_id: &str) {
        if let Some(app) = self.lock().apps.get_mut(client_id) {
            app.allow_loopback = true;
        }
    }

    /// The scopes an app's tokens carry (default `meeting:write recording:read user_info:read`).
    pub fn set_app_scopes(&self, client_id: &str, scopes: &[&str]) {
        if let Some(app) = self.lock().apps.get_mut(client_id) {
            app.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        }
    }

    /// Adds a user, or replaces the one with the same id.
    pub fn add_user(&self, user: SimUser) {
        self.lock().upsert_user(user);
    }

    /// The user signed in to the browser (consent page, auto-approve).
    pub fn set_current_user(&self, user_id: &str) {
        self.lock().current_user = Some(user_id.to_owned());
    }

    /// When on, `GET /oauth/authorize` answers the redirect with a code at once.
    pub fn set_auto_approve(&self, on: bool) {
        self.lock().auto_approve = on;
    }

    /// When on, consent by users of that account fails with "requires admin pre-approval".
    pub fn set_require_preapproval(&self, account_id: &str, on: bool) {
        let mut inner = self.lock();
        if on {
            inner.preapproval_accounts.insert(account_id.to_owned());
        } else {
            inner.preapproval_accounts.remove(account_id);
        }
    }

    // ---- faults -------------------------------------------------------------------------

    pub fn inject(&self, fault: Fault) {
        self.lock().add_fault(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().clear_faults();
    }

    /// Delays every request to `target` by `delay` (`Duration::ZERO` removes it).
    pub fn set_latency(&self, target: FaultTarget, delay: Duration) {
        let mut inner = self.lock();
        if delay.is_zero() {
            inner.latency.remove(&target);
        } else {
            inner.latency.insert(target, delay);
        }
    }

    /// Moves the simulator's clock forward for every expiry (codes: 5 min, access tokens: ttl,
    /// `next_page_token`s: 15 min). Recorded times stay on the wall clock.
    pub fn advance_clock(&self, by: Duration) {
        let mut inner = self.lock();
        inner.clock_offset = inner.clock_offset.saturating_add(by);
    }

    // ---- observation --------------------------------------------------------------------

    /// Every request to Zoom's routes so far, oldest first (the newest 10 000).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().recorded_requests()
    }

    pub fn counters(&self) -> Counters {
        self.lock().counters.clone()
    }

    /// Meetings that currently exist (created and not deleted).
    pub fn meetings_count(&self) -> usize {
        self.lock().meetings.len()
    }

    /// When each refresh grant that answered 200 did so.
    pub fn refresh_grant_times(&self) -> Vec<OffsetDateTime> {
        self.lock().refresh_grant_times.clone()
    }

    /// The newest live token pair of a user for an app, if any (e.g. the tokens a
    /// `RotateThenFail` issued but never delivered).
    pub fn latest_tokens(&self, user_id: &str, client_id: &str) -> Option<TokenPair> {
        let inner = self.lock();
        let (refresh_token, grant) = inner
            .refresh_tokens
            .iter()
            .filter(|(_, t)| {
                t.user_id == user_id && t.client_id == client_id && t.state == RefreshState::Active
            })
            .max_by_key(|(_, t)| t.grant)
            .map(|(token, t)| (token.clone(), t.grant))?;
        let access_token = inner
            .access_tokens
            .iter()
            .find(|(_, t)| t.grant == grant)
            .map(|(token, _)| token.clone())
            .unwrap_or_default();
        Some(TokenPair {
            access_token,
            refresh_token,
        })
    }

    /// Every issued access token now answers 401 code 124; refresh tokens keep working.
    pub fn expire_access_tokens(&self) {
        self.lock().expire_access_tokens();
    }

    /// Revokes all tokens of a user, for every app (as if re-authorized elsewhere or removed).
    pub fn revoke_user_tokens(&self, user_id: &str) {
        self.lock().revoke_user(user_id, None);
    }

    // ---- meetings and recordings --------------------------------------------------------

    /// The UUID the next created meeting gets (queue several by calling repeatedly), e.g. one
    /// starting with `/` or containing `//` to exercise double encoding.
    pub fn set_next_meeting_uuid(&self, uuid: &str) {
        self.lock().next_meeting_uuids.push_back(uuid.to_owned());
    }

    /// Adds a cloud recording of `user_id`.
    pub fn add_recording(&self, user_id: &str, recording: SimRecording) {
        self.lock().recordings.push(state::StoredRecording {
            user_id: user_id.to_owned(),
            recording,
            trashed: false,
            trashed_files: HashSet::new(),
        });
    }

    // ---- webhooks -----------------------------------------------------------------------

    /// Posts `event` to `target_url` signed like Zoom (`x-zm-request-timestamp`,
    /// `x-zm-signature: v0=hex(HMAC-SHA256(secret, "v0:{ts}:{body}"))`).
    pub async fn send_webhook(
        &self,
        target_url: &str,
        secret_token: &str,
        event: serde_json::Value,
    ) -> reqwest::Result<reqwest::Response> {
        webhook::send_signed(target_url, secret_token, &event).await
    }

    /// Zoom's `app_deauthorized` event for a user and app.
    pub fn app_deauthorized_event(&self, client_id: &str, user_id: &str) -> serde_json::Value {
        let inner = self.lock();
        let account_id = inner
            .user(user_id)
            .map(|u| u.account_id.clone())
            .unwrap_or_default();
        let secret = inner
            .apps
            .get(client_id)
            .map(|a| a.secret.clone())
            .unwrap_or_default();
        drop(inner);
        let now = OffsetDateTime::now_utc();
        let deauthorization_time = util::rfc3339(now);
        let signature = webhook::hmac_sha256_hex(
            &secret,
            format!("{account_id}:{user_id}:{client_id}:{deauthorization_time}").as_bytes(),
        );
        serde_json::json!({
            "event": "app_deauthorized",
            "event_ts": now.unix_timestamp() * 1000 + i64::from(now.millisecond()),
            "payload": {
                "account_id": account_id,
                "user_id": user_id,
                "signature": signature,
                "deauthorization_time": deauthorization_time,
                "client_id": client_id,
                "user_data_retention": "false",
            },
        })
    }

    /// A Zoom event about `user_id` (see [`webhook::trigger_event`] for the shapes).
    pub fn trigger_event(&self, event: &str, user_id: &str) -> serde_json::Value {
        let (account_id, email) = {
            let inner = self.lock();
            inner
                .user(user_id)
                .map(|u| (u.account_id.clone(), u.email.clone()))
                .unwrap_or_default()
        };
        webhook::trigger_event(event, &account_id, user_id, &email)
    }

    /// Sends a signed event about `user_id` to the configured `webhook_target` (e.g. a meeting
    /// started, a recording completed), as Zoom does for an app's event subscription.
    pub async fn send_event(&self, event: &str, user_id: &str) -> WebhookDelivery {
        let (target, secret) = {
            let inner = self.lock();
            (
                inner.config.webhook_target.clone(),
                inner.config.webhook_secret_token.clone(),
            )
        };
        let client_id = String::new();
        let (Some(target), Some(secret)) = (target, secret) else {
            return WebhookDelivery {
                client_id,
                target: String::new(),
                status: None,
                error: Some("no webhook_target / webhook_secret_token configured".into()),
            };
        };
        let event = self.trigger_event(event, user_id);
        match self.send_webhook(&target, &secret, event).await {
            Ok(r) => WebhookDelivery {
                client_id,
                target,
                status: Some(r.status().as_u16()),
                error: None,
            },
            Err(e) => WebhookDelivery {
                client_id,
                target,
                status: None,
                error: Some(e.to_string()),
            },
        }
    }

    /// The user removes the app: revokes their tokens (for `client_id`, or for every app) and,
    /// when `webhook_target` and `webhook_secret_token` are configured, sends the signed
    /// `app_deauthorized` webhook for each app affected (or for `client_id` when given).
    pub async fn deauthorize(&self, user_id: &str, client_id: Option<&str>) -> DeauthorizeOutcome {
        let (revoked_clients, target, secret) = {
            let mut inner = self.lock();
            let revoked = inner.revoke_user(user_id, client_id);
            (
                revoked,
                inner.config.webhook_target.clone(),
                inner.config.webhook_secret_token.clone(),
            )
        };
        let notify: Vec<String> = match client_id {
            Some(id) => vec![id.to_owned()],
            None => revoked_clients.clone(),
        };
        let mut webhooks = Vec::new();
        if let (Some(target), Some(secret)) = (target, secret) {
            for client in notify {
                let event = self.app_deauthorized_event(&client, user_id);
                let delivery = match self.send_webhook(&target, &secret, event).await {
                    Ok(response) => WebhookDelivery {
                        client_id: client,
                        target: target.clone(),
                        status: Some(response.status().as_u16()),
                        error: None,
                    },
                    Err(error) => WebhookDelivery {
                        client_id: client,
                        target: target.clone(),
                        status: None,
                        error: Some(error.to_string()),
                    },
                };
                webhooks.push(delivery);
            }
        }
        DeauthorizeOutcome {
            revoked_clients,
            webhooks,
        }
    }
}
