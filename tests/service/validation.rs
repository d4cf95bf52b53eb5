//! Each rule is tested on its own beside its domain type (src/domain); here, that the API turns violations
//! into INVALID_ARGUMENT naming every field, writes nothing but the audit row, and calls nobody.

use modelcopy::proto;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::TestApp;

fn fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

#[tokio::test]
async fn an_invalid_copy_names_each_bad_field_and_writes_no_job() {
    let app = TestApp::spawn().await;
    let mut client = app.client("alice").await;
    let mut request = app.copy_request("has space");
    request.output_config = Some(proto::OutputConfig { s3_bucket: "ab".into(), s3_key_prefix: String::new() });
    request.tags.insert("aws:owner".into(), "x".into());
    request.kms_key_id = Some("-bad".into());

    let status = client.copy_model_version(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut got = fields(&status);
    got.sort();
    assert_eq!(got, ["kms_key_id", "output_config.s3_bucket", "tags[\"aws:owner\"]", "version_name"]);

    assert_eq!(app.job_count().await, 0);
    let audit = app.audit_rows().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].0.as_str(), audit[0].1.as_str(), audit[0].2.as_str()),
        ("CopyModelVersion", "INVALID", "InvalidArgument")
    );
    assert_eq!(app.sim.call_count("CopyProjectVersion"), 0);
    app.stop().await;
}

#[tokio::test]
async fn documented_cross_field_rules_are_enforced() {
    let app = TestApp::spawn().await;
    let mut client = app.client("alice").await;

    let mut other_region = app.copy_request("x");
    other_region.destination_project_arn = other_region.destination_project_arn.replace("us-east-1", "eu-west-1");
    let status = client.copy_model_version(other_region).await.unwrap_err();
    assert_eq!(fields(&status), ["destination_project_arn"]);

    let mut foreign_version = app.copy_request("x");
    foreign_version.source_project_version_arn =
        foreign_version.source_project_version_arn.replace("project/detector/", "project/other/");
    let status = client.copy_model_version(foreign_version).await.unwrap_err();
    assert_eq!(fields(&status), ["source_project_version_arn"]);

    let status = client.copy_model_version(proto::CopyModelVersionRequest::default()).await.unwrap_err();
    let mut got = fields(&status);
    got.sort();
    assert_eq!(
        got,
        [
            "destination_project_arn",
            "output_config",
            "source_project_arn",
            "source_project_version_arn",
            "version_name"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn reads_refuse_malformed_ids_and_tokens() {
    let app = TestApp::spawn().await;
    let mut client = app.client("alice").await;
    let status = client.get_copy(proto::GetCopyRequest { copy_id: "nope".into() }).await.unwrap_err();
    assert_eq!(fields(&status), ["copy_id"]);
    let status = client
        .list_copies(proto::ListCopiesRequest { page_size: 501, page_token: "forged".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["page_size", "page_token"]);
    let status = client.watch_copy(proto::WatchCopyRequest { target: None, after_sequence: None }).await.unwrap_err();
    assert_eq!(fields(&status), ["target"]);
    let status =
        client.get_copy(proto::GetCopyRequest { copy_id: uuid::Uuid::new_v4().to_string() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    app.stop().await;
}
