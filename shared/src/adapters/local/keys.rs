//! The local stack's master key for envelope encryption: 32 random bytes in
//! `<data dir>/pending-tokens.key` (mode 0600, created once, shared by every process on the
//! data dir), wrapping data keys with AES-256-GCM as KMS would. It protects the pending-token
//! copy in `connector.db` against a copy of the database alone, not against someone who can
//! read the whole data directory (which holds the secrets in clear anyway). An in-memory twin
//! serves unit tests.

use std::path::Path;

use async_trait::async_trait;

use crate::domain::error::StoreError;
use crate::ports::{DataKey, DataKeys, KeyBytes, StoreResult};
use crate::sealed;

const KEY_FILE: &str = "pending-tokens.key";

pub struct LocalDataKeys {
    master: KeyBytes,
}

impl LocalDataKeys {
    /// The data directory's master key, created on first use.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(KEY_FILE);
        let io = |e: std::io::Error| StoreError::Other(format!("{}: {e}", path.display()));
        if !path.exists() {
            // Written beside, then linked into place: a racing process either wins the link
            // or reads the winner's complete key.
            let tmp = data_dir.join(format!("{KEY_FILE}.{}", uuid::Uuid::new_v4().simple()));
            write_private(&tmp, &hex::encode(sealed::random_key().as_ref())).map_err(io)?;
            let linked = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(io)?);
        let bytes = zeroize::Zeroizing::new(
            hex::decode(text.trim())
                .map_err(|_| StoreError::Other(format!("{} is corrupt", path.display())))?,
        );
        let master: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Other(format!("{} is corrupt", path.display())))?;
        Ok(Self {
            master: KeyBytes::new(master),
        })
    }

    /// A master key that lives as long as this value (unit tests).
    pub fn in_memory() -> Self {
        Self {
            master: sealed::random_key(),
        }
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[async_trait]
impl DataKeys for LocalDataKeys {
    fn configured(&self) -> bool {
        true
    }

    async fn generate(&self, context: &str) -> StoreResult<DataKey> {
        let plaintext = sealed::random_key();
        let wrapped = sealed::seal(&self.master, context.as_bytes(), plaintext.as_ref());
        Ok(DataKey { plaintext, wrapped })
    }

    async fn unwrap_key(&self, wrapped: &[u8], context: &str) -> StoreResult<KeyBytes> {
        let bytes = sealed::open(&self.master, context.as_bytes(), wrapped)
            .ok_or_else(|| StoreError::Other("a wrapped data key does not open".into()))?;
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Other("a wrapped data key is not 256 bits".into()))?;
        Ok(KeyBytes::new(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn processes_on_one_data_dir_share_the_master_key() {
        let dir = tempfile::tempdir().unwrap();
        let a = LocalDataKeys::open(dir.path()).unwrap();
        let b = LocalDataKeys::open(dir.path()).unwrap();
        let key = a.generate("ctx").await.unwrap();
        let opened = b.unwrap_key(&key.wrapped, "ctx").await.unwrap();
        assert_eq!(opened.as_ref(), key.plaintext.as_ref());
        assert!(
            b.unwrap_key(&key.wrapped, "other").await.is_err(),
            "context bound"
        );
        assert!(
            LocalDataKeys::in_memory()
                .unwrap_key(&key.wrapped, "ctx")
                .await
                .is_err()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
