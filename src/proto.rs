//! Generated protobuf and gRPC code for Dapr's protocols, both roles:
//! `components` for the pluggable components plughost calls
//! ([`crate::pluggable`]), `runtime` for the sidecar API apps call
//! ([`crate::api`]). Nothing else in the crate calls `include_proto!`.
//! Modules nest like the packages, because prost refers across packages
//! with relative paths.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

pub mod dapr {
    pub mod proto {
        pub mod common {
            pub mod v1 {
                tonic::include_proto!("dapr.proto.common.v1");
            }
        }
        pub mod components {
            pub mod v1 {
                tonic::include_proto!("dapr.proto.components.v1");
            }
        }
        pub mod runtime {
            pub mod v1 {
                tonic::include_proto!("dapr.proto.runtime.v1");
            }
        }
    }
}

/// `dapr.proto.common.v1`: messages both share.
pub use dapr::proto::common::v1 as common;
/// `dapr.proto.components.v1`: the pluggable component protocol.
pub use dapr::proto::components::v1 as components;
/// `dapr.proto.runtime.v1`: the sidecar API.
pub use dapr::proto::runtime::v1 as runtime;

/// Encoded descriptors of every proto above, for serving reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("dapr_descriptor");
