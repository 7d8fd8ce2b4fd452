//! The app channel: the sidecar calls the app, as daprd does with
//! `--app-port`. Pub/sub messages are pushed to the app's routes and input
//! binding events to `POST /<binding>` (or the gRPC `AppCallback` service),
//! so apps that subscribe with the official SDKs receive them unchanged.
//!
//! Start-up follows daprd (protocol spec C1): wait until the app's port
//! accepts connections, then until the app is healthy (when health checks are
//! on), then ask it for its subscriptions (C2), add the declarative
//! `kind: Subscription` documents (C4), and ask which input bindings it
//! handles (C5). Each subscription and each input binding then runs its own
//! loop, so a slow route never holds up another.
//!
//! * [`http`] / [`grpc`]: the two protocols, behind [`App`];
//! * [`subscriptions`]: the subscription model, its three sources, CEL
//!   routing, and the delivery loop with daprd's response semantics;
//! * [`bindings`]: input binding events to the app;
//! * [`health`]: the probe that pauses delivery while the app is unhealthy;
//! * [`process`]: `plughost run -- <command>`, the app as a child process.
//!
//! Delivery reuses the pub/sub machinery of the streaming subscription: one
//! [`crate::api::Sidecar::subscribe`] per subscription, every message acked
//! or nacked, so what the app did not take stays in the broker.

pub mod bindings;
pub mod grpc;
pub mod health;
pub mod http;
pub mod process;
pub mod subscriptions;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use crate::api::Sidecar;
use crate::kinds::{ComponentKind, Metadata};
pub use health::HealthCheck;
pub use subscriptions::AppSubscription;

/// How the app is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppProtocol {
    /// HTTP/1.1 (daprd's default).
    #[default]
    Http,
    /// gRPC: the app serves `dapr.proto.runtime.v1.AppCallback`.
    Grpc,
}

impl std::str::FromStr for AppProtocol {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "http" => Ok(Self::Http),
            "grpc" => Ok(Self::Grpc),
            "https" | "grpcs" | "h2c" => Err(format!(
                "--app-protocol {text} is not supported by plughost (use http or grpc: the app channel speaks plain \
                 HTTP/1.1 or gRPC to a local app)"
            )),
            other => Err(format!("unknown --app-protocol `{other}` (http or grpc)")),
        }
    }
}

/// The app channel's settings, with daprd's flags and defaults.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// `--app-port`.
    pub port: u16,
    /// `--app-protocol`.
    pub protocol: AppProtocol,
    /// `--app-channel-address` (default `127.0.0.1`).
    pub address: String,
    /// `--app-max-concurrency`: at most this many calls to the app at once
    /// (`None`: no limit).
    pub max_concurrency: Option<usize>,
    /// `--enable-app-health-check` and its settings.
    pub health: Option<HealthCheck>,
    /// Declarative subscriptions (`kind: Subscription`), already scoped to
    /// this app.
    pub declared: Vec<AppSubscription>,
}

impl AppConfig {
    /// An HTTP app on `127.0.0.1:port`.
    pub fn new(port: u16) -> Self {
        Self {
            port,
            protocol: AppProtocol::Http,
            address: "127.0.0.1".to_owned(),
            max_concurrency: None,
            health: None,
            declared: Vec::new(),
        }
    }

    /// `address:port`, as a URL authority.
    fn authority(&self) -> String {
        if self.address.contains(':') && !self.address.starts_with('[') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

/// What a delivery to the app came to (protocol spec C3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Processed: ack.
    Success,
    /// Failed, may succeed later: dead-letter if a topic is set (daprd
    /// without a resiliency policy tries once), else nack.
    Retry(String),
    /// Refused for good: ack, and dead-letter if a topic is set.
    Drop(String),
    /// gRPC `UNIMPLEMENTED`: acked, not dead-lettered (as daprd).
    Ignored,
}

/// The app, as the loops call it: one protocol, one concurrency limit, one
/// health signal.
pub struct App {
    channel: Channel,
    limit: Option<Arc<Semaphore>>,
    healthy: watch::Receiver<bool>,
    pub(crate) sidecar: Arc<Sidecar>,
}

enum Channel {
    Http(http::HttpApp),
    Grpc(grpc::GrpcApp),
}

impl App {
    /// Waits for a permit of `--app-max-concurrency`, if set.
    async fn permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match &self.limit {
            Some(limit) => limit.clone().acquire_owned().await.ok(),
            None => None,
        }
    }

    /// Resolves once the app is healthy (at once if health checks are off).
    pub(crate) async fn healthy(&self) {
        let mut healthy = self.healthy.clone();
        // An error means the health can no longer change (no probe): it stays as it is.
        if healthy.wait_for(|h| *h).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves once the app is unhealthy (never if health checks are off).
    pub(crate) async fn unhealthy(&self) {
        let mut healthy = self.healthy.clone();
        if healthy.wait_for(|h| !*h).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    async fn list_subscriptions(&self) -> Result<Vec<AppSubscription>, String> {
        match &self.channel {
            Channel::Http(app) => app.list_subscriptions().await,
            Channel::Grpc(app) => app.list_subscriptions().await,
        }
    }

    /// Delivers one event (`envelope`: the CloudEvent JSON) to `path`.
    pub(crate) async fn deliver_event(
        &self,
        subscription: &AppSubscription,
        path: &str,
        envelope: &[u8],
        metadata: &Metadata,
    ) -> Verdict {
        let _permit = self.permit().await;
        match &self.channel {
            Channel::Http(app) => app.deliver_event(path, envelope, metadata).await,
            Channel::Grpc(app) => app.deliver_event(subscription, path, envelope, metadata).await,
        }
    }

    /// Whether the app handles the input binding `name`.
    async fn handles_binding(&self, name: &str) -> Result<bool, String> {
        match &self.channel {
            Channel::Http(app) => app.handles_binding(name).await,
            Channel::Grpc(app) => Ok(app.handles_binding(name).await),
        }
    }

    /// Delivers one input binding event; `Ok` carries the app's reply.
    pub(crate) async fn deliver_binding(
        &self,
        name: &str,
        event: &crate::kinds::input_binding::InputEvent,
    ) -> Result<Vec<u8>, String> {
        let _permit = self.permit().await;
        match &self.channel {
            Channel::Http(app) => app.deliver_binding(name, event).await,
            Channel::Grpc(app) => app.deliver_binding(name, event).await,
        }
    }
}

/// How long one attempt to reach the app's port may take, and the pause
/// between attempts (daprd's values).
const DIAL_TIMEOUT: Duration = Duration::from_millis(500);
const DIAL_PAUSE: Duration = Duration::from_millis(100);
/// How often plughost says it is still waiting for the app's port.
const WAIT_REPORT: Duration = Duration::from_secs(5);

/// Waits until something accepts connections on `address`, saying so every
/// [`WAIT_REPORT`]; returns `false` if the sidecar stops first.
async fn wait_for_port(address: &str, sidecar: &Sidecar) -> bool {
    let started = tokio::time::Instant::now();
    let mut next_report = started + WAIT_REPORT;
    loop {
        let dial = tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(address));
        let last_error = tokio::select! {
            dialed = dial => match dialed {
                Ok(Ok(_)) => return true,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {DIAL_TIMEOUT:?}"),
            },
            () = sidecar.stopping() => return false,
        };
        if tokio::time::Instant::now() >= next_report {
            tracing::error!(
                "the app has not opened its port {address} (--app-port) after {}s ({last_error}); no pub/sub \
                 message or input binding event is delivered until it does",
                started.elapsed().as_secs()
            );
            next_report += WAIT_REPORT;
        }
        tokio::select! {
            () = tokio::time::sleep(DIAL_PAUSE) => {}
            () = sidecar.stopping() => return false,
        }
    }
}

/// Starts the app channel in the background: it waits for the app, then
/// delivers until the sidecar stops.
pub fn start(sidecar: Arc<Sidecar>, config: AppConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(sidecar, config))
}

async fn run(sidecar: Arc<Sidecar>, config: AppConfig) {
    let authority = config.authority();
    tracing::info!("waiting for the app on {authority} ({:?})", config.protocol);
    if !wait_for_port(&authority, &sidecar).await {
        return;
    }
    tracing::info!("the app is listening on {authority}");
    let channel = match config.protocol {
        AppProtocol::Http => http::HttpApp::new(&authority, &sidecar.config().app_id).map(Channel::Http),
        AppProtocol::Grpc => grpc::GrpcApp::new(&authority).map(Channel::Grpc),
    };
    let channel = match channel {
        Ok(channel) => channel,
        Err(e) => {
            tracing::error!("cannot open the app channel to {authority}: {e}");
            return;
        }
    };
    let (health_tx, healthy) = watch::channel(config.health.is_none());
    let app = Arc::new(App {
        channel,
        limit: config.max_concurrency.filter(|&n| n > 0).map(|n| Arc::new(Semaphore::new(n))),
        healthy,
        sidecar: sidecar.clone(),
    });
    if let Some(check) = config.health.clone() {
        tokio::spawn(health::probe(app.clone(), check, health_tx));
    }
    tokio::select! {
        () = app.healthy() => {}
        () = sidecar.stopping() => return,
    }
    let has_pubsub = sidecar.registry().components().iter().any(|c| c.kinds.contains(&ComponentKind::PubSub));
    if has_pubsub {
        let programmatic = discover(&app).await;
        for subscription in subscriptions::merge(config.declared, programmatic) {
            tokio::spawn(subscriptions::run(app.clone(), subscription));
        }
    }
    bindings::start(&app).await;
}

/// The app's programmatic subscriptions, asked a few times while the app
/// cannot be reached (daprd: 3 retries over 10 s at most).
async fn discover(app: &App) -> Vec<AppSubscription> {
    let mut pause = Duration::from_millis(500);
    for attempt in 0..4 {
        match app.list_subscriptions().await {
            Ok(list) => return list,
            Err(e) if attempt == 3 => tracing::error!("failed to subscribe: cannot list the app's subscriptions: {e}"),
            Err(e) => tracing::warn!("cannot list the app's subscriptions yet: {e}"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 3 / 2).min(Duration::from_secs(1));
    }
    Vec::new()
}

/// The address an app channel dials, for messages.
pub fn describe(config: &AppConfig) -> String {
    let protocol = match config.protocol {
        AppProtocol::Http => "http",
        AppProtocol::Grpc => "grpc",
    };
    format!("{protocol}://{}", config.authority())
}
