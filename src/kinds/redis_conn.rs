//! The Redis connection `state.redis` and `pubsub.redis` share: Dapr's
//! connection metadata (`redisHost`, `redisPassword`, ...) read once, one
//! multiplexed connection that reconnects by itself, and the one mapping of
//! Redis errors onto [`ComponentError`], so a lost server is `Unavailable`
//! (the sidecar's `UNAVAILABLE`/503) and names the address.
//!
//! TLS (`enableTLS`) follows Dapr's components-contrib 1.18: the server's
//! certificate is checked against the system's trust roots and the host name
//! (`insecureSkipTLSVerify: true` skips the check; older Dapr releases never
//! checked), with an optional client certificate (`clientCert`/`clientKey`).

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{ClientTlsConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, RedisError, TlsCertificates};

use super::{ComponentError, Metadata, Result};

/// Dapr's connection metadata, parsed.
#[derive(Debug, Clone)]
pub(crate) struct RedisSettings {
    /// `host:port`, for messages.
    pub address: String,
    /// `enableTLS`, for the hint of a failed first connection.
    tls: bool,
    client: ::redis::Client,
    retries: usize,
    dial_timeout: Duration,
    read_timeout: Duration,
}

/// `metadata[name]`, treating an empty value as absent.
pub(crate) fn get<'a>(metadata: &'a Metadata, name: &str) -> Option<&'a str> {
    metadata.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// A duration the way Dapr reads it: a plain integer is milliseconds,
/// otherwise `500ms`, `15s`, `2m`, `1h`.
pub(crate) fn duration(metadata: &Metadata, name: &str, default: Duration) -> Result<Duration> {
    let Some(text) = get(metadata, name) else { return Ok(default) };
    crate::units::parse_duration_or_millis(text).map_err(|e| ComponentError::invalid(format!("{name}: {e}")))
}

/// An integer metadata value.
pub(crate) fn integer(metadata: &Metadata, name: &str, default: i64) -> Result<i64> {
    match get(metadata, name) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| ComponentError::invalid(format!("{name}: `{text}` is not an integer"))),
    }
}

fn boolean(metadata: &Metadata, name: &str) -> Result<bool> {
    match get(metadata, name).map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ComponentError::invalid(format!("{name}: `{other}` is not true or false"))),
    }
}

impl RedisSettings {
    /// Reads `redisHost` (required, `host:port`), `redisPort`,
    /// `redisUsername`, `redisPassword`, `redisDB`, `enableTLS`,
    /// `insecureSkipTLSVerify`, `clientCert`, `clientKey`, `redisMaxRetries`
    /// (or `maxRetries`), `dialTimeout`, `readTimeout`.
    pub fn from_metadata(metadata: &Metadata) -> Result<Self> {
        let host = get(metadata, "redisHost").ok_or_else(|| ComponentError::invalid("redisHost is required"))?;
        let (host, port) = match host.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') => {
                (h, p.parse::<u16>().map_err(|_| ComponentError::invalid(format!("redisHost `{host}`: bad port")))?)
            }
            _ => (host, integer(metadata, "redisPort", 6379)? as u16),
        };
        if get(metadata, "redisType").is_some_and(|t| !t.eq_ignore_ascii_case("node")) || boolean(metadata, "failover")?
        {
            return Err(ComponentError::NotSupported(
                "redisType/failover: only a single Redis node is supported".into(),
            ));
        }
        let mut redis = RedisConnectionInfo::default().set_db(integer(metadata, "redisDB", 0)?);
        if let Some(user) = get(metadata, "redisUsername") {
            redis = redis.set_username(user);
        }
        if let Some(password) = metadata.get("redisPassword").filter(|p| !p.is_empty()) {
            redis = redis.set_password(password);
        }
        let address = format!("{host}:{port}");
        let tls = boolean(metadata, "enableTLS")?;
        let addr = match tls {
            true => {
                // Our provider, whatever other crates of the build enable.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let insecure = boolean(metadata, "insecureSkipTLSVerify")?;
                ConnectionAddr::TcpTls { host: host.to_owned(), port, insecure, tls_params: None }
            }
            false => ConnectionAddr::Tcp(host.to_owned(), port),
        };
        let info = addr
            .into_connection_info()
            .map_err(|e| ComponentError::invalid(format!("redisHost `{address}`: {e}")))?
            .set_redis_settings(redis);
        let client = match client_certificate(metadata, tls)? {
            Some(client_tls) => {
                ::redis::Client::build_with_tls(info, TlsCertificates { client_tls: Some(client_tls), root_cert: None })
            }
            None => ::redis::Client::open(info),
        }
        .map_err(|e| ComponentError::invalid(format!("redis at {address}: {e}")))?;
        let retries = match get(metadata, "redisMaxRetries") {
            Some(_) => integer(metadata, "redisMaxRetries", 3)?,
            None => integer(metadata, "maxRetries", 3)?,
        };
        Ok(Self {
            address,
            tls,
            client,
            retries: retries.max(0) as usize,
            dial_timeout: duration(metadata, "dialTimeout", Duration::from_secs(5))?,
            read_timeout: duration(metadata, "readTimeout", Duration::from_secs(3))?,
        })
    }

    /// [`Self::connect`], plus a `PING` every second while the returned
    /// [`KeepAlive`] lives: a call that finds the connection lost is what
    /// makes it re-dial, so without this the first call after Redis comes
    /// back would fail.
    pub async fn connect_kept_alive(&self, component: &str) -> Result<(ConnectionManager, KeepAlive)> {
        let conn = self.connect(component, Duration::ZERO).await?;
        let mut pinger = conn.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = ::redis::cmd("PING").query_async::<()>(&mut pinger).await;
            }
        });
        Ok((conn, KeepAlive(task)))
    }

    /// A connection whose calls time out after `readTimeout` (plus `extra`,
    /// for blocking reads), reconnecting up to `maxRetries` times (50 ms
    /// doubling) before a call fails. Fails with the address if the server
    /// does not answer a `PING`.
    pub async fn connect(&self, component: &str, extra: Duration) -> Result<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(self.retries)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1))
            .set_connection_timeout(Some(self.dial_timeout))
            .set_response_timeout(Some(self.read_timeout + extra));
        // Lazy: the first PING below connects (and re-dials up to maxRetries).
        let manager = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| self.unavailable(component, &e))?;
        let mut conn = manager.clone();
        let ping = ::redis::cmd("PING");
        let ping = ping.query_async::<::redis::Value>(&mut conn);
        tokio::pin!(ping);
        let pong = match self.tls {
            false => ping.await,
            // A plain server waits for a line that a TLS handshake never
            // sends: after a second without one, ask it in plain text.
            true => tokio::select! {
                pong = &mut ping => pong,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if self.answers_plain_tcp().await {
                        return Err(self.plain_server(component));
                    }
                    ping.await
                }
            },
        };
        match pong {
            Ok(::redis::Value::SimpleString(pong)) if pong == "PONG" => Ok(manager),
            // Not Redis: e.g. a socket connected to itself echoes the PING.
            Ok(other) => Err(ComponentError::Unavailable {
                component: component.to_owned(),
                reason: format!("the server at {} is not redis: it answered PING with {other:?}", self.address),
            }),
            Err(e) => Err(self.first_connection(component, e).await),
        }
    }

    /// A failed first connection. When something answered at the address
    /// but the conversation broke, the server may speak the other protocol
    /// (TLS or plain TCP) than `enableTLS` says: the TLS handshake fails on
    /// a plain server, and a TLS server drops a plain client's first command.
    /// The message says so.
    async fn first_connection(&self, component: &str, e: RedisError) -> ComponentError {
        let answered = !e.is_connection_refusal() && !e.is_timeout();
        let error = self.error(component, e);
        let ComponentError::Unavailable { reason, .. } = &error else { return error };
        if !answered {
            return error;
        }
        let hint = match self.tls {
            true if self.answers_plain_tcp().await => return self.plain_server(component),
            true => {
                "enableTLS is true: does the server at this address serve TLS, with a certificate trusted here (system \
                 roots or SSL_CERT_FILE; insecureSkipTLSVerify: true skips the check), and does it require a client \
                 certificate (clientCert, clientKey)?"
            }
            false => "enableTLS is false: if the server at this address expects TLS, set enableTLS: true",
        };
        ComponentError::Unavailable { component: component.to_owned(), reason: format!("{reason} ({hint})") }
    }

    /// Whether the server answers a plain-text `PING` (any RESP reply: a
    /// TLS server answers with an alert or closes), within a second each
    /// for the connection and the reply.
    async fn answers_plain_tcp(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let second = Duration::from_secs(1);
        let exchange = async {
            let mut stream =
                tokio::time::timeout(second, tokio::net::TcpStream::connect(&self.address)).await.ok()?.ok()?;
            stream.write_all(b"PING\r\n").await.ok()?;
            let mut first = [0u8; 1];
            tokio::time::timeout(second, stream.read_exact(&mut first)).await.ok()?.ok()?;
            Some(matches!(first[0], b'+' | b'-'))
        };
        exchange.await.unwrap_or(false)
    }

    fn plain_server(&self, component: &str) -> ComponentError {
        ComponentError::Unavailable {
            component: component.to_owned(),
            reason: format!(
                "redis at {} answers plain TCP, not TLS (enableTLS is true): set enableTLS: false, or use the \
                 server's TLS port",
                self.address
            ),
        }
    }

    fn unavailable(&self, component: &str, e: &RedisError) -> ComponentError {
        ComponentError::Unavailable {
            component: component.to_owned(),
            reason: format!("cannot reach redis at {}: {e}", self.address),
        }
    }

    /// Maps a Redis error: connection trouble is `Unavailable`, anything
    /// else `Internal`; both name the server's address.
    pub fn error(&self, component: &str, e: RedisError) -> ComponentError {
        use ::redis::{ErrorKind, ServerErrorKind};
        let down = e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || matches!(
                e.kind(),
                ErrorKind::Server(
                    ServerErrorKind::BusyLoading | ServerErrorKind::MasterDown | ServerErrorKind::TryAgain
                )
            );
        if down {
            self.unavailable(component, &e)
        } else {
            ComponentError::internal(format!("redis at {}: {e}", self.address))
        }
    }
}

/// Dapr's `clientCert` / `clientKey` (PEM text of the client certificate and
/// its key), for a server that requires client certificates.
fn client_certificate(metadata: &Metadata, tls: bool) -> Result<Option<ClientTlsConfig>> {
    match (get(metadata, "clientCert"), get(metadata, "clientKey")) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) if !tls => Err(ComponentError::invalid("clientCert/clientKey need enableTLS: true")),
        (Some(cert), Some(key)) => {
            Ok(Some(ClientTlsConfig { client_cert: cert.as_bytes().to_vec(), client_key: key.as_bytes().to_vec() }))
        }
        (Some(_), None) => Err(ComponentError::invalid("clientCert is set without clientKey")),
        (None, Some(_)) => Err(ComponentError::invalid("clientKey is set without clientCert")),
    }
}

/// Pings a connection every second until dropped.
#[derive(Debug)]
pub(crate) struct KeepAlive(tokio::task::JoinHandle<()>);

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<RedisSettings> {
        RedisSettings::from_metadata(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn metadata() {
        assert_eq!(settings(&[("redisHost", "localhost:6380")]).unwrap().address, "localhost:6380");
        assert_eq!(settings(&[("redisHost", "db"), ("redisPort", "7000")]).unwrap().address, "db:7000");
        assert_eq!(settings(&[("redisHost", "db")]).unwrap().address, "db:6379");
        assert!(matches!(settings(&[]), Err(ComponentError::InvalidArgument(m)) if m.contains("redisHost")));
        assert!(matches!(settings(&[("redisHost", "h:x")]), Err(ComponentError::InvalidArgument(_))));
        assert!(settings(&[("redisHost", "h:1"), ("enableTLS", "true")]).unwrap().tls);
        assert!(!settings(&[("redisHost", "h:1"), ("enableTLS", "false")]).unwrap().tls);
        let bad = settings(&[("redisHost", "h:1"), ("enableTLS", "yes")]);
        assert!(matches!(bad, Err(ComponentError::InvalidArgument(m)) if m.contains("enableTLS")));
        let plain_cert = settings(&[("redisHost", "h:1"), ("clientCert", "x"), ("clientKey", "y")]);
        assert!(matches!(plain_cert, Err(ComponentError::InvalidArgument(m)) if m.contains("enableTLS")));
        let half = settings(&[("redisHost", "h:1"), ("enableTLS", "true"), ("clientCert", "x")]);
        assert!(matches!(half, Err(ComponentError::InvalidArgument(m)) if m.contains("clientKey")));
        let garbage = settings(&[("redisHost", "h:1"), ("enableTLS", "true"), ("clientCert", "x"), ("clientKey", "y")]);
        assert!(matches!(garbage, Err(ComponentError::InvalidArgument(m)) if m.contains("h:1")));
        let metadata = Metadata::from([("t".to_owned(), "250".to_owned()), ("u".to_owned(), "2s".to_owned())]);
        assert_eq!(duration(&metadata, "t", Duration::ZERO).unwrap(), Duration::from_millis(250));
        assert_eq!(duration(&metadata, "u", Duration::ZERO).unwrap(), Duration::from_secs(2));
        assert_eq!(duration(&metadata, "v", Duration::from_secs(9)).unwrap(), Duration::from_secs(9));
    }
}
