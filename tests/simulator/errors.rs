//! Every error the simulator raises reaches the SDK as the right typed error.

use std::time::Duration;

use aws_sdk_rekognition::error::ProvideErrorMetadata;

use crate::helpers::*;

const MISSING_PROJECT: &str = "arn:aws:rekognition:us-east-1:111111111111:project/missing/1700000000000";

async fn sim() -> Sim {
    Sim::start(Duration::from_secs(2)).await
}

#[tokio::test]
async fn missing_destination_is_resource_not_found() {
    let sim = sim().await;
    let err = copy_source_v1(&sim, &sim.client(KEY_A), MISSING_PROJECT, "c1").await.unwrap_err();
    let err = err.into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    assert!(err.message().is_some_and(|message| message.contains("missing")));
}

#[tokio::test]
async fn destination_with_another_creation_time_is_resource_not_found() {
    let sim = sim().await;
    let dest = sim.project_arn(ACCOUNT_A, REGION, "dest");
    let recreated = format!("{}9", dest);
    let err = copy_source_v1(&sim, &sim.client(KEY_A), &recreated, "c1").await.unwrap_err();
    assert!(err.into_service_error().is_resource_not_found_exception());
}

#[tokio::test]
async fn missing_source_project_is_resource_not_found() {
    let sim = sim().await;
    let err = sim
        .client(KEY_A)
        .copy_project_version()
        .source_project_arn(MISSING_PROJECT)
        .source_project_version_arn(format!("arn:aws:rekognition:{REGION}:{ACCOUNT_A}:project/missing/version/v1/1"))
        .destination_project_arn(sim.project_arn(ACCOUNT_A, REGION, "dest"))
        .version_name("c1")
        .output_config(output_config())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_resource_not_found_exception());
}

#[tokio::test]
async fn missing_source_version_is_resource_not_found() {
    let sim = sim().await;
    let client = sim.client(KEY_A);
    let copy = |version_arn: String| {
        client
            .copy_project_version()
            .source_project_arn(sim.project_arn(ACCOUNT_A, REGION, "source"))
            .source_project_version_arn(version_arn)
            .destination_project_arn(sim.project_arn(ACCOUNT_A, REGION, "dest"))
            .version_name("c1")
            .output_config(output_config())
            .send()
    };

    let unknown_name = sim.version_arn(ACCOUNT_A, REGION, "source", "v1").replace("/v1/", "/v9/");
    let err = copy(unknown_name).await.unwrap_err();
    assert!(err.into_service_error().is_resource_not_found_exception());

    // A real version, but of another project than the source project named.
    let other_project = sim.version_arn(ACCOUNT_A, REGION, "many", "m1");
    let err = copy(other_project).await.unwrap_err();
    assert!(err.into_service_error().is_resource_not_found_exception());
}

#[tokio::test]
async fn duplicate_version_name_is_resource_in_use() {
    let sim = sim().await;
    let client = sim.client(KEY_A);
    let dest = sim.project_arn(ACCOUNT_A, REGION, "dest");
    copy_source_v1(&sim, &client, &dest, "twice").await.expect("first copy starts");

    let err = copy_source_v1(&sim, &client, &dest, "twice").await.unwrap_err().into_service_error();
    assert!(err.is_resource_in_use_exception(), "{err:?}");
    assert_eq!(err.code(), Some("ResourceInUseException"));
}

#[tokio::test]
async fn source_in_another_region_is_invalid_parameter() {
    let sim = sim().await;
    let err = sim
        .client(KEY_A)
        .copy_project_version()
        .source_project_arn(sim.project_arn(ACCOUNT_A, OTHER_REGION, "west-source"))
        .source_project_version_arn(sim.version_arn(ACCOUNT_A, OTHER_REGION, "west-source", "v1"))
        .destination_project_arn(sim.project_arn(ACCOUNT_A, REGION, "dest"))
        .version_name("c1")
        .output_config(output_config())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_parameter_exception(), "{err:?}");
    assert_eq!(err.code(), Some("InvalidParameterException"));
}

#[tokio::test]
async fn destination_of_another_account_is_access_denied() {
    let sim = sim().await;
    let dest_of_b = sim.project_arn(ACCOUNT_B, REGION, "b-dest");
    let err = copy_source_v1(&sim, &sim.client(KEY_A), &dest_of_b, "c1").await.unwrap_err().into_service_error();
    assert!(err.is_access_denied_exception(), "{err:?}");
    assert_eq!(err.code(), Some("AccessDeniedException"));
}

#[tokio::test]
async fn versions_of_another_accounts_project_are_access_denied() {
    let sim = sim().await;
    let err = sim
        .client(KEY_A)
        .describe_project_versions()
        .project_arn(sim.project_arn(ACCOUNT_B, REGION, "b-dest"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_access_denied_exception(), "{err:?}");
}

#[tokio::test]
async fn versions_of_a_missing_project_are_resource_not_found() {
    let sim = sim().await;
    let err = sim
        .client(KEY_A)
        .describe_project_versions()
        .project_arn(MISSING_PROJECT)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
}

#[tokio::test]
async fn unknown_access_key_is_unrecognized_client() {
    let sim = sim().await;
    let err = sim.client(UNKNOWN_KEY).describe_projects().send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|response| response.status().as_u16()), Some(400));
    let err = err.into_service_error();
    assert_eq!(err.code(), Some("UnrecognizedClientException"));
    assert_eq!(err.message(), Some("The security token included in the request is invalid."));
}

#[tokio::test]
async fn constraint_violation_is_validation_exception() {
    let sim = sim().await;
    let dest = sim.project_arn(ACCOUNT_A, REGION, "dest");
    let err = copy_source_v1(&sim, &sim.client(KEY_A), &dest, "has space").await.unwrap_err().into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(err.message().is_some_and(|message| message.contains("versionName")), "{err:?}");

    let too_many: Vec<String> = (0..11).map(|i| format!("v{i}")).collect();
    let err = sim
        .client(KEY_A)
        .describe_project_versions()
        .project_arn(&dest)
        .set_version_names(Some(too_many))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));

    let err = sim
        .client(KEY_A)
        .describe_project_versions()
        .project_arn(&dest)
        .max_results(101)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
}
