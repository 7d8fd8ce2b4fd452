//! Starting a component process so that it cannot outlive plughost.
//!
//! # Why a dedicated thread
//!
//! `PR_SET_PDEATHSIG` delivers its signal when the **thread** that forked
//! the child exits, not the process (prctl(2)). tokio's blocking threads and
//! an embedder's runtime threads come and go, so a child forked on one of
//! them could be SIGKILLed while plughost is fine. Every component process is
//! therefore forked on one thread that lives as long as the process (it waits
//! on a channel that is never closed), and the death signal fires exactly
//! when plughost dies, SIGKILL included. The child also checks, after setting
//! it, that its parent is still plughost: if plughost died between the fork
//! and the `prctl`, it exits at once.
//!
//! Each process gets its own process group, so a Ctrl-C in plughost's
//! terminal reaches plughost, which then stops its components in order.
//! (Grandchildren a component starts are its own business: the death signal
//! does not reach them.)

use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::process::Stdio;
use std::sync::OnceLock;
use std::sync::mpsc;

use sha2::{Digest as _, Sha256};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use super::settings::ProcessSettings;

struct Request {
    command: Command,
    runtime: tokio::runtime::Handle,
    reply: oneshot::Sender<io::Result<Child>>,
}

fn spawner() -> &'static mpsc::Sender<Request> {
    static SPAWNER: OnceLock<mpsc::Sender<Request>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (sender, requests) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("plughost-spawner".into())
            .spawn(move || {
                for mut request in requests {
                    // The child is registered with the caller's runtime (for
                    // `wait`), but forked here.
                    let _entered = request.runtime.enter();
                    let _ = request.reply.send(request.command.spawn());
                }
            })
            .expect("starting the process spawner thread");
        sender
    })
}

/// The command for `settings`: the program with its arguments, a clean
/// environment (the allow-listed host variables, the declared ones, the two
/// socket folder variables), piped output, its own process group, killed if
/// dropped and when plughost dies.
pub fn command(settings: &ProcessSettings) -> Command {
    let mut command = Command::new(&settings.command);
    command.args(&settings.args).env_clear();
    for name in &settings.inherit_env {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.envs(&settings.env);
    for name in ["DAPR_COMPONENT_SOCKETS_FOLDER", "DAPR_COMPONENTS_SOCKETS_FOLDER"] {
        command.env(name, &settings.sockets_dir);
    }
    if let Some(dir) = &settings.working_dir {
        command.current_dir(dir);
    }
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid), no allocation.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    command
}

/// Forks `command` on the spawner thread (see the module docs).
pub async fn spawn(command: Command) -> io::Result<Child> {
    let (reply, answer) = oneshot::channel();
    let request = Request { command, runtime: tokio::runtime::Handle::current(), reply };
    spawner().send(request).map_err(|_| io::Error::other("the process spawner thread is gone"))?;
    answer.await.map_err(|_| io::Error::other("the process spawner thread is gone"))?
}

/// Refuses a program whose SHA-256 is not the pinned one.
pub async fn verify(settings: &ProcessSettings) -> Result<(), String> {
    let Some(expected) = &settings.sha256 else { return Ok(()) };
    let path = settings.command.clone();
    let actual = tokio::task::spawn_blocking(move || -> io::Result<String> {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut hasher)?;
        Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
    })
    .await
    .map_err(|e| format!("hashing {}: {e}", settings.command.display()))?
    .map_err(|e| format!("cannot read {} to check its sha256: {e}", settings.command.display()))?;
    if &actual != expected {
        return Err(format!(
            "refusing to start {}: its sha256 is {actual}, but plughost.io/sha256 pins {expected}",
            settings.command.display()
        ));
    }
    Ok(())
}

/// Sends `signal` to the child while it is still ours: `Child::id` is `None`
/// once tokio has reaped it, and until then the PID cannot be reused (a
/// zombie keeps it), so an unrelated process is never signalled.
pub fn signal(child: &Child, signal: libc::c_int) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on our own unreaped child.
        unsafe {
            libc::kill(pid as libc::pid_t, signal);
        }
    }
}

/// A readable form of the program line, for logs.
pub fn describe(settings: &ProcessSettings) -> String {
    let mut text = String::from_utf8_lossy(settings.command.as_os_str().as_bytes()).into_owned();
    for arg in &settings.args {
        text.push(' ');
        text.push_str(arg);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ComponentSpec;

    fn sleeper() -> ProcessSettings {
        let spec = ComponentSpec::new("sleeper", "state.sleeper")
            .annotate(super::super::COMMAND, "/bin/sleep")
            .annotate("plughost.io/args", r#"["30"]"#);
        ProcessSettings::from_spec(&spec, Some(std::path::Path::new("/tmp"))).unwrap().unwrap()
    }

    fn state_of(pid: u32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?.1.trim_start().chars().next()
    }

    /// The death signal follows the forking thread: a child started from a
    /// thread that then ends must keep running (it is forked on the
    /// long-lived spawner thread, not on the caller's).
    #[test]
    fn a_child_outlives_the_thread_that_asked_for_it() {
        let pid = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let child = spawn(command(&sleeper())).await.unwrap();
                let pid = child.id().unwrap();
                std::mem::forget(child); // no kill_on_drop: only the death signal could stop it
                pid
            })
        })
        .join()
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(state_of(pid), Some('S'), "the child died with the thread that asked for it");
        // SAFETY: our own unreaped child.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
            libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
        }
    }

    /// Once reaped, a child is never signalled (its PID may be reused).
    #[tokio::test]
    async fn a_reaped_child_is_not_signalled() {
        let mut child = spawn(command(&sleeper())).await.unwrap();
        signal(&child, libc::SIGKILL);
        assert!(!child.wait().await.unwrap().success());
        assert_eq!(child.id(), None, "tokio forgets the PID once reaped, so `signal` cannot reach a reused one");
        signal(&child, libc::SIGKILL); // a no-op
    }

    #[test]
    fn the_environment_is_clean() {
        let command = command(&sleeper());
        let envs: Vec<_> = command.as_std().get_envs().map(|(k, _)| k.to_string_lossy().into_owned()).collect();
        assert_eq!(envs, ["DAPR_COMPONENTS_SOCKETS_FOLDER", "DAPR_COMPONENT_SOCKETS_FOLDER"]);
    }
}
