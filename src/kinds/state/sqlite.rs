//! `state.sqlite`: the embedded default store. One SQLite file per component
//! under the host's data directory (or `connectionString`), so state survives
//! restarts with nothing else to install.
//!
//! SQLite calls block, so each runs on tokio's blocking pool; one connection
//! behind a mutex serializes them, which is also what makes the ETag check and
//! the write atomic. The ETag counter lives in the database, so an ETag is
//! never reissued, not even after a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::rules::{check_etag, expiry, expiry_metadata, given_etag, now_millis, parse_ttl};
use super::{DeleteRequest, GetRequest, SetRequest, StateItem, StateStore, TransactionOperation, features};
use crate::kinds::{ComponentError, Metadata, Result};

/// A [`StateStore`] in one SQLite file.
#[derive(Debug)]
pub struct SqliteStateStore {
    default_path: PathBuf,
    conn: Arc<Mutex<Option<Connection>>>,
}

impl SqliteStateStore {
    /// A store that, on `init`, opens `default_path` unless the metadata
    /// names another file with `connectionString` (relative paths are taken
    /// relative to the directory of `default_path`).
    pub fn new(default_path: impl Into<PathBuf>) -> Self {
        Self { default_path: default_path.into(), conn: Arc::default() }
    }

    /// Runs `work` with the open connection on the blocking pool.
    async fn with_conn<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| ComponentError::internal("sqlite connection lock poisoned"))?;
            let conn = guard.as_mut().ok_or_else(|| ComponentError::internal("state.sqlite used before init"))?;
            work(conn)
        })
        .await
        .map_err(|e| ComponentError::internal(format!("sqlite task failed: {e}")))?
    }

    /// Runs `work` inside one SQLite transaction, committed only if it succeeds.
    async fn in_transaction<F>(&self, work: F) -> Result<()>
    where
        F: FnOnce(&Transaction<'_>) -> Result<()> + Send + 'static,
    {
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(db_error)?;
            work(&tx)?;
            tx.commit().map_err(db_error)
        })
        .await
    }
}

fn db_error(e: rusqlite::Error) -> ComponentError {
    ComponentError::internal(format!("sqlite: {e}"))
}

fn open(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| ComponentError::internal(format!("creating {}: {e}", dir.display())))?;
    }
    let conn =
        Connection::open(path).map_err(|e| ComponentError::internal(format!("opening {}: {e}", path.display())))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 5000;
         CREATE TABLE IF NOT EXISTS state (
             key TEXT PRIMARY KEY NOT NULL,
             value BLOB NOT NULL,
             version INTEGER NOT NULL,
             content_type TEXT,
             expires_at INTEGER
         );
         CREATE TABLE IF NOT EXISTS etag_counter (
             id INTEGER PRIMARY KEY CHECK (id = 0),
             last INTEGER NOT NULL
         );
         INSERT OR IGNORE INTO etag_counter (id, last) VALUES (0, 0);",
    )
    .map_err(|e| ComponentError::internal(format!("preparing {}: {e}", path.display())))?;
    conn.execute("DELETE FROM state WHERE expires_at IS NOT NULL AND expires_at <= ?1", [now_millis()])
        .map_err(db_error)?;
    Ok(conn)
}

/// The stored version of `key`, ignoring expired rows.
fn stored_version(tx: &Transaction<'_>, key: &str, now: i64) -> Result<Option<u64>> {
    tx.query_row(
        "SELECT version FROM state WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
        params![key, now],
        |row| row.get::<_, i64>(0),
    )
    .optional()
    .map(|v| v.map(|v| v as u64))
    .map_err(db_error)
}

fn apply_set(tx: &Transaction<'_>, request: SetRequest, now: i64) -> Result<()> {
    let ttl = parse_ttl(&request.metadata)?;
    let stored = stored_version(tx, &request.key, now)?;
    check_etag(&request.key, stored, given_etag(&request.etag), request.options)?;
    let version: i64 = tx
        .query_row("UPDATE etag_counter SET last = last + 1 WHERE id = 0 RETURNING last", [], |row| row.get(0))
        .map_err(db_error)?;
    tx.execute(
        "INSERT INTO state (key, value, version, content_type, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version,
             content_type = excluded.content_type, expires_at = excluded.expires_at",
        params![request.key, request.value, version, request.content_type, expiry(ttl)],
    )
    .map_err(db_error)?;
    Ok(())
}

fn apply_delete(tx: &Transaction<'_>, request: DeleteRequest, now: i64) -> Result<()> {
    let stored = stored_version(tx, &request.key, now)?;
    check_etag(&request.key, stored, given_etag(&request.etag), request.options)?;
    tx.execute("DELETE FROM state WHERE key = ?1", [&request.key]).map_err(db_error)?;
    Ok(())
}

#[async_trait::async_trait]
impl StateStore for SqliteStateStore {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        let path = match metadata.get("connectionString").filter(|s| !s.is_empty()) {
            Some(given) => {
                let given = Path::new(given.strip_prefix("file:").unwrap_or(given));
                match self.default_path.parent() {
                    Some(dir) if given.is_relative() => dir.join(given),
                    _ => given.to_owned(),
                }
            }
            None => self.default_path.clone(),
        };
        let conn = tokio::task::spawn_blocking(move || open(&path))
            .await
            .map_err(|e| ComponentError::internal(format!("sqlite task failed: {e}")))??;
        *self.conn.lock().map_err(|_| ComponentError::internal("sqlite connection lock poisoned"))? = Some(conn);
        Ok(())
    }

    async fn features(&self) -> Result<Vec<String>> {
        Ok([features::ETAG, features::TRANSACTIONAL, features::TTL].map(String::from).to_vec())
    }

    async fn ping(&self) -> Result<()> {
        self.with_conn(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db_error)).await
    }

    async fn get(&self, request: GetRequest) -> Result<Option<StateItem>> {
        self.with_conn(move |conn| {
            conn.query_row(
                "SELECT value, version, content_type, expires_at FROM state
                 WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
                params![request.key, now_millis()],
                |row| {
                    Ok(StateItem {
                        data: row.get(0)?,
                        etag: Some(row.get::<_, i64>(1)?.to_string()),
                        content_type: row.get(2)?,
                        metadata: expiry_metadata(row.get(3)?),
                    })
                },
            )
            .optional()
            .map_err(db_error)
        })
        .await
    }

    async fn set(&self, request: SetRequest) -> Result<()> {
        self.in_transaction(move |tx| apply_set(tx, request, now_millis())).await
    }

    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        self.in_transaction(move |tx| apply_delete(tx, request, now_millis())).await
    }

    async fn transact(&self, operations: Vec<TransactionOperation>, _metadata: Metadata) -> Result<()> {
        self.in_transaction(move |tx| {
            let now = now_millis();
            for operation in operations {
                match operation {
                    TransactionOperation::Set(request) => apply_set(tx, request, now)?,
                    TransactionOperation::Delete(request) => apply_delete(tx, request, now)?,
                }
            }
            Ok(())
        })
        .await
    }
}
