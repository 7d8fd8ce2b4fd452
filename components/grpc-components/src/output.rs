//! `OutputBinding`: files in one directory, the storage contract of Dapr's
//! `bindings.localstorage`: `create` / `get` / `delete` / `list`, the file
//! named by the `fileName` request metadata (`create` makes one up without
//! it), confined to the root (`rootPath` init metadata, else
//! `<data-dir>/<instance>`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tonic::{Request, Response, Status};

use crate::common::{Instances, instance_name};
use crate::pb::components as c;

const FILE_NAME: &str = "fileName";
const OPERATIONS: [&str; 4] = ["create", "get", "delete", "list"];

/// The service.
pub struct Output {
    instances: Instances<PathBuf>,
    data_dir: Option<PathBuf>,
}

impl Output {
    /// A service whose instances default to folders under `data_dir`.
    pub fn new(data_dir: Option<PathBuf>) -> Self {
        Self { instances: Instances::default(), data_dir }
    }
}

fn io_status(path: &Path, e: std::io::Error) -> Status {
    match e.kind() {
        std::io::ErrorKind::NotFound => Status::not_found(format!("file {} does not exist", path.display())),
        _ => Status::internal(format!("{}: {e}", path.display())),
    }
}

fn file(root: &Path, operation: &str, metadata: &HashMap<String, String>) -> Result<PathBuf, Status> {
    let name = metadata
        .get(FILE_NAME)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Status::invalid_argument(format!("operation `{operation}` needs the `{FILE_NAME}` metadata")))?;
    let plain = Path::new(name).components().count() == 1
        && !matches!(name.as_str(), "." | "..")
        && !name.contains(['/', '\\']);
    if !plain {
        return Err(Status::invalid_argument(format!("`{name}` is not a plain file name")));
    }
    Ok(root.join(name))
}

fn unique_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

#[tonic::async_trait]
impl c::output_binding_server::OutputBinding for Output {
    async fn init(
        &self,
        request: Request<c::OutputBindingInitRequest>,
    ) -> Result<Response<c::OutputBindingInitResponse>, Status> {
        let name = instance_name(&request);
        let properties = request.into_inner().metadata.unwrap_or_default().properties;
        let root = match (properties.get("rootPath"), &self.data_dir) {
            (Some(root), _) if !root.is_empty() => PathBuf::from(root),
            (_, Some(dir)) => dir.join(if name.is_empty() { "default" } else { &name }),
            _ => return Err(Status::invalid_argument("missing `rootPath` metadata (and no --data-dir)")),
        };
        tokio::fs::create_dir_all(&root).await.map_err(|e| io_status(&root, e))?;
        self.instances.init(&name, || Ok(root))?;
        Ok(Response::new(c::OutputBindingInitResponse {}))
    }

    async fn list_operations(
        &self,
        request: Request<c::ListOperationsRequest>,
    ) -> Result<Response<c::ListOperationsResponse>, Status> {
        self.instances.get(&request)?;
        Ok(Response::new(c::ListOperationsResponse { operations: OPERATIONS.map(String::from).to_vec() }))
    }

    async fn ping(&self, request: Request<c::PingRequest>) -> Result<Response<c::PingResponse>, Status> {
        let root = self.instances.get(&request)?;
        tokio::fs::metadata(&*root).await.map_err(|e| io_status(&root, e))?;
        Ok(Response::new(c::PingResponse {}))
    }

    async fn invoke(&self, request: Request<c::InvokeRequest>) -> Result<Response<c::InvokeResponse>, Status> {
        let root = self.instances.get(&request)?;
        let trace = received_trace_context(&request);
        let mut r = request.into_inner();
        let mut response = match r.operation.as_str() {
            "create" => {
                if r.metadata.get(FILE_NAME).is_none_or(|n| n.is_empty()) {
                    r.metadata.insert(FILE_NAME.to_owned(), unique_name());
                }
                let path = file(&root, &r.operation, &r.metadata)?;
                tokio::fs::write(&path, &r.data).await.map_err(|e| io_status(&path, e))?;
                let name = r.metadata.remove(FILE_NAME).unwrap_or_default();
                c::InvokeResponse { metadata: [(FILE_NAME.to_owned(), name)].into(), ..Default::default() }
            }
            "get" => {
                let path = file(&root, &r.operation, &r.metadata)?;
                let data = tokio::fs::read(&path).await.map_err(|e| io_status(&path, e))?;
                c::InvokeResponse { data, ..Default::default() }
            }
            "delete" => {
                let path = file(&root, &r.operation, &r.metadata)?;
                tokio::fs::remove_file(&path).await.map_err(|e| io_status(&path, e))?;
                c::InvokeResponse::default()
            }
            "list" => {
                let mut names = Vec::new();
                let mut entries = tokio::fs::read_dir(&*root).await.map_err(|e| io_status(&root, e))?;
                while let Some(entry) = entries.next_entry().await.map_err(|e| io_status(&root, e))? {
                    if entry.file_type().await.is_ok_and(|t| t.is_file()) {
                        names.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
                names.sort();
                c::InvokeResponse {
                    data: json_array(&names).into_bytes(),
                    content_type: "application/json".to_owned(),
                    ..Default::default()
                }
            }
            other => {
                return Err(Status::unimplemented(format!(
                    "operation `{other}` (this binding supports {})",
                    OPERATIONS.join(", ")
                )));
            }
        };
        response.metadata.extend(trace);
        Ok(Response::new(response))
    }
}

/// The W3C trace context headers the call came with, echoed back in the
/// response metadata as `received-traceparent` / `received-tracestate`, so
/// a test can check what a host forwarded.
fn received_trace_context<T>(request: &Request<T>) -> Vec<(String, String)> {
    ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|name| {
            let value = request.metadata().get(name)?.to_str().ok()?;
            Some((format!("received-{name}"), value.to_owned()))
        })
        .collect()
}

/// `["a","b"]`, escaping what JSON requires.
fn json_array(names: &[String]) -> String {
    let quoted: Vec<String> = names
        .iter()
        .map(|n| {
            let mut out = String::from('"');
            for ch in n.chars() {
                match ch {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        })
        .collect();
    format!("[{}]", quoted.join(","))
}
