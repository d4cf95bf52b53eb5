//! Compiles the versioned gRPC API in `proto/` into Rust (client and server).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        // BTreeMap keeps tag maps in key order, so a request's digest does not depend on hash order.
        .btree_map(".")
        // For server reflection: what `grpcurl` and its kind read to list and call the API.
        .file_descriptor_set_path(out_dir.join("modelcopy_descriptor.bin"))
        .compile_protos(&["proto/modelcopy/v1/modelcopy.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    // `sqlx::migrate!` embeds migrations/ at compile time; without this a new migration would not be picked up
    // until some Rust file changed.
    println!("cargo:rerun-if-changed=migrations");
    Ok(())
}
