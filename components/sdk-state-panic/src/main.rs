//! Fixture: the `wasm-state` store served in gRPC mode by the component SDK,
//! except that `get` of the key `boom` panics. The SDK must answer that call
//! with `INTERNAL` and keep serving (`sdk::a_panicking_component_keeps_serving`).

struct PanicOnBoom;

impl state_guest::Behaviour for PanicOnBoom {
    fn before_get(key: &str) {
        if key == "boom" {
            panic!("sdk-state-panic: `get` of `boom` panics on purpose");
        }
    }
}

fn main() -> std::process::ExitCode {
    state_guest::plughost_component::serve_state::<state_guest::StateComponent<PanicOnBoom>>("sdk-state-panic")
}
