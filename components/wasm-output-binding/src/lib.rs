//! `output-binding-component`: files kept in guest memory, with the contract
//! of plughost's `bindings.localstorage`: operations `create`, `get`,
//! `delete` and `list`, the file named by the `fileName` request metadata.

wit_bindgen::generate!({ world: "output-binding-component", path: "../../wit" });

use std::cell::RefCell;
use std::collections::BTreeMap;

use exports::plughost::components::lifecycle;
use exports::plughost::components::output_binding::{self, InvokeRequest, InvokeResponse};
use plughost::components::types::{Error, Metadata};

/// Request (and `create` response) metadata naming the file.
const FILE_NAME: &str = "fileName";
const OPERATIONS: [&str; 4] = ["create", "get", "delete", "list"];

#[derive(Default)]
struct Files {
    /// Sorted by name, so `list` is too.
    files: BTreeMap<String, Vec<u8>>,
    generated: u64,
}

impl Files {
    /// A name no file has yet.
    fn new_name(&mut self) -> String {
        loop {
            self.generated += 1;
            let name = format!("file-{}", self.generated);
            if !self.files.contains_key(&name) {
                return name;
            }
        }
    }
}

thread_local! {
    static FILES: RefCell<Files> = RefCell::new(Files::default());
}

fn file_name(request: &InvokeRequest) -> Option<&str> {
    request.metadata.iter().find(|(k, v)| k == FILE_NAME && !v.is_empty()).map(|(_, v)| v.as_str())
}

/// The file name of `request`, which must be a plain one.
fn plain_name(request: &InvokeRequest) -> Result<String, Error> {
    let name = file_name(request).ok_or_else(|| {
        Error::InvalidArgument(format!("operation `{}` needs the `{FILE_NAME}` metadata", request.operation))
    })?;
    if matches!(name, "." | "..") || name.contains(['/', '\\']) {
        return Err(Error::InvalidArgument(format!("`{name}` is not a plain file name")));
    }
    Ok(name.to_owned())
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("file `{name}`"))
}

/// `names` as a JSON array of strings.
fn json_array<'a>(names: impl Iterator<Item = &'a String>) -> Vec<u8> {
    let mut out = String::from("[");
    for (i, name) in names.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in name.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out.into_bytes()
}

fn response(data: Vec<u8>, metadata: Metadata, content_type: Option<String>) -> InvokeResponse {
    InvokeResponse { data, metadata, content_type }
}

struct Component;

impl lifecycle::Guest for Component {
    fn init(_metadata: Metadata) -> Result<(), Error> {
        Ok(())
    }

    fn features() -> Vec<String> {
        Vec::new()
    }

    fn ping() -> Result<(), Error> {
        Ok(())
    }
}

impl output_binding::Guest for Component {
    fn operations() -> Vec<String> {
        OPERATIONS.map(String::from).to_vec()
    }

    fn invoke(request: InvokeRequest) -> Result<InvokeResponse, Error> {
        FILES.with(|files| {
            let mut files = files.borrow_mut();
            match request.operation.as_str() {
                "create" => {
                    let name = match file_name(&request) {
                        Some(_) => plain_name(&request)?,
                        None => files.new_name(),
                    };
                    files.files.insert(name.clone(), request.data);
                    Ok(response(Vec::new(), vec![(FILE_NAME.to_owned(), name)], None))
                }
                "get" => {
                    let name = plain_name(&request)?;
                    let data = files.files.get(&name).cloned().ok_or_else(|| not_found(&name))?;
                    Ok(response(data, Vec::new(), None))
                }
                "delete" => {
                    let name = plain_name(&request)?;
                    files.files.remove(&name).ok_or_else(|| not_found(&name))?;
                    Ok(response(Vec::new(), Vec::new(), None))
                }
                "list" => Ok(response(json_array(files.files.keys()), Vec::new(), Some("application/json".to_owned()))),
                other => Err(Error::NotSupported(format!(
                    "operation `{other}` (this binding supports {})",
                    OPERATIONS.join(", ")
                ))),
            }
        })
    }
}

export!(Component);

#[cfg(test)]
mod tests {
    use super::*;
    use output_binding::Guest as _;

    fn invoke(operation: &str, data: &[u8], file: Option<&str>) -> Result<InvokeResponse, Error> {
        let metadata = file.map(|f| vec![(FILE_NAME.to_owned(), f.to_owned())]).unwrap_or_default();
        Component::invoke(InvokeRequest { operation: operation.into(), data: data.to_vec(), metadata })
    }

    #[test]
    fn contract() {
        let created = invoke("create", b"\x00payload\xff", Some("a.bin")).unwrap();
        assert_eq!(created.metadata, [(FILE_NAME.to_owned(), "a.bin".to_owned())]);
        assert_eq!(invoke("get", b"", Some("a.bin")).unwrap().data, b"\x00payload\xff");
        invoke("create", b"second", Some("b \"q\".txt")).unwrap();
        let listed = invoke("list", b"", None).unwrap();
        assert_eq!(listed.data, br#"["a.bin","b \"q\".txt"]"#);
        assert_eq!(listed.content_type.as_deref(), Some("application/json"));
        invoke("delete", b"", Some("a.bin")).unwrap();
        assert!(matches!(invoke("get", b"", Some("a.bin")), Err(Error::NotFound(_))));

        let anonymous = invoke("create", b"anon", None).unwrap();
        let name = &anonymous.metadata[0].1;
        assert_eq!(invoke("get", b"", Some(name)).unwrap().data, b"anon");
    }

    #[test]
    fn errors() {
        assert!(matches!(invoke("explode", b"", None), Err(Error::NotSupported(m)) if m.contains("explode")));
        assert!(matches!(invoke("delete", b"", Some("never-created")), Err(Error::NotFound(_))));
        assert!(matches!(invoke("get", b"", None), Err(Error::InvalidArgument(_))));
        for escape in ["../outside", "/etc/passwd", "a/b", "a\\b", "..", "."] {
            assert!(matches!(invoke("create", b"x", Some(escape)), Err(Error::InvalidArgument(_))), "{escape}");
        }
    }
}
