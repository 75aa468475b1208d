//! The embedded durable store of the local stack: one SQLite file in the data dir holds
//! secrets, connections, the small TTL'd records and the published events.
//!
//! Several processes may share the data dir: SQLite's WAL mode with a busy timeout lets them
//! read concurrently, and every conditional write runs in an `IMMEDIATE` transaction, which
//! takes the write lock before reading, so check-then-write is atomic across processes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::domain::error::StoreError;
use crate::domain::{ConnectionRecord, ConnectionStatus};
use crate::ports::{ConnectionStore, EventBus, Item, ItemKind, SecretStore, StoreResult};
use crate::secret::SecretString;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    request_token TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    next_refresh_at INTEGER,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    end_user_id TEXT
);

CREATE INDEX IF NOT EXISTS connections_next_refresh ON connections (next_refresh_at)
    WHERE next_refresh_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS items (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (kind, key)
);

CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    detail_type TEXT NOT NULL,
    detail TEXT NOT NULL,
    time TEXT NOT NULL
);

";

/// One published event, as `GET /local/events` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PublishedEvent {
    pub detail_type: String,
    pub detail: serde_json::Value,
    pub time: String,
}

/// SQLite-backed store implementing [`SecretStore`], [`ConnectionStore`] and [`EventBus`].
#[derive(Clone)]
pub struct LocalStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore")
            .field("path", &self.path)
            .finish()
    }
}

fn db_err(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(code, _)
            if matches!(
                code.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StoreError::Transient(e.to_string())
        }
        other => StoreError::Other(other.to_string()),
    }
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Other(format!("corrupt record: {e}"))
}

impl LocalStore {
    /// Opens (creating if needed) `connector.db` in `data_dir`; the directory is made 0700 and
    /// the database files 0600.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", data_dir.display())))?;
        restrict_permissions(data_dir, 0o700);
        let path = data_dir.join("connector.db");
        create_private_file(&path)?;
        let conn = Connection::open(&path).map_err(db_err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        migrate(&conn)?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.clone().into_os_string();
            side.push(suffix);
            restrict_permissions(Path::new(&side), 0o600);
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection off the async threads.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Other("local store lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Other(format!("local store task failed: {e}")))?
    }

    /// Every published event, oldest first.
    pub async fn events(&self) -> StoreResult<Vec<PublishedEvent>> {
        self.with(|c| {
            let mut stmt = c
                .prepare("SELECT detail_type, detail, time FROM events ORDER BY seq")
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(db_err)?;
            rows.map(|r| {
                let (detail_type, detail, time) = r.map_err(db_err)?;
                Ok(PublishedEvent {
                    detail_type,
                    detail: serde_json::from_str(&detail).map_err(json_err)?,
                    time,
                })
            })
            .collect()
        })
        .await
    }
}

/// Brings a data dir made by an older version up to the schema: the `end_user_id` column
/// (backfilled from the records' JSON) and its partial index, like the sparse GSI on AWS.
fn migrate(conn: &Connection) -> StoreResult<()> {
    let has_column: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('connections') WHERE name = 'end_user_id'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(db_err)?
        > 0;
    if !has_column {
        conn.execute_batch(
            "ALTER TABLE connections ADD COLUMN end_user_id TEXT;
             UPDATE connections SET end_user_id = json_extract(body, '$.end_user.id');",
        )
        .map_err(db_err)?;
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS connections_end_user ON connections (end_user_id, id)
             WHERE end_user_id IS NOT NULL;
         CREATE INDEX IF NOT EXISTS items_expiry ON items (kind, expires_at)
             WHERE expires_at IS NOT NULL;",
    )
    .map_err(db_err)
}

fn create_private_file(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", path.display())))?;
    }
    restrict_permissions(path, 0o600);
    Ok(())
}

fn restrict_permissions(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if path.exists() {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

fn read_connection(body: String) -> StoreResult<ConnectionRecord> {
    serde_json::from_str(&body).map_err(json_err)
}

/// Runs a `SELECT body, version FROM connections ...` and reads the records.
fn query_connections(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<ConnectionRecord>> {
    let mut stmt = c.prepare(sql).map_err(db_err)?;
    let rows = stmt
        .query_map(params, |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(db_err)?;
    rows.map(|r| {
        let (body, version) = r.map_err(db_err)?;
        let mut rec = read_connection(body)?;
        rec.version = version as u64;
        Ok(rec)
    })
    .collect()
}

#[async_trait]
impl SecretStore for LocalStore {
    async fn get_secret(&self, name: &str) -> StoreResult<Option<SecretString>> {
        let name = name.to_owned();
        self.with(move |c| {
            c.query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map(|v| v.map(SecretString::new))
            .map_err(db_err)
        })
        .await
    }

    async fn put_secret(
        &self,
        name: &str,
        value: &SecretString,
        request_token: &str,
    ) -> StoreResult<()> {
        let (name, value, token) = (
            name.to_owned(),
            value.expose().to_owned(),
            request_token.to_owned(),
        );
        self.with(move |c| {
            c.execute(
                "INSERT INTO secrets (name, value, request_token) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET value = excluded.value, request_token = excluded.request_token",
                params![name, value, token],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn update_secret(
        &self,
        name: &str,
        value: &SecretString,
        request_token: &str,
    ) -> StoreResult<bool> {
        let (name, value, token) = (
            name.to_owned(),
            value.expose().to_owned(),
            request_token.to_owned(),
        );
        self.with(move |c| {
            let changed = c
                .execute(
                    "UPDATE secrets SET value = ?2, request_token = ?3 WHERE name = ?1",
                    params![name, value, token],
                )
                .map_err(db_err)?;
            Ok(changed > 0)
        })
        .await
    }

    async fn delete_secret(&self, name: &str) -> StoreResult<()> {
        let name = name.to_owned();
        self.with(move |c| {
            c.execute("DELETE FROM secrets WHERE name = ?1", [name])
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl ConnectionStore for LocalStore {
    async fn get_connection(&self, id: &str) -> StoreResult<Option<ConnectionRecord>> {
        let id = id.to_owned();
        self.with(move |c| {
            let mut found = query_connections(
                c,
                "SELECT body, version FROM connections WHERE id = ?1",
                [id],
            )?;
            Ok(found.pop())
        })
        .await
    }

    async fn put_connection(
        &self,
        record: &ConnectionRecord,
        expected: Option<u64>,
    ) -> StoreResult<bool> {
        let mut record = record.clone();
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let current: Option<i64> = tx
                .query_row("SELECT version FROM connections WHERE id = ?1", [&record.id], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            if current.map(|v| v as u64) != expected {
                return Ok(false);
            }
            record.version = expected.map_or(1, |v| v + 1);
            let body = serde_json::to_string(&record).map_err(json_err)?;
            tx.execute(
                "INSERT INTO connections (id, status, next_refresh_at, version, body, end_user_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(id) DO UPDATE SET status = excluded.status, next_refresh_at = excluded.next_refresh_at,
                   version = excluded.version, body = excluded.body, end_user_id = excluded.end_user_id",
                params![
                    record.id,
                    record.status.as_str(),
                    record.next_refresh_at,
                    record.version as i64,
                    body,
                    record.end_user.as_ref().and_then(|u| u.id.as_deref()),
                ],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(true)
        })
        .await
    }

    async fn delete_connection(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.with(move |c| {
            c.execute("DELETE FROM connections WHERE id = ?1", [id])
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn list_connections(
        &self,
        status: Option<ConnectionStatus>,
        after_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        let after = after_id.unwrap_or("").to_owned();
        let status = status.map(|s| s.as_str().to_owned());
        self.with(move |c| {
            query_connections(
                c,
                "SELECT body, version FROM connections WHERE id > ?1 AND (?2 IS NULL OR status = ?2)
                 ORDER BY id LIMIT ?3",
                params![after, status, limit as i64],
            )
        })
        .await
    }

    async fn list_end_user_connections(
        &self,
        end_user_id: &str,
        status: Option<ConnectionStatus>,
        after_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        let end_user_id = end_user_id.to_owned();
        let after = after_id.unwrap_or("").to_owned();
        let status = status.map(|s| s.as_str().to_owned());
        self.with(move |c| {
            query_connections(
                c,
                "SELECT body, version FROM connections
                 WHERE end_user_id = ?1 AND id > ?2 AND (?3 IS NULL OR status = ?3)
                 ORDER BY id LIMIT ?4",
                params![end_user_id, after, status, limit as i64],
            )
        })
        .await
    }

    async fn due_connections(
        &self,
        due_by: i64,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        self.with(move |c| {
            query_connections(
                c,
                "SELECT body, version FROM connections WHERE next_refresh_at IS NOT NULL AND next_refresh_at <= ?1
                 ORDER BY next_refresh_at, id LIMIT ?2",
                params![due_by, limit as i64],
            )
        })
        .await
    }

    async fn get_item(&self, kind: ItemKind, key: &str, now: i64) -> StoreResult<Option<Item>> {
        let key = key.to_owned();
        self.with(move |c| read_item(c, kind, &key, now)).await
    }

    async fn create_item(
        &self,
        kind: ItemKind,
        key: &str,
        value: &serde_json::Value,
        expires_at: Option<i64>,
        now: i64,
    ) -> StoreResult<bool> {
        let (key, value) = (key.to_owned(), value.to_string());
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let existing = read_item(&tx, kind, &key, now)?;
            if existing.is_some() {
                return Ok(false);
            }
            // An expired item may still be there: the new one takes its place with a higher
            // version, so a stale holder's conditional delete cannot remove it.
            let old_version: i64 = tx
                .query_row(
                    "SELECT version FROM items WHERE kind = ?1 AND key = ?2",
                    params![kind.prefix(), key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?
                .unwrap_or(0);
            tx.execute(
                "INSERT OR REPLACE INTO items (kind, key, value, version, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![kind.prefix(), key, value, old_version + 1, expires_at],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(true)
        })
        .await
    }

    async fn replace_item(
        &self,
        kind: ItemKind,
        key: &str,
        value: &serde_json::Value,
        expires_at: Option<i64>,
        expected: u64,
    ) -> StoreResult<bool> {
        let (key, value) = (key.to_owned(), value.to_string());
        self.with(move |c| {
            let changed = c
                .execute(
                    "UPDATE items SET value = ?3, version = version + 1, expires_at = ?4
                     WHERE kind = ?1 AND key = ?2 AND version = ?5",
                    params![kind.prefix(), key, value, expires_at, expected as i64],
                )
                .map_err(db_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn take_item(&self, kind: ItemKind, key: &str, now: i64) -> StoreResult<Option<Item>> {
        let key = key.to_owned();
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let item = read_item(&tx, kind, &key, now)?;
            tx.execute(
                "DELETE FROM items WHERE kind = ?1 AND key = ?2",
                params![kind.prefix(), key],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(item)
        })
        .await
    }

    async fn delete_item(
        &self,
        kind: ItemKind,
        key: &str,
        expected: Option<u64>,
    ) -> StoreResult<bool> {
        let key = key.to_owned();
        self.with(move |c| {
            let changed = c
                .execute(
                    "DELETE FROM items WHERE kind = ?1 AND key = ?2 AND (?3 IS NULL OR version = ?3)",
                    params![kind.prefix(), key, expected.map(|v| v as i64)],
                )
                .map_err(db_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn expired_items(
        &self,
        kind: ItemKind,
        expired_by: i64,
        limit: usize,
    ) -> StoreResult<Vec<(String, Item)>> {
        if !kind.is_swept() {
            return Ok(Vec::new());
        }
        self.with(move |c| expired_items(c, kind, expired_by, limit))
            .await
    }
}

/// [`ConnectionStore::expired_items`]: expired items are never removed here except by their
/// owner, so they are all still there.
fn expired_items(
    c: &Connection,
    kind: ItemKind,
    expired_by: i64,
    limit: usize,
) -> StoreResult<Vec<(String, Item)>> {
    let mut stmt = c
        .prepare(
            "SELECT key, value, version, expires_at FROM items
             WHERE kind = ?1 AND expires_at IS NOT NULL AND expires_at <= ?2
             ORDER BY expires_at, key LIMIT ?3",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![kind.prefix(), expired_by, limit as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })
        .map_err(db_err)?;
    rows.map(|row| {
        let (key, value, version, expires_at) = row.map_err(db_err)?;
        let item = Item {
            value: serde_json::from_str(&value).map_err(json_err)?,
            version: version as u64,
            expires_at,
        };
        Ok((key, item))
    })
    .collect()
}

fn read_item(c: &Connection, kind: ItemKind, key: &str, now: i64) -> StoreResult<Option<Item>> {
    let row = c
        .query_row(
            "SELECT value, version, expires_at FROM items WHERE kind = ?1 AND key = ?2",
            params![kind.prefix(), key],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            },
        )
        .optional()
        .map_err(db_err)?;
    match row {
        Some((_, _, Some(exp))) if exp <= now => Ok(None),
        Some((value, version, expires_at)) => Ok(Some(Item {
            value: serde_json::from_str(&value).map_err(json_err)?,
            version: version as u64,
            expires_at,
        })),
        None => Ok(None),
    }
}

#[async_trait]
impl EventBus for LocalStore {
    async fn publish(&self, detail_type: &str, detail: &serde_json::Value) -> StoreResult<()> {
        let (detail_type, detail) = (detail_type.to_owned(), detail.to_string());
        let time = OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        self.with(move |c| {
            c.execute(
                "INSERT INTO events (detail_type, detail, time) VALUES (?1, ?2, ?3)",
                params![detail_type, detail, time],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("data")).unwrap();
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}
