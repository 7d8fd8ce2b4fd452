//! The live registry: components replaced, added and removed while the host
//! runs, with no failed call.
//!
//! * [`Slot`]: one named component whose implementation is swapped
//!   atomically; calls running on the old one finish there.
//! * [`Live`]: the handle lookups return, calling the slot's current
//!   implementation on every call, and following it with its streams.
//!
//! The swap sequence (in `crate::host`): make the new instance (a WASM
//! component is compiled when its file is loaded, off the request path) →
//! hold new calls → let the calls running on the old one finish (bounded by
//! a drain timeout) → `init` the new one → switch the slot and release the
//! held calls → `close` the old one. If making or initialising the new one
//! fails, the old one goes on serving (it was never closed) and the failure
//! shows in the component's listing. Calls wait during a handover (the
//! drain plus one `init`, usually milliseconds); none fails.
//!
//! Why `init` after the drain rather than before the switch: many stores
//! load their data at `init` (a file, a cache), and the old instance may
//! still be writing until its calls finish. Initialising the new one after
//! them means it starts from everything the old one wrote, and two
//! instances of one component never serve at the same time.

mod handle;
mod slot;

pub use handle::Live;
pub use slot::{Slot, drain, removed};
