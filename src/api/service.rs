//! The ModelCopy gRPC service.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tonic::{Request, Response, Status};

use super::context::Call;
use super::convert;
use super::visible_page::visible_page;
use super::ApiError;
use super::{audit_events, rollouts};
use crate::admission::{Admission, StreamPlace};
use crate::auth::{Action, Resource, Visibility};
use crate::domain::{AccountId, CopyRequest, FieldViolation};
use crate::preflight::Preflight;
use crate::proto::encoded::EncodedCopyEvent;
use crate::proto::model_copy_server::ModelCopy;
use crate::proto::{self, watch_copy_request::Target};
use crate::rekognition::AccountLimits;
use crate::store::{jobs, CancelOutcome, CreateOutcome, PageToken, Role, Store};
use crate::telemetry::TraceParent;
use crate::watch::{self, WatchHub};

const MAX_CANCEL_REASON: usize = 1024;

#[derive(Clone)]
pub struct ModelCopyService {
    store: Store,
    hub: Arc<WatchHub>,
    /// The accounts this service copies into, and their limits.
    accounts: Arc<BTreeMap<AccountId, AccountLimits>>,
    /// The replica's admission limits: here, each principal's open watch streams.
    admission: Arc<Admission>,
    /// The checks made with Rekognition before a copy or rollout is queued.
    preflight: Preflight,
}

impl ModelCopyService {
    pub fn new(
        store: Store,
        hub: Arc<WatchHub>,
        accounts: BTreeMap<AccountId, AccountLimits>,
        admission: Arc<Admission>,
        preflight: Preflight,
    ) -> Self {
        ModelCopyService { store, hub, accounts: Arc::new(accounts), admission, preflight }
    }
}

/// Runs preflight on `copies`; a failed check is the request's error, unless `retry` finds that the request's
/// token named an earlier request: a retry is answered with what it made, whatever has changed since. `retry` is
/// asked only then, so that a request that passes (most, and from the cache) reads nothing more: asked before every
/// check, the lookup cost about a third of the acknowledgements per second at 32 callers (BENCHMARKS.md).
pub(super) async fn preflight(
    checker: &Preflight,
    copies: &[CopyRequest],
    retry: impl std::future::Future<Output = Result<bool, crate::store::StoreError>>,
) -> Result<crate::preflight::Verdict, ApiError> {
    use crate::preflight::Verdict;
    match checker.check(copies).await {
        Verdict::Failed(_) if retry.await? => {
            Ok(Verdict::Skipped { note: "a retry of an earlier request: not checked again".into() })
        }
        Verdict::Failed(violations) => Err(ApiError::Preflight(violations)),
        verdict => Ok(verdict),
    }
}

/// What a caller is told to wait when an account's queue is full: the time a tenth of the queue takes to drain.
pub(super) fn retry_after(limits: &AccountLimits) -> Duration {
    Duration::from_secs_f64((f64::from(limits.max_queued) * 0.1 / limits.copy_per_second).clamp(1.0, 3600.0))
}

type EventStream = Pin<Box<dyn Stream<Item = Result<EncodedCopyEvent, Status>> + Send>>;

/// A caller's view of copies, for the watch fan-out: the policies' decision for the caller, shared by every stream
/// of callers with the same [`crate::auth::Principal::key`].
impl watch::Viewer for Visibility {
    fn sees(&self, job: &crate::store::CopyJob) -> bool {
        Visibility::sees(self, job)
    }
}

#[tonic::async_trait]
impl ModelCopy for ModelCopyService {
    async fn copy_model_version(
        &self,
        request: Request<proto::CopyModelVersionRequest>,
    ) -> Result<Response<proto::CopyModelVersionResponse>, Status> {
        let call = Call::of(&request)?;
        // The server span layer's: kept with the copy, so that its dispatch joins this call's trace.
        let trace = request.extensions().get::<TraceParent>().cloned();
        let raw = convert::raw_copy_request(request.into_inner());
        call.audit.set_request(convert::raw_audit_json(&raw), None);
        let copy_request = CopyRequest::parse(raw).map_err(ApiError::Invalid)?;
        call.audit.set_request(copy_request.to_json(), Some(copy_request.digest().to_vec()));
        let account = copy_request.destination_account();
        let Some(limits) = self.accounts.get(account) else {
            let why = format!("account {account} is not one this service copies into");
            return Err(ApiError::invalid("destination_project_arn", why).into());
        };
        call.authorize(Action::CopyModelVersion, &Resource::requested_copy(&copy_request, call.principal.id()))?;
        let retry = async {
            match copy_request.idempotency_token() {
                Some(token) => jobs::token_used(&self.store, call.principal.id(), token.as_str()).await,
                None => Ok(false),
            }
        };
        let checked = preflight(&self.preflight, std::slice::from_ref(&copy_request), retry).await?;
        if let Some(note) = Some(convert::preflight(&checked).note).filter(|n| !n.is_empty()) {
            call.audit.set_reason(format!("preflight: {note}"));
        }

        let record = call.audit.finish(tonic::Code::Ok, None);
        let max_queued = i64::from(limits.max_queued);
        let principal = call.principal.id();
        let outcome =
            jobs::create_with_audit(&self.store, &copy_request, principal, max_queued, record, trace.as_ref())
                .await
                .map_err(ApiError::from)?;
        let (job, replayed) = match outcome {
            CreateOutcome::Created(job) => (job, false),
            CreateOutcome::Replayed(job) => (job, true),
            CreateOutcome::TokenMismatch(existing) => {
                call.audit.set_copy_id(existing.id);
                return Err(ApiError::IdempotencyMismatch { copy_id: existing.id }.into());
            }
            CreateOutcome::QueueFull { depth } => {
                let retry_after = retry_after(limits);
                return Err(ApiError::QueueFull { account: account.clone(), depth, retry_after }.into());
            }
        };
        call.audit.mark_written();
        let preflight = Some(convert::preflight(&checked));
        Ok(Response::new(proto::CopyModelVersionResponse { copy: Some(convert::copy(&job)), replayed, preflight }))
    }

    async fn get_copy(&self, request: Request<proto::GetCopyRequest>) -> Result<Response<proto::Copy>, Status> {
        let call = Call::of(&request)?;
        let raw = request.into_inner();
        call.audit.set_request(serde_json::json!({ "copy_id": raw.copy_id }), None);
        let id = convert::copy_id("copy_id", &raw.copy_id).map_err(ApiError::Invalid)?;
        call.audit.set_copy_id(id);
        let not_found = || ApiError::NotFound(format!("no copy {id}"));
        let job = jobs::get(&self.store, id).await.map_err(ApiError::from)?.ok_or_else(not_found)?;
        call.authorize_visible(Action::GetCopy, &Resource::copy(&job), not_found)?;
        Ok(Response::new(convert::copy(&job)))
    }

    async fn list_copies(
        &self,
        request: Request<proto::ListCopiesRequest>,
    ) -> Result<Response<proto::ListCopiesResponse>, Status> {
        let call = Call::of(&request)?;
        let raw = request.into_inner();
        call.audit.set_request(
            serde_json::json!({
                "filter": convert::filter_json(raw.filter.as_ref()),
                "page_size": raw.page_size,
                "page_token": raw.page_token,
            }),
            None,
        );
        let mut violations = Vec::new();
        let filter = convert::filter("filter", raw.filter).unwrap_or_else(|v| {
            violations.extend(v);
            Default::default()
        });
        let page_size = convert::page_size(raw.page_size, &mut violations);
        let after = convert::page_token(&raw.page_token, PageToken::decode, &mut violations);
        if !violations.is_empty() {
            return Err(ApiError::Invalid(violations).into());
        }
        let visibility = call.visibility(Action::ListCopies);
        let page =
            visible_page(&self.store, &filter, after, page_size as usize, &visibility).await.map_err(ApiError::from)?;
        call.audit.set_reason(format!("{} copies shown, {} hidden by policy", page.copies.len(), page.hidden));
        call.audit.set_policies(&page.policy_ids.into_iter().collect::<Vec<_>>());
        Ok(Response::new(proto::ListCopiesResponse {
            copies: page.copies.iter().map(convert::copy).collect(),
            next_page_token: page.next.map(|token| token.encode()).unwrap_or_default(),
        }))
    }

    async fn cancel_copy(&self, request: Request<proto::CancelCopyRequest>) -> Result<Response<proto::Copy>, Status> {
        let call = Call::of(&request)?;
        let raw = request.into_inner();
        let reason: String = raw.reason.chars().take(MAX_CANCEL_REASON).collect();
        call.audit.set_request(serde_json::json!({ "copy_id": raw.copy_id, "reason": reason }), None);
        let mut violations = convert::copy_id("copy_id", &raw.copy_id).err().unwrap_or_default();
        if raw.reason.chars().count() > MAX_CANCEL_REASON {
            violations.push(FieldViolation::new("reason", format!("must be at most {MAX_CANCEL_REASON} characters")));
        }
        if !violations.is_empty() {
            return Err(ApiError::Invalid(violations).into());
        }
        let id = convert::copy_id("copy_id", &raw.copy_id).map_err(ApiError::Invalid)?;
        call.audit.set_copy_id(id);
        let not_found = || ApiError::NotFound(format!("no copy {id}"));
        let job = jobs::get(&self.store, id).await.map_err(ApiError::from)?.ok_or_else(not_found)?;
        call.authorize_visible(Action::CancelCopy, &Resource::copy(&job), not_found)?;
        let record = call.audit.finish(tonic::Code::Ok, None);
        let reason = (!reason.is_empty()).then_some(reason.as_str());
        match jobs::cancel_with_audit(&self.store, id, reason, record).await.map_err(ApiError::from)? {
            CancelOutcome::Cancelled(job) => {
                call.audit.mark_written();
                Ok(Response::new(convert::copy(&job)))
            }
            CancelOutcome::AlreadyCancelled(job) => Ok(Response::new(convert::copy(&job))),
            CancelOutcome::TooLate(job) => Err(ApiError::FailedPrecondition(format!(
                "copy {id} is {} and can no longer be cancelled: only queued copies can",
                job.state
            ))
            .into()),
            CancelOutcome::NotFound => Err(ApiError::NotFound(format!("no copy {id}")).into()),
        }
    }

    type WatchCopyStream = EventStream;

    async fn watch_copy(&self, request: Request<proto::WatchCopyRequest>) -> Result<Response<EventStream>, Status> {
        let call = Call::of(&request)?;
        // Held by the stream until it ends or its client goes: a principal's streams at once are capped.
        let place = self.admission.open_stream(call.principal.id()).map_err(|shed| shed.status())?;
        let request = request.into_inner();
        // A turn to start before anything else, and the rest of the call boxed: when thousands of watches open at
        // once, those waiting for their turn hold little (see `WatchHub::start_turn`).
        let turn = self.hub.start_turn().await;
        Box::pin(self.open_watch(call, place, request, turn)).await
    }

    async fn list_audit_events(
        &self,
        request: Request<proto::ListAuditEventsRequest>,
    ) -> Result<Response<proto::ListAuditEventsResponse>, Status> {
        let call = Call::of(&request)?;
        Ok(Response::new(audit_events::list(&self.store, &call, request.into_inner()).await?))
    }

    async fn summarize_audit(
        &self,
        request: Request<proto::SummarizeAuditRequest>,
    ) -> Result<Response<proto::SummarizeAuditResponse>, Status> {
        let call = Call::of(&request)?;
        Ok(Response::new(audit_events::summarize(&self.store, &call, request.into_inner()).await?))
    }

    async fn create_rollout(
        &self,
        request: Request<proto::CreateRolloutRequest>,
    ) -> Result<Response<proto::CreateRolloutResponse>, Status> {
        let call = Call::of(&request)?;
        let trace = request.extensions().get::<TraceParent>().cloned();
        let created =
            rollouts::create(&self.store, &self.accounts, &self.preflight, &call, request.into_inner(), trace).await;
        Ok(Response::new(created?))
    }

    async fn get_rollout(
        &self,
        request: Request<proto::GetRolloutRequest>,
    ) -> Result<Response<proto::Rollout>, Status> {
        let call = Call::of(&request)?;
        Ok(Response::new(rollouts::get(&self.store, &call, request.into_inner()).await?))
    }

    async fn list_rollouts(
        &self,
        request: Request<proto::ListRolloutsRequest>,
    ) -> Result<Response<proto::ListRolloutsResponse>, Status> {
        let call = Call::of(&request)?;
        Ok(Response::new(rollouts::list(&self.store, &call, request.into_inner()).await?))
    }

    async fn cancel_rollout(
        &self,
        request: Request<proto::CancelRolloutRequest>,
    ) -> Result<Response<proto::Rollout>, Status> {
        let call = Call::of(&request)?;
        Ok(Response::new(rollouts::cancel(&self.store, &call, request.into_inner()).await?))
    }
}

impl ModelCopyService {
    /// The rest of `WatchCopy`, with the caller's turn to start.
    async fn open_watch(
        &self,
        call: Call,
        place: StreamPlace,
        request: proto::WatchCopyRequest,
        turn: OwnedSemaphorePermit,
    ) -> Result<Response<EventStream>, Status> {
        let start =
            match request.after_sequence {
                None => watch::Start::Snapshot,
                Some(after) => watch::Start::After(i64::try_from(after).map_err(|_| {
                    ApiError::invalid("after_sequence", format!("{after} is beyond any sequence number"))
                })?),
            };
        // Every item (snapshot or change) is shown only if the caller may watch that copy, as the policies in
        // force say when the item is sent. A copy watched by id passed this check already; asking again costs
        // little and follows a policy change in the middle of a watch.
        let watcher =
            watch::Watcher { viewer_key: call.principal.key(), viewer: Arc::new(call.visibility(Action::WatchCopy)) };
        let stream = match request.target {
            Some(Target::CopyId(raw)) => {
                call.audit
                    .set_request(serde_json::json!({ "copy_id": raw, "after_sequence": request.after_sequence }), None);
                let id = convert::copy_id("copy_id", &raw).map_err(ApiError::Invalid)?;
                call.audit.set_copy_id(id);
                let not_found = || ApiError::NotFound(format!("no copy {id}"));
                let job = jobs::get(&self.store, id).await.map_err(ApiError::from)?.ok_or_else(not_found)?;
                call.authorize_visible(Action::WatchCopy, &Resource::copy(&job), not_found)?;
                watch::watch(self.store.for_role(Role::Watch), &self.hub, watch::Target::Copy(id), start, watcher, turn)
                    .await
                    .map_err(ApiError::from)?
            }
            Some(Target::Filter(raw)) => {
                let filter_json = convert::filter_json(Some(&raw));
                call.audit.set_request(
                    serde_json::json!({ "filter": filter_json, "after_sequence": request.after_sequence }),
                    None,
                );
                let filter = convert::filter("filter", Some(raw)).map_err(ApiError::Invalid)?;
                call.audit.set_reason("each copy's state and changes shown only as policies permit");
                watch::watch(
                    self.store.for_role(Role::Watch),
                    &self.hub,
                    watch::Target::Filter(filter),
                    start,
                    watcher,
                    turn,
                )
                .await
                .map_err(ApiError::from)?
            }
            None => return Err(ApiError::invalid("target", "set copy_id or filter").into()),
        };
        let open = crate::telemetry::metrics::OpenStream::new();
        let events = stream.map(move |item| {
            let _held = (&place, &open);
            item.map_err(|err| Status::from(ApiError::from(err)))
        });
        Ok(Response::new(Box::pin(events)))
    }
}
