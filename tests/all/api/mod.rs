//! The sidecar API. `http` and `grpc` serve it in-process on port 0 over
//! built-in components and call it with plain clients (reqwest, the
//! generated tonic client); `sdk` runs `plughost run` and drives it with the
//! official Dapr Python SDK, once per component mode; `cli` checks the
//! `plughost run` flags and start-up output; `limits` what one client can
//! hold on either API (streams, half-sent requests, header size, nodelay);
//! `app` runs Dapr SDK apps behind `plughost run --app-port` (the app channel).

mod app;
mod cli;
mod grpc;
mod http;
mod limits;
mod sdk;

use plughost::Host;
use plughost::api::{ApiConfig, ApiHandle, serve};
use plughost::config::ComponentSpec;
use tempfile::TempDir;

/// The API token of the token tests.
pub const TOKEN: &str = "s3cret-t0ken";

/// plughost's sidecar API served in-process over built-in components:
/// `store` (state.in-memory), `plain` (state.in-memory, `keyPrefix: none`),
/// `pubsub` (pubsub.in-memory), `files` (bindings.localstorage) and `vault`
/// (secretstores.local.file holding `api-key` = `s3cret`).
pub struct Served {
    pub api: ApiHandle,
    pub host: Host,
    _dir: TempDir,
}

impl Served {
    pub async fn start(configure: impl FnOnce(&mut ApiConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets.json");
        std::fs::write(&secrets, r#"{"api-key": "s3cret", "db": {"password": "pw"}}"#).unwrap();
        let files = dir.path().join("files");
        let host = Host::builder()
            .data_dir(dir.path().join("data"))
            .component(ComponentSpec::new("store", "state.in-memory"))
            .component(ComponentSpec::new("plain", "state.in-memory").with("keyPrefix", "none"))
            .component(ComponentSpec::new("pubsub", "pubsub.in-memory"))
            .component(ComponentSpec::new("files", "bindings.localstorage").with("rootPath", files.to_str().unwrap()))
            .component(
                ComponentSpec::new("vault", "secretstores.local.file").with("secretsFile", secrets.to_str().unwrap()),
            )
            .build()
            .await
            .unwrap();
        let mut config = ApiConfig {
            app_id: "myapp".into(),
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            http_addr: "127.0.0.1:0".parse().unwrap(),
            ..ApiConfig::default()
        };
        configure(&mut config);
        let api = serve(host.registry().clone(), config, std::future::pending()).await.unwrap();
        Self { api, host, _dir: dir }
    }

    /// `http://127.0.0.1:<port>` of the HTTP API.
    pub fn http(&self) -> String {
        format!("http://{}", self.api.http_addr())
    }

    /// `http://127.0.0.1:<port>` of the gRPC API.
    pub fn grpc(&self) -> String {
        format!("http://{}", self.api.grpc_addr())
    }

    /// Stops the servers and waits for them, bounded.
    pub async fn stop(self) {
        self.api.stop();
        tokio::time::timeout(std::time::Duration::from_secs(15), self.api.wait()).await.expect("the API stops");
        self.host.shutdown().await;
    }
}
