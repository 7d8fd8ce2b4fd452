//! The `plughost` binary: `plughost run` and `plughost components list`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
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
    /// Load the components and serve until interrupted (Ctrl-C or SIGTERM).
    Run(Sources),
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
        builder.socket_dir(&self.sockets_dir)
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
        Command::Run(sources) => {
            let host = sources.builder().build().await?;
            let ready = host.components().iter().filter(|c| c.status == plughost::registry::Status::Ready).count();
            tracing::info!(
                components = ready,
                data_dir = %host.data_dir().display(),
                "plughost running; press Ctrl-C to stop"
            );
            wait_for_signal().await?;
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
