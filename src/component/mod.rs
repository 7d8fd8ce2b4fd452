//! The component model: what every component is, whatever its kinds and
//! wherever it runs.
//!
//! * [`Lifecycle`]: `init`, `features`, `ping`, `close`, declared once and
//!   implemented once per mode; the kind traits in [`crate::kinds`] add
//!   only their operations.
//! * [`Instance`]: what a [`Factory`] makes for one configured component —
//!   its lifecycle and the [`Kinds`] it serves.
//! * [`Mode`], [`Factory`], [`FactoryContext`], [`Factories`]: component
//!   types and where they run.
//! * [`modes`]: the one table from (kind, mode) to the adapter serving it.
//! * [`Health`], [`Probe`], [`Status`], [`ComponentInfo`]: what listings,
//!   the metadata API and the admin routes show.
//!
//! The [`Registry`](crate::Registry) holds the running instances by name.

mod factory;
mod health;
mod info;
mod instance;
mod lifecycle;
pub mod modes;

pub use factory::{Factories, Factory, FactoryContext, MakeFn, Mode};
pub use health::{Health, Probe};
pub use info::{ComponentInfo, Status};
pub use instance::{Instance, Kinds};
pub use lifecycle::{Lifecycle, SharedLifecycle};
