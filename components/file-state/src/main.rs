//! gRPC mode: serves `<socket folder>/file-state.sock` (or `--socket PATH`).
fn main() -> std::process::ExitCode {
    plughost_component::serve_state::<file_state::FileState>("file-state")
}
