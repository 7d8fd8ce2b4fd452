//! Command line, socket, and the tonic server with reflection.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;

use crate::common::log;
use crate::pb::{self, components as c};

/// Largest message either way (the host sets the same limit).
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;

const USAGE: &str = "usage: grpc-components <state|pubsub|input-binding|output-binding|secret-store> --socket PATH \
                     [--data-dir DIR] [--exit-on-stdin-eof]";

struct Args {
    kind: String,
    socket: PathBuf,
    data_dir: Option<PathBuf>,
    exit_on_stdin_eof: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args_os().skip(1);
    let kind = args.next().and_then(|k| k.into_string().ok()).ok_or("missing kind")?;
    let (mut socket, mut data_dir, mut exit_on_stdin_eof) = (None, None, false);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--socket") => socket = Some(PathBuf::from(args.next().ok_or("--socket needs a path")?)),
            Some("--data-dir") => data_dir = Some(PathBuf::from(args.next().ok_or("--data-dir needs a path")?)),
            Some("--exit-on-stdin-eof") => exit_on_stdin_eof = true,
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    Ok(Args { kind, socket: socket.ok_or("missing --socket")?, data_dir, exit_on_stdin_eof })
}

pub fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // One thread: the host and this process share a small machine, and a
    // current-thread runtime halves gRPC latency there (performance guide 5.5).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log(format!("error: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Refuses a socket a live server answers on; removes a stale one (nobody
/// listening: connection refused), as the reliability guide prescribes.
fn prepare_socket(path: &Path) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(format!("{}: a live server already answers on this socket", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).map_err(|e| format!("removing stale socket {}: {e}", path.display()))
        }
        Err(e) => Err(format!("{}: exists and is not a usable socket ({e})", path.display())),
    }
}

async fn run(args: Args) -> Result<(), String> {
    prepare_socket(&args.socket)?;
    if let Some(dir) = &args.data_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let services: &[&str] = match args.kind.as_str() {
        "state" => &["dapr.proto.components.v1.StateStore", "dapr.proto.components.v1.TransactionalStateStore"],
        "pubsub" => &["dapr.proto.components.v1.PubSub"],
        "input-binding" => &["dapr.proto.components.v1.InputBinding"],
        "output-binding" => &["dapr.proto.components.v1.OutputBinding"],
        "secret-store" => &["dapr.proto.components.v1.SecretStore"],
        other => return Err(format!("unknown kind `{other}`\n{USAGE}")),
    };
    // Reflection lists only what this process serves (by default
    // tonic-reflection would list every service in the descriptor set).
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

    let mut server =
        Server::builder().initial_stream_window_size(Some(4 << 20)).initial_connection_window_size(Some(8 << 20));
    let router = server.add_service(v1).add_service(v1alpha);
    let data_dir = args.data_dir.clone();
    let router = match args.kind.as_str() {
        "state" => {
            let service = std::sync::Arc::new(crate::state::State::default());
            router
                .add_service(
                    c::state_store_server::StateStoreServer::from_arc(service.clone())
                        .max_decoding_message_size(MAX_MESSAGE_SIZE)
                        .max_encoding_message_size(MAX_MESSAGE_SIZE),
                )
                .add_service(
                    c::transactional_state_store_server::TransactionalStateStoreServer::from_arc(service)
                        .max_decoding_message_size(MAX_MESSAGE_SIZE)
                        .max_encoding_message_size(MAX_MESSAGE_SIZE),
                )
        }
        "pubsub" => router.add_service(
            c::pub_sub_server::PubSubServer::new(crate::pubsub::PubSub::new(data_dir))
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        ),
        "input-binding" => router.add_service(
            c::input_binding_server::InputBindingServer::new(crate::input::Input::default())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        ),
        "output-binding" => router.add_service(
            c::output_binding_server::OutputBindingServer::new(crate::output::Output::new(data_dir))
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        ),
        _ => router.add_service(
            c::secret_store_server::SecretStoreServer::new(crate::secrets::Secrets::default())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        ),
    };

    let listener = UnixListener::bind(&args.socket).map_err(|e| format!("binding {}: {e}", args.socket.display()))?;
    log(format!("serving {} on {}", args.kind, args.socket.display()));
    let result = router
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), stop_signal(args.exit_on_stdin_eof))
        .await
        .map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&args.socket);
    log("stopped");
    result
}

/// SIGTERM, SIGINT, or (with `--exit-on-stdin-eof`) the parent closing our
/// stdin: a test that dies cannot leave this process behind.
async fn stop_signal(exit_on_stdin_eof: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
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
}
