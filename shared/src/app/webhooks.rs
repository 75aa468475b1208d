//! Zoom webhooks: signature check, URL validation, deauthorization, and triggers (every other
//! event, published once per delivery as `Zoom Webhook Event`).

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::{Connector, events};
use crate::domain::error::{ApiError, ErrorCode};
use crate::domain::{ConnectionStatus, ZoomIdentity, connection_secret_name, identity_key};
use crate::ports::ItemKind;
use crate::secret::{SecretString, sha256_hex};
use crate::zoom::profile;

/// Deliveries older (or newer) than this are refused, except trigger events (below).
pub const MAX_SKEW_SECS: i64 = 300;

/// A validly signed trigger event is accepted this long after its timestamp: Zoom's retries
/// (about 5, 20 and 60 minutes after the first attempt) may keep the first delivery's
/// `x-zm-request-timestamp`. Safe because the deduplication record outlives it: a replay is
/// published at most once.
pub const MAX_TRIGGER_AGE_SECS: i64 = 2 * 3600;

/// How long a delivery is remembered as published.
pub const DELIVERY_TTL_SECS: i64 = 24 * 3600;

/// A claim of a process that crashed while publishing is taken over after this long.
pub const DELIVERY_CLAIM_SECS: i64 = 30;

/// The bus gets this long; Zoom wants its answer within 3 s.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// EventBridge refuses entries over 256 KB: above this the detail goes without `payload`
/// (and with `payload_truncated: true`).
pub const MAX_DETAIL_BYTES: usize = 240 * 1024;

/// How long a deauthorization waits for a refresh in progress to finish.
const LEASE_WAIT: Duration = Duration::from_secs(2);

fn hmac_hex(key: &SecretString, message: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()).expect("HMAC takes any key length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// `v0=` + hex HMAC-SHA256(token, `v0:{timestamp}:{body}`).
pub fn signature(token: &SecretString, timestamp: &str, body: &[u8]) -> String {
    let mut message = format!("v0:{timestamp}:").into_bytes();
    message.extend_from_slice(body);
    format!("v0={}", hmac_hex(token, &message))
}

/// The app a delivery was sent to: the platform app (`/webhooks/zoom`) or a bring-your-own app
/// (`/webhooks/zoom/apps/{client_id}`).
#[derive(Debug, Clone, Copy)]
pub enum WebhookApp<'a> {
    Platform,
    Byo(&'a str),
}

/// The headers of one delivery (see [`profile`] for their names).
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookHeaders<'a> {
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub tracking_id: Option<&'a str>,
}

#[derive(Deserialize)]
struct Envelope {
    event: String,
    #[serde(default)]
    event_ts: Option<serde_json::Number>,
    #[serde(default)]
    payload: serde_json::Value,
}

#[derive(Deserialize)]
struct Deauthorization {
    account_id: String,
    user_id: String,
    client_id: String,
    #[serde(default)]
    deauthorization_time: Option<String>,
}

fn denied() -> ApiError {
    ApiError::new(
        http::StatusCode::UNAUTHORIZED,
        ErrorCode::InvalidSignature,
        "The webhook could not be authenticated.",
    )
}

impl Connector {
    /// Handles one delivery to the platform app's route. Any authentication failure is a bare
    /// 401.
    pub async fn handle_webhook(
        &self,
        timestamp: Option<&str>,
        signature_header: Option<&str>,
        body: &[u8],
    ) -> Result<serde_json::Value, ApiError> {
        let headers = WebhookHeaders {
            timestamp,
            signature: signature_header,
            tracking_id: None,
        };
        self.handle_app_webhook(WebhookApp::Platform, headers, body)
            .await
    }

    /// Handles one delivery for `app`. Any authentication failure is a bare 401.
    pub async fn handle_app_webhook(
        &self,
        app: WebhookApp<'_>,
        headers: WebhookHeaders<'_>,
        body: &[u8],
    ) -> Result<serde_json::Value, ApiError> {
        let result = self.app_webhook(app, headers, body).await;
        let outcome = match &result {
            Ok(answer) => match answer["status"].as_str() {
                Some("duplicate") => "duplicate",
                Some("ignored") => "ignored",
                Some("published") => "published",
                _ => "handled",
            },
            Err(e) if e.status.is_client_error() => "rejected",
            Err(_) => "failed",
        };
        self.count(crate::metrics::Metric::WebhookDeliveries, Some(outcome));
        result
    }

    async fn app_webhook(
        &self,
        app: WebhookApp<'_>,
        headers: WebhookHeaders<'_>,
        body: &[u8],
    ) -> Result<serde_json::Value, ApiError> {
        let (Some(ts), Some(sig)) = (headers.timestamp, headers.signature) else {
            return Err(denied());
        };
        let ts_value: i64 = ts.trim().parse().map_err(|_| denied())?;
        // Zoom sends seconds; accept milliseconds too.
        let ts_secs = if ts_value > 100_000_000_000 {
            ts_value / 1000
        } else {
            ts_value
        };
        // Checked: an extreme timestamp must not overflow (a panic in debug builds, and in
        // release a wrapped difference that would pass as fresh). Positive: in the past.
        let Some(age) = self.now_unix().checked_sub(ts_secs) else {
            return Err(denied());
        };
        // From the future, or older than any delivery we could accept: refused before any
        // secret is read.
        if !(-MAX_SKEW_SECS..=MAX_TRIGGER_AGE_SECS).contains(&age) {
            return Err(denied());
        }
        let verifies =
            |t: &SecretString| SecretString::new(signature(t, ts, body)).ct_eq(sig.trim());
        let mut tokens: Vec<SecretString> = match app {
            WebhookApp::Platform => self
                .connector_keys()
                .await?
                .webhook_tokens()
                .cloned()
                .collect(),
            WebhookApp::Byo(client_id) => self
                .app_webhook_token(client_id, false)
                .await?
                .into_iter()
                .collect(),
        };
        // A BYO app's token may have been stored or replaced by a connection in another
        // container since it was cached: read it again (at most once a second per app).
        if let WebhookApp::Byo(client_id) = app
            && !tokens.iter().any(verifies)
        {
            tokens = self
                .app_webhook_token(client_id, true)
                .await?
                .into_iter()
                .collect();
        }
        if tokens.is_empty() {
            match app {
                WebhookApp::Platform => {
                    tracing::error!("no webhook secret token is configured; refusing webhooks")
                }
                WebhookApp::Byo(_) => {
                    tracing::warn!("webhook for an app without a stored webhook secret token")
                }
            }
            return Err(denied());
        }
        // During a rotation either token may have signed; the one that did answers the
        // URL validation (it is the one Zoom holds).
        let Some(signer) = tokens.iter().find(|t| verifies(t)) else {
            tracing::warn!("webhook with a bad signature");
            return Err(denied());
        };
        let envelope: Envelope = serde_json::from_slice(body)
            .map_err(|_| ApiError::validation("The webhook body is not a Zoom event."))?;
        // Only trigger events may be older than five minutes (their deduplication record makes
        // a replay harmless); URL validation and deauthorization stay strict.
        if age > MAX_SKEW_SECS && !profile::is_trigger(&envelope.event) {
            return Err(denied());
        }
        match envelope.event.as_str() {
            profile::URL_VALIDATION => {
                let plain = envelope.payload["plainToken"]
                    .as_str()
                    .filter(|p| !p.is_empty() && p.len() <= 256)
                    .ok_or_else(|| ApiError::validation("`payload.plainToken` is missing."))?;
                Ok(
                    serde_json::json!({ "plainToken": plain, "encryptedToken": hmac_hex(signer, plain.as_bytes()) }),
                )
            }
            profile::APP_DEAUTHORIZED => {
                let d: Deauthorization =
                    serde_json::from_value(envelope.payload).map_err(|_| {
                        ApiError::validation(
                            "`app_deauthorized` without account_id, user_id and client_id.",
                        )
                    })?;
                // Only the app this route belongs to: a BYO app's token cannot deauthorize
                // users of another app.
                if d.client_id != self.webhook_client_id(app).await? {
                    tracing::warn!("app_deauthorized for another app than the route's; ignored");
                    return Ok(serde_json::json!({ "status": "ignored" }));
                }
                // The same delivery twice is acknowledged once.
                let now = self.now_unix();
                let delivery = format!("webhook|{}", sha256_hex(sig));
                if !self
                    .store
                    .create_item(
                        ItemKind::Idempotency,
                        &delivery,
                        &serde_json::json!({ "seen": now }),
                        Some(now + 2 * MAX_SKEW_SECS),
                        now,
                    )
                    .await?
                {
                    return Ok(serde_json::json!({ "status": "duplicate" }));
                }
                match self.deauthorize(&d).await {
                    Ok(revoked) => Ok(serde_json::json!({ "status": "ok", "revoked": revoked })),
                    Err(e) => {
                        // Zoom delivers again on a non-2xx answer: that delivery must not be
                        // taken for a duplicate of this unfinished one.
                        if let Err(forget) = self
                            .store
                            .delete_item(ItemKind::Idempotency, &delivery, None)
                            .await
                        {
                            tracing::warn!(error = %forget, "could not forget a failed webhook delivery");
                        }
                        Err(e)
                    }
                }
            }
            "" => Err(ApiError::validation("The webhook body has no `event`.")),
            _ => self.trigger(app, headers.tracking_id, envelope).await,
        }
    }

    /// The client ID of the app a route belongs to.
    async fn webhook_client_id(&self, app: WebhookApp<'_>) -> Result<String, ApiError> {
        match app {
            WebhookApp::Byo(id) => Ok(id.to_owned()),
            WebhookApp::Platform => match &self.config.platform_client_id {
                Some(id) => Ok(id.clone()),
                // The local stack and tests: the platform app's secret is at hand.
                None => Ok(self.platform_app().await?.client_id.clone()),
            },
        }
    }

    /// A trigger event: route it to the connection of the Zoom user it is about, deduplicate
    /// the delivery, publish it.
    async fn trigger(
        &self,
        app: WebhookApp<'_>,
        tracking_id: Option<&str>,
        envelope: Envelope,
    ) -> Result<serde_json::Value, ApiError> {
        let event = envelope.event.as_str();
        let payload = &envelope.payload;
        let (Some(account_id), Some(user_id)) = (
            profile::event_account_id(payload),
            profile::event_user_id(event, payload),
        ) else {
            tracing::info!(
                event,
                "webhook event without a Zoom account or user; not published"
            );
            return Ok(serde_json::json!({ "status": "ignored" }));
        };
        let client_id = self.webhook_client_id(app).await?;
        let zoom = ZoomIdentity {
            user_id: user_id.to_owned(),
            account_id: account_id.to_owned(),
            email: None,
        };
        let now = self.now_unix();
        let Some(connection_id) = self
            .store
            .get_item(ItemKind::Identity, &identity_key(&client_id, &zoom), now)
            .await?
            .and_then(|i| i.value["connection_id"].as_str().map(str::to_owned))
        else {
            tracing::info!(event, "webhook event for a Zoom user without a connection");
            return Ok(serde_json::json!({ "status": "no_connection" }));
        };

        // The delivery's identity: Zoom's tracking id, else the signed content. Both are
        // claimed: the tracking id catches a retry whose body changed, the content catches a
        // replay under another (unsigned) tracking id or the same event through two
        // subscriptions.
        let event_ts = envelope
            .event_ts
            .as_ref()
            .and_then(serde_json::Number::as_i64)
            .unwrap_or_default();
        let content_hash = sha256_hex(&format!("{event}\n{event_ts}\n{payload}"));
        let tracking_id = tracking_id
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 128 && !t.chars().any(char::is_control));
        let delivery_id = tracking_id.map_or_else(|| content_hash.clone(), str::to_owned);
        let mut keys = vec![format!("{client_id}|c|{content_hash}")];
        if let Some(t) = tracking_id {
            keys.push(format!("{client_id}|t|{}", sha256_hex(t)));
        }
        let Some(claim) = self.claim_delivery(&keys).await? else {
            tracing::info!(event, connection_id = %connection_id, "duplicate webhook delivery");
            return Ok(serde_json::json!({ "status": "duplicate" }));
        };

        let mut detail = crate::domain::WebhookEventDetail {
            connection_id: connection_id.to_string(),
            event: event.to_owned(),
            event_ts,
            account_id: account_id.to_owned(),
            zoom_user_id: user_id.to_owned(),
            delivery_id: delivery_id.clone(),
            payload: Some(profile::sanitize_payload(payload)),
            payload_truncated: false,
        };
        fit_detail(&mut detail);
        let detail = serde_json::to_value(&detail).unwrap_or_default();
        let published = tokio::time::timeout(
            PUBLISH_TIMEOUT,
            self.bus.publish(events::WEBHOOK_EVENT, &detail),
        )
        .await;
        match published {
            Ok(Ok(())) => {
                self.mark_published(&claim, &delivery_id).await;
                tracing::info!(event, connection_id = %connection_id, "webhook event published");
                Ok(serde_json::json!({ "status": "published" }))
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "the bus did not answer in time".to_owned(),
                };
                tracing::error!(event, connection_id = %connection_id, error = %why, "could not publish a webhook event; Zoom will deliver it again");
                // Let Zoom's retry publish it: a timed-out publish may still have gone
                // through, so a consumer can see it twice (same delivery_id), never zero times.
                self.release_delivery(&claim).await;
                Err(ApiError::unavailable(
                    ErrorCode::WebhookPublishFailed,
                    "The event could not be published; deliver it again.",
                ))
            }
        }
    }

    /// Claims every key of a delivery with a conditional create; `None` when another delivery
    /// holds (or has published) one of them. A claim is a short lease, so a process that
    /// crashed while publishing does not block Zoom's retry.
    async fn claim_delivery(&self, keys: &[String]) -> Result<Option<DeliveryClaim>, ApiError> {
        let now = self.now_unix();
        let value = serde_json::json!({
            "state": "claimed",
            "owner": &*self.instance_id,
            "nonce": crate::secret::random_token(8),
            "at": now,
        });
        let mut claimed = Vec::new();
        for key in keys {
            let created = self
                .store
                .create_item(
                    ItemKind::WebhookDelivery,
                    key,
                    &value,
                    Some(now + DELIVERY_CLAIM_SECS),
                    now,
                )
                .await;
            match created {
                Ok(true) => claimed.push(key.clone()),
                Ok(false) => {
                    self.release_delivery(&DeliveryClaim {
                        keys: claimed,
                        value,
                    })
                    .await;
                    return Ok(None);
                }
                Err(e) => {
                    self.release_delivery(&DeliveryClaim {
                        keys: claimed,
                        value,
                    })
                    .await;
                    return Err(e.into());
                }
            }
        }
        Ok(Some(DeliveryClaim {
            keys: claimed,
            value,
        }))
    }

    /// Turns the claims into 24-hour "published" records (only where they are still ours).
    async fn mark_published(&self, claim: &DeliveryClaim, delivery_id: &str) {
        let now = self.now_unix();
        let done =
            serde_json::json!({ "state": "published", "delivery_id": delivery_id, "at": now });
        for key in &claim.keys {
            let result = async {
                let Some(item) = self
                    .store
                    .get_item(ItemKind::WebhookDelivery, key, now)
                    .await?
                else {
                    return Ok(false);
                };
                if item.value != claim.value {
                    return Ok(false);
                }
                self.store
                    .replace_item(
                        ItemKind::WebhookDelivery,
                        key,
                        &done,
                        Some(now + DELIVERY_TTL_SECS),
                        item.version,
                    )
                    .await
            }
            .await;
            match result {
                Ok(true) => {}
                Ok(false) => tracing::warn!("a delivery claim changed hands while publishing"),
                // The claim expires on its own: a later retry could publish again (at least once).
                Err(e) => tracing::warn!(error = %e, "could not record a published delivery"),
            }
        }
    }

    /// Gives the claims up (publishing failed), where they are still ours.
    async fn release_delivery(&self, claim: &DeliveryClaim) {
        let now = self.now_unix();
        for key in &claim.keys {
            let result = async {
                match self
                    .store
                    .get_item(ItemKind::WebhookDelivery, key, now)
                    .await?
                {
                    Some(item) if item.value == claim.value => {
                        self.store
                            .delete_item(ItemKind::WebhookDelivery, key, Some(item.version))
                            .await
                    }
                    _ => Ok(false),
                }
            }
            .await;
            if let Err(e) = result {
                // It expires on its own after DELIVERY_CLAIM_SECS, before Zoom's first retry.
                tracing::warn!(error = %e, "could not release a delivery claim");
            }
        }
    }

    /// Deletes the user's tokens and marks the connection revoked.
    async fn deauthorize(&self, d: &Deauthorization) -> Result<Option<String>, ApiError> {
        let zoom = ZoomIdentity {
            user_id: d.user_id.clone(),
            account_id: d.account_id.clone(),
            email: None,
        };
        let key = identity_key(&d.client_id, &zoom);
        let now = self.now_unix();
        let Some(item) = self.store.get_item(ItemKind::Identity, &key, now).await? else {
            tracing::info!("deauthorization of a user without a connection");
            return Ok(None);
        };
        let Some(id) = item.value["connection_id"].as_str().map(str::to_owned) else {
            return Ok(None);
        };
        // A late or replayed deauthorization of an earlier authorization leaves the fresh one.
        if let Some(at) = d.deauthorization_time.as_deref().and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        }) && let Some(record) = self.store.get_connection(&id).await?
            && record
                .authorized_at
                .is_some_and(|authorized| at < authorized)
        {
            tracing::info!(connection_id = %id, "app_deauthorized older than the connection's authorization; ignored");
            return Ok(None);
        }
        // Hold the refresh lease, so a refresh running elsewhere cannot write tokens back or
        // mark the connection active again after this revocation.
        // Revocation goes ahead without it when a refresh keeps it past LEASE_WAIT (Zoom
        // expects an answer within seconds), and Zoom refuses the revoked tokens regardless.
        let lease = self
            .hold_refresh_lease(&id, "deauthorize", LEASE_WAIT)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(connection_id = %id, error = %e, "could not take the refresh lease");
                None
            });
        let result = self.revoke_connection(&id, &key).await;
        if let Some(version) = lease {
            self.release_held_lease(&id, version).await;
        }
        result.map(|()| Some(id))
    }

    async fn revoke_connection(&self, id: &str, identity: &str) -> Result<(), ApiError> {
        self.secrets
            .delete_secret(&connection_secret_name(&self.config.aws.secrets_prefix, id))
            .await?;
        self.tokens.forget(id);
        self.forget_sealed_tokens(id).await;
        let at = self.now();
        let updated = self
            .update_record(id, |r| {
                r.status = ConnectionStatus::Revoked;
                r.next_refresh_at = None;
                r.access_token_expires_at = None;
                r.last_error = Some(crate::domain::LastError {
                    code: "app_deauthorized".into(),
                    message: "The Zoom user removed the app.".into(),
                    at,
                });
            })
            .await?;
        // Gone from this process's cache too, in case a call in flight put it back.
        self.tokens.forget(id);
        self.release_identity(identity, id).await?;
        if updated.is_some() {
            self.publish(
                events::CONNECTION_REVOKED,
                serde_json::json!({ "connection_id": id, "reason": "app_deauthorized" }),
            )
            .await;
            tracing::info!(connection_id = %id, "connection revoked by the Zoom user");
        }
        Ok(())
    }
}

/// EventBridge's 256 KB: a detail above [`MAX_DETAIL_BYTES`] goes without its payload.
fn fit_detail(detail: &mut crate::domain::WebhookEventDetail) {
    let size = serde_json::to_vec(detail).map_or(usize::MAX, |v| v.len());
    if size > MAX_DETAIL_BYTES {
        detail.payload = None;
        detail.payload_truncated = true;
    }
}

/// The deduplication records one process holds for a delivery.
struct DeliveryClaim {
    keys: Vec<String>,
    value: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_too_large_for_eventbridge_goes_without_its_payload() {
        let detail = |payload: serde_json::Value| crate::domain::WebhookEventDetail {
            connection_id: "conn_1".into(),
            event: "recording.completed".into(),
            event_ts: 1,
            account_id: "acc".into(),
            zoom_user_id: "user".into(),
            delivery_id: "d".into(),
            payload: Some(payload),
            payload_truncated: false,
        };
        let mut small = detail(serde_json::json!({ "object": {} }));
        fit_detail(&mut small);
        let small = serde_json::to_value(&small).unwrap();
        assert!(small["payload"].is_object() && small.get("payload_truncated").is_none());
        let mut big =
            detail(serde_json::json!({ "object": { "topic": "x".repeat(MAX_DETAIL_BYTES) } }));
        fit_detail(&mut big);
        let big = serde_json::to_value(&big).unwrap();
        assert_eq!(big["payload"], serde_json::Value::Null);
        assert_eq!(big["payload_truncated"], true);
        assert_eq!(big["event"], "recording.completed");
        assert!(big.to_string().len() < 256 * 1024);
    }

    #[test]
    fn signature_matches_zoom_example_shape() {
        let token = SecretString::new("secret");
        let sig = signature(&token, "1700000000", br#"{"event":"x"}"#);
        assert!(sig.starts_with("v0="));
        assert_eq!(sig.len(), 3 + 64);
        assert_ne!(sig, signature(&token, "1700000001", br#"{"event":"x"}"#));
    }
}

#[cfg(test)]
mod hostile_input_tests {
    //! Arbitrary deliveries: never a panic, never a 5xx, never accepted without the signature.

    use proptest::prelude::*;

    use super::*;

    const TOKEN: &str = "webhook-secret-token";

    struct Fixture {
        connector: Connector,
        rt: tokio::runtime::Runtime,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let (connector, dir) =
            crate::wiring::test_connector(&[("PLATFORM_CLIENT_ID", "platform-client")]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let keys = serde_json::json!({ "api_key": "k", "webhook_secret_token": TOKEN });
        rt.block_on(connector.secrets.put_secret(
            &connector.config.aws.connector_secret_id,
            &SecretString::new(keys.to_string()),
            "seed",
        ))
        .unwrap();
        Fixture {
            connector,
            rt,
            _dir: dir,
        }
    }

    /// Timestamps: fresh, stale, in milliseconds, and arbitrary text and numbers.
    fn timestamp(now: i64) -> impl Strategy<Value = String> {
        prop_oneof![
            (-1000i64..1000).prop_map(move |d| (now + d).to_string()),
            (-1000i64..1000).prop_map(move |d| ((now + d) * 1000).to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            Just(i64::MIN.to_string()),
            Just(i64::MAX.to_string()),
            any::<String>(),
        ]
    }

    /// Bodies: arbitrary bytes, and Zoom-shaped events with arbitrary payloads.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        let json_leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[ -~]{0,20}".prop_map(serde_json::Value::from),
        ];
        let json = json_leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("plainToken".to_owned()),
                        Just("account_id".to_owned()),
                        Just("user_id".to_owned()),
                        Just("client_id".to_owned()),
                        "[a-z_]{1,8}"
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        });
        let event = prop_oneof![
            Just("endpoint.url_validation"),
            Just("app_deauthorized"),
            Just("meeting.started"),
            Just(""),
        ];
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            (event, json).prop_map(|(event, payload)| {
                serde_json::json!({ "event": event, "payload": payload })
                    .to_string()
                    .into_bytes()
            }),
        ]
    }

    #[test]
    fn unsigned_deliveries_are_401() {
        let f = fixture();
        let now = f.connector.now_unix();
        proptest!(ProptestConfig::with_cases(256), |(
            ts in proptest::option::of(timestamp(now)),
            sig in proptest::option::of(prop_oneof![any::<String>(), "v0=[0-9a-f]{64}"]),
            body in body(),
        )| {
            let answer = f.rt.block_on(f.connector.handle_webhook(ts.as_deref(), sig.as_deref(), &body));
            let e = answer.expect_err("no signature, no acceptance");
            prop_assert_eq!(e.status.as_u16(), 401);
            prop_assert_eq!(e.code, ErrorCode::InvalidSignature);
        });
    }

    #[test]
    fn signed_deliveries_are_answered_without_5xx() {
        let f = fixture();
        let token = SecretString::new(TOKEN);
        let now = f.connector.now_unix();
        proptest!(ProptestConfig::with_cases(256), |(ts in timestamp(now), body in body())| {
            let sig = signature(&token, &ts, &body);
            let answer = f.rt.block_on(f.connector.handle_webhook(Some(&ts), Some(&sig), &body));
            match answer {
                Ok(v) => prop_assert!(v.is_object()),
                Err(e) => prop_assert!(e.status.is_client_error(), "{} {}", e.status, e.detail),
            }
        });
    }
}
