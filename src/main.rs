//! The `plughost` binary: `plughost run` and `plughost components list`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use plughost::api::ApiConfig;
use plughost::{Host, HostBuilder};

/// Host components in-process (WebAssembly) or out-of-process (Dapr pluggable gRPC).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the components and serve the Dapr-compatible sidecar API (gRPC
    /// and HTTP) until interrupted (Ctrl-C or SIGTERM) or asked to shut down.
    Run(RunArgs),
    /// Inspect configured components.
    Components {
        #[command(subcommand)]
        command: ComponentsCommand,
    },
}

#[derive(Subcommand)]
enum ComponentsCommand {
    /// Load the components and print name, kind, type, mode and status.
    List(Sources),
}

#[derive(Args)]
struct Sources {
    /// Directory of Dapr Component YAML files. Without it, plughost starts on
    /// the embedded defaults: `statestore` (state.sqlite) and `pubsub`
    /// (pubsub.in-memory).
    #[arg(long, value_name = "DIR", env = "PLUGHOST_COMPONENTS")]
    components: Option<PathBuf>,
    /// Directory of WebAssembly components (`*.wasm`); each registers the
    /// types `<kind>.<file stem>` for the kinds it exports.
    #[arg(long, value_name = "DIR", env = "PLUGHOST_WASM_DIR")]
    wasm_dir: Option<PathBuf>,
    /// Where persistent components keep their files
    /// [default: $XDG_DATA_HOME/plughost or ~/.local/share/plughost].
    #[arg(long, value_name = "DIR", env = "PLUGHOST_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Folder of Dapr pluggable component sockets (`<name>.sock`, found
    /// through gRPC reflection as types `state.<name>`, `pubsub.<name>`, ...).
    /// Watched: sockets that appear later are found too. Note that the Go
    /// component SDK reads DAPR_COMPONENT_SOCKETS_FOLDER (singular).
    #[arg(
        long,
        value_name = "DIR",
        env = "DAPR_COMPONENTS_SOCKETS_FOLDER",
        default_value = plughost::grpc::discovery::DEFAULT_SOCKETS_FOLDER
    )]
    sockets_dir: PathBuf,
    /// Also trust sockets served by this uid (repeatable); plughost's own
    /// uid is always trusted, and a socket served by anyone else is refused.
    #[arg(long, value_name = "UID")]
    trust_socket_uid: Vec<u32>,
    /// Use a socket folder that group or others may write to, or that
    /// another user owns, with a warning (refused by default: anyone who can
    /// write there can plant a component).
    #[arg(long)]
    allow_shared_sockets_dir: bool,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    sources: Sources,
    #[command(flatten)]
    api: ApiArgs,
}

/// The sidecar API, with daprd's flag names.
#[derive(Args)]
struct ApiArgs {
    /// The app id: state keys are stored as `<app-id>||<key>` (see the
    /// `keyPrefix` component metadata), published CloudEvents have it as
    /// `source`, and streaming subscriptions use it as consumer group.
    #[arg(long, value_name = "ID", default_value = "plughost")]
    app_id: String,
    /// Port of the gRPC API (`dapr.proto.runtime.v1.Dapr`); 0 picks a free one.
    #[arg(long, value_name = "PORT", default_value_t = plughost::api::DEFAULT_GRPC_PORT)]
    dapr_grpc_port: u16,
    /// Port of the HTTP API (`/v1.0/...`); 0 picks a free one.
    #[arg(long, value_name = "PORT", default_value_t = plughost::api::DEFAULT_HTTP_PORT)]
    dapr_http_port: u16,
    /// Address both APIs listen on. Anything beyond loopback should have an
    /// API token.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    listen_address: IpAddr,
    /// Require this token in the `dapr-api-token` header of every call but
    /// the health checks.
    #[arg(long, value_name = "TOKEN", env = "DAPR_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Largest request accepted (HTTP body or gRPC message): bytes, or with
    /// `Ki`, `Mi`, `Gi`.
    #[arg(long, value_name = "SIZE", default_value = "4Mi", value_parser = parse_size)]
    max_body_size: usize,
}

impl ApiArgs {
    fn config(&self) -> ApiConfig {
        ApiConfig {
            app_id: self.app_id.clone(),
            namespace: std::env::var("NAMESPACE").unwrap_or_default(),
            grpc_addr: SocketAddr::new(self.listen_address, self.dapr_grpc_port),
            http_addr: SocketAddr::new(self.listen_address, self.dapr_http_port),
            token: self.api_token.clone().filter(|t| !t.is_empty()),
            max_body: self.max_body_size,
        }
    }
}

/// `4194304`, `4Mi`, `512Ki`, `1Gi` (also with `B`: `4MiB`).
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "Ki" | "KiB" => 1 << 10,
        "Mi" | "MiB" => 1 << 20,
        "Gi" | "GiB" => 1 << 30,
        other => return Err(format!("unknown unit `{other}` (use bytes, Ki, Mi or Gi)")),
    };
    let size = number.parse::<usize>().ok().and_then(|n| n.checked_mul(scale)).filter(|&n| n > 0);
    size.ok_or_else(|| format!("`{text}` is not a size (e.g. 4194304 or 4Mi)"))
}

impl Sources {
    fn builder(&self) -> HostBuilder {
        let mut builder = Host::builder();
        builder = match &self.components {
            Some(dir) => builder.components_dir(dir),
            None => builder.embedded_defaults(),
        };
        if let Some(dir) = &self.data_dir {
            builder = builder.data_dir(dir);
        }
        if let Some(dir) = &self.wasm_dir {
            builder = builder.wasm_dir(dir);
        }
        let grpc = plughost::grpc::GrpcOptions {
            trusted_uids: self.trust_socket_uid.clone(),
            allow_shared_socket_dir: self.allow_shared_sockets_dir,
            ..plughost::grpc::GrpcOptions::default()
        };
        builder.socket_dir(&self.sockets_dir).grpc_options(grpc)
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(RunArgs { sources, api }) => {
            let host = sources.builder().build().await?;
            let config = api.config();
            let app_id = config.app_id.clone();
            let shutdown = async {
                if let Err(e) = wait_for_signal().await {
                    tracing::error!("cannot wait for signals: {e}");
                }
            };
            let served = plughost::api::serve(host.registry().clone(), config, shutdown).await;
            let api = match served {
                Ok(api) => api,
                Err(e) => {
                    host.shutdown().await;
                    return Err(e.into());
                }
            };
            let ready: Vec<String> = host
                .components()
                .iter()
                .filter(|c| c.status == plughost::registry::Status::Ready)
                .map(|c| format!("{} ({}, {})", c.name, c.type_name, c.mode.as_str()))
                .collect();
            tracing::info!(
                app_id = %app_id,
                grpc = %api.grpc_addr(),
                http = %api.http_addr(),
                components = %ready.join(", "),
                data_dir = %host.data_dir().display(),
                "plughost running: gRPC API on port {}, HTTP API on port {}; press Ctrl-C to stop",
                api.grpc_addr().port(),
                api.http_addr().port(),
            );
            api.wait().await;
            tracing::info!("shutting down");
            host.shutdown().await;
            Ok(())
        }
        Command::Components { command: ComponentsCommand::List(sources) } => {
            let host = sources.builder().build().await?;
            print!("{}", table(host.components()));
            let skipped_sockets = host.sockets().map(|report| report.skipped).unwrap_or_default();
            for (path, reason) in host.skipped_wasm().iter().cloned().chain(skipped_sockets) {
                println!("skipped {}: {reason}", path.display());
            }
            host.shutdown().await;
            Ok(())
        }
    }
}

fn table(components: &[plughost::registry::ComponentInfo]) -> String {
    let mut rows = vec![["NAME", "KIND", "TYPE", "MODE", "STATUS"].map(String::from)];
    for c in components {
        let kinds = c.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",");
        rows.push([
            c.name.clone(),
            kinds,
            c.type_name.clone(),
            c.mode.as_str().to_owned(),
            c.current_status().to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..5).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
