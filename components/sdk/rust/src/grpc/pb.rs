//! Generated server code for `dapr.proto.components.v1` (see `build.rs`).
#![allow(missing_docs, clippy::all, clippy::pedantic)]

pub mod dapr {
    pub mod proto {
        pub mod components {
            pub mod v1 {
                tonic::include_proto!("dapr.proto.components.v1");
            }
        }
    }
}

pub use dapr::proto::components::v1 as components;

/// Descriptors of the protos above, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("components_descriptor");
