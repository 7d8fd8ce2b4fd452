//! Fixture: `wasm-state` plus an import of `example:missing/clock-of-doom`,
//! which plughost does not provide, so the component cannot be instantiated.
//!
//! The state store and its exports come from `state-guest`; this crate's own
//! `generate!` adds only the import. wit-component merges the worlds of every
//! `generate!` in the module, so the component's world is
//! `state-component` plus that import (kept because `ping` calls it).

wit_bindgen::generate!({ world: "doom-import", path: "wit" });

use example::missing::clock_of_doom::countdown;
use state_guest::Error;

struct Doomed;

impl state_guest::Behaviour for Doomed {
    fn ping() -> Result<(), Error> {
        match countdown() {
            0 => Err(Error::Unavailable("doom has arrived".to_owned())),
            _ => Ok(()),
        }
    }
}

type Component = state_guest::StateComponent<Doomed>;

state_guest::export!(Component);
