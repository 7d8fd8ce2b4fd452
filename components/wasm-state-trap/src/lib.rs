//! Fixture: `wasm-state` except that `get` of the key `boom` panics, which in
//! a wasm32-wasip2 guest prints the message to stderr and traps
//! (`unreachable`).

struct PanicOnBoom;

impl state_guest::Behaviour for PanicOnBoom {
    fn before_get(key: &str) {
        if key == "boom" {
            panic!("wasm-state-trap: `get` of `boom` panics on purpose");
        }
    }
}

type Component = state_guest::StateComponent<PanicOnBoom>;

state_guest::export!(Component);
