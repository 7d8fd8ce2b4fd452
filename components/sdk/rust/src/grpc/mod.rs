//! gRPC mode: Dapr's pluggable component protocol on a Unix socket, with
//! server reflection (v1 and v1alpha, listing only the services served).
//!
//! `serve_<kind>::<T>(name)` serves `<folder>/<name>.sock`, where the folder
//! is `DAPR_COMPONENT_SOCKETS_FOLDER` (the Go SDK's variable), else
//! `DAPR_COMPONENTS_SOCKETS_FOLDER` (daprd's and plughost's), else
//! `/tmp/dapr-components-sockets`. Command line arguments override:
//! `--socket PATH` (the whole socket path) and `--exit-on-stdin-eof` (stop
//! when the parent closes stdin, for tests). A stale socket file (nobody
//! listening) is replaced; a live one is refused. SIGTERM or SIGINT stops the
//! server gracefully and removes the socket.

mod bindings;
mod instances;
pub mod pb;
mod pubsub;
mod secrets;
mod state;
mod stream;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::service::Routes;
use tonic::transport::Server;

pub use instances::{INSTANCE_HEADER, status};

use crate::{InputBinding, OutputBinding, PubSub, SecretStore, StateStore};
use pb::components as c;

/// Largest message either way (plughost sets the same limit).
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;
/// The socket folder when no variable names one.
pub const DEFAULT_SOCKETS_FOLDER: &str = "/tmp/dapr-components-sockets";
/// Longest Unix socket path (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

const STATE: &[&str] = &["dapr.proto.components.v1.StateStore", "dapr.proto.components.v1.TransactionalStateStore"];

macro_rules! limits {
    ($server:expr) => {
        $server.max_decoding_message_size(MAX_MESSAGE_SIZE).max_encoding_message_size(MAX_MESSAGE_SIZE)
    };
}

/// Serves the state store `T` (`StateStore` + `TransactionalStateStore`).
pub fn serve_state<T: StateStore>(name: &str) -> ExitCode {
    let service = std::sync::Arc::new(state::State::<T>::default());
    let routes = Routes::default()
        .add_service(limits!(c::state_store_server::StateStoreServer::from_arc(service.clone())))
        .add_service(limits!(c::transactional_state_store_server::TransactionalStateStoreServer::from_arc(service)));
    serve(name, "state store", STATE, routes)
}

/// Serves the pub/sub broker `T`.
pub fn serve_pubsub<T: PubSub>(name: &str) -> ExitCode {
    let routes = Routes::new(limits!(c::pub_sub_server::PubSubServer::new(pubsub::PubSub::<T>::default())));
    serve(name, "pub/sub", &["dapr.proto.components.v1.PubSub"], routes)
}

/// Serves the input binding `T`.
pub fn serve_input_binding<T: InputBinding>(name: &str) -> ExitCode {
    let routes =
        Routes::new(limits!(c::input_binding_server::InputBindingServer::new(bindings::Input::<T>::default())));
    serve(name, "input binding", &["dapr.proto.components.v1.InputBinding"], routes)
}

/// Serves the output binding `T`.
pub fn serve_output_binding<T: OutputBinding>(name: &str) -> ExitCode {
    let routes =
        Routes::new(limits!(c::output_binding_server::OutputBindingServer::new(bindings::Output::<T>::default())));
    serve(name, "output binding", &["dapr.proto.components.v1.OutputBinding"], routes)
}

/// Serves the secret store `T`.
pub fn serve_secret_store<T: SecretStore>(name: &str) -> ExitCode {
    let routes = Routes::new(limits!(c::secret_store_server::SecretStoreServer::new(secrets::Secrets::<T>::default())));
    serve(name, "secret store", &["dapr.proto.components.v1.SecretStore"], routes)
}

struct Options {
    socket: PathBuf,
    exit_on_stdin_eof: bool,
}

/// The socket folder from the environment (see the module docs).
pub fn sockets_folder() -> PathBuf {
    ["DAPR_COMPONENT_SOCKETS_FOLDER", "DAPR_COMPONENTS_SOCKETS_FOLDER"]
        .iter()
        .find_map(|var| std::env::var_os(var).filter(|v| !v.is_empty()))
        .map_or_else(|| PathBuf::from(DEFAULT_SOCKETS_FOLDER), PathBuf::from)
}

fn options(name: &str) -> Result<Options, String> {
    let mut socket = None;
    let mut exit_on_stdin_eof = false;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--socket") => socket = Some(PathBuf::from(args.next().ok_or("--socket needs a path")?)),
            Some("--exit-on-stdin-eof") => exit_on_stdin_eof = true,
            _ => return Err(format!("unexpected argument {arg:?} (known: --socket PATH, --exit-on-stdin-eof)")),
        }
    }
    let socket = match socket {
        Some(socket) => socket,
        None => {
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return Err(format!("`{name}` is not a usable component name (it names the socket file)"));
            }
            sockets_folder().join(format!("{name}.sock"))
        }
    };
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(format!(
            "{}: socket path is {} bytes, over the {MAX_SOCKET_PATH}-byte limit of Unix sockets",
            socket.display(),
            socket.as_os_str().len()
        ));
    }
    Ok(Options { socket, exit_on_stdin_eof })
}

fn serve(name: &str, kind: &str, services: &[&str], routes: Routes) -> ExitCode {
    let options = match options(name) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{name}: error: {e}");
            return ExitCode::from(2);
        }
    };
    // One thread: calls into an instance are serialised anyway, and a
    // current-thread runtime has the lowest latency on a small machine.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{name}: error: starting the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(name, kind, services, routes, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Refuses a socket a live server answers on; removes a stale one (nobody
/// listening: connection refused).
fn prepare_socket(path: &Path) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("creating the socket folder {}: {e}", parent.display()))?;
    }
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(format!("{}: a live server already answers on this socket", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).map_err(|e| format!("{}: removing the stale socket: {e}", path.display()))
        }
        Err(e) => Err(format!("{}: exists and is not a usable socket ({e})", path.display())),
    }
}

async fn run(name: &str, kind: &str, services: &[&str], routes: Routes, options: Options) -> Result<(), String> {
    prepare_socket(&options.socket)?;
    // Reflection lists only what this process serves (by default it would
    // list every service in the descriptor set).
    let reflection = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET);
        for service in services {
            builder = builder.with_service_name(*service);
        }
        builder
    };
    let v1 = reflection().build_v1().map_err(|e| e.to_string())?;
    let v1alpha = reflection().build_v1alpha().map_err(|e| e.to_string())?;
    let routes = routes.add_service(v1).add_service(v1alpha);

    let listener =
        UnixListener::bind(&options.socket).map_err(|e| format!("binding {}: {e}", options.socket.display()))?;
    let stop = stop_signal(options.exit_on_stdin_eof)?;
    eprintln!("{name}: serving a {kind} on {}", options.socket.display());
    let result = Server::builder()
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(8 << 20))
        .add_routes(routes)
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), stop)
        .await
        .map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&options.socket);
    eprintln!("{name}: stopped, {} removed", options.socket.display());
    result
}

/// SIGTERM, SIGINT, or (with `--exit-on-stdin-eof`) the parent closing stdin.
fn stop_signal(exit_on_stdin_eof: bool) -> Result<impl Future<Output = ()>, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?;
    Ok(async move {
        let stdin_closed = async {
            if !exit_on_stdin_eof {
                return std::future::pending().await;
            }
            use tokio::io::AsyncReadExt as _;
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 256];
            while stdin.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            () = stdin_closed => {}
        }
    })
}
