//! `state.sqlite`: the embedded default store. One SQLite file per component
//! under the host's data directory (or `connectionString`), so state survives
//! restarts with nothing else to install.
//!
//! Writes block on the disk now and then (WAL checkpoints), so each runs on
//! tokio's blocking pool; one write connection behind a mutex serializes them,
//! which is also what makes the ETag check and the write atomic. Reads run
//! inline on one of a few read-only connections: in WAL mode a reader never
//! waits for the writer and a point read of a cached page takes
//! microseconds, far less than the hop to the blocking pool and back (the
//! load bench measured that hop as about half of a get's CPU). A read takes a
//! reader only if it is free (`try_lock`), so a runtime worker never waits on
//! a lock; when all are busy it falls back to the blocking pool. Reads see
//! every committed write. All statements are prepared once per connection
//! (`prepare_cached`). The ETag
//! counter lives in the database, so an ETag is never reissued, not even
//! after a restart.

use crate::component::Lifecycle;
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
    /// The read-only connections `get` uses, opened by `init`.
    /// (Replaced whole by a repeated `init`.)
    readers: std::sync::RwLock<Vec<Arc<Mutex<Connection>>>>,
}

impl SqliteStateStore {
    /// A store that, on `init`, opens `default_path` unless the metadata
    /// names another file with `connectionString` (relative paths are taken
    /// relative to the directory of `default_path`).
    pub fn new(default_path: impl Into<PathBuf>) -> Self {
        Self { default_path: default_path.into(), conn: Arc::default(), readers: std::sync::RwLock::default() }
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

    /// Reads `key` on the first free reader, without waiting; with every
    /// reader busy, hands back one to wait for (`Err`).
    fn read_inline(&self, key: &str) -> Result<std::result::Result<Option<StateItem>, Arc<Mutex<Connection>>>> {
        let readers = self.readers.read().map_err(|_| ComponentError::internal("sqlite readers lock poisoned"))?;
        let first = readers.first().ok_or_else(|| ComponentError::internal("state.sqlite used before init"))?;
        for reader in readers.iter() {
            if let Ok(reader) = reader.try_lock() {
                return read(&reader, key).map(Ok);
            }
        }
        Ok(Err(Arc::clone(first)))
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

/// Read-only connections per store: one per runtime worker on this
/// machine's size, and one spare.
const READERS: usize = 3;

/// A second connection to the file `open` prepared, for reads only.
fn open_reader(path: &Path) -> Result<Connection> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| ComponentError::internal(format!("opening {} for reading: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(db_error)?;
    Ok(conn)
}

/// The live item stored under `key`, if any.
fn read(conn: &Connection, key: &str) -> Result<Option<StateItem>> {
    let mut statement = conn
        .prepare_cached(
            "SELECT value, version, content_type, expires_at FROM state
             WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
        )
        .map_err(db_error)?;
    statement
        .query_row(params![key, now_millis()], |row| {
            Ok(StateItem {
                data: row.get(0)?,
                etag: Some(row.get::<_, i64>(1)?.to_string()),
                content_type: row.get(2)?,
                metadata: expiry_metadata(row.get(3)?),
            })
        })
        .optional()
        .map_err(db_error)
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
    tx.prepare_cached("SELECT version FROM state WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)")
        .map_err(db_error)?
        .query_row(params![key, now], |row| row.get::<_, i64>(0))
        .optional()
        .map(|v| v.map(|v| v as u64))
        .map_err(db_error)
}

fn apply_set(tx: &Transaction<'_>, request: SetRequest, now: i64) -> Result<()> {
    let ttl = parse_ttl(&request.metadata)?;
    let stored = stored_version(tx, &request.key, now)?;
    check_etag(&request.key, stored, given_etag(&request.etag), request.options)?;
    let version: i64 = tx
        .prepare_cached("UPDATE etag_counter SET last = last + 1 WHERE id = 0 RETURNING last")
        .map_err(db_error)?
        .query_row([], |row| row.get(0))
        .map_err(db_error)?;
    tx.prepare_cached(
        "INSERT INTO state (key, value, version, content_type, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version,
             content_type = excluded.content_type, expires_at = excluded.expires_at",
    )
    .map_err(db_error)?
    .execute(params![request.key, request.value, version, request.content_type, expiry(ttl)])
    .map_err(db_error)?;
    Ok(())
}

fn apply_delete(tx: &Transaction<'_>, request: DeleteRequest, now: i64) -> Result<()> {
    let stored = stored_version(tx, &request.key, now)?;
    check_etag(&request.key, stored, given_etag(&request.etag), request.options)?;
    tx.prepare_cached("DELETE FROM state WHERE key = ?1")
        .map_err(db_error)?
        .execute([&request.key])
        .map_err(db_error)?;
    Ok(())
}

#[async_trait::async_trait]
impl Lifecycle for SqliteStateStore {
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
        let (conn, readers) = tokio::task::spawn_blocking(move || {
            let conn = open(&path)?;
            let readers = (0..READERS).map(|_| Ok(Arc::new(Mutex::new(open_reader(&path)?)))).collect::<Result<_>>()?;
            Ok::<_, ComponentError>((conn, readers))
        })
        .await
        .map_err(|e| ComponentError::internal(format!("sqlite task failed: {e}")))??;
        *self.conn.lock().map_err(|_| ComponentError::internal("sqlite connection lock poisoned"))? = Some(conn);
        *self.readers.write().map_err(|_| ComponentError::internal("sqlite readers lock poisoned"))? = readers;
        Ok(())
    }

    async fn features(&self) -> Result<Vec<String>> {
        Ok([features::ETAG, features::TRANSACTIONAL, features::TTL].map(String::from).to_vec())
    }

    async fn ping(&self) -> Result<()> {
        self.with_conn(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db_error)).await
    }
}

#[async_trait::async_trait]
impl StateStore for SqliteStateStore {
    async fn get(&self, request: GetRequest) -> Result<Option<StateItem>> {
        let busy = match self.read_inline(&request.key)? {
            Ok(item) => return Ok(item),
            Err(busy) => busy,
        };
        // Every reader is busy: wait for one off the runtime's threads.
        tokio::task::spawn_blocking(move || {
            let reader = busy.lock().map_err(|_| ComponentError::internal("sqlite reader lock poisoned"))?;
            read(&reader, &request.key)
        })
        .await
        .map_err(|e| ComponentError::internal(format!("sqlite task failed: {e}")))?
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
