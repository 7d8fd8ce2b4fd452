//! Fixture: `wasm-state` except that `get` of the key `boom` allocates and
//! touches memory until the allocation fails (then it aborts: a trap).

use std::hint::black_box;

const CHUNK: usize = 1 << 20;

struct HoardOnBoom;

impl state_guest::Behaviour for HoardOnBoom {
    fn before_get(key: &str) {
        if key == "boom" {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                // Non-zero bytes, so every page is written, not just reserved.
                hoard.push(vec![0xA5; CHUNK]);
                black_box(&mut hoard);
            }
        }
    }
}

type Component = state_guest::StateComponent<HoardOnBoom>;

state_guest::export!(Component);
