//! Connections for the bench, made fast: real tokens from the simulator (its authorize page on
//! auto-approve, then the product's own OAuth client for the code exchange), written as a
//! record and a secret straight through a store's ports, the way the callback would.

use std::sync::Arc;

use futures::StreamExt;
use time::OffsetDateTime;
use zoom_connector::domain::{
    AuthType, ClientCredentials, ConnectionRecord, ConnectionSecret, ConnectionStatus, TokenSet,
    ZoomIdentity, connection_secret_name, new_connection_id,
};
use zoom_connector::ports::{ConnectionStore, SecretStore, ZoomOAuth};
use zoom_connector::secret::{SecretString, random_token};
use zoom_sim::{SimUser, ZoomSim};

use crate::BenchError;

/// A redirect URI on loopback, which the simulator's default app accepts; nothing listens.
const REDIRECT_URI: &str = "http://127.0.0.1:9/bench/callback";

/// A simulator user with live tokens for the platform app.
pub struct Issued {
    pub user: SimUser,
    pub tokens: TokenSet,
}

fn platform_client() -> ClientCredentials {
    ClientCredentials {
        client_id: zoom_sim::DEFAULT_CLIENT_ID.to_owned(),
        client_secret: SecretString::new(zoom_sim::DEFAULT_CLIENT_SECRET),
    }
}

/// Adds `count` users named `{prefix}-{i}` to the simulator and authorizes the platform app for
/// each: authorize (auto-approve, PKCE S256), then the code exchange, `parallel` at a time.
pub async fn issue_tokens(
    sim: &ZoomSim,
    oauth: Arc<dyn ZoomOAuth>,
    prefix: &str,
    count: usize,
    parallel: usize,
) -> Result<Vec<Issued>, BenchError> {
    sim.set_auto_approve(true);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    // Authorize one user at a time: the simulator has one signed-in browser user.
    let mut codes = Vec::with_capacity(count);
    for i in 0..count {
        let user = SimUser::new(
            &format!("{prefix}-{i}"),
            &format!("{prefix}-account-{i}"),
            &format!("{prefix}-{i}@example.com"),
            "Bench",
            &format!("User {i}"),
        );
        sim.add_user(user.clone());
        sim.set_current_user(&user.id);
        let verifier = SecretString::new(random_token(32));
        let url = oauth.authorize_url(
            zoom_sim::DEFAULT_CLIENT_ID,
            REDIRECT_URI,
            &random_token(12),
            &verifier,
        );
        let answer = http.get(&url).send().await?;
        let code = answer
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url::Url::parse(l).ok())
            .and_then(|l| {
                l.query_pairs()
                    .find(|(k, _)| k == "code")
                    .map(|(_, v)| v.into_owned())
            })
            .ok_or_else(|| {
                BenchError::new(format!(
                    "the simulator gave no code for {} (status {})",
                    user.id,
                    answer.status()
                ))
            })?;
        codes.push((user, code, verifier));
    }
    let client = platform_client();
    let results: Vec<Result<Issued, BenchError>> = futures::stream::iter(codes)
        .map(|(user, code, verifier)| {
            let (oauth, client) = (oauth.clone(), client.clone());
            async move {
                let tokens = oauth
                    .exchange_code(&client, &code, verifier.expose(), REDIRECT_URI)
                    .await
                    .map_err(|e| BenchError::new(format!("code exchange: {e}")))?;
                Ok(Issued { user, tokens })
            }
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// A connection's record and secret as the callback stores them (platform app).
pub fn connection_for(
    issued: &Issued,
    now: OffsetDateTime,
    next_refresh_at: i64,
) -> (ConnectionRecord, ConnectionSecret) {
    let record = ConnectionRecord {
        id: new_connection_id(),
        status: ConnectionStatus::Active,
        auth_type: AuthType::PlatformApp,
        client_id: zoom_sim::DEFAULT_CLIENT_ID.to_owned(),
        end_user: None,
        zoom: ZoomIdentity {
            user_id: issued.user.id.clone(),
            account_id: issued.user.account_id.clone(),
            email: Some(issued.user.email.clone()),
        },
        scopes: issued.tokens.scopes.clone(),
        access_token_expires_at: Some(issued.tokens.expires_at),
        last_refreshed_at: None,
        last_error: None,
        created_at: now,
        updated_at: now,
        authorized_at: None,
        consecutive_failures: 0,
        next_refresh_at: Some(next_refresh_at),
        version: 0,
    };
    let secret = ConnectionSecret {
        auth_type: AuthType::PlatformApp,
        client_id: zoom_sim::DEFAULT_CLIENT_ID.to_owned(),
        client_secret: None,
        access_token: issued.tokens.access_token.clone(),
        refresh_token: issued.tokens.refresh_token.clone(),
        expires_at: issued.tokens.expires_at,
        scopes: issued.tokens.scopes.clone(),
        api_url: issued.tokens.api_url.clone(),
    };
    (record, secret)
}

/// Writes a connection's secret, then its record (the callback's order).
pub async fn write_connection(
    secrets: &dyn SecretStore,
    store: &dyn ConnectionStore,
    secrets_prefix: &str,
    record: &ConnectionRecord,
    secret: &ConnectionSecret,
) -> Result<(), BenchError> {
    let value = serde_json::to_string(secret)?;
    secrets
        .put_secret(
            &connection_secret_name(secrets_prefix, &record.id),
            &SecretString::new(value),
            &format!("seed-{}", record.id),
        )
        .await
        .map_err(|e| BenchError::new(format!("write secret: {e}")))?;
    let created = store
        .put_connection(record, None)
        .await
        .map_err(|e| BenchError::new(format!("write record: {e}")))?;
    if !created {
        return Err(BenchError::new(format!(
            "record {} already existed",
            record.id
        )));
    }
    Ok(())
}
