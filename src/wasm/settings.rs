//! Per-component WASM settings, read from the component's YAML metadata.
//! Keys start with `wasm.` and are not passed on to the guest's `init`.
//!
//! | key                | default | meaning                                                        |
//! |--------------------|---------|----------------------------------------------------------------|
//! | `wasm.maxMemory`   | `256Mi` | cap on the instance's linear memory (`Ki`/`Mi`/`Gi` or bytes)  |
//! | `wasm.callTimeout` | `5s`    | per-call deadline, enforced by epoch interruption              |
//! | `wasm.fuel`        | none    | fuel per call (deterministic budget; costs 20-35 % speed)      |
//! | `wasm.stateless`   | `false` | the component keeps no state between calls...                  |
//! | `wasm.instances`   | `1`     | ...so it may get this many instances for parallel calls        |
//! | `wasm.env`         | none    | comma-separated host environment variables to pass through    |
//! | `wasm.dirs`        | none    | comma-separated `host[:guest]` directories to grant            |
//! | `wasm.network`     | `false` | allow TCP/UDP and name lookups                                 |
//! | `wasm.pollInterval`| `20ms`  | how often an idle subscription or input binding is polled      |

use std::path::PathBuf;
use std::time::Duration;

use crate::kinds::{ComponentError, Metadata};
use crate::units::{parse_duration, parse_size};

/// Longest `wasm.callTimeout` accepted.
pub const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Prefix of the metadata keys read here.
pub const PREFIX: &str = "wasm.";

/// How one WASM component instance is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmSettings {
    /// Linear memory cap in bytes.
    pub max_memory: usize,
    /// Deadline of every call into the guest.
    pub call_timeout: Duration,
    /// Fuel per call, if metering is asked for.
    pub fuel: Option<u64>,
    /// Number of instances; above 1 only for stateless components.
    pub instances: usize,
    /// Environment variables passed through.
    pub env: Vec<String>,
    /// Granted directories: host path, guest path.
    pub dirs: Vec<(PathBuf, String)>,
    /// Network access.
    pub network: bool,
    /// Idle polling interval for pull-based kinds.
    pub poll_interval: Duration,
}

impl Default for WasmSettings {
    fn default() -> Self {
        Self {
            max_memory: 256 << 20,
            call_timeout: Duration::from_secs(5),
            fuel: None,
            instances: 1,
            env: Vec::new(),
            dirs: Vec::new(),
            network: false,
            poll_interval: Duration::from_millis(20),
        }
    }
}

fn flag(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" | "" => Some(false),
        _ => None,
    }
}

fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

impl WasmSettings {
    /// Splits `metadata` into the host's settings and what the guest gets.
    /// An unknown `wasm.*` key or a malformed value is an error naming it.
    pub fn from_metadata(metadata: Metadata) -> Result<(Self, Metadata), ComponentError> {
        let mut settings = Self::default();
        let mut guest = Metadata::new();
        let mut stateless = false;
        for (key, value) in metadata {
            let Some(name) = key.strip_prefix(PREFIX) else {
                guest.insert(key, value);
                continue;
            };
            let bad = || ComponentError::invalid(format!("metadata `{key}`: cannot use `{value}`"));
            match name {
                "maxMemory" => settings.max_memory = parse_size(&value).ok().filter(|b| *b > 0).ok_or_else(bad)?,
                "callTimeout" => {
                    settings.call_timeout = parse_duration(&value)
                        .ok()
                        .filter(|d| !d.is_zero() && *d <= MAX_CALL_TIMEOUT)
                        .ok_or_else(bad)?
                }
                "fuel" => settings.fuel = Some(value.trim().parse().map_err(|_| bad())?),
                "stateless" => stateless = flag(&value).ok_or_else(bad)?,
                "instances" => {
                    settings.instances = value.trim().parse().ok().filter(|n| (1..=64).contains(n)).ok_or_else(bad)?
                }
                "env" => settings.env = list(&value).map(str::to_owned).collect(),
                "dirs" => {
                    settings.dirs = list(&value)
                        .map(|entry| match entry.split_once(':') {
                            Some((host, guest)) => (PathBuf::from(host), guest.to_owned()),
                            None => (PathBuf::from(entry), entry.to_owned()),
                        })
                        .collect()
                }
                "network" => settings.network = flag(&value).ok_or_else(bad)?,
                "pollInterval" => {
                    settings.poll_interval = parse_duration(&value).ok().filter(|d| !d.is_zero()).ok_or_else(bad)?
                }
                _ => return Err(ComponentError::invalid(format!("unknown WASM setting `{key}`"))),
            }
        }
        if settings.instances > 1 && !stateless {
            return Err(ComponentError::invalid(
                "wasm.instances > 1 needs wasm.stateless: \"true\" (state in guest memory cannot be shared)",
            ));
        }
        Ok((settings, guest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<(WasmSettings, Metadata), ComponentError> {
        WasmSettings::from_metadata(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn splits_host_settings_from_guest_metadata() {
        let (settings, guest) =
            parse(&[("wasm.maxMemory", "64Mi"), ("wasm.callTimeout", "250ms"), ("other", "x")]).unwrap();
        assert_eq!(settings.max_memory, 64 << 20);
        assert_eq!(settings.call_timeout, Duration::from_millis(250));
        assert_eq!(guest, Metadata::from([("other".into(), "x".into())]));
    }

    #[test]
    fn refuses_bad_settings() {
        assert!(parse(&[("wasm.maxMemory", "lots")]).unwrap_err().to_string().contains("wasm.maxMemory"));
        assert!(parse(&[("wasm.typo", "1")]).unwrap_err().to_string().contains("wasm.typo"));
        assert!(parse(&[("wasm.instances", "4")]).unwrap_err().to_string().contains("stateless"));
        assert_eq!(parse(&[("wasm.instances", "4"), ("wasm.stateless", "true")]).unwrap().0.instances, 4);
    }
}
