//! `file-state`: a state store that keeps its data in a file, written once
//! with `plughost-component` and built two ways:
//!
//! * `cargo build --release` → `file-state`, a Dapr pluggable gRPC component
//!   on `<socket folder>/file-state.sock` (`std::fs` on the host);
//! * `cargo build --release --target wasm32-wasip2 --lib` → `file_state.wasm`,
//!   an in-process plughost component (`std::fs` through the WASI directory
//!   plughost grants with `wasm.dirs`).
//!
//! Metadata `file`: the data file (required). Both builds read and write the
//! same format (`log.rs`), so the data survives moving the component between
//! modes. Dapr's rules: ETags change on every write and are never reissued
//! (the counter is in the file), first-write concurrency, `ttlInSeconds`,
//! transactions in order and all or nothing (one batch per write).

mod log;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use plughost_component::state::{
    Concurrency, DeleteRequest, GetRequest, Operation, SetRequest, StateItem, TTL_EXPIRE_TIME, TTL_IN_SECONDS,
};
use plughost_component::{Component, Error, LogLevel, Metadata, StateStore, metadata_value};

use crate::log::{Change, Entry};

/// Rewrite the file once it holds this many batches more than live keys.
const COMPACT_AFTER: usize = 10_000;

/// The store: the live entries in memory, every change appended to the file.
pub struct FileState {
    entries: HashMap<String, Entry>,
    version: u64,
    path: PathBuf,
    file: File,
    /// Bytes of whole batches in the file: a failed write is cut back to it.
    len: u64,
    batches: usize,
}

fn io(path: &std::path::Path, what: &str, e: std::io::Error) -> Error {
    Error::Internal(format!("{}: {what}: {e}", path.display()))
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Component for FileState {
    fn init(metadata: Metadata) -> Result<Self, Error> {
        let path = PathBuf::from(metadata_value(&metadata, "file").filter(|f| !f.is_empty()).ok_or_else(|| {
            Error::InvalidArgument(
                "metadata `file` is required: the data file (in WASM mode, grant its folder with `wasm.dirs`)"
                    .to_owned(),
            )
        })?);
        FileState::load(path)
    }

    fn features(&self) -> Vec<String> {
        ["ETAG", "TRANSACTIONAL", "TTL"].map(String::from).to_vec()
    }
}

fn parse_ttl(metadata: &Metadata) -> Result<Option<i64>, Error> {
    let Some(raw) = metadata_value(metadata, TTL_IN_SECONDS).filter(|v| !v.is_empty()) else { return Ok(None) };
    let seconds: i64 = raw
        .trim()
        .parse()
        .map_err(|_| Error::InvalidArgument(format!("{TTL_IN_SECONDS} must be an integer, got `{raw}`")))?;
    match seconds {
        s if s < -1 => Err(Error::InvalidArgument(format!("{TTL_IN_SECONDS} must be -1 or positive, got {s}"))),
        s if s <= 0 => Ok(None),
        s => Ok(Some(s.saturating_mul(1000))),
    }
}

fn check_etag(key: &str, stored: Option<u64>, given: Option<&str>, concurrency: Concurrency) -> Result<(), Error> {
    match given.filter(|e| !e.is_empty()) {
        Some(text) => {
            let version: u64 = text.parse().map_err(|_| Error::EtagInvalid(key.to_owned()))?;
            if stored == Some(version) { Ok(()) } else { Err(Error::EtagMismatch(key.to_owned())) }
        }
        None if concurrency == Concurrency::FirstWrite && stored.is_some() => Err(Error::EtagMismatch(key.to_owned())),
        None => Ok(()),
    }
}

impl FileState {
    /// Reads the data file (creating it and its folder if needed) and
    /// replays it.
    fn load(path: PathBuf) -> Result<Self, Error> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, "creating the folder", e))?;
        }
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&path, "reading", e)),
        };
        let replayed = log::replay(&bytes);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| io(&path, "opening", e))?;
        if replayed.good_len < bytes.len() {
            plughost_component::log(LogLevel::Warn, &format!("{}: dropping a torn last write", path.display()));
            file.set_len(replayed.good_len as u64).map_err(|e| io(&path, "truncating", e))?;
        }
        let len = replayed.good_len as u64;
        let store =
            Self { entries: replayed.entries, version: replayed.version, path, file, len, batches: replayed.batches };
        plughost_component::log(
            LogLevel::Debug,
            &format!("{}: {} keys, version {}", store.path.display(), store.entries.len(), store.version),
        );
        Ok(store)
    }

    /// Picks up what another instance wrote since this one last touched the
    /// file (the file's length is not the one this instance left): a host
    /// that moved the component to another mode and back keeps this instance
    /// (`Init` on a live instance keeps it), while the other mode's instance
    /// wrote to the same file. Instances take turns (plughost hands over from
    /// one to the next); they never write at the same time.
    fn refresh(&mut self) -> Result<(), Error> {
        let len = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io(&self.path, "reading the size", e)),
        };
        if len != self.len {
            *self = Self::load(self.path.clone())?;
        }
        Ok(())
    }

    fn live(&self, staged: &[Change], key: &str, now: i64) -> Option<u64> {
        match staged.iter().rev().find(|(k, _)| k == key) {
            Some((_, entry)) => entry.as_ref().map(|e| e.version),
            None => self.entries.get(key).filter(|e| e.expires_at.is_none_or(|at| at > now)).map(|e| e.version),
        }
    }

    fn stage(&mut self, staged: &mut Vec<Change>, operation: Operation, now: i64) -> Result<(), Error> {
        match operation {
            Operation::Set(request) => {
                let ttl = parse_ttl(&request.metadata)?;
                let stored = self.live(staged, &request.key, now);
                check_etag(&request.key, stored, request.etag.as_deref(), request.options.concurrency)?;
                self.version += 1;
                let entry = Entry {
                    data: request.value,
                    version: self.version,
                    content_type: request.content_type,
                    expires_at: ttl.map(|ms| now.saturating_add(ms)),
                };
                staged.push((request.key, Some(entry)));
            }
            Operation::Delete(request) => {
                let stored = self.live(staged, &request.key, now);
                check_etag(&request.key, stored, request.etag.as_deref(), request.options.concurrency)?;
                staged.push((request.key, None));
            }
        }
        Ok(())
    }

    /// Applies `operations` all or nothing: staged, written as one batch,
    /// then applied in memory.
    fn apply(&mut self, operations: Vec<Operation>) -> Result<(), Error> {
        self.refresh()?;
        let now = now();
        let version_before = self.version;
        let mut staged = Vec::with_capacity(operations.len());
        for operation in operations {
            if let Err(e) = self.stage(&mut staged, operation, now) {
                self.version = version_before;
                return Err(e);
            }
        }
        let batch = log::batch(self.version, &staged);
        if let Err(e) = self.file.write_all(&batch) {
            self.version = version_before;
            // A torn batch would hide every later one from replay.
            let _ = self.file.set_len(self.len);
            return Err(io(&self.path, "writing", e));
        }
        self.len += batch.len() as u64;
        self.batches += 1;
        for (key, entry) in staged {
            match entry {
                Some(entry) => self.entries.insert(key, entry),
                None => self.entries.remove(&key),
            };
        }
        if self.batches > COMPACT_AFTER + self.entries.len() {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the file with the live entries only (to a temporary file,
    /// then renamed over it).
    fn compact(&mut self) -> Result<(), Error> {
        let now = now();
        let live: Vec<Change> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires_at.is_none_or(|at| at > now))
            .map(|(k, e)| (k.clone(), Some(e.clone())))
            .collect();
        let tmp = self.path.with_extension("compacting");
        let batch = log::batch(self.version, &live);
        std::fs::write(&tmp, &batch).map_err(|e| io(&tmp, "writing", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io(&self.path, "replacing", e))?;
        self.file = OpenOptions::new().append(true).open(&self.path).map_err(|e| io(&self.path, "opening", e))?;
        self.len = batch.len() as u64;
        self.batches = 1;
        Ok(())
    }
}

impl StateStore for FileState {
    fn get(&mut self, request: GetRequest) -> Result<Option<StateItem>, Error> {
        self.refresh()?;
        let now = now();
        let Some(entry) = self.entries.get(&request.key).filter(|e| e.expires_at.is_none_or(|at| at > now)) else {
            return Ok(None);
        };
        let metadata = entry.expires_at.map(|at| vec![(TTL_EXPIRE_TIME.to_owned(), rfc3339(at))]).unwrap_or_default();
        Ok(Some(StateItem {
            data: entry.data.clone(),
            etag: Some(entry.version.to_string()),
            metadata,
            content_type: entry.content_type.clone(),
        }))
    }

    fn set(&mut self, request: SetRequest) -> Result<(), Error> {
        self.apply(vec![Operation::Set(request)])
    }

    fn delete(&mut self, request: DeleteRequest) -> Result<(), Error> {
        self.apply(vec![Operation::Delete(request)])
    }

    fn transact(&mut self, operations: Vec<Operation>, _metadata: Metadata) -> Result<(), Error> {
        self.apply(operations)
    }
}

plughost_component::export_state!(FileState);

/// Epoch milliseconds as RFC 3339 UTC (`2026-11-21T17:06:22.123Z`).
fn rfc3339(millis: i64) -> String {
    let (secs, ms) = (millis.div_euclid(1000), millis.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
