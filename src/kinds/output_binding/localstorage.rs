//! `bindings.localstorage`: files in one directory, after Dapr's binding of
//! the same name. Operations `create`, `get`, `delete`, `list`; the file name
//! comes from the `fileName` request metadata (`create` makes one up if it is
//! missing). Names are confined to the root directory: no `..`, no absolute
//! paths, no sub-directories.

use crate::component::Lifecycle;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::{InvokeRequest, InvokeResponse, OutputBinding};
use crate::kinds::{ComponentError, Metadata, Result};

/// Metadata key of the file name.
pub const FILE_NAME: &str = "fileName";

/// An [`OutputBinding`] over the files of one directory.
#[derive(Debug, Default)]
pub struct LocalStorageBinding {
    default_root: PathBuf,
    root: OnceLock<PathBuf>,
}

impl LocalStorageBinding {
    /// A binding whose root is `rootPath` from the metadata, or
    /// `default_root` if that is not given.
    pub fn new(default_root: impl Into<PathBuf>) -> Self {
        Self { default_root: default_root.into(), root: OnceLock::new() }
    }

    fn root(&self) -> Result<&Path> {
        self.root
            .get()
            .map(PathBuf::as_path)
            .ok_or_else(|| ComponentError::internal("bindings.localstorage used before init"))
    }

    fn file(&self, request: &InvokeRequest) -> Result<PathBuf> {
        let name = request.metadata.get(FILE_NAME).filter(|n| !n.is_empty()).ok_or_else(|| {
            ComponentError::invalid(format!("operation `{}` needs the `{FILE_NAME}` metadata", request.operation))
        })?;
        let plain = Path::new(name).components().count() == 1
            && !matches!(name.as_str(), "." | "..")
            && !name.contains(['/', '\\']);
        if !plain {
            return Err(ComponentError::invalid(format!("`{name}` is not a plain file name")));
        }
        Ok(self.root()?.join(name))
    }
}

fn io_error(path: &Path, e: std::io::Error) -> ComponentError {
    match e.kind() {
        std::io::ErrorKind::NotFound => ComponentError::NotFound(format!("file {}", path.display())),
        _ => ComponentError::internal(format!("{}: {e}", path.display())),
    }
}

#[async_trait::async_trait]
impl Lifecycle for LocalStorageBinding {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        let root = metadata.get("rootPath").map(PathBuf::from).unwrap_or_else(|| self.default_root.clone());
        tokio::fs::create_dir_all(&root).await.map_err(|e| io_error(&root, e))?;
        self.root.set(root).map_err(|_| ComponentError::internal("init called twice"))
    }

    async fn features(&self) -> Result<Vec<String>> {
        Ok(["create", "get", "delete", "list"].map(String::from).to_vec())
    }

    async fn ping(&self) -> Result<()> {
        let root = self.root()?;
        tokio::fs::metadata(root).await.map(|_| ()).map_err(|e| io_error(root, e))
    }
}

#[async_trait::async_trait]
impl OutputBinding for LocalStorageBinding {
    async fn invoke(&self, mut request: InvokeRequest) -> Result<InvokeResponse> {
        match request.operation.as_str() {
            "create" => {
                if request.metadata.get(FILE_NAME).is_none_or(|n| n.is_empty()) {
                    request.metadata.insert(FILE_NAME.to_owned(), uuid::Uuid::new_v4().to_string());
                }
                let path = self.file(&request)?;
                tokio::fs::write(&path, &request.data).await.map_err(|e| io_error(&path, e))?;
                let name = request.metadata.remove(FILE_NAME).unwrap_or_default();
                Ok(InvokeResponse { metadata: Metadata::from([(FILE_NAME.to_owned(), name)]), ..Default::default() })
            }
            "get" => {
                let path = self.file(&request)?;
                let data = tokio::fs::read(&path).await.map_err(|e| io_error(&path, e))?;
                Ok(InvokeResponse { data, ..Default::default() })
            }
            "delete" => {
                let path = self.file(&request)?;
                tokio::fs::remove_file(&path).await.map_err(|e| io_error(&path, e))?;
                Ok(InvokeResponse::default())
            }
            "list" => {
                let root = self.root()?;
                let mut names = Vec::new();
                let mut entries = tokio::fs::read_dir(root).await.map_err(|e| io_error(root, e))?;
                while let Some(entry) = entries.next_entry().await.map_err(|e| io_error(root, e))? {
                    if entry.file_type().await.is_ok_and(|t| t.is_file()) {
                        names.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
                names.sort();
                let data = serde_json::to_vec(&names).map_err(ComponentError::internal)?;
                Ok(InvokeResponse { data, content_type: Some("application/json".to_owned()), ..Default::default() })
            }
            other => Err(ComponentError::NotSupported(format!(
                "operation `{other}` (bindings.localstorage supports create, get, delete, list)"
            ))),
        }
    }
}
