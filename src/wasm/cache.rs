//! Compiling components at most once per content: in memory for the life of
//! the process, and on disk across restarts. Artifacts are named by a SHA-256
//! of the component bytes plus the engine's compatibility hash, so a wasmtime
//! upgrade or a config change gives a new name instead of a failed load.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

fn memory() -> &'static Mutex<HashMap<String, Component>> {
    static MEMORY: std::sync::OnceLock<Mutex<HashMap<String, Component>>> = std::sync::OnceLock::new();
    MEMORY.get_or_init(Default::default)
}

/// Compiles `wasm` (read from `path`), or loads it from a cache.
///
/// Blocking and CPU-heavy: call it from a blocking thread. A long compile
/// logs progress every few seconds.
pub fn compile(
    engine: &Engine,
    path: &Path,
    wasm: &[u8],
    cache_dir: Option<&Path>,
) -> anyhow::Result<(Component, CompileSource)> {
    let key = key(engine, wasm);
    if let Some(component) = memory().lock().expect("cache lock").get(&key) {
        return Ok((component.clone(), CompileSource::Memory));
    }
    let artifact: Option<PathBuf> = cache_dir.map(|dir| dir.join(format!("{key}.cwasm")));
    if let Some(artifact) = artifact.as_deref().filter(|a| a.exists()) {
        let started = Instant::now();
        // SAFETY: plughost wrote this file itself (below), under a name that
        // includes the engine's compatibility hash, in its own data directory.
        match unsafe { Component::deserialize_file(engine, artifact) } {
            Ok(component) => {
                tracing::info!(path = %path.display(), artifact = %artifact.display(), elapsed = ?started.elapsed(), "loaded precompiled component");
                memory().lock().expect("cache lock").insert(key, component.clone());
                return Ok((component, CompileSource::DiskCache));
            }
            Err(e) => tracing::warn!(artifact = %artifact.display(), "discarding unusable artifact: {e:#}"),
        }
    }
    let component = compile_with_progress(engine, path, wasm)?;
    if let (Some(artifact), Some(dir)) = (artifact, cache_dir)
        && let Err(e) = store(dir, &artifact, &component)
    {
        tracing::warn!(artifact = %artifact.display(), "cannot write the compile cache: {e:#}");
    }
    memory().lock().expect("cache lock").insert(key, component.clone());
    Ok((component, CompileSource::Compiled))
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

/// Writes the artifact atomically (temp file + rename), so a reader never
/// sees half of one, in a directory only this user can read.
fn store(dir: &Path, artifact: &Path, component: &Component) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let tmp = artifact.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, artifact)?;
    Ok(())
}
