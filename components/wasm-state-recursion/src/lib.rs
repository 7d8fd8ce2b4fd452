//! Fixture: `wasm-state` except that `get` of the key `boom` recurses until
//! the wasm call stack is exhausted (a stack-overflow trap).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The depth reached: one shared write per frame, which the optimizer must
/// keep.
static DEPTH: AtomicU64 = AtomicU64::new(0);

/// Never returns. The result is combined with a value read after the call, so
/// the call is not a tail call and cannot become a loop. Nothing in the frame
/// has its address taken (no `black_box`, no arrays), so the frames live on
/// the wasm call stack only: it overflows there, as a `StackOverflow` trap,
/// long before Rust's 1 MiB shadow stack in linear memory could overrun.
#[inline(never)]
#[allow(unconditional_recursion)] // the point of this fixture
fn dive(depth: u64) -> u64 {
    DEPTH.store(depth, Relaxed);
    let below = dive(depth + 1);
    below ^ DEPTH.load(Relaxed).wrapping_mul(depth)
}

struct RecurseOnBoom;

impl state_guest::Behaviour for RecurseOnBoom {
    fn before_get(key: &str) {
        if key == "boom" {
            dive(0);
        }
    }
}

type Component = state_guest::StateComponent<RecurseOnBoom>;

state_guest::export!(Component);
