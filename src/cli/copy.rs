//! `copy`: queue a copy of a model version, and optionally follow it to its end.
//!
//! The CLI turns its arguments into a `CopyModelVersionRequest` and nothing more: ARNs, names, buckets and tag rules
//! are checked by the server, which names every bad field at once. The one rule checked here is one the request
//! cannot express: a tag key given twice would silently keep only the last value.

use std::io::Write;

use anyhow::Context;
use clap::Args;

use super::connect::Client;
use super::copied::CopiedVersionArgs;
use super::{render, watch, Outcome, OutputFormat};
use crate::proto::CopyModelVersionRequest;

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// ARN of the project that holds the version to copy.
    #[arg(long)]
    pub source_project_arn: String,
    /// ARN of the model version to copy.
    #[arg(long)]
    pub source_version_arn: String,
    /// ARN of the project to copy into.
    #[arg(long)]
    pub destination_project_arn: String,
    #[command(flatten)]
    pub copied: CopiedVersionArgs,
    /// Makes a retry safe: the same token returns the copy queued the first time.
    #[arg(long)]
    pub idempotency_token: Option<String>,
    /// Then follow the copy until it ends, like `watch <copy-id>`.
    #[arg(long)]
    pub watch: bool,
}

impl CopyArgs {
    pub fn to_request(&self) -> anyhow::Result<CopyModelVersionRequest> {
        let copied = &self.copied;
        Ok(CopyModelVersionRequest {
            source_project_arn: self.source_project_arn.clone(),
            source_project_version_arn: self.source_version_arn.clone(),
            destination_project_arn: self.destination_project_arn.clone(),
            version_name: copied.version_name.clone(),
            output_config: Some(copied.output_config()),
            tags: copied.tag_map()?,
            kms_key_id: copied.kms_key_id.clone(),
            idempotency_token: self.idempotency_token.clone().unwrap_or_default(),
            delete_after: copied.delete_after,
        })
    }
}

pub async fn execute(
    client: &mut Client,
    args: &CopyArgs,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    let request = args.to_request()?;
    let response = client.copy_model_version(request).await.context("CopyModelVersion")?.into_inner();
    let copy = response.copy.context("CopyModelVersion: the server answered without a copy")?;
    match format {
        OutputFormat::Text => {
            if response.replayed {
                writeln!(out, "replayed: this idempotency token already queued this copy; nothing new was queued")?;
            }
            write!(out, "{}", render::copy_details(&copy))?;
        }
        OutputFormat::Json => {
            writeln!(out, "{}", serde_json::json!({ "replayed": response.replayed, "copy": render::copy_json(&copy) }))?
        }
    }
    out.flush()?;
    if !args.watch {
        return Ok(Outcome::Done);
    }
    watch::follow_copy(client, &copy.copy_id, format, out).await
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};
    use super::*;

    fn copy_args(extra: &[&str]) -> Result<CopyArgs, clap::Error> {
        let mut argv = vec![
            "modelcopy-cli",
            "copy",
            "--source-project-arn",
            "arn:src-project",
            "--source-version-arn",
            "arn:src-version",
            "--destination-project-arn",
            "arn:dst-project",
            "--version-name",
            "v1",
            "--s3-bucket",
            "bucket",
        ];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv)?.command {
            Command::Copy(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn builds_the_request_from_the_arguments() {
        let args = copy_args(&[
            "--s3-key-prefix",
            "out/",
            "--tag",
            "team=vision",
            "--tag",
            "formula=a=b",
            "--tag",
            "empty=",
            "--kms-key-id",
            "alias/models",
            "--idempotency-token",
            "retry-1",
        ])
        .unwrap();
        assert!(!args.watch);
        let request = args.to_request().unwrap();
        assert_eq!(request.source_project_arn, "arn:src-project");
        assert_eq!(request.source_project_version_arn, "arn:src-version");
        assert_eq!(request.destination_project_arn, "arn:dst-project");
        assert_eq!(request.version_name, "v1");
        let output = request.output_config.unwrap();
        assert_eq!(output.s3_bucket, "bucket");
        assert_eq!(output.s3_key_prefix, "out/");
        assert_eq!(request.tags.len(), 3);
        assert_eq!(request.tags["team"], "vision");
        assert_eq!(request.tags["formula"], "a=b");
        assert_eq!(request.tags["empty"], "");
        assert_eq!(request.kms_key_id.as_deref(), Some("alias/models"));
        assert_eq!(request.idempotency_token, "retry-1");
    }

    #[test]
    fn optional_fields_default_to_absent() {
        let request = copy_args(&["--watch"]).unwrap().to_request().unwrap();
        assert!(request.tags.is_empty());
        assert_eq!(request.kms_key_id, None);
        assert_eq!(request.idempotency_token, "");
        assert_eq!(request.output_config.unwrap().s3_key_prefix, "");
    }

    #[test]
    fn refuses_a_tag_without_equals() {
        let error = copy_args(&["--tag", "team"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn refuses_a_tag_key_given_twice() {
        let args = copy_args(&["--tag", "team=a", "--tag", "team=b"]).unwrap();
        let error = args.to_request().unwrap_err();
        assert!(error.to_string().contains("\"team\""), "{error}");
    }

    #[test]
    fn requires_the_source_version() {
        let error = Cli::try_parse_from([
            "modelcopy-cli",
            "copy",
            "--source-project-arn",
            "a",
            "--destination-project-arn",
            "d",
            "--version-name",
            "n",
            "--s3-bucket",
            "b",
        ])
        .unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }
}
