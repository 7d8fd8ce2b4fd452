//! `state.redis` and `pubsub.redis` beyond their conformance suites: data
//! compatibility with daprd (`compat`), and three `plughost run` instances
//! on one Redis (`instances`).

mod compat;
mod instances;
