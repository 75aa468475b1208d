//! Zoom webhooks: signature check, URL validation, deauthorization.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::tokens::LEASE_SECS;
use super::{Connector, events};
use crate::domain::{ConnectionStatus, ZoomIdentity, connection_secret_name, identity_key};
use crate::error::ApiError;
use crate::ports::ItemKind;
use crate::secret::{SecretString, sha256_hex};

/// Deliveries older (or newer) than this are refused.
pub const MAX_SKEW_SECS: i64 = 300;
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

#[derive(Deserialize)]
struct Envelope {
    event: String,
    #[serde(default)]
    payload: serde_json::Value,
}

#[derive(Deserialize)]
struct Deauthorization {
    account_id: String,
    user_id: String,
    client_id: String,
}

impl Connector {
    /// Handles one delivery and counts its outcome (`WebhookDeliveries`). Any authentication
    /// failure is a bare 401.
    pub async fn handle_webhook(
        &self,
        timestamp: Option<&str>,
        signature_header: Option<&str>,
        body: &[u8],
    ) -> Result<serde_json::Value, ApiError> {
        let result = self.webhook(timestamp, signature_header, body).await;
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

    async fn webhook(
        &self,
        timestamp: Option<&str>,
        signature_header: Option<&str>,
        body: &[u8],
    ) -> Result<serde_json::Value, ApiError> {
        let denied = || {
            ApiError::new(
                http::StatusCode::UNAUTHORIZED,
                "invalid_signature",
                "The webhook could not be authenticated.",
            )
        };
        let (Some(ts), Some(sig)) = (timestamp, signature_header) else {
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
        // release a wrapped difference that would pass as fresh).
        let skew = self
            .now_unix()
            .checked_sub(ts_secs)
            .and_then(i64::checked_abs);
        if skew.is_none_or(|s| s > MAX_SKEW_SECS) {
            return Err(denied());
        }
        let keys = self.connector_keys().await?;
        let tokens: Vec<&SecretString> = keys.webhook_tokens().collect();
        if tokens.is_empty() {
            tracing::error!("no webhook secret token is configured; refusing webhooks");
            return Err(denied());
        }
        // During a rotation either token may have signed; the one that did answers the
        // URL validation (it is the one Zoom holds).
        let Some(signer) = tokens
            .iter()
            .copied()
            .find(|t| SecretString::new(signature(t, ts, body)).ct_eq(sig.trim()))
        else {
            tracing::warn!("webhook with a bad signature");
            return Err(denied());
        };
        let envelope: Envelope = serde_json::from_slice(body)
            .map_err(|_| ApiError::validation("The webhook body is not a Zoom event."))?;
        match envelope.event.as_str() {
            "endpoint.url_validation" => {
                let plain = envelope.payload["plainToken"]
                    .as_str()
                    .filter(|p| !p.is_empty() && p.len() <= 256)
                    .ok_or_else(|| ApiError::validation("`payload.plainToken` is missing."))?;
                Ok(
                    serde_json::json!({ "plainToken": plain, "encryptedToken": hmac_hex(signer, plain.as_bytes()) }),
                )
            }
            "app_deauthorized" => {
                let d: Deauthorization =
                    serde_json::from_value(envelope.payload).map_err(|_| {
                        ApiError::validation(
                            "`app_deauthorized` without account_id, user_id and client_id.",
                        )
                    })?;
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
            other => {
                tracing::debug!(event = other, "webhook event acknowledged");
                Ok(serde_json::json!({ "status": "ignored" }))
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
        // Hold the refresh lease, so a refresh running elsewhere cannot write tokens back or
        // mark the connection active again after this revocation.
        let lease = self.hold_refresh_lease(&id).await;
        let result = self.revoke_connection(&id, &key).await;
        if let Some(version) = lease
            && let Err(e) = self
                .store
                .delete_item(ItemKind::Lease, &id, Some(version))
                .await
        {
            // It expires on its own.
            tracing::warn!(connection_id = %id, error = %e, "could not release the refresh lease");
        }
        result.map(|()| Some(id))
    }

    /// Takes the connection's refresh lease, waiting briefly for a refresh in progress. `None`
    /// when it could not be had in time: revocation goes ahead anyway (Zoom expects an answer
    /// within seconds), and Zoom refuses the revoked tokens regardless.
    async fn hold_refresh_lease(&self, id: &str) -> Option<u64> {
        let deadline = tokio::time::Instant::now() + LEASE_WAIT;
        loop {
            let now = self.now_unix();
            let value = serde_json::json!({ "owner": &*self.instance_id, "at": now, "purpose": "deauthorize" });
            match self
                .store
                .create_item(ItemKind::Lease, id, &value, Some(now + LEASE_SECS), now)
                .await
            {
                Ok(true) => {
                    return self
                        .store
                        .get_item(ItemKind::Lease, id, now)
                        .await
                        .ok()
                        .flatten()
                        .filter(|i| i.value == value)
                        .map(|i| i.version);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(connection_id = id, error = %e, "could not take the refresh lease");
                    return None;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    connection_id = id,
                    "revoking while a refresh holds the lease"
                );
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn revoke_connection(&self, id: &str, identity: &str) -> Result<(), ApiError> {
        self.secrets
            .delete_secret(&connection_secret_name(&self.config.aws.secrets_prefix, id))
            .await?;
        self.tokens.forget(id);
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
        self.store
            .delete_item(ItemKind::Identity, identity, None)
            .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
    use crate::adapters::local::LocalStore;
    use crate::config::Config;

    const TOKEN: &str = "webhook-secret-token";

    struct Fixture {
        connector: Connector,
        rt: tokio::runtime::Runtime,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_lookup(|_| None, Some("http://127.0.0.1:3000")).unwrap();
        let connector = Connector::local(config, LocalStore::open(dir.path()).unwrap());
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
            prop_assert_eq!(e.code, "invalid_signature");
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
