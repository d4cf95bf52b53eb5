//! Compiles the versioned gRPC API in `proto/` into Rust: the messages and the client from the proto, the server
//! from the method list below.
//!
//! Why the server is listed by hand: `WatchCopy` sends events that were encoded once for all of their watchers
//! (`proto::encoded`), so its messages are bytes and its codec writes them as they are; tonic's proto-driven
//! generator gives every method of a service the same codec and the proto's message types. The list must match
//! `proto/modelcopy/v1/modelcopy.proto`: reflection serves the proto's descriptors, and
//! `tests/service/reflection` (via grpcio) and every client call check the two agree.

use tonic_build::manual::{Method, Service};

const PROST: &str = "tonic_prost::ProstCodec";

fn method(name: &str, route: &str, input: &str, output: &str) -> tonic_build::manual::MethodBuilder {
    Method::builder()
        .name(name)
        .route_name(route)
        .input_type(format!("crate::proto::{input}"))
        .output_type(format!("crate::proto::{output}"))
        .codec_path(PROST)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .build_server(false)
        // BTreeMap keeps tag maps in key order, so a request's digest does not depend on hash order.
        .btree_map(".")
        // For server reflection: what `grpcurl` and its kind read to list and call the API.
        .file_descriptor_set_path(out_dir.join("modelcopy_descriptor.bin"))
        .compile_protos(&["proto/modelcopy/v1/modelcopy.proto"], &["proto"])?;

    let service = Service::builder()
        .name("ModelCopy")
        .package("modelcopy.v1")
        .method(
            method("copy_model_version", "CopyModelVersion", "CopyModelVersionRequest", "CopyModelVersionResponse")
                .build(),
        )
        .method(method("get_copy", "GetCopy", "GetCopyRequest", "Copy").build())
        .method(method("list_copies", "ListCopies", "ListCopiesRequest", "ListCopiesResponse").build())
        .method(method("cancel_copy", "CancelCopy", "CancelCopyRequest", "Copy").build())
        .method(
            method("watch_copy", "WatchCopy", "WatchCopyRequest", "encoded::EncodedCopyEvent")
                .codec_path("crate::proto::encoded::EncodedCodec")
                .server_streaming()
                .build(),
        )
        .method(
            method("list_audit_events", "ListAuditEvents", "ListAuditEventsRequest", "ListAuditEventsResponse").build(),
        )
        .method(method("summarize_audit", "SummarizeAudit", "SummarizeAuditRequest", "SummarizeAuditResponse").build())
        .method(method("create_rollout", "CreateRollout", "CreateRolloutRequest", "CreateRolloutResponse").build())
        .method(method("get_rollout", "GetRollout", "GetRolloutRequest", "Rollout").build())
        .method(method("list_rollouts", "ListRollouts", "ListRolloutsRequest", "ListRolloutsResponse").build())
        .method(method("cancel_rollout", "CancelRollout", "CancelRolloutRequest", "Rollout").build())
        .build();
    tonic_build::manual::Builder::new().build_client(false).compile(&[service]);

    embed_dashboard(&out_dir)?;

    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=build.rs");
    // `sqlx::migrate!` embeds migrations/ at compile time; without this a new migration would not be picked up
    // until some Rust file changed.
    println!("cargo:rerun-if-changed=migrations");
    Ok(())
}

/// Lists the dashboard's built files (`dashboard/dist`, committed) for `web::dashboard` to compile into the binary:
/// `ASSETS`, their paths under `/dashboard/` with their bytes. Their names change with every build of the page,
/// so they are found here rather than named in the code.
fn embed_dashboard(out_dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard/dist");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in
            std::fs::read_dir(&dir).map_err(|e| format!("{}: {e} (the dashboard's built files)", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut code = String::from("pub static ASSETS: &[(&str, &[u8])] = &[\n");
    for file in &files {
        let name = file.strip_prefix(&root)?.to_str().ok_or("a dashboard file name that is not UTF-8")?;
        code.push_str(&format!("    ({name:?}, include_bytes!({:?})),\n", file.to_str().ok_or("not UTF-8")?));
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("dashboard_assets.rs"), code)?;
    println!("cargo:rerun-if-changed=dashboard/dist");
    Ok(())
}
