//! Fixture: `wasm-state` except that `get` of the key `boom` spins forever.

use std::hint::black_box;

struct SpinOnBoom;

impl state_guest::Behaviour for SpinOnBoom {
    fn before_get(key: &str) {
        if key == "boom" {
            // `black_box` keeps the optimizer from proving the loop useless.
            let mut turns = 0u64;
            loop {
                turns = black_box(turns.wrapping_add(1));
            }
        }
    }
}

type Component = state_guest::StateComponent<SpinOnBoom>;

state_guest::export!(Component);
