//! What every guest's `Store` carries: its WASI context (deny-by-default),
//! its resource limits, and its name for the log.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::log::{Host as LogHost, Level};
use super::settings::WasmSettings;

/// The data of one guest instance's `Store`.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The memory cap across all of the instance's memories, and the table
    /// cap; checked by wasmtime on every grow.
    pub(crate) limits: Limits,
    /// When the running call's time is up (wall clock, counted from the
    /// moment the call was made, queueing included); checked on every epoch
    /// tick, so a guest that was suspended for a while traps at the first
    /// tick after it, not after a number of ticks.
    pub(crate) deadline: std::time::Instant,
    component: Arc<str>,
}

impl HostState {
    /// State for an instance of component `name`: WASI grants nothing but
    /// clocks, random and stdout/stderr (into the log) unless `settings`
    /// grant environment variables, directories or the network.
    pub fn new(name: &str, settings: &WasmSettings) -> anyhow::Result<Self> {
        let component: Arc<str> = Arc::from(name);
        let mut wasi = wasmtime_wasi::WasiCtxBuilder::new();
        wasi.stdout(LogOutput { component: component.clone(), stream: "stdout" });
        wasi.stderr(LogOutput { component: component.clone(), stream: "stderr" });
        for var in &settings.env {
            if let Ok(value) = std::env::var(var) {
                wasi.env(var, value);
            }
        }
        for (host, guest) in &settings.dirs {
            wasi.preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadWrite)
                .map_err(|e| anyhow::anyhow!("granting directory {}: {e}", host.display()))?;
        }
        if settings.network {
            wasi.inherit_network().allow_ip_name_lookup(true);
        }
        let limits = Limits { max_memory: settings.max_memory, memory: 0, growing: 0 };
        Ok(Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits,
            deadline: std::time::Instant::now(),
            component,
        })
    }
}

/// Most elements a guest table may hold (wasmtime sets no limit).
pub const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// The resource limits of one instance. `wasm.maxMemory` caps the **sum**
/// of all its linear memories (wasmtime's `StoreLimits` caps each memory on
/// its own, so a component with several memories could take a multiple of
/// the cap). wasmtime asks before every growth, the initial size included;
/// going over the cap traps (a clean error naming the cap), as `memory.grow`
/// returning -1 would let the guest limp on half-initialised.
pub(crate) struct Limits {
    max_memory: usize,
    /// Bytes of all memories so far.
    memory: usize,
    /// The growth last allowed, taken back if it then fails.
    growing: usize,
}

impl ResourceLimiter for Limits {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        let total = self.memory.saturating_add(growth);
        if total > self.max_memory || maximum.is_some_and(|max| desired > max) {
            wasmtime::bail!(
                "forcing trap when growing memory to {desired} bytes: the component's memories would total \
                 {total} bytes"
            );
        }
        self.memory = total;
        self.growing = growth;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory -= std::mem::take(&mut self.growing);
        Err(error.context("growing memory failed"))
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS || maximum.is_some_and(|max| desired > max) {
            wasmtime::bail!(
                "forcing trap when growing a table to {desired} elements (the limit is {MAX_TABLE_ELEMENTS})"
            );
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        10_000
    }

    fn tables(&self) -> usize {
        10_000
    }

    fn memories(&self) -> usize {
        10_000
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl LogHost for HostState {
    fn log(&mut self, level: Level, message: String) {
        let component = &*self.component;
        let message = sanitize(&message);
        match level {
            Level::Trace => tracing::trace!(target: "plughost::guest", component, "{message}"),
            Level::Debug => tracing::debug!(target: "plughost::guest", component, "{message}"),
            Level::Info => tracing::info!(target: "plughost::guest", component, "{message}"),
            Level::Warn => tracing::warn!(target: "plughost::guest", component, "{message}"),
            Level::Error => tracing::error!(target: "plughost::guest", component, "{message}"),
        }
    }
}

/// Longest guest log line kept; the rest is cut, so one huge line cannot
/// flood the host's log.
const MAX_LINE: usize = 4096;

/// Escapes control characters (terminal escape sequences included) and caps
/// the length: guest output is untrusted.
fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_LINE));
    for c in text.chars() {
        if out.len() >= MAX_LINE {
            out.push_str("…[truncated]");
            break;
        }
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Guest stdout or stderr, written line by line into `tracing`.
#[derive(Clone)]
struct LogOutput {
    component: Arc<str>,
    stream: &'static str,
}

impl IsTerminal for LogOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter { output: self.clone(), pending: Vec::new() })
    }
}

struct LineWriter {
    output: LogOutput,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        let text = sanitize(String::from_utf8_lossy(line).trim_end_matches('\r'));
        tracing::info!(target: "plughost::guest", component = &*self.output.component, stream = self.output.stream, "{text}");
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.emit(&line[..line.len() - 1]);
        }
        if self.pending.len() > MAX_LINE {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sanitize_escapes_terminal_sequences_and_caps_length() {
        assert_eq!(super::sanitize("red \u{1b}[31mtext"), "red \\u{1b}[31mtext");
        assert!(super::sanitize(&"x".repeat(10_000)).ends_with("…[truncated]"));
    }
}
