//! gRPC mode only: compiles Dapr's component protos (`proto/`, a link to the
//! repository's) with protox, server side only, and writes the descriptor set
//! that reflection serves. Nothing to do for wasm32 targets.

use protox::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    if std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch == "wasm32") {
        return Ok(());
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile(
        [
            "dapr/proto/components/v1/state.proto",
            "dapr/proto/components/v1/pubsub.proto",
            "dapr/proto/components/v1/bindings.proto",
            "dapr/proto/components/v1/secretstore.proto",
        ],
        ["proto"],
    )?;
    std::fs::write(out.join("components_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().build_client(false).generate_default_stubs(true).compile_fds(fds)?;
    Ok(())
}
