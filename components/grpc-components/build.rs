//! Compiles Dapr's component protos from the repository's `proto/` (the same
//! files plughost compiles) with protox, server side only, and writes the
//! descriptor set reflection serves.

use protox::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto");
    if std::env::var("CARGO_CFG_TARGET_FAMILY").is_ok_and(|f| f.split(',').any(|f| f == "wasm")) {
        return Ok(()); // native only; see Cargo.toml
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile(
        [
            "dapr/proto/components/v1/state.proto",
            "dapr/proto/components/v1/pubsub.proto",
            "dapr/proto/components/v1/bindings.proto",
            "dapr/proto/components/v1/secretstore.proto",
        ],
        ["../../proto"],
    )?;
    std::fs::write(out.join("components_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().build_client(false).generate_default_stubs(true).compile_fds(fds)?;
    Ok(())
}
