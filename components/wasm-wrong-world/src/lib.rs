//! Fixture: a well-formed component of a world that is not plughost's. It
//! exports a bare `greet` function and none of plughost's interfaces.

wit_bindgen::generate!({ world: "greeter", path: "wit" });

struct Component;

impl Guest for Component {
    fn greet(name: String) -> String {
        format!("hello, {name}")
    }
}

export!(Component);
