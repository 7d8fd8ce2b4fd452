//! gRPC mode: serves `<socket folder>/broker.sock` (or `--socket PATH`).
fn main() -> std::process::ExitCode {
    plughost_component::serve_pubsub::<broker::Broker>("broker")
}
