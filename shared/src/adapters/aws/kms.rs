//! KMS: the master key of the connector's envelope encryption (`PENDING_TOKENS_KEY_ID`).
//! `GenerateDataKey` (AES-256) gives a data key and its wrapped form, `Decrypt` unwraps one;
//! both carry the encryption context `purpose = <context>`, which `Decrypt` must repeat.

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;

use super::sdk::{classify, own_retry_partition};
use crate::domain::error::StoreError;
use crate::ports::{DataKey, DataKeys, KeyBytes, StoreResult};

#[derive(Clone, Debug)]
pub struct KmsDataKeys {
    client: aws_sdk_kms::Client,
    key_id: Option<String>,
}

impl KmsDataKeys {
    /// `key_id`: a key id, ARN or alias; `None` when the deployment declares none.
    pub fn new(sdk: &aws_config::SdkConfig, key_id: Option<String>) -> Self {
        Self {
            client: aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(sdk)
                    .retry_partition(own_retry_partition("kms"))
                    .build(),
            ),
            key_id,
        }
    }

    fn key_id(&self) -> StoreResult<&str> {
        self.key_id
            .as_deref()
            .ok_or_else(|| StoreError::Other("PENDING_TOKENS_KEY_ID is not set".into()))
    }
}

fn key_bytes(bytes: &[u8]) -> StoreResult<KeyBytes> {
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Other("KMS returned a data key that is not 256 bits".into()))?;
    Ok(KeyBytes::new(array))
}

#[async_trait]
impl DataKeys for KmsDataKeys {
    fn configured(&self) -> bool {
        self.key_id.is_some()
    }

    async fn generate(&self, context: &str) -> StoreResult<DataKey> {
        let out = self
            .client
            .generate_data_key()
            .key_id(self.key_id()?)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context("purpose", context)
            .send()
            .await
            .map_err(|e| classify("kms GenerateDataKey", &e))?;
        let plaintext = key_bytes(out.plaintext().map(Blob::as_ref).unwrap_or_default())?;
        let wrapped = out
            .ciphertext_blob()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| StoreError::Other("KMS returned no wrapped data key".into()))?;
        Ok(DataKey { plaintext, wrapped })
    }

    async fn unwrap_key(&self, wrapped: &[u8], context: &str) -> StoreResult<KeyBytes> {
        let out = self
            .client
            .decrypt()
            .key_id(self.key_id()?)
            .ciphertext_blob(Blob::new(wrapped))
            .encryption_context("purpose", context)
            .send()
            .await
            .map_err(|e| classify("kms Decrypt", &e))?;
        key_bytes(out.plaintext().map(Blob::as_ref).unwrap_or_default())
    }
}
