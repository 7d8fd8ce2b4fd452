//! The Redis connection `state.redis` and `pubsub.redis` share: Dapr's
//! connection metadata (`redisHost`, `redisPassword`, ...) read once, one
//! multiplexed connection that reconnects by itself, and the one mapping of
//! Redis errors onto [`ComponentError`], so a lost server is `Unavailable`
//! (the sidecar's `UNAVAILABLE`/503) and names the address.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, RedisError};

use super::{ComponentError, Metadata, Result};

/// Dapr's connection metadata, parsed.
#[derive(Debug, Clone)]
pub(crate) struct RedisSettings {
    /// `host:port`, for messages.
    pub address: String,
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
    /// `redisMaxRetries` (or `maxRetries`), `dialTimeout`, `readTimeout`.
    pub fn from_metadata(metadata: &Metadata) -> Result<Self> {
        let host = get(metadata, "redisHost").ok_or_else(|| ComponentError::invalid("redisHost is required"))?;
        let (host, port) = match host.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') => {
                (h, p.parse::<u16>().map_err(|_| ComponentError::invalid(format!("redisHost `{host}`: bad port")))?)
            }
            _ => (host, integer(metadata, "redisPort", 6379)? as u16),
        };
        if boolean(metadata, "enableTLS")? {
            return Err(ComponentError::NotSupported(
                "enableTLS: plughost's Redis components connect over plain TCP only".into(),
            ));
        }
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
        let info = ConnectionAddr::Tcp(host.to_owned(), port)
            .into_connection_info()
            .map_err(|e| ComponentError::invalid(format!("redisHost `{address}`: {e}")))?
            .set_redis_settings(redis);
        let client =
            ::redis::Client::open(info).map_err(|e| ComponentError::invalid(format!("redis at {address}: {e}")))?;
        let retries = match get(metadata, "redisMaxRetries") {
            Some(_) => integer(metadata, "redisMaxRetries", 3)?,
            None => integer(metadata, "maxRetries", 3)?,
        };
        Ok(Self {
            address,
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
        let mut conn = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(|e| self.unavailable(component, &e))?;
        ::redis::cmd("PING").query_async::<()>(&mut conn).await.map_err(|e| self.error(component, e))?;
        Ok(conn)
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
        let tls = settings(&[("redisHost", "h:1"), ("enableTLS", "true")]);
        assert!(matches!(tls, Err(ComponentError::NotSupported(_))));
        let metadata = Metadata::from([("t".to_owned(), "250".to_owned()), ("u".to_owned(), "2s".to_owned())]);
        assert_eq!(duration(&metadata, "t", Duration::ZERO).unwrap(), Duration::from_millis(250));
        assert_eq!(duration(&metadata, "u", Duration::ZERO).unwrap(), Duration::from_secs(2));
        assert_eq!(duration(&metadata, "v", Duration::from_secs(9)).unwrap(), Duration::from_secs(9));
    }
}
