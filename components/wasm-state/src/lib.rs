//! `state-component`: an in-memory state store with ETags, TTLs and
//! transactions (`state-logic`), the same store the gRPC component serves.

struct Plain;

impl state_guest::Behaviour for Plain {}

type Component = state_guest::StateComponent<Plain>;

state_guest::export!(Component);
