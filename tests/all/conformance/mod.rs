//! Conformance suites: each behaviour is written once against a kind's trait;
//! a one-line macro call runs the whole suite against one implementation, and
//! the test name says which (`conformance::state::sqlite::etag_race`).

mod bindings;
mod pubsub;
mod secrets;
mod state;
