//! Finding components in a socket folder, in two testable halves:
//! [`list_candidates`] (pure: which entries are sockets) and [`probe`] (ask
//! one socket, within a deadline, which services it serves, through gRPC
//! server reflection: `grpc.reflection.v1` first, then `v1alpha`, which is
//! all that daprd asks and all that the .NET component SDK serves; spec A3).
//!
//! Unlike daprd, one bad socket never hides the others: each problem is
//! reported with its path and reason, and the rest load (spec A2).

use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use super::GrpcOptions;
use super::status::error_chain;
use crate::kinds::ComponentKind;

/// The environment variable daprd reads for the socket folder. (The Go
/// component SDK reads `DAPR_COMPONENT_SOCKETS_FOLDER`, singular: the
/// defaults agree, overrides do not.)
pub const SOCKETS_FOLDER_ENV: &str = "DAPR_COMPONENTS_SOCKETS_FOLDER";

/// daprd's default socket folder.
pub const DEFAULT_SOCKETS_FOLDER: &str = "/tmp/dapr-components-sockets";

/// `$DAPR_COMPONENTS_SOCKETS_FOLDER`, else `/tmp/dapr-components-sockets`.
pub fn default_socket_dir() -> PathBuf {
    std::env::var_os(SOCKETS_FOLDER_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_SOCKETS_FOLDER), PathBuf::from)
}

/// One entry of a socket folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    /// A Unix socket (by `lstat`: symlinks are not followed).
    Socket {
        /// The socket.
        path: PathBuf,
        /// Device, inode and modification time: changes when the socket is
        /// re-created, so it is asked again.
        identity: (u64, u64, i64),
    },
    /// Anything else, with what it is.
    Other {
        /// The entry.
        path: PathBuf,
        /// `a regular file`, `a directory`, `a symbolic link`, ...
        what: &'static str,
    },
}

/// The entries of `dir`, sorted by path. A missing folder has none (as in
/// daprd: no pluggable components, not an error).
pub fn list_candidates(dir: &Path) -> std::io::Result<Vec<Candidate>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue }; // vanished meanwhile
        let kind = meta.file_type();
        found.push(if kind.is_socket() {
            Candidate::Socket {
                path,
                identity: (meta.dev(), meta.ino(), meta.mtime_nsec() + meta.mtime() * 1_000_000_000),
            }
        } else {
            let what = if kind.is_file() {
                "a regular file"
            } else if kind.is_dir() {
                "a directory"
            } else if kind.is_symlink() {
                "a symbolic link"
            } else if kind.is_fifo() {
                "a FIFO"
            } else {
                "a device or other special file"
            };
            Candidate::Other { path, what }
        });
    }
    found.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(found)
}

impl Candidate {
    /// The entry's path.
    pub fn path(&self) -> &Path {
        match self {
            Candidate::Socket { path, .. } | Candidate::Other { path, .. } => path,
        }
    }
}

/// The component name a socket provides: its file name without the last
/// extension, lower-cased (`My.Store.sock` → `my.store`), as daprd names it.
pub fn component_name(socket: &Path) -> Option<String> {
    let name = socket.file_name()?.to_str()?;
    let stem = match name.rfind('.') {
        Some(dot) if dot > 0 => &name[..dot],
        _ => name,
    };
    Some(stem.to_lowercase())
}

/// The component kinds among reflected service names; others (reflection
/// itself, `TransactionalStateStore`, ...) are ignored.
pub fn kinds_of(services: &[String]) -> Vec<ComponentKind> {
    ComponentKind::ALL.into_iter().filter(|k| services.iter().any(|s| s == k.grpc_service())).collect()
}

/// Connects to `socket` and lists its services through reflection, all
/// within `deadline`. The error says, for a person, why the socket is not a
/// usable component.
/// The socket must pass [`trust::connect`](super::trust::connect) (no
/// symbolic link, served by a trusted uid) before anything is sent.
pub async fn probe(socket: &Path, deadline: Duration, options: &GrpcOptions) -> Result<Vec<String>, String> {
    match tokio::time::timeout(deadline, probe_unbounded(socket, deadline, options)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {deadline:?}: the server hangs, or does not speak gRPC")),
    }
}

/// `sun_path` holds 108 bytes on Linux, the terminating NUL included.
pub const MAX_SOCKET_PATH: usize = 107;

async fn probe_unbounded(socket: &Path, deadline: Duration, options: &GrpcOptions) -> Result<Vec<String>, String> {
    let length = socket.as_os_str().len();
    if length > MAX_SOCKET_PATH {
        return Err(format!(
            "the path is {length} bytes; Unix socket paths hold at most {MAX_SOCKET_PATH} (use a shorter socket folder)"
        ));
    }
    let (path, options) = (socket.to_owned(), options.clone());
    let connector = tower::service_fn(move |_: Uri| {
        let (path, options) = (path.clone(), options.clone());
        async move { super::trust::connect(&path, &options).await.map(TokioIo::new) }
    });
    let endpoint = Endpoint::from_static("http://component.sock").connect_timeout(deadline);
    let channel = endpoint.connect_with_connector(connector).await.map_err(|e| match io_kind(&e) {
        Some(std::io::ErrorKind::ConnectionRefused) => {
            "nothing is listening on it (connection refused): a stale socket left by a process that exited?".to_owned()
        }
        Some(std::io::ErrorKind::PermissionDenied) => format!("refused: {}", innermost(&e)),
        _ => format!("cannot connect: {}", error_chain(&e)),
    })?;
    let listed = match list_services_v1(channel.clone()).await {
        Err(status) if status.code() == tonic::Code::Unimplemented => list_services_v1alpha(channel).await,
        other => other,
    };
    listed.map_err(|status| match status.code() {
        tonic::Code::Unimplemented => "a gRPC server without reflection: neither grpc.reflection.v1 nor \
                                       grpc.reflection.v1alpha answers, and plughost finds components through \
                                       reflection"
            .to_owned(),
        _ if std::error::Error::source(&status).is_some() => {
            format!("not a gRPC server: the HTTP/2 exchange failed ({})", super::status::describe(&status))
        }
        _ => format!("reflection failed: {}", super::status::describe(&status)),
    })
}

fn io_kind(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        next = e.source();
    }
    None
}

/// The message of the innermost error of a chain (the one that says why).
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut last = error;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// The v1 and v1alpha generated types are distinct but have the same shape.
macro_rules! list_services_via {
    ($name:ident, $pb:path) => {
        async fn $name(channel: Channel) -> Result<Vec<String>, tonic::Status> {
            use pb::server_reflection_client::ServerReflectionClient;
            use pb::server_reflection_request::MessageRequest;
            use pb::server_reflection_response::MessageResponse;
            use $pb as pb;
            let request = pb::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut answers = ServerReflectionClient::new(channel)
                .server_reflection_info(tokio_stream::once(request))
                .await?
                .into_inner();
            match answers.message().await?.and_then(|a| a.message_response) {
                Some(MessageResponse::ListServicesResponse(list)) => {
                    Ok(list.service.into_iter().map(|s| s.name).collect())
                }
                Some(MessageResponse::ErrorResponse(e)) => {
                    Err(tonic::Status::internal(format!("reflection error {}: {}", e.error_code, e.error_message)))
                }
                other => Err(tonic::Status::internal(format!("unexpected reflection answer: {other:?}"))),
            }
        }
    };
}
list_services_via!(list_services_v1, tonic_reflection::pb::v1);
list_services_via!(list_services_v1alpha, tonic_reflection::pb::v1alpha);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_daprd() {
        assert_eq!(component_name(Path::new("/s/my-component.sock")).as_deref(), Some("my-component"));
        assert_eq!(component_name(Path::new("/s/A.B.sock")).as_deref(), Some("a.b"));
        assert_eq!(component_name(Path::new("/s/plain")).as_deref(), Some("plain"));
        assert_eq!(component_name(Path::new("/s/.hidden")).as_deref(), Some(".hidden"));
    }

    #[test]
    fn known_services_only() {
        let services = [
            "grpc.reflection.v1.ServerReflection",
            "dapr.proto.components.v1.StateStore",
            "dapr.proto.components.v1.TransactionalStateStore",
            "example.Unknown",
        ]
        .map(String::from);
        assert_eq!(kinds_of(&services), [ComponentKind::State]);
    }

    #[tokio::test]
    async fn over_long_socket_paths_are_explained() {
        let long = PathBuf::from(format!("/tmp/{}/c.sock", "d".repeat(120)));
        let reason = probe(&long, Duration::from_secs(1), &GrpcOptions::default()).await.unwrap_err();
        assert!(reason.contains("at most 107"), "{reason}");
    }

    #[test]
    fn candidates_are_sorted_and_classified() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b-file.sock"), "not a socket").unwrap();
        std::fs::create_dir(dir.path().join("c-dir")).unwrap();
        std::os::unix::fs::symlink("/nowhere", dir.path().join("d-link.sock")).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(dir.path().join("a.sock")).unwrap();
        let found = list_candidates(dir.path()).unwrap();
        assert!(matches!(&found[0], Candidate::Socket { path, .. } if path.ends_with("a.sock")), "{found:?}");
        let others: Vec<&str> =
            found[1..].iter().map(|c| if let Candidate::Other { what, .. } = c { *what } else { "socket" }).collect();
        assert_eq!(others, ["a regular file", "a directory", "a symbolic link"]);
        drop(listener);
        assert!(list_candidates(&dir.path().join("missing")).unwrap().is_empty());
    }
}
