//! [`Slot`]: one named component whose implementation can be replaced while
//! calls run.
//!
//! Every call takes the current [`Instance`] (an `Arc` clone, held for the
//! call). A replacement is a *handover*: [`Slot::begin_handover`] makes new
//! calls wait (they are not refused), [`drain`] lets the calls running on
//! the old instance finish, the host initialises the new instance — so it
//! starts from everything the old one wrote, even a store that caches its
//! data — and [`Slot::finish_handover`] switches to it, or back to the old
//! one if the new one failed, and lets the waiting calls go. Two instances
//! of one component never serve at the same time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use crate::component::Instance;

struct Current {
    instance: Arc<Instance>,
    /// A handover is under way: new calls wait.
    handover: bool,
}

/// A replaceable component.
pub struct Slot {
    name: String,
    current: RwLock<Current>,
    generation: AtomicU64,
    swapped_at: RwLock<Option<SystemTime>>,
    /// `true` while a handover is under way.
    handover: watch::Sender<bool>,
    /// The generation, for streams that follow the slot across swaps.
    changes: watch::Sender<u64>,
}

impl Slot {
    /// A slot for component `name`, serving `instance` (generation 1).
    pub fn new(name: &str, instance: Instance) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            current: RwLock::new(Current { instance: Arc::new(instance), handover: false }),
            generation: AtomicU64::new(1),
            swapped_at: RwLock::new(None),
            handover: watch::Sender::new(false),
            changes: watch::Sender::new(1),
        })
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The instance serving now, waiting out a handover first; hold it for
    /// the duration of one call.
    pub async fn current(&self) -> Arc<Instance> {
        loop {
            {
                let current = self.current.read().expect("slot lock");
                if !current.handover {
                    return current.instance.clone();
                }
            }
            let mut handover = self.handover.subscribe();
            let _ = handover.wait_for(|under_way| !*under_way).await;
        }
    }

    /// How many times the implementation was set (1 = never swapped).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// When it was last swapped, if ever.
    pub fn swapped_at(&self) -> Option<SystemTime> {
        *self.swapped_at.read().expect("slot lock")
    }

    /// Notified with the new generation on every swap.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Starts a handover: from now on calls wait; returns the instance
    /// serving until now, for [`drain`].
    pub fn begin_handover(&self) -> Arc<Instance> {
        let mut current = self.current.write().expect("slot lock");
        current.handover = true;
        self.handover.send_replace(true);
        current.instance.clone()
    }

    /// Ends a handover: with `Some(instance)` it serves from now on (and the
    /// old one is returned, to close); with `None` the old one goes on.
    pub fn finish_handover(&self, instance: Option<Instance>) -> Option<Arc<Instance>> {
        let mut current = self.current.write().expect("slot lock");
        let old = instance.map(|instance| {
            let old = std::mem::replace(&mut current.instance, Arc::new(instance));
            let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
            *self.swapped_at.write().expect("slot lock") = Some(SystemTime::now());
            self.changes.send_replace(generation);
            old
        });
        current.handover = false;
        self.handover.send_replace(false);
        old
    }
}

/// Waits until no call holds `old` any more (only `old` and the slot's own
/// reference are left, or `old` alone), at most `timeout`; `false` if calls
/// were still running then.
pub async fn drain(old: &Arc<Instance>, held_elsewhere: usize, timeout: Duration) -> bool {
    let until = Instant::now() + timeout;
    while Arc::strong_count(old) > 1 + held_elsewhere {
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

/// What a removed component's slot holds: no kind, so handles taken before
/// the removal answer "not found".
pub fn removed(name: &str) -> Instance {
    Instance::new(Arc::new(Removed(name.to_owned())), crate::component::Kinds::default())
}

struct Removed(String);

#[async_trait::async_trait]
impl crate::component::Lifecycle for Removed {
    async fn init(&self, _metadata: crate::kinds::Metadata) -> crate::kinds::Result<()> {
        Err(self.gone())
    }

    async fn features(&self) -> crate::kinds::Result<Vec<String>> {
        Err(self.gone())
    }

    async fn ping(&self) -> crate::kinds::Result<()> {
        Err(self.gone())
    }
}

impl Removed {
    fn gone(&self) -> crate::kinds::ComponentError {
        crate::kinds::ComponentError::NotFound(format!("component `{}` was removed", self.0))
    }
}
