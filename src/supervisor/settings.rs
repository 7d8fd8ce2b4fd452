//! The `plughost.io/*` annotations of a Component: which process serves its
//! socket, and how plughost supervises it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{ComponentSpec, Origin};
use crate::pluggable::SocketDirectory;
use crate::pluggable::discovery::MAX_SOCKET_PATH;

/// Every plughost annotation starts with this; daprd ignores annotations, so
/// the YAML stays valid for daprd.
pub const ANNOTATION_PREFIX: &str = "plughost.io/";

/// The annotation that turns supervision on: the program to run.
pub const COMMAND: &str = "plughost.io/command";

/// Every annotation plughost reads (others under the prefix are refused, to
/// catch typos), with its default, for `--help`-like listings.
pub const ANNOTATIONS: &[(&str, &str)] = &[
    ("command", "none: supervision is off"),
    ("args", "[]"),
    ("env", "{}"),
    ("inheritEnv", "none"),
    ("workingDir", "plughost's"),
    ("sha256", "none"),
    ("startTimeout", "30s"),
    ("stopTimeout", "5s"),
    ("maxRestarts", "5"),
    ("minBackoff", "200ms"),
    ("maxBackoff", "5s"),
    ("healthyAfter", "60s"),
    ("probeInterval", "5s"),
    ("probeFailures", "3"),
];

/// How one component process is started and supervised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSettings {
    /// The component that declared the process.
    pub component: String,
    /// The socket the process must serve: `<sockets dir>/<type suffix>.sock`.
    pub socket: PathBuf,
    /// The socket folder, passed in `DAPR_COMPONENT_SOCKETS_FOLDER` and
    /// `DAPR_COMPONENTS_SOCKETS_FOLDER`.
    pub sockets_dir: PathBuf,
    /// The program: a path with a `/` is taken relative to the YAML file's
    /// folder; a bare name is looked up in plughost's `PATH`.
    pub command: PathBuf,
    /// Arguments; `{socket}` and `{socketsDir}` are replaced.
    pub args: Vec<String>,
    /// Variables set for the process.
    pub env: BTreeMap<String, String>,
    /// Host variables passed through; nothing else of plughost's
    /// environment is (not even `PATH`).
    pub inherit_env: Vec<String>,
    /// The process's working directory.
    pub working_dir: Option<PathBuf>,
    /// The program's expected SHA-256 (lower-case hex): checked before every
    /// start, a mismatch refuses to start it.
    pub sha256: Option<String>,
    /// From spawn until the socket answers reflection.
    pub start_timeout: Duration,
    /// Grace period between SIGTERM and SIGKILL when stopping.
    pub stop_timeout: Duration,
    /// Consecutive failed starts or exits tolerated before giving up.
    pub max_restarts: u32,
    /// First delay before a restart; doubles per consecutive failure.
    pub min_backoff: Duration,
    /// Cap of that delay.
    pub max_backoff: Duration,
    /// Uptime after which the consecutive-failure count resets.
    pub healthy_after: Duration,
    /// How often a running process's socket is asked (reflection).
    pub probe_interval: Duration,
    /// Consecutive unanswered probes after which it is restarted.
    pub probe_failures: u32,
}

impl ProcessSettings {
    /// The process `spec` declares, if any (`plughost.io/command`); errors
    /// name the annotation.
    pub fn from_spec(spec: &ComponentSpec, sockets_dir: Option<&Path>) -> Result<Option<Self>, String> {
        let ours: BTreeMap<&str, &str> = spec
            .annotations
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(ANNOTATION_PREFIX)?, v.as_str())))
            .collect();
        if let Some(unknown) = ours.keys().find(|k| !ANNOTATIONS.iter().any(|(known, _)| known == *k)) {
            let known: Vec<&str> = ANNOTATIONS.iter().map(|(k, _)| *k).collect();
            return Err(format!("unknown annotation `{ANNOTATION_PREFIX}{unknown}` (known: {})", known.join(", ")));
        }
        let Some(command) = ours.get("command") else {
            return match ours.keys().next() {
                Some(key) => Err(format!("annotation `{ANNOTATION_PREFIX}{key}` needs `{COMMAND}`")),
                None => Ok(None),
            };
        };
        let Some(sockets_dir) = sockets_dir else {
            return Err(format!("`{COMMAND}` needs a socket folder (--sockets-dir), where the process serves"));
        };
        if !SocketDirectory::could_provide(&spec.type_name) {
            return Err(format!(
                "`{COMMAND}` needs a pluggable component type (state.<name>, pubsub.<name>, bindings.<name> or \
                 secretstores.<name>), not `{}`",
                spec.type_name
            ));
        }
        let stem = spec.type_name.split_once('.').map_or("", |(_, s)| s);
        let socket = sockets_dir.join(format!("{stem}.sock"));
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(format!(
                "socket path {} is over {MAX_SOCKET_PATH} bytes (use a shorter socket folder)",
                socket.display()
            ));
        }
        let base = match &spec.origin {
            Origin::File { path, .. } => path.parent().map(Path::to_owned),
            Origin::Code | Origin::Default => None,
        };
        let duration = |key: &str, default: Duration| -> Result<Duration, String> {
            match ours.get(key) {
                None => Ok(default),
                Some(text) => crate::units::parse_duration(text)
                    .map_err(|e| format!("annotation `{ANNOTATION_PREFIX}{key}`: {e}")),
            }
        };
        let count = |key: &str, default: u32| -> Result<u32, String> {
            match ours.get(key) {
                None => Ok(default),
                Some(text) => text
                    .trim()
                    .parse()
                    .map_err(|_| format!("annotation `{ANNOTATION_PREFIX}{key}`: `{text}` is not a whole number")),
            }
        };
        let args: Vec<String> = match ours.get("args") {
            None => Vec::new(),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| format!("annotation `{ANNOTATION_PREFIX}args`: expected a JSON array of strings ({e})"))?,
        };
        let substitute = |arg: &str| {
            arg.replace("{socket}", &socket.to_string_lossy()).replace("{socketsDir}", &sockets_dir.to_string_lossy())
        };
        let env: BTreeMap<String, String> = match ours.get("env") {
            None => BTreeMap::new(),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| format!("annotation `{ANNOTATION_PREFIX}env`: expected a JSON object of strings ({e})"))?,
        };
        let sha256 = match ours.get("sha256") {
            None => None,
            Some(text) => {
                let hex = text.trim().to_ascii_lowercase();
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!("annotation `{ANNOTATION_PREFIX}sha256`: `{text}` is not 64 hex digits"));
                }
                Some(hex)
            }
        };
        let settings = Self {
            component: spec.name.clone(),
            command: resolve_command(command, base.as_deref())?,
            args: args.iter().map(|a| substitute(a)).collect(),
            env,
            inherit_env: ours
                .get("inheritEnv")
                .map(|t| t.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
            working_dir: ours.get("workingDir").map(|d| match &base {
                Some(base) => base.join(d),
                None => PathBuf::from(d),
            }),
            sha256,
            start_timeout: duration("startTimeout", Duration::from_secs(30))?,
            stop_timeout: duration("stopTimeout", Duration::from_secs(5))?,
            max_restarts: count("maxRestarts", 5)?,
            min_backoff: duration("minBackoff", Duration::from_millis(200))?,
            max_backoff: duration("maxBackoff", Duration::from_secs(5))?,
            healthy_after: duration("healthyAfter", Duration::from_secs(60))?,
            probe_interval: duration("probeInterval", Duration::from_secs(5))?.max(Duration::from_millis(10)),
            probe_failures: count("probeFailures", 3)?.max(1),
            socket,
            sockets_dir: sockets_dir.to_owned(),
        };
        Ok(Some(settings))
    }

    /// Whether `other` describes the same process (whoever declared it).
    pub fn same_process(&self, other: &Self) -> bool {
        Self { component: String::new(), ..self.clone() } == Self { component: String::new(), ..other.clone() }
    }
}

/// A path with a `/` relative to `base` (the YAML file's folder); a bare name
/// through plughost's `PATH`, so the file that is hashed is the one that runs.
fn resolve_command(command: &str, base: Option<&Path>) -> Result<PathBuf, String> {
    let command = command.trim();
    if command.is_empty() {
        return Err(format!("`{COMMAND}` is empty"));
    }
    if command.contains('/') {
        let path = Path::new(command);
        return Ok(match base {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_owned(),
        });
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| format!("`{COMMAND}`: `{command}` is not in PATH"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(annotations: &[(&str, &str)]) -> ComponentSpec {
        let mut spec = ComponentSpec::new("orders", "state.orders");
        spec.origin = Origin::File { path: "/etc/plughost/components.yaml".into(), line: 3 };
        for (k, v) in annotations {
            spec = spec.annotate(format!("{ANNOTATION_PREFIX}{k}"), *v);
        }
        spec
    }

    #[test]
    fn reads_the_annotations_with_defaults() {
        let dir = Path::new("/tmp/socks");
        assert_eq!(ProcessSettings::from_spec(&spec(&[]), Some(dir)).unwrap(), None);
        let s = spec(&[
            ("command", "bin/store"),
            ("args", r#"["state", "--socket", "{socket}", "--dir={socketsDir}"]"#),
            ("env", r#"{"RUST_LOG": "debug"}"#),
            ("inheritEnv", "HOME, LANG"),
            ("maxRestarts", "2"),
            ("healthyAfter", "1m"),
        ]);
        let settings = ProcessSettings::from_spec(&s, Some(dir)).unwrap().unwrap();
        assert_eq!(settings.command, Path::new("/etc/plughost/bin/store"));
        assert_eq!(settings.socket, Path::new("/tmp/socks/orders.sock"));
        assert_eq!(settings.args, ["state", "--socket", "/tmp/socks/orders.sock", "--dir=/tmp/socks"]);
        assert_eq!(settings.env["RUST_LOG"], "debug");
        assert_eq!(settings.inherit_env, ["HOME", "LANG"]);
        assert_eq!((settings.max_restarts, settings.healthy_after), (2, Duration::from_secs(60)));
        assert_eq!(settings.start_timeout, Duration::from_secs(30));
        assert_eq!(settings.stop_timeout, Duration::from_secs(5));
    }

    #[test]
    fn bad_annotations_are_named() {
        let dir = Some(Path::new("/tmp/socks"));
        let err = |a: &[(&str, &str)]| ProcessSettings::from_spec(&spec(a), dir).unwrap_err();
        assert!(err(&[("command", "/bin/x"), ("comand", "y")]).contains("plughost.io/comand"));
        assert!(err(&[("args", "[]")]).contains("needs `plughost.io/command`"));
        assert!(err(&[("command", "/bin/x"), ("args", "state")]).contains("JSON array"));
        assert!(err(&[("command", "/bin/x"), ("sha256", "abc")]).contains("64 hex"));
        assert!(err(&[("command", "/bin/x"), ("stopTimeout", "soon")]).contains("stopTimeout"));
        assert!(err(&[("command", "no-such-program-anywhere")]).contains("not in PATH"));
        let no_dir = ProcessSettings::from_spec(&spec(&[("command", "/bin/x")]), None).unwrap_err();
        assert!(no_dir.contains("--sockets-dir"), "{no_dir}");
        let builtin = ComponentSpec::new("s", "sqlite").annotate(COMMAND, "/bin/x");
        assert!(ProcessSettings::from_spec(&builtin, dir).unwrap_err().contains("pluggable component type"));
    }
}
