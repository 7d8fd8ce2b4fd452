//! gRPC mode: serves `<socket folder>/{{name}}.sock` (or `--socket PATH`).
fn main() -> std::process::ExitCode {
    plughost_component::serve_output_binding::<{{snake_name}}::{{camel_name}}>("{{name}}")
}
