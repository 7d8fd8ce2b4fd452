//! gRPC: Dapr's wire protocols.

pub mod pb;
