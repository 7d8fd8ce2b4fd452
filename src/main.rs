//! The `plughost` binary: `plughost run`, `plughost components list` and `plughost new`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use plughost::api::ApiConfig;
use plughost::appchannel::{AppConfig, AppProtocol, HealthCheck};
use plughost::{Host, HostBuilder};

mod remote;
mod scaffold;

/// Host components in-process (WebAssembly) or out-of-process (Dapr pluggable gRPC).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
enum Command {
    /// Load the components and serve the Dapr-compatible sidecar API (gRPC
    /// and HTTP) until interrupted (Ctrl-C or SIGTERM) or asked to shut down.
    Run(RunArgs),
    /// Inspect configured components.
    Components {
        #[command(subcommand)]
        command: ComponentsCommand,
    },
    /// Write a new component project (the SDK of the language, both modes:
    /// a gRPC component and a WASM component from the same source).
    New(NewArgs),
}

#[derive(Args)]
struct NewArgs {
    /// Component name: lowercase letters, digits and `-` (names the crate or
    /// module, the socket `<name>.sock` and the `<name>.wasm` file).
    name: String,
    /// state, pubsub, input-binding, output-binding or secret-store.
    #[arg(long)]
    kind: String,
    /// rust or python.
    #[arg(long)]
    lang: String,
    /// Where to write the project [default: ./<name>].
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ComponentsCommand {
    /// List the components of the running plughost (its admin API on
    /// --dapr-http-port), or with --offline load the configuration here and
    /// print name, kind, type, mode and status.
    List(ListArgs),
    /// Disable a component of the running plughost: its calls fail at once
    /// with UNAVAILABLE until it is enabled again.
    Disable(ActionArgs),
    /// Enable a disabled component of the running plughost again.
    Enable(ActionArgs),
    /// Reload (re-initialise) a component of the running plughost (not
    /// supported yet: answers why).
    Reload(ActionArgs),
    /// Restart the supervised process of a component of the running plughost.
    Restart(ActionArgs),
}

#[derive(Args)]
struct ListArgs {
    /// Do not ask a running plughost: load the configuration (the flags
    /// below) in this process, start every component, list, and stop.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    remote: remote::Remote,
    #[command(flatten)]
    sources: Sources,
}

#[derive(Args)]
struct ActionArgs {
    /// The component's name.
    name: String,
    #[command(flatten)]
    remote: remote::Remote,
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
        default_value = plughost::pluggable::discovery::DEFAULT_SOCKETS_FOLDER
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
    #[command(flatten)]
    metrics: MetricsArgs,
    #[command(flatten)]
    app: AppArgs,
}

/// Prometheus metrics, with daprd's flag names.
#[derive(Args)]
struct MetricsArgs {
    /// Serve Prometheus metrics at `/metrics` on the metrics port
    /// (`--enable-metrics=false` turns them off).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    enable_metrics: bool,
    /// Port of the metrics endpoint (on `--listen-address`); 0 picks a free
    /// one. If it cannot be bound, plughost logs why and runs without it.
    #[arg(long, value_name = "PORT", default_value_t = 9090)]
    metrics_port: u16,
}

impl MetricsArgs {
    /// Binds and serves the metrics endpoint in the background, if enabled.
    async fn start(&self, address: IpAddr) {
        if !self.enable_metrics {
            return;
        }
        let addr = SocketAddr::new(address, self.metrics_port);
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let bound = listener.local_addr().unwrap_or(addr);
                tracing::info!(metrics = %bound, "Prometheus metrics on http://{bound}/metrics");
                tokio::spawn(async move {
                    if let Err(e) = plughost::metrics::serve(listener, std::future::pending()).await {
                        tracing::error!("metrics endpoint stopped: {e}");
                    }
                });
            }
            Err(e) => tracing::error!("metrics disabled: cannot listen on {addr}: {e} (see --metrics-port)"),
        }
    }
}

/// The app channel (the sidecar calling the app), with daprd's flag names.
#[derive(Args)]
struct AppArgs {
    /// The port the app listens on. With it, plughost delivers pub/sub
    /// subscriptions and input binding events to the app; without it, none.
    #[arg(long, value_name = "PORT")]
    app_port: Option<u16>,
    /// How the app is called: http or grpc (https, grpcs and h2c are not
    /// supported).
    #[arg(long, value_name = "PROTOCOL", default_value = "http", value_parser = parse_protocol)]
    app_protocol: AppProtocol,
    /// The host the app listens on.
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    app_channel_address: String,
    /// At most this many calls to the app at once; -1: no limit.
    #[arg(long, value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    app_max_concurrency: i64,
    /// Probe the app's health and pause delivery while it is unhealthy.
    #[arg(long)]
    enable_app_health_check: bool,
    /// The HTTP path of the health probe.
    #[arg(long, value_name = "PATH", default_value = "/healthz")]
    app_health_check_path: String,
    /// Seconds between health probes.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    app_health_probe_interval: u64,
    /// Deadline of one health probe, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    app_health_probe_timeout: u64,
    /// Failed probes in a row before the app counts as unhealthy.
    #[arg(long, value_name = "N", default_value_t = 3)]
    app_health_threshold: u32,
    /// The app to start (after `--`), with DAPR_HTTP_PORT, DAPR_GRPC_PORT,
    /// APP_ID, APP_PORT and DAPR_API_TOKEN set; plughost forwards SIGINT and
    /// SIGTERM to it, stops with it, and exits with its status.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<std::ffi::OsString>,
}

fn parse_protocol(text: &str) -> Result<AppProtocol, String> {
    text.parse()
}

impl AppArgs {
    /// The app channel's settings, if `--app-port` is given; the declarative
    /// subscriptions come from the components folder.
    fn config(&self, components: Option<&std::path::Path>, app_id: &str) -> anyhow::Result<Option<AppConfig>> {
        let Some(port) = self.app_port.filter(|&p| p > 0) else { return Ok(None) };
        let health = self.enable_app_health_check.then(|| HealthCheck {
            path: self.app_health_check_path.clone(),
            interval: std::time::Duration::from_secs(self.app_health_probe_interval),
            timeout: std::time::Duration::from_millis(self.app_health_probe_timeout),
            threshold: self.app_health_threshold,
        });
        if let Some(health) = &health {
            health.validate().map_err(anyhow::Error::msg)?;
        }
        let declared = match components {
            Some(dir) => plughost::appchannel::subscriptions::load_dir(dir, app_id)
                .map_err(|errors| anyhow::anyhow!("invalid subscription:\n{}", errors.join("\n")))?,
            None => Vec::new(),
        };
        Ok(Some(AppConfig {
            port,
            protocol: self.app_protocol,
            address: self.app_channel_address.clone(),
            max_concurrency: usize::try_from(self.app_max_concurrency).ok().filter(|&n| n > 0),
            health,
            declared,
        }))
    }
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
    /// Connections both APIs together may have open; more wait until one
    /// closes.
    #[arg(long, value_name = "N", default_value_t = plughost::api::ApiLimits::default().max_connections)]
    max_api_connections: usize,
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
            limits: plughost::api::ApiLimits {
                max_connections: self.max_api_connections,
                ..plughost::api::ApiLimits::default()
            },
            admin: None,
        }
    }
}

/// `4194304`, `4Mi`, `512Ki`, `1Gi` (also with `B`: `4MiB`); not zero.
fn parse_size(text: &str) -> Result<usize, String> {
    match plughost::units::parse_size(text) {
        Ok(0) => Err("the size must be more than 0".to_owned()),
        Ok(size) => Ok(size),
        Err(e) => Err(e.to_string()),
    }
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
        let grpc = plughost::pluggable::GrpcOptions {
            trusted_uids: self.trust_socket_uid.clone(),
            allow_shared_socket_dir: self.allow_shared_sockets_dir,
            ..plughost::pluggable::GrpcOptions::default()
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
        Ok(Some(code)) => ExitCode::from(code),
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command; `Some(status)` is the exit status of the app that
/// `plughost run -- <command>` started.
async fn run(cli: Cli) -> anyhow::Result<Option<u8>> {
    match cli.command {
        Command::Run(RunArgs { sources, api, metrics, app }) => {
            let config = api.config();
            let app_channel = app.config(sources.components.as_deref(), &config.app_id)?;
            // With an app to run, signals go to the app and plughost stops
            // when it exits. Without one, the handlers go in first: a SIGTERM
            // right after the start-up line must stop plughost in order
            // (components, then their processes).
            let with_app = !app.command.is_empty();
            let signals = if with_app { None } else { Some(stop_signals()?) };
            let shutdown = async move {
                match signals {
                    Some(signals) => signals.await,
                    None => std::future::pending().await,
                }
            };
            let host = sources.builder().build().await?;
            // SIGHUP: re-read the components and WASM folders (they are
            // also watched); an invalid edit changes nothing.
            let reload = host.reload_handle();
            let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the configuration");
                    let _ = reload.reload().await;
                }
            });
            let app_id = config.app_id.clone();
            let listen_address = config.http_addr.ip();
            let config = plughost::api::ApiConfig { admin: Some(host.ops().clone()), ..config };
            let served = plughost::api::serve(host.registry().clone(), config, shutdown).await;
            let api = match served {
                Ok(api) => api,
                Err(e) => {
                    host.shutdown().await;
                    return Err(e.into());
                }
            };
            metrics.start(listen_address).await;
            let ready: Vec<String> = host
                .components()
                .iter()
                .filter(|c| c.status == plughost::component::Status::Ready)
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
            let app_env = plughost::appchannel::process::AppEnv {
                app_id: app_id.clone(),
                grpc_port: api.grpc_addr().port(),
                http_port: api.http_addr().port(),
                app_port: app_channel.as_ref().map(|c| c.port),
                token: api.sidecar().config().token.clone(),
            };
            if let Some(config) = app_channel {
                tracing::info!("app channel: {}", plughost::appchannel::describe(&config));
                plughost::appchannel::start(api.sidecar().clone(), config);
            }
            let status = if with_app {
                let status = plughost::appchannel::process::run(&app.command, &app_env, api.sidecar()).await;
                api.stop();
                Some(status.unwrap_or_else(|e| {
                    tracing::error!("{e:#}");
                    1
                }))
            } else {
                None
            };
            api.wait().await;
            tracing::info!("shutting down");
            host.shutdown().await;
            Ok(status)
        }
        Command::New(NewArgs { name, kind, lang, dir }) => {
            let request = scaffold::Request { name: &name, kind: &kind, lang: &lang, dir };
            let written = scaffold::write(&request)?;
            println!("wrote a {lang} {kind} component in {}; see its README.md", written.display());
            Ok(None)
        }
        Command::Components { command: ComponentsCommand::List(ListArgs { offline: false, remote, .. }) } => {
            let listing = remote.list().await?;
            println!("{}:", remote.describe(&listing));
            print!("{}", render(remote::table(&listing)));
            Ok(None)
        }
        Command::Components { command: ComponentsCommand::Disable(args) } => act(args, "disable", "disabled").await,
        Command::Components { command: ComponentsCommand::Enable(args) } => act(args, "enable", "enabled").await,
        Command::Components { command: ComponentsCommand::Reload(args) } => act(args, "reload", "reloaded").await,
        Command::Components { command: ComponentsCommand::Restart(args) } => {
            act(args, "restart", "process restarted").await
        }
        Command::Components { command: ComponentsCommand::List(ListArgs { sources, .. }) } => {
            let host = sources.builder().build().await?;
            print!("{}", table(&host.components()));
            let skipped_sockets = host.sockets().map(|report| report.skipped).unwrap_or_default();
            for (path, reason) in host.skipped_wasm().iter().cloned().chain(skipped_sockets) {
                println!("skipped {}: {reason}", path.display());
            }
            host.shutdown().await;
            Ok(None)
        }
    }
}

/// `components disable|enable|reload|restart NAME` on the running plughost.
async fn act(args: ActionArgs, action: &str, done: &str) -> anyhow::Result<Option<u8>> {
    let instance = args.remote.act(&args.name, action).await?;
    println!("{instance}: component `{}` {done}", args.name);
    Ok(None)
}

fn table(components: &[plughost::component::ComponentInfo]) -> String {
    let mut rows = vec![["NAME", "KIND", "TYPE", "MODE", "GEN", "SWAPPED", "STATUS"].map(String::from)];
    for c in components {
        let kinds = c.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",");
        rows.push([
            c.name.clone(),
            kinds,
            c.type_name.clone(),
            c.mode.as_str().to_owned(),
            c.generation.to_string(),
            c.swapped_at.map_or_else(|| "-".to_owned(), swapped),
            match &c.reload_error {
                Some(error) => format!("{} (last reload failed: {error})", c.current_status()),
                None => c.current_status().to_string(),
            },
        ]);
    }
    render(rows)
}

/// Rows as left-aligned columns.
fn render<const N: usize>(rows: Vec<[String; N]>) -> String {
    let widths: Vec<usize> = (0..N).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// When a component was last swapped, in UTC (RFC 3339, seconds).
fn swapped(at: std::time::SystemTime) -> String {
    let at = time::OffsetDateTime::from(at).replace_nanosecond(0).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Installs the SIGINT (Ctrl-C) and SIGTERM handlers now, not when first
/// polled, and resolves on the first of them.
fn stop_signals() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
