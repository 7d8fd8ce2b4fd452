//! Compiles the Dapr protos in `proto/` with protox (pure Rust: no `protoc`
//! on the machine) and writes the descriptor set that reflection serves.

use protox::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile(
        [
            "dapr/proto/components/v1/state.proto",
            "dapr/proto/components/v1/pubsub.proto",
            "dapr/proto/components/v1/bindings.proto",
            "dapr/proto/components/v1/secretstore.proto",
            "dapr/proto/runtime/v1/dapr.proto",
            "dapr/proto/runtime/v1/appcallback.proto",
        ],
        ["proto"],
    )?;
    // `compile_fds` does not write the descriptor set; reflection needs it.
    std::fs::write(out.join("dapr_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .generate_default_stubs(true) // RPCs plughost does not serve answer UNIMPLEMENTED
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
