//! One step of one claimed job, with an explicit outcome. Every path ends by giving the lease back with the
//! time the job is next due (or leaves it to lapse, if the database itself failed).

use std::time::Duration;

use aws_sdk_rekognition::Client;
use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::gate::{Gate, Ticket};
use super::{backoff, schedule, Dispatcher};
use crate::domain::{CopyId, CopyState, ProjectArn, ProjectVersionStatus};
use crate::rekognition::{copy, status, AwsCallError, VersionStatus};
use crate::store::jobs::{Claimed, LeaseToken};
use crate::store::{jobs, Change, CopyJob, Report, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Rekognition accepted the copy (or an earlier attempt's copy was found and adopted).
    Submitted,
    /// A transient error; the job is due again later.
    RetryLater { attempt: u32, code: String },
    /// The copy is still running; described again later.
    StillCopying,
    /// The copy reached a terminal state.
    Ended(CopyState),
    /// The job was cancelled or taken over meanwhile: nothing done.
    NotOurs,
}

/// Submits one claimed job (queued, or submitting again after a transient failure or a takeover) with the copy
/// slot `ticket`, then gives its lease back with the time it is next due.
pub async fn submit(
    dispatcher: &Dispatcher,
    client: &Client,
    gate: &Gate,
    ticket: Ticket,
    claimed: Claimed,
) -> Result<Outcome, StoreError> {
    let Claimed { job, token } = claimed;
    let step = Step { dispatcher, token: &token };
    let id = job.id;
    let outcome = match job.state {
        CopyState::Queued => {
            // Committing SUBMITTING before the call is what makes a copy no longer cancellable.
            let change = Change::to(CopyState::Submitting);
            match jobs::transition(&dispatcher.store, id, CopyState::Queued, &change, Some(&token)).await? {
                Some(job) => step.submit_once(client, gate, ticket, job).await?,
                None => Outcome::NotOurs,
            }
        }
        CopyState::Submitting => step.submit_once(client, gate, ticket, job).await?,
        _ => Outcome::NotOurs,
    };
    step.release(id, None, &outcome).await?;
    Ok(outcome)
}

/// How a follow step looks at its copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// By their version names (at most ten).
    Named,
    /// By listing the project's newest versions (`status::describe_newest`).
    Newest,
}

/// Describes the claimed running copies of one destination project in one call, with the describe slot `ticket`,
/// records what changed, and gives their leases back.
pub async fn follow(
    dispatcher: &Dispatcher,
    client: &Client,
    ticket: Ticket,
    project: &ProjectArn,
    look: Look,
    running: Vec<Claimed>,
) -> Result<Followed, StoreError> {
    let described = match look {
        Look::Named => {
            let names: Vec<_> = running.iter().map(|claimed| claimed.job.request.version_name()).collect();
            ticket.call(status::describe_versions(client, project, &names)).await.map(|versions| (versions, false))
        }
        Look::Newest => {
            ticket.call(status::describe_newest(client, project)).await.map(|newest| (newest.versions, newest.more))
        }
    };
    let mut followed = Followed::default();
    for Claimed { job, token } in &running {
        let step = Step { dispatcher, token };
        let outcome = match &described {
            Ok((versions, more)) => match find(versions, job) {
                Some(found) => step.record_status(job, CopyState::Copying, found).await?,
                None => {
                    if *more {
                        followed.unseen.push(job.id);
                    }
                    // Not listed yet (Rekognition is eventually consistent), or not among the newest: look again
                    // later.
                    Outcome::StillCopying
                }
            },
            // A copy under way is not failed because this service cannot get credentials to look at it: the
            // copy goes on at AWS whatever our credentials, and is looked at again once they work.
            Err(err) if err.is_permanent() && !err.is_credentials() => {
                step.fail(job, CopyState::Copying, err, None).await?
            }
            Err(err) => Outcome::RetryLater { attempt: 1, code: err.code.clone() },
        };
        if let Outcome::Ended(_) = outcome {
            followed.ended.push(job.id);
        }
        step.release(job.id, job.submitted_at, &outcome).await?;
    }
    Ok(followed)
}

/// What a follow step saw.
#[derive(Debug, Default)]
pub struct Followed {
    /// Copies a [`Look::Newest`] could not see because the project has more versions than one page and theirs
    /// were not among the newest: they are looked at by name.
    pub unseen: Vec<CopyId>,
    /// Copies that ended.
    pub ended: Vec<CopyId>,
}

/// What a step's writes need: the dispatcher, and the token of the claim it works under.
struct Step<'a> {
    dispatcher: &'a Dispatcher,
    token: &'a LeaseToken,
}

impl Step<'_> {
    /// Gives the job's lease back with the time it is next due; a running copy's by its age, from when it was
    /// submitted (`submitted_at`, `None` for one submitted just now).
    async fn release(
        &self,
        id: CopyId,
        submitted_at: Option<DateTime<Utc>>,
        outcome: &Outcome,
    ) -> Result<(), StoreError> {
        let dispatcher = self.dispatcher;
        let due_in = match outcome {
            Outcome::RetryLater { attempt, .. } => backoff::delay(&dispatcher.settings, *attempt),
            Outcome::Submitted | Outcome::StillCopying => {
                schedule::next_look(&dispatcher.settings, submitted_at, Utc::now())
            }
            Outcome::Ended(_) | Outcome::NotOurs => Duration::ZERO,
        };
        jobs::release(&dispatcher.store, id, self.token, due_in).await
    }

    async fn submit_once(
        &self,
        client: &Client,
        gate: &Gate,
        ticket: Ticket,
        job: CopyJob,
    ) -> Result<Outcome, StoreError> {
        let dispatcher = self.dispatcher;
        let Some(attempt) = jobs::record_attempt(&dispatcher.store, job.id, self.token).await? else {
            return Ok(Outcome::NotOurs);
        };

        // An earlier attempt may have reached Rekognition (a timeout, a 5xx, a replica that died before recording the
        // answer): look for its copy before making another, so a model is never copied twice.
        if attempt > 1 {
            let request = &job.request;
            let names = [request.version_name()];
            let found = gate.describe(status::describe_versions(client, request.destination_project(), &names)).await;
            match found.map(|versions| find(&versions, &job).cloned()) {
                Ok(Some(found)) if found.source_version_arn.as_ref() == Some(request.source_version()) => {
                    info!(arn = %found.version_arn, "adopting the copy an earlier attempt started");
                    return self.record_status(&job, CopyState::Submitting, &found).await;
                }
                Ok(_) => {}
                Err(err) if err.is_permanent() => return self.fail(&job, CopyState::Submitting, &err, None).await,
                // Counted like a failed copy call: a describe that keeps failing must not keep the job SUBMITTING (and
                // holding one of the account's in-progress places) for ever.
                Err(err) => return self.retry_or_give_up(&job, attempt, err).await,
            }
        }

        match ticket.call(copy::start_copy(client, &job.request)).await {
            Ok(arn) => {
                let report = Report {
                    rekognition_status: Some(ProjectVersionStatus::CopyingInProgress),
                    destination_version_arn: Some(arn),
                    ..Report::default()
                };
                let change = Change { report, ..Change::to(CopyState::Copying) };
                self.apply(job.id, CopyState::Submitting, &change, Outcome::Submitted).await
            }
            Err(err) if err.is_permanent() => self.fail(&job, CopyState::Submitting, &err, None).await,
            Err(err) => self.retry_or_give_up(&job, attempt, err).await,
        }
    }

    /// After a transient failure of a submission's `attempt`: due again later, or failed once the attempts allowed are
    /// spent. Every transient failure of a submission goes through here, whichever call failed.
    async fn retry_or_give_up(&self, job: &CopyJob, attempt: u32, err: AwsCallError) -> Result<Outcome, StoreError> {
        // A call this replica did not make (its leader term had run out) is no failure of the copy: it does not
        // spend the last attempt.
        if attempt >= self.dispatcher.settings.max_attempts && !err.is_not_leader() {
            let detail = format!("gave up after {attempt} attempts");
            return self.fail(job, CopyState::Submitting, &err, Some(detail)).await;
        }
        warn!(attempt, code = %err.code, message = %err.message, "transient error; retrying later");
        Ok(Outcome::RetryLater { attempt, code: err.code })
    }

    /// Records what Rekognition says of the copy: done, failed, or a new status or message while it runs.
    async fn record_status(
        &self,
        job: &CopyJob,
        from: CopyState,
        found: &VersionStatus,
    ) -> Result<Outcome, StoreError> {
        let (to, outcome) = match found.status {
            Some(ProjectVersionStatus::CopyingCompleted) => {
                (CopyState::Succeeded, Outcome::Ended(CopyState::Succeeded))
            }
            Some(ProjectVersionStatus::CopyingFailed) => (CopyState::Failed, Outcome::Ended(CopyState::Failed)),
            _ if from == CopyState::Submitting => (CopyState::Copying, Outcome::Submitted),
            _ => (CopyState::Copying, Outcome::StillCopying),
        };
        let unchanged = to == from
            && job.report.rekognition_status == found.status
            && job.report.rekognition_status_message == found.message;
        if unchanged {
            return Ok(outcome);
        }
        let failed = to == CopyState::Failed;
        let report = Report {
            rekognition_status: found.status.clone(),
            rekognition_status_message: found.message.clone(),
            destination_version_arn: Some(found.version_arn.clone()),
            error_code: failed.then(|| ProjectVersionStatus::CopyingFailed.as_str().to_owned()),
            error_message: if failed { found.message.clone() } else { None },
            ..Report::default()
        };
        let change = Change { report, ..Change::to(to) };
        self.apply(job.id, from, &change, outcome).await
    }

    async fn fail(
        &self,
        job: &CopyJob,
        from: CopyState,
        err: &AwsCallError,
        detail: Option<String>,
    ) -> Result<Outcome, StoreError> {
        warn!(code = %err.code, message = %err.message, "copy failed");
        let report = Report {
            error_code: Some(err.code.clone()),
            error_message: Some(err.message.clone()),
            ..Report::default()
        };
        let change = Change { report, detail, ..Change::to(CopyState::Failed) };
        self.apply(job.id, from, &change, Outcome::Ended(CopyState::Failed)).await
    }

    /// Records `change` while the claim is still the job's; `outcome` if it was, [`Outcome::NotOurs`] if not.
    async fn apply(
        &self,
        id: CopyId,
        from: CopyState,
        change: &Change,
        outcome: Outcome,
    ) -> Result<Outcome, StoreError> {
        let updated = jobs::transition(&self.dispatcher.store, id, from, change, Some(self.token)).await?;
        Ok(if updated.is_some() { outcome } else { Outcome::NotOurs })
    }
}

/// The destination version a job makes, among those Rekognition listed.
fn find<'v>(versions: &'v [VersionStatus], job: &CopyJob) -> Option<&'v VersionStatus> {
    versions.iter().find(|v| match &job.report.destination_version_arn {
        Some(arn) => &v.version_arn == arn,
        None => v.version_name() == job.request.version_name().as_str(),
    })
}
