//! `plughost run -- <command> [args]`: the app as a child process, the
//! `dapr run` habit. The child gets the sidecar's ports and identity in its
//! environment, runs in its own process group (so a terminal's Ctrl-C
//! reaches it once, forwarded by plughost) and, on Linux, is sent SIGTERM if
//! plughost dies. SIGINT and SIGTERM to plughost are forwarded to it; a
//! shutdown through the API (`POST /v1.0/shutdown`, the `Shutdown` RPC) sends
//! it SIGTERM; an app that has not exited [`GRACE`] after a signal is killed.
//! plughost stops when the app exits and exits with its status.

use std::ffi::OsString;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

use crate::api::Sidecar;

/// How long the app may take to exit after a forwarded signal.
pub const GRACE: Duration = Duration::from_secs(10);

/// What the app is told about its sidecar.
#[derive(Debug, Clone)]
pub struct AppEnv {
    /// `APP_ID`.
    pub app_id: String,
    /// `DAPR_GRPC_PORT`.
    pub grpc_port: u16,
    /// `DAPR_HTTP_PORT`.
    pub http_port: u16,
    /// `APP_PORT`, if the app channel is on.
    pub app_port: Option<u16>,
    /// `DAPR_API_TOKEN`, if one is set.
    pub token: Option<String>,
}

impl AppEnv {
    /// The variables, as `dapr run` sets them.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("APP_ID", self.app_id.clone()),
            ("DAPR_GRPC_PORT", self.grpc_port.to_string()),
            ("DAPR_HTTP_PORT", self.http_port.to_string()),
        ];
        if let Some(port) = self.app_port {
            vars.push(("APP_PORT", port.to_string()));
        }
        if let Some(token) = &self.token {
            vars.push(("DAPR_API_TOKEN", token.clone()));
        }
        vars
    }
}

fn spawn(command: &[OsString], env: &AppEnv) -> std::io::Result<Child> {
    let (program, args) = command.split_first().ok_or_else(|| std::io::Error::other("no command given"))?;
    let mut child = Command::new(program);
    child.args(args).envs(env.vars()).process_group(0).kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: `prctl` is async-signal-safe and touches only the new process.
    unsafe {
        child.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    child.spawn()
}

fn send(child: &Child, signal: libc::c_int) {
    if let Some(pid) = child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// The exit code plughost passes on: the app's, or 128 + the signal that
/// ended it (as shells do).
fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        (None, None) => 1,
    }
}

/// Runs the app until it exits; returns its exit code.
pub async fn run(command: &[OsString], env: &AppEnv, sidecar: &Sidecar) -> anyhow::Result<u8> {
    let name = command.first().map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
    let mut child = spawn(command, env).map_err(|e| anyhow::anyhow!("cannot start the app `{name}`: {e}"))?;
    tracing::info!(pid = child.id(), "started the app: {name}");
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut stop_sent = false;
    let status = loop {
        let kill_at = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let forward = tokio::select! {
            status = child.wait() => break status?,
            _ = interrupt.recv() => libc::SIGINT,
            _ = terminate.recv() => libc::SIGTERM,
            () = sidecar.stopping(), if !stop_sent => {
                stop_sent = true;
                libc::SIGTERM
            }
            () = kill_at => {
                tracing::warn!("the app did not exit within {GRACE:?}; killing it");
                child.start_kill()?;
                deadline = None;
                continue;
            }
        };
        tracing::info!("stopping the app (signal {forward})");
        send(&child, forward);
        deadline.get_or_insert_with(|| tokio::time::Instant::now() + GRACE);
    };
    tracing::info!("the app exited: {status}");
    Ok(exit_code(status))
}
