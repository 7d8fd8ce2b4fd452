//! `state.redis` and `pubsub.redis` beyond their conformance suites: data
//! compatibility with daprd (`compat`), three `plughost run` instances on
//! one Redis (`instances`), `maxLenApprox` and `concurrency` (`options`), and
//! `enableTLS` against a TLS-only redis-server (`tls`).

mod compat;
mod instances;
mod options;
mod tls;
