//! A lease is the token of one claim, not the name of a replica: a step that outlived its lease cannot write over
//! the step that claimed the job after it, even when both run on the same replica.

use std::time::Duration;

use modelcopy::domain::{CopyId, CopyState};
use modelcopy::store::{jobs, Change, Store};

use crate::helpers::TestApp;

#[tokio::test]
async fn a_step_that_outlived_its_lease_cannot_write_over_the_next_claim_of_the_same_replica() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("fenced")).await;
    let store = Store::from_pool(app.pool.clone());
    let id: CopyId = copy.copy_id.parse().unwrap();

    // A step claims the job and then stalls (a slow Rekognition call) past its lease; the same replica claims the
    // job again for a new step.
    let stalled = jobs::claim(&store, &[id], "replica-a", Duration::from_millis(50)).await.unwrap().pop().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let current = jobs::claim(&store, &[id], "replica-a", Duration::from_secs(60)).await.unwrap().pop();
    let current = current.expect("a lapsed lease can be claimed again");
    assert_ne!(stalled.token, current.token, "each claim has a token of its own");
    assert!(current.token.as_str().starts_with("replica-a/"), "{}", current.token);

    // Every write of the stalled step is refused: its attempt, its transition, its release.
    assert_eq!(jobs::record_attempt(&store, id, &stalled.token).await.unwrap(), None);
    let submitting = Change::to(CopyState::Submitting);
    let moved = jobs::transition(&store, id, CopyState::Queued, &submitting, Some(&stalled.token)).await.unwrap();
    assert!(moved.is_none(), "the stalled step moved the job: {moved:?}");
    jobs::release(&store, id, &stalled.token, Duration::ZERO).await.unwrap();
    let held: Option<String> = sqlx::query_scalar("SELECT lease_owner FROM copy_jobs WHERE id = $1")
        .bind(id.as_uuid())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(held.as_deref(), Some(current.token.as_str()), "the stalled step's release let go of the new claim");

    // The current step's writes go through.
    let moved = jobs::transition(&store, id, CopyState::Queued, &submitting, Some(&current.token)).await.unwrap();
    assert_eq!(moved.map(|job| job.state), Some(CopyState::Submitting));
    assert_eq!(jobs::record_attempt(&store, id, &current.token).await.unwrap(), Some(1));
    app.stop().await;
}
