//! `{{name}}`: an output binding. Replace the operations with yours; the SDK
//! does the rest in both modes (see README.md).

use plughost_component::bindings::{InvokeRequest, InvokeResponse};
use plughost_component::{Component, Error, Metadata, OutputBinding};

/// The component: `echo` answers with the request's data, `count` with the
/// number of calls so far.
#[derive(Default)]
pub struct {{camel_name}} {
    calls: u64,
}

impl Component for {{camel_name}} {
    fn init(_metadata: Metadata) -> Result<Self, Error> {
        Ok(Self::default())
    }
}

impl OutputBinding for {{camel_name}} {
    fn operations(&self) -> Vec<String> {
        vec!["echo".to_owned(), "count".to_owned()]
    }

    fn invoke(&mut self, request: InvokeRequest) -> Result<InvokeResponse, Error> {
        self.calls += 1;
        let data = match request.operation.as_str() {
            "echo" => request.data,
            "count" => self.calls.to_string().into_bytes(),
            other => return Err(Error::NotSupported(format!("operation `{other}`"))),
        };
        Ok(InvokeResponse { data, metadata: Vec::new(), content_type: None })
    }
}

// The WASM component (a wasm32 build exports the plughost world; elsewhere a no-op).
plughost_component::export_output_binding!({{camel_name}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let mut binding = {{camel_name}}::init(Vec::new()).unwrap();
        let echo = InvokeRequest { operation: "echo".to_owned(), data: b"hi".to_vec(), metadata: Vec::new() };
        assert_eq!(binding.invoke(echo).unwrap().data, b"hi");
        let bad = InvokeRequest { operation: "nope".to_owned(), data: Vec::new(), metadata: Vec::new() };
        assert!(matches!(binding.invoke(bad), Err(Error::NotSupported(_))));
    }
}
