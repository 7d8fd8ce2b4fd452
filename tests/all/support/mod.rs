//! Fixtures shared by the test modules.

pub mod grpc;
pub mod redis_server;
pub mod sdk;
pub mod sidecar;
pub mod wasm;

use std::path::Path;
use std::sync::Arc;

use plughost::Host;
use plughost::config::ComponentSpec;
use plughost::kinds::input_binding::InputBinding;
use plughost::kinds::output_binding::OutputBinding;
use plughost::kinds::pubsub::PubSub;
use plughost::kinds::secret_store::SecretStore;
use plughost::kinds::state::StateStore;
use tempfile::TempDir;

/// A component under test, with what keeps it alive (its host and its data
/// directory), dropped together at the end of the test.
pub struct Fixture<T: ?Sized> {
    pub component: Arc<T>,
    _host: Host,
    _process: Option<grpc::ComponentProcess>,
    _dir: TempDir,
}

impl<T: ?Sized> std::ops::Deref for Fixture<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.component
    }
}

/// Starts a host with the single component `spec` (named `under-test`) in
/// a fresh data directory. `setup` may write files into the directory first
/// and adjust the spec.
pub async fn host_with(
    type_name: &str,
    setup: impl FnOnce(&std::path::Path, ComponentSpec) -> ComponentSpec,
) -> (Host, TempDir) {
    host_with_wasm(type_name, None, setup).await
}

/// [`host_with`], also loading the WASM components in `wasm_dir`.
pub async fn host_with_wasm(
    type_name: &str,
    wasm_dir: Option<&std::path::Path>,
    setup: impl FnOnce(&std::path::Path, ComponentSpec) -> ComponentSpec,
) -> (Host, TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = setup(dir.path(), ComponentSpec::new("under-test", type_name));
    let mut builder = Host::builder().data_dir(dir.path().join("data")).component(spec);
    if let Some(wasm_dir) = wasm_dir {
        builder = builder.wasm_dir(wasm_dir);
    }
    let host = builder.build().await.unwrap_or_else(|e| panic!("starting {type_name}: {e}"));
    (host, dir)
}

/// A host running the guest at `wasm` as component `under-test` of type
/// `<prefix>.guest`, with `metadata`.
pub async fn wasm_host(prefix: &str, wasm: std::path::PathBuf, metadata: &[(&str, &str)]) -> (Host, TempDir) {
    let wasm_dir = wasm::wasm_dir(&[("guest.wasm", wasm)]);
    host_with_wasm(&format!("{prefix}.guest"), Some(wasm_dir.path()), |_, mut spec| {
        for (k, v) in metadata {
            spec = spec.with(*k, *v);
        }
        spec
    })
    .await
}

pub async fn wasm_state(crate_name: &str) -> Fixture<dyn StateStore> {
    let (host, dir) = wasm_host("state", wasm::guest(crate_name), &[]).await;
    Fixture { component: host.state("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}

pub async fn python_wasm_state() -> Fixture<dyn StateStore> {
    let (host, dir) = wasm_host("state", wasm::python_state(), &[]).await;
    Fixture { component: host.state("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}

/// The JavaScript store. Large values are slow in it (a 1 MiB set + get took
/// 18.8 s under wasmtime-py on a loaded machine), so calls get 60 s instead of
/// the 5 s default.
pub async fn js_wasm_state() -> Fixture<dyn StateStore> {
    let (host, dir) = wasm_host("state", wasm::js_state(), &[("wasm.callTimeout", "60s")]).await;
    Fixture { component: host.state("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}

pub async fn wasm_pubsub() -> Fixture<dyn PubSub> {
    let (host, dir) = wasm_host("pubsub", wasm::guest("wasm-pubsub"), &[]).await;
    Fixture { component: host.pubsub("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}

pub async fn wasm_output_binding() -> Fixture<dyn OutputBinding> {
    let (host, dir) = wasm_host("bindings", wasm::guest("wasm-output-binding"), &[]).await;
    Fixture { component: host.output_binding("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}

pub async fn wasm_input_binding() -> Fixture<dyn InputBinding> {
    let (host, dir) = wasm_host("bindings", wasm::guest("wasm-input-binding"), &[("intervalMs", "50")]).await;
    Fixture { component: host.input_binding("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}

pub async fn wasm_secrets() -> Fixture<dyn SecretStore> {
    let secrets = [("secret.CONFORMANCE_SECRET", "s3cret"), ("secret.db:password", "pw")];
    let (host, dir) = wasm_host("secretstores", wasm::guest("wasm-secret-store"), &secrets).await;
    Fixture { component: host.secret_store("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}

pub async fn builtin_state(type_name: &str) -> Fixture<dyn StateStore> {
    let (host, dir) = host_with(type_name, |_, spec| spec).await;
    Fixture { component: host.state("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}

pub async fn builtin_pubsub(type_name: &str) -> Fixture<dyn PubSub> {
    let (host, dir) = host_with(type_name, |_, spec| spec).await;
    Fixture { component: host.pubsub("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}

pub async fn localstorage() -> Fixture<dyn OutputBinding> {
    let (host, dir) =
        host_with("bindings.localstorage", |dir, spec| spec.with("rootPath", dir.join("files").to_str().unwrap()))
            .await;
    Fixture { component: host.output_binding("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}

pub async fn cron() -> Fixture<dyn InputBinding> {
    let (host, dir) = host_with("bindings.cron", |_, spec| spec.with("schedule", "@every 50ms")).await;
    Fixture { component: host.input_binding("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}

/// `secretstores.local.env` over the variables `.cargo/config.toml` sets.
pub async fn env_secrets() -> Fixture<dyn SecretStore> {
    let (host, dir) = host_with("secretstores.local.env", |_, spec| spec.with("prefix", "PLUGHOST_TEST_")).await;
    Fixture { component: host.secret_store("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}

/// The JSON every file-based secret fixture starts from.
pub const SECRETS_JSON: &str = r#"{"CONFORMANCE_SECRET": "s3cret", "db": {"password": "pw", "port": 5432}}"#;

pub async fn file_secrets() -> Fixture<dyn SecretStore> {
    let (host, dir) = host_with("secretstores.local.file", |dir, spec| {
        let path = dir.join("secrets.json");
        std::fs::write(&path, SECRETS_JSON).unwrap();
        spec.with("secretsFile", path.to_str().unwrap())
    })
    .await;
    Fixture { component: host.secret_store("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}

/// Starts `program` on `<tmp>/sockets/under-test.sock` and a host that
/// discovers it, with the single component `under-test` of type
/// `<type_prefix>.under-test`; `setup` may adjust the spec.
pub async fn grpc_host(
    program: grpc::Program,
    type_prefix: &str,
    setup: impl FnOnce(&Path, ComponentSpec) -> ComponentSpec,
) -> (Host, grpc::ComponentProcess, TempDir) {
    let dir = grpc::short_tempdir();
    let sockets = dir.path().join("sockets");
    std::fs::create_dir(&sockets).unwrap();
    let process = grpc::ComponentProcess::start(program, sockets.join("under-test.sock"), dir.path().join("cdata"));
    let type_name = format!("{type_prefix}.under-test");
    let spec = setup(dir.path(), ComponentSpec::new("under-test", &type_name));
    let host = grpc::socket_host(dir.path(), &sockets, plughost::pluggable::GrpcOptions::default())
        .component(spec)
        .build()
        .await
        .unwrap_or_else(|e| panic!("starting {type_name} ({program:?}): {e}"));
    (host, process, dir)
}

pub async fn grpc_state(program: grpc::Program) -> Fixture<dyn StateStore> {
    let (host, process, dir) = grpc_host(program, "state", |_, spec| spec).await;
    Fixture { component: host.state("under-test").unwrap(), _host: host, _process: Some(process), _dir: dir }
}

pub async fn grpc_pubsub() -> Fixture<dyn PubSub> {
    let (host, process, dir) = grpc_host(grpc::Program::Rust("pubsub"), "pubsub", |_, spec| spec).await;
    Fixture { component: host.pubsub("under-test").unwrap(), _host: host, _process: Some(process), _dir: dir }
}

pub async fn grpc_output_binding() -> Fixture<dyn OutputBinding> {
    let (host, process, dir) = grpc_host(grpc::Program::Rust("output-binding"), "bindings", |dir, spec| {
        spec.with("rootPath", dir.join("files").to_str().unwrap())
    })
    .await;
    Fixture { component: host.output_binding("under-test").unwrap(), _host: host, _process: Some(process), _dir: dir }
}

pub async fn grpc_input_binding() -> Fixture<dyn InputBinding> {
    let (host, process, dir) =
        grpc_host(grpc::Program::Rust("input-binding"), "bindings", |_, spec| spec.with("interval", "50ms")).await;
    Fixture { component: host.input_binding("under-test").unwrap(), _host: host, _process: Some(process), _dir: dir }
}

/// The secret store component, holding the conformance secret.
pub async fn grpc_secrets() -> Fixture<dyn SecretStore> {
    let (host, process, dir) = grpc_host(grpc::Program::Rust("secret-store"), "secretstores", |_, spec| {
        spec.with("secret.CONFORMANCE_SECRET", "s3cret").with("secret.OTHER", "x")
    })
    .await;
    Fixture { component: host.secret_store("under-test").unwrap(), _host: host, _process: Some(process), _dir: dir }
}

/// `state.redis` on the process's shared redis-server.
pub async fn redis_state() -> Fixture<dyn StateStore> {
    let address = redis_server::shared().address();
    let (host, dir) = host_with("state.redis", |_, spec| spec.with("redisHost", &address)).await;
    Fixture { component: host.state("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}

/// `pubsub.redis` on the process's shared redis-server; a short
/// `redeliverInterval` so messages handed back are claimed quickly.
pub async fn redis_pubsub() -> Fixture<dyn PubSub> {
    let address = redis_server::shared().address();
    let (host, dir) = host_with("pubsub.redis", |_, spec| {
        spec.with("redisHost", &address).with("redeliverInterval", "300").with("processingTimeout", "10000")
    })
    .await;
    Fixture { component: host.pubsub("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}
