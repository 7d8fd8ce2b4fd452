//! WASM mode: components compiled from `.wasm` files and run in-process.
//!
//! [`WasmLoader::load_dir`] compiles every `*.wasm` in a directory (once per
//! content, see [`cache`]), reads each component's **exports** to learn which
//! kinds it implements (the WASM counterpart of gRPC reflection) and links
//! it against WASI and plughost's `log` import; the host then registers a
//! type `<kind prefix>.<file stem>` per kind ([`crate::component::modes`]). A file that cannot be used is reported with
//! its path and the exact reason and skipped; the others still load.
//!
//! Each configured component then runs in its own instance(s), one
//! [`WasmComponent`] shared by the adapters of its kinds, see [`instances`]:
//! serialized calls, per-call deadline, memory cap, and a fresh instance
//! after any trap.

pub(crate) mod bindings;
pub mod cache;
mod component;
mod engine;
mod exports;
mod host_state;
pub(crate) mod instances;
#[cfg(test)]
mod isolation_tests;
mod offload;
pub mod prescan;
pub(crate) mod pull;
pub mod settings;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::component::{Component, InstancePre};

pub use cache::CompileSource;
pub use component::WasmComponent;
pub use engine::{Runtime, fuel_runtime, runtime};
pub use host_state::HostState;
pub use instances::MAX_QUEUED_CALLS;
pub use settings::WasmSettings;

pub(crate) use bindings::{from_wit, to_wit};
pub(crate) use exports::Exports;

use crate::kinds::ComponentKind;

/// Largest `.wasm` file accepted: compile time grows with size, and
/// compiling is not something wasmtime bounds for us (wasmCloud's cap; the
/// 18 MB Python component fits).
pub const MAX_COMPONENT_BYTES: usize = 50 << 20;

/// Longest a component may take to compile; past it, the file is skipped
/// (the compile thread cannot be stopped, but its result is not cached).
/// A backstop: the [`prescan`] caps are the guard that acts in
/// milliseconds. Generous, because a busy machine compiles the 18 MB Python
/// component (4.6 s when idle) many times slower.
pub const COMPILE_BUDGET: std::time::Duration = std::time::Duration::from_secs(300);

const PACKAGE: &str = "plughost:components";
const VERSION: &str = "0.1.0";

/// The exported interface name of a kind (`plughost:components/state@0.1.0`).
pub fn export_name(kind: ComponentKind) -> String {
    format!("{PACKAGE}/{}@{VERSION}", kind.wit_interface())
}

/// A compiled, linked component, ready to instantiate.
pub struct LoadedComponent {
    /// The file it came from.
    pub path: PathBuf,
    /// Its file stem: `state-memory.wasm` gives types `state.state-memory`.
    pub stem: String,
    /// The kinds it exports.
    pub kinds: Vec<ComponentKind>,
    /// Where the machine code came from.
    pub source: CompileSource,
    /// What the pre-compile scan counted (pool slots per instance).
    pub shape: prescan::Shape,
    pub(crate) pre: InstancePre<HostState>,
    /// The same component compiled for the fuel-metering engine, made on
    /// first use by a component with `wasm.fuel`.
    fuel_pre: tokio::sync::OnceCell<InstancePre<HostState>>,
    cache_dir: Option<PathBuf>,
}

impl LoadedComponent {
    /// The instance-pre for an engine with or without fuel metering.
    pub(crate) async fn pre(&self, fuel: bool) -> anyhow::Result<&InstancePre<HostState>> {
        if !fuel {
            return Ok(&self.pre);
        }
        self.fuel_pre
            .get_or_try_init(|| async {
                let runtime = fuel_runtime()?;
                let bytes = tokio::fs::read(&self.path)
                    .await
                    .map_err(|e| anyhow::anyhow!("re-reading {}: {e}", self.path.display()))?;
                let (path, cache_dir) = (self.path.clone(), self.cache_dir.clone());
                let (component, _, ()) = tokio::task::spawn_blocking(move || {
                    let abandoned = AtomicBool::new(false);
                    cache::compile(&runtime.engine, &path, &bytes, cache_dir.as_deref(), &abandoned, |_| Ok(()))
                })
                .await??;
                runtime.linker.instantiate_pre(&component).map_err(|e| anyhow::anyhow!("cannot link: {e:#}"))
            })
            .await
    }
}

impl std::fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent").field("path", &self.path).field("kinds", &self.kinds).finish_non_exhaustive()
    }
}

/// Loads `.wasm` components; cheap to clone.
#[derive(Clone)]
pub struct WasmLoader {
    runtime: &'static Runtime,
    cache_dir: Option<PathBuf>,
}

impl WasmLoader {
    /// A loader keeping precompiled artifacts in `cache_dir` (none: compile
    /// on every start).
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        Ok(Self { runtime: runtime()?, cache_dir })
    }

    /// The kinds `path` exports, read by the cheap checks before compiling
    /// (size cap, header, [`prescan`]): enough to register its types while
    /// it compiles.
    pub async fn scan(&self, path: &Path) -> anyhow::Result<Vec<ComponentKind>> {
        let size = tokio::fs::metadata(path).await.map_err(|e| anyhow::anyhow!("cannot read: {e}"))?.len();
        check_size(size)?;
        let bytes = tokio::fs::read(path).await.map_err(|e| anyhow::anyhow!("cannot read: {e}"))?;
        check_header(&bytes)?;
        Ok(prescan::scan(&bytes)?.kinds)
    }

    /// Loads one file, or says exactly why it cannot be used: the size cap
    /// and a [`prescan`] first (imports, exports, function count: before
    /// any compile time is spent), then compilation within
    /// [`COMPILE_BUDGET`], then linking and the exports' types. Only a
    /// component that passed everything is cached.
    pub async fn load(&self, path: &Path) -> anyhow::Result<Arc<LoadedComponent>> {
        let size = tokio::fs::metadata(path).await.map_err(|e| anyhow::anyhow!("cannot read: {e}"))?.len();
        check_size(size)?;
        let bytes = tokio::fs::read(path).await.map_err(|e| anyhow::anyhow!("cannot read: {e}"))?;
        check_header(&bytes)?;
        let shape = prescan::scan(&bytes)?;
        let (runtime, cache_dir, shown) = (self.runtime, self.cache_dir.clone(), path.to_owned());
        let abandoned = Arc::new(AtomicBool::new(false));
        let gave_up = abandoned.clone();
        let compiling = tokio::task::spawn_blocking(move || {
            cache::compile(&runtime.engine, &shown, &bytes, cache_dir.as_deref(), &abandoned, |component| {
                let kinds = exported_kinds(&runtime.engine, component)?;
                let pre =
                    runtime.linker.instantiate_pre(component).map_err(|e| anyhow::anyhow!("cannot link: {e:#}"))?;
                instances::check_exports(&pre, &kinds)?;
                Ok((kinds, pre))
            })
        });
        let (_, source, (kinds, pre)) = match tokio::time::timeout(COMPILE_BUDGET, compiling).await {
            Ok(compiled) => compiled??,
            Err(_) => {
                gave_up.store(true, Ordering::SeqCst);
                anyhow::bail!("compiling took longer than plughost's budget of {COMPILE_BUDGET:?}");
            }
        };
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
        let (fuel_pre, cache_dir) = (tokio::sync::OnceCell::new(), self.cache_dir.clone());
        Ok(Arc::new(LoadedComponent { path: path.to_owned(), stem, kinds, source, shape, pre, fuel_pre, cache_dir }))
    }
}

/// The `*.wasm` files in `dir`, sorted by name.
pub fn wasm_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read WASM directory {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Refuses a file over [`MAX_COMPONENT_BYTES`] (before reading it).
fn check_size(size: u64) -> anyhow::Result<()> {
    if size > MAX_COMPONENT_BYTES as u64 {
        anyhow::bail!("the file is {} MiB; the limit is {} MiB", size >> 20, MAX_COMPONENT_BYTES >> 20);
    }
    Ok(())
}

/// Refuses what is certainly not a component before spending time on it.
fn check_header(bytes: &[u8]) -> anyhow::Result<()> {
    if bytes.is_empty() {
        anyhow::bail!("the file is empty");
    }
    check_size(bytes.len() as u64)?;
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        anyhow::bail!("not a WebAssembly file (no \\0asm header)");
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        anyhow::bail!(
            "a core WebAssembly module, not a component: build it for wasm32-wasip2, or wrap it with `wasm-tools component new`"
        );
    }
    Ok(())
}

/// The kinds `component` exports. It must export `lifecycle` and at least
/// one kind interface of plughost's package.
fn exported_kinds(engine: &wasmtime::Engine, component: &Component) -> anyhow::Result<Vec<ComponentKind>> {
    let exports: Vec<String> = component.component_type().exports(engine).map(|(name, _)| name.to_owned()).collect();
    prescan::kinds_from_exports(&exports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert!(check_header(b"").unwrap_err().to_string().contains("empty"));
        assert!(check_header(b"hello world!").unwrap_err().to_string().contains("no \\0asm"));
        assert!(check_header(b"\0asm\x01\0\0\0").unwrap_err().to_string().contains("core WebAssembly module"));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }
}
