//! Compiling components at most once per content: in memory for the life of
//! the process, and on disk across restarts. Artifacts are named by a SHA-256
//! of the component bytes plus the engine's compatibility hash, so a wasmtime
//! upgrade or a config change gives a new name instead of a failed load.
//!
//! # Integrity
//!
//! Deserializing an artifact runs its machine code, so a file that plughost
//! did not write must never be deserialized: an artifact copied over
//! another one would run foreign code under the other component's name, and
//! a corrupted one can crash the process on every start. Each artifact
//! therefore ends with an HMAC-SHA256 tag over its name and its bytes, keyed
//! by a random per-cache key (`cache.key`, 0600, created once). The tag is
//! checked before anything is deserialized (from the same bytes that were
//! checked, not from a second read of the file); a file that fails it is
//! compiled again from the `.wasm` and replaced. Artifacts are written 0600
//! to a temporary file and renamed, tag included, so a reader never sees
//! half of one; the folder is 0700.
//!
//! Only components that passed every load-time check are cached: a rejected
//! component leaves no artifact.

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a loaded component's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileSource {
    /// Already compiled by this process.
    Memory,
    /// A precompiled artifact from the cache directory (no compilation).
    DiskCache,
    /// Compiled now (and written to the cache directory, if there is one).
    Compiled,
}

/// The cache key of `wasm` for `engine`.
pub fn key(engine: &Engine, wasm: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let digest = Sha256::new().chain_update(wasm).chain_update(compat.finish().to_le_bytes()).finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The file holding the cache's MAC key.
pub const KEY_FILE: &str = "cache.key";

/// Length of the tag at the end of every artifact.
const TAG_LEN: usize = 32;

fn memory() -> &'static Mutex<HashMap<String, Component>> {
    static MEMORY: std::sync::OnceLock<Mutex<HashMap<String, Component>>> = std::sync::OnceLock::new();
    MEMORY.get_or_init(Default::default)
}

/// Compiles `wasm` (read from `path`), or loads it from a cache, then runs
/// `accept` on it (the load-time checks); only an accepted component is
/// cached. If `abandoned` is set by the time compilation ends (the caller
/// gave up on its budget), nothing is cached either.
///
/// Blocking and CPU-heavy: call it from a blocking thread. A long compile
/// logs progress every few seconds.
pub fn compile<T>(
    engine: &Engine,
    path: &Path,
    wasm: &[u8],
    cache_dir: Option<&Path>,
    abandoned: &AtomicBool,
    accept: impl FnOnce(&Component) -> anyhow::Result<T>,
) -> anyhow::Result<(Component, CompileSource, T)> {
    let key = key(engine, wasm);
    let remembered = memory().lock().expect("cache lock").get(&key).cloned();
    if let Some(component) = remembered {
        let accepted = accept(&component)?;
        return Ok((component, CompileSource::Memory, accepted));
    }
    let cache = cache_dir.and_then(|dir| match DiskCache::open(dir) {
        Ok(cache) => Some(cache),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "not using the compile cache: {e:#}");
            None
        }
    });
    if let Some(component) = cache.as_ref().and_then(|cache| cache.load(engine, &key, path)) {
        let accepted = accept(&component)?;
        memory().lock().expect("cache lock").insert(key, component.clone());
        return Ok((component, CompileSource::DiskCache, accepted));
    }
    let component = compile_with_progress(engine, path, wasm)?;
    let accepted = accept(&component)?;
    if abandoned.load(Ordering::SeqCst) {
        anyhow::bail!("compiled after its caller gave up; not cached");
    }
    if let Some(cache) = &cache
        && let Err(e) = cache.store(&key, &component)
    {
        tracing::warn!(dir = %cache.dir.display(), "cannot write the compile cache: {e:#}");
    }
    memory().lock().expect("cache lock").insert(key, component.clone());
    Ok((component, CompileSource::Compiled, accepted))
}

fn compile_with_progress(engine: &Engine, path: &Path, wasm: &[u8]) -> anyhow::Result<Component> {
    let mib = wasm.len() as f64 / (1 << 20) as f64;
    tracing::info!(path = %path.display(), size_mib = format!("{mib:.1}"), "compiling component (once per content; later starts use the cache)");
    let started = Instant::now();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let shown = path.display().to_string();
    let progress = std::thread::spawn(move || {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(Duration::from_secs(3)) {
            tracing::info!(path = %shown, elapsed_s = started.elapsed().as_secs(), "still compiling component");
        }
    });
    let result = Component::new(engine, wasm);
    drop(done_tx);
    progress.join().ok();
    let component = result.map_err(|e| anyhow::anyhow!("{e:#}"))?;
    tracing::info!(path = %path.display(), elapsed = ?started.elapsed(), "compiled component");
    Ok(component)
}

/// The cache folder and its MAC key.
struct DiskCache {
    dir: PathBuf,
    key: [u8; 32],
}

impl DiskCache {
    /// Creates the folder (0700) and the key if needed. A folder that is not
    /// ours, or that others can write to, is not used.
    fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let meta = std::fs::symlink_metadata(dir)?;
        let own = rustix::process::geteuid().as_raw();
        if !meta.is_dir() || meta.uid() != own {
            anyhow::bail!("{} is not a folder owned by this user (uid {own})", dir.display());
        }
        if meta.mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Self { dir: dir.to_owned(), key: read_or_create_key(dir)? })
    }

    fn tag(&self, name: &str, bytes: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(bytes);
        mac
    }

    fn artifact(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.cwasm"))
    }

    /// The artifact `name`, if it exists and its tag checks out.
    fn load(&self, engine: &Engine, name: &str, path: &Path) -> Option<Component> {
        let artifact = self.artifact(name);
        let started = Instant::now();
        let bytes = match std::fs::read(&artifact) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(artifact = %artifact.display(), "cannot read the artifact ({e}); compiling again");
                return None;
            }
        };
        let checked = bytes.len() > TAG_LEN && {
            let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
            self.tag(name, body).verify_slice(tag).is_ok()
        };
        if !checked {
            tracing::warn!(
                artifact = %artifact.display(),
                "artifact fails its integrity check (not written by this plughost for this component: \
                 tampered, corrupted, or copied); compiling again"
            );
            return None;
        }
        // SAFETY: these exact bytes carry a valid tag under this cache's
        // secret key, so plughost wrote them itself, for this component and
        // engine (the name includes both hashes).
        match unsafe { Component::deserialize(engine, &bytes[..bytes.len() - TAG_LEN]) } {
            Ok(component) => {
                tracing::info!(path = %path.display(), artifact = %artifact.display(), elapsed = ?started.elapsed(), "loaded precompiled component");
                Some(component)
            }
            Err(e) => {
                tracing::warn!(artifact = %artifact.display(), "discarding unusable artifact: {e:#}");
                None
            }
        }
    }

    /// Writes the artifact and its tag atomically (temp file + rename), 0600.
    fn store(&self, name: &str, component: &Component) -> anyhow::Result<()> {
        let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let tag = self.tag(name, &bytes).finalize().into_bytes();
        let artifact = self.artifact(name);
        let tmp = artifact.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(&bytes)?;
        file.write_all(&tag)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &artifact)?;
        Ok(())
    }
}

/// The cache's key: 32 random bytes in `cache.key` (0600). A key file that
/// others could read or write is replaced (every artifact is then compiled
/// again). Created through a hard link, so two processes starting at once
/// end up with the same key.
fn read_or_create_key(dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = dir.join(KEY_FILE);
    let own = rustix::process::geteuid().as_raw();
    for _ in 0..3 {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() && meta.uid() == own && meta.mode() & 0o077 == 0 && meta.len() == 32 => {
                let bytes = std::fs::read(&path)?;
                if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
                    return Ok(key);
                }
            }
            Ok(_) => {
                tracing::warn!(key = %path.display(), "replacing a compile cache key that is not private to this user");
                std::fs::remove_file(&path)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let mut key = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut key)?;
        let tmp = dir.join(format!("{KEY_FILE}.tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(&key)?;
        file.sync_all()?;
        let linked = std::fs::hard_link(&tmp, &path);
        std::fs::remove_file(&tmp)?;
        match linked {
            Ok(()) => return Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue, // another process won
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("cannot settle on a compile cache key in {}", dir.display())
}
