//! `enableTLS`: `state.redis` and `pubsub.redis` against a real
//! redis-server that speaks only TLS, with certificates of a test authority
//! made by the test. As in Dapr's components-contrib 1.18, the server's
//! certificate is checked against the system's trust roots unless
//! `insecureSkipTLSVerify` is set; `clientCert`/`clientKey` show a client
//! certificate. A TLS client on a plain server, or a plain client on a TLS
//! server, fails at init naming the address and `enableTLS`.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use plughost::Host;
use plughost::config::ComponentSpec;
use plughost::kinds::pubsub::{CONSUMER_ID, PublishRequest};
use plughost::kinds::state::{DeleteRequest, GetRequest, SetRequest};
use plughost::kinds::{ComponentError, Metadata};
use redis::Commands;

use crate::support::redis_server::{self, RedisServer, TestCerts};

/// The test authority's certificates and a TLS-only server using them
/// (client certificates checked when shown), shared by this file's tests.
fn tls_server() -> &'static (TestCerts, RedisServer) {
    static SERVER: OnceLock<(TestCerts, RedisServer)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let certs = TestCerts::generate();
        let server = RedisServer::start_tls(&certs, false);
        (certs, server)
    })
}

fn unique(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

/// A host with one component `name` of `kind`, or the init error's text
/// (bounded: init gives up on its own well within the limit).
async fn start(spec: ComponentSpec) -> Result<(Host, tempfile::TempDir), String> {
    let dir = tempfile::tempdir().unwrap();
    let build = Host::builder().data_dir(dir.path()).component(spec).build();
    match tokio::time::timeout(Duration::from_secs(60), build).await.expect("init gives up within its timeouts") {
        Ok(host) => Ok((host, dir)),
        Err(e) => Err(format!("{e:#}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_pubsub_round_trip_over_tls() {
    let (_, server) = tls_server();
    let dir = tempfile::tempdir().unwrap();
    let tls = |spec: ComponentSpec| {
        spec.with("redisHost", server.address()).with("enableTLS", "true").with("insecureSkipTLSVerify", "true")
    };
    let host = Host::builder()
        .data_dir(dir.path())
        .component(tls(ComponentSpec::new("store", "state.redis")))
        .component(tls(ComponentSpec::new("broker", "pubsub.redis")))
        .build()
        .await
        .unwrap();
    let mut raw = server.connection();

    // State: set, get with its ETag, a stale ETag refused, delete.
    let store = host.state("store").unwrap();
    let key = unique("order");
    store.set(SetRequest::new(&key, "tea")).await.unwrap();
    let item = store.get(GetRequest::new(&key)).await.unwrap().expect("the value written");
    assert_eq!(item.data, b"tea");
    let etag = item.etag.expect("an ETag");
    store.set(SetRequest::new(&key, "cake").with_etag(&etag)).await.unwrap();
    let stale = store.set(SetRequest::new(&key, "pie").with_etag(&etag)).await;
    assert!(matches!(stale, Err(ComponentError::EtagMismatch { .. })), "{stale:?}");
    let data: String = raw.hget(&key, "data").unwrap();
    assert_eq!(data, "cake", "written to the TLS server, on Dapr's layout");
    store.delete(DeleteRequest::new(&key)).await.unwrap();
    assert_eq!(store.get(GetRequest::new(&key)).await.unwrap(), None);

    // Pub/sub: a consumer group reads what was published, and acks it.
    let broker = host.pubsub("broker").unwrap();
    let topic = unique("orders");
    let group = Metadata::from([(CONSUMER_ID.to_owned(), "orders".to_owned())]);
    let mut subscription = broker.subscribe(&topic, group).await.unwrap();
    for n in 0..3 {
        broker.publish(PublishRequest::new(&topic, format!("message {n}"))).await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 3 {
        let delivery = tokio::time::timeout(Duration::from_secs(20), subscription.next()).await.unwrap().unwrap();
        got.push(String::from_utf8(delivery.item.data.clone()).unwrap());
        delivery.ack();
    }
    assert_eq!(got, ["message 0", "message 1", "message 2"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let pending: redis::streams::StreamPendingReply = raw.xpending(&topic, "orders").unwrap();
        if pending.count() == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{} still pending", pending.count());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(subscription);
    host.shutdown().await;
}

/// As Dapr 1.18: without `insecureSkipTLSVerify` the server's certificate
/// must chain to a trusted root and name the host. The test authority is
/// not one, unless `SSL_CERT_FILE` names it (the roots rustls-native-certs
/// reads): checked with `plughost components list` processes.
#[test]
fn tls_checks_the_server_certificate() {
    let (certs, server) = tls_server();
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::new();
    for (name, kind) in [("store", "state.redis"), ("broker", "pubsub.redis")] {
        yaml.push_str(&format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{ name: {name} }}\nspec:\n  type: {kind}\n  \
             version: v1\n  metadata:\n    - {{ name: redisHost, value: \"{}\" }}\n    - {{ name: enableTLS, value: \
             \"true\" }}\n---\n",
            server.address()
        ));
    }
    std::fs::write(dir.path().join("components.yaml"), yaml).unwrap();
    let list = |ca: Option<&std::path::Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_plughost"));
        command.env_remove("SSL_CERT_DIR").env_remove("SSL_CERT_FILE");
        if let Some(ca) = ca {
            command.env("SSL_CERT_FILE", ca);
        }
        let output = command
            .args(["components", "list", "--offline", "--components"])
            .arg(dir.path())
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("DAPR_COMPONENTS_SOCKETS_FOLDER", "/nonexistent/plughost-test-sockets")
            .output()
            .unwrap();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (output.status.success(), text(&output.stdout), text(&output.stderr))
    };

    let (ok, stdout, stderr) = list(None);
    assert!(!ok, "an untrusted certificate is refused:\n{stdout}\n{stderr}");
    assert!(stderr.contains(&server.address()) && stderr.contains("UnknownIssuer"), "{stderr}");

    let (ok, stdout, stderr) = list(Some(&certs.path("ca.pem")));
    assert!(ok, "trusted through SSL_CERT_FILE:\n{stdout}\n{stderr}");
    for line in ["store", "broker"] {
        assert!(stdout.lines().any(|l| l.starts_with(line) && l.contains("redis")), "{line}: {stdout}");
    }
}

/// `clientCert` / `clientKey` for a server that requires a client
/// certificate: with them init succeeds; without, it fails naming the
/// address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_for_a_server_that_requires_one() {
    let (certs, _) = tls_server();
    let server = RedisServer::start_tls(certs, true);
    for kind in ["state.redis", "pubsub.redis"] {
        let spec = ComponentSpec::new("mutual", kind)
            .with("redisHost", server.address())
            .with("enableTLS", "true")
            .with("insecureSkipTLSVerify", "true");
        let refused = start(spec.clone()).await.err().expect("refused without a client certificate");
        assert!(refused.contains(&server.address()) && refused.contains("mutual"), "{kind}: {refused}");

        let spec = spec.with("clientCert", certs.pem("client.pem")).with("clientKey", certs.pem("client.key"));
        let (host, _dir) = start(spec).await.unwrap_or_else(|e| panic!("{kind}: {e}"));
        match kind {
            "state.redis" => host.state("mutual").unwrap().ping().await.unwrap(),
            _ => host.pubsub("mutual").unwrap().ping().await.unwrap(),
        }
        host.shutdown().await;
    }
}

/// A TLS client on a plain server, and a plain client on a TLS server: init
/// fails within its timeouts, naming the component, the address and
/// `enableTLS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_plain_mismatch_fail_init_naming_the_address() {
    let plain = redis_server::shared();
    let (_, tls) = tls_server();
    let cases = [(plain, "true", "TLS client, plain server"), (tls, "false", "plain client, TLS server")];
    for (server, enable_tls, case) in cases {
        for kind in ["state.redis", "pubsub.redis"] {
            let spec = ComponentSpec::new("mismatch", kind)
                .with("redisHost", server.address())
                .with("enableTLS", enable_tls)
                .with("insecureSkipTLSVerify", "true");
            let message = start(spec).await.err().unwrap_or_else(|| panic!("{case}, {kind}: init succeeded"));
            assert!(
                message.contains("mismatch") && message.contains(&server.address()) && message.contains("enableTLS"),
                "{case}, {kind}: {message}"
            );
        }
    }
}
