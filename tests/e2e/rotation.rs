//! API-key rotation through the HTTP front, on both backends: during a rotation the new and
//! the previous key both work, and once `previous_api_key` is removed only the new one does.
//! `CONNECTOR_KEYS_MAX_AGE_SECS=1` stands for the 60 s default so the test need not wait.

use std::time::Duration;

use e2e_tests::stack::{Backend, StackOptions, TestStack};
use serde_json::json;
use zoom_connector::app::keys::UNKNOWN_KEY_RECHECK;
use zoom_connector::secret::SecretString;

e2e_tests::on_both_backends!(
    rotation_local, rotation_aws;
    previous_api_key_works_until_removed,
);

async fn put_keys(stack: &TestStack, keys: serde_json::Value) {
    let request_token = zoom_connector::secret::random_token(16);
    stack
        .connector
        .secrets
        .put_secret(
            &stack.connector.config.aws.connector_secret_id,
            &SecretString::new(keys.to_string()),
            &request_token,
        )
        .await
        .unwrap();
}

async fn status_with(stack: &TestStack, key: &str) -> u16 {
    stack
        .http
        .get(stack.url("/connections"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn previous_api_key_works_until_removed(backend: Backend) {
    let stack =
        TestStack::start(StackOptions::new(backend).env("CONNECTOR_KEYS_MAX_AGE_SECS", "1")).await;
    let old = stack.api_key.clone();
    let new = zoom_connector::secret::random_token(24);
    assert_eq!(status_with(&stack, &old).await, 200);
    assert_eq!(status_with(&stack, &new).await, 401);

    // Step 1: the new key in, the old one kept as previous.
    put_keys(
        &stack,
        json!({ "api_key": new, "previous_api_key": old, "webhook_secret_token": stack.webhook_secret }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        assert_eq!(status_with(&stack, &new).await, 200, "the new key");
        assert_eq!(status_with(&stack, &old).await, 200, "the previous key");
        assert_eq!(status_with(&stack, "not-a-key").await, 401);
    }
    // A container started during the rotation takes both too.
    let other = stack.another_container();
    assert!(other.check_api_key(&new).await.unwrap());
    assert!(other.check_api_key(&old).await.unwrap());

    // Step 2: previous removed; after the cache's age only the new key works.
    put_keys(
        &stack,
        json!({ "api_key": new, "webhook_secret_token": stack.webhook_secret }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(status_with(&stack, &old).await, 401, "the old key is gone");
    assert_eq!(status_with(&stack, &new).await, 200);
    let r = stack
        .http
        .get(stack.url("/connections"))
        .bearer_auth(&old)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let body = r.text().await.unwrap();
    assert!(!body.contains(&old) && !body.contains(&new), "{body}");
    assert!(UNKNOWN_KEY_RECHECK <= Duration::from_secs(10));
}
