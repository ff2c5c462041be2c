//! Background work shared by every lethe process on one engine store: request execution,
//! retention runs and notice deliveries are rows in the `jobs` table, claimed with a lease
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL) that the worker renews while it works. A job
//! whose worker died is claimed again once its lease expired; the work itself is resumable
//! (erasure steps are recorded per source, retention runs per batch, notices per delivery),
//! so a second worker finishes it without repeating an effect.
//!
//! Architecture invariant: a job's effects are idempotent. A worker that lost its lease
//! (it hung longer than the lease) can only repeat work whose completion is checked inside
//! the same engine-store transaction that records it (a final request state, a finished
//! run, a settled notice).

pub mod worker;

use crate::app::App;
use crate::erase;
use crate::request::RequestError;
use crate::retention::run::{RetentionError, RunRequest, RunStatus};
use crate::source::SourceError;
use crate::store::models::JobRow;
use crate::store::{StoreError, StoreFault, jobs as js, now};
use crate::trace::TraceError;
use chrono::NaiveDateTime;
use std::sync::mpsc;
use std::time::Duration;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Run (or resume) an approved request's execution, verification and completion.
    RequestExecute,
    /// Run (or resume) a retention rule.
    RetentionRun,
    /// Deliver one notice to a recipient's webhook.
    Notify,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::RequestExecute => "request.execute",
            JobKind::RetentionRun => "retention.run",
            JobKind::Notify => "notify",
        }
    }

    pub fn parse(s: &str) -> Option<JobKind> {
        Some(match s {
            "request.execute" => JobKind::RequestExecute,
            "retention.run" => JobKind::RetentionRun,
            "notify" => JobKind::Notify,
            _ => return None,
        })
    }
}

/// How a job ended this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Done,
    /// Try again at this time (a source or the store was unavailable, a recipient did not
    /// answer); the reason is recorded.
    RetryAt(NaiveDateTime, String),
    Failed(String),
    /// The engine store refused the work's own writes (unreachable, read-only, disk full):
    /// nothing of this step was recorded. Retried at this time if the store can record
    /// that, or else when the job's lease expires. The fault (None: unreachable) and the
    /// store's message.
    StoreFailed(NaiveDateTime, Option<StoreFault>, String),
    /// Another worker holds the job (or it does not exist any more).
    NotClaimed,
}

impl JobOutcome {
    fn store_failed(at: NaiveDateTime, e: StoreError) -> JobOutcome {
        match e {
            StoreError::Unwritable(f, m) => JobOutcome::StoreFailed(at, Some(f), m),
            other => JobOutcome::StoreFailed(at, None, other.to_string()),
        }
    }

    /// The store error of a `StoreFailed` outcome.
    pub fn store_error(&self) -> Option<StoreError> {
        match self {
            JobOutcome::StoreFailed(_, Some(f), m) => Some(StoreError::Unwritable(*f, m.clone())),
            JobOutcome::StoreFailed(_, None, m) => Some(StoreError::Unavailable(m.clone())),
            _ => None,
        }
    }
}

/// The identity of this process in leases: `<node name>:<pid>` (`LETHE_NODE_NAME`, by
/// default the host name).
pub fn owner_id(app: &App) -> String {
    format!("{}:{}", app.config.node_name, std::process::id())
}

/// Whether a lease owner is a process of this node that no longer exists (its lease need
/// not run out: nobody else can be holding it).
pub fn owner_is_dead(app: &App, owner: &str) -> bool {
    match owner.rsplit_once(':') {
        Some((node, pid)) if node == app.config.node_name => pid
            .parse::<u32>()
            .is_ok_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()),
        _ => false,
    }
}

pub(crate) fn retry_at(app: &App, attempt: i32) -> NaiveDateTime {
    let s = &app.config.jobs;
    // Exponential without jitter: a request retries one source, not a fleet of receivers.
    let d = crate::notify::Backoff {
        base: s.retry_base,
        max: s.retry_max,
    }
    .nominal(u32::try_from(attempt.max(1)).unwrap_or(1));
    now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(60))
}

/// Queues a request's execution (idempotent: a live job for the request stays as it is).
pub fn enqueue_execution(
    conn: &mut crate::store::StoreConn,
    request_id: &str,
) -> Result<bool, StoreError> {
    js::enqueue(
        conn,
        &js::NewJob {
            kind: JobKind::RequestExecute.as_str(),
            target: request_id,
            args: "{}".into(),
            dedupe_key: None,
            run_after: now(),
        },
    )
}

/// Creates a request's execution job already claimed by `owner` (in the caller's
/// transaction). None when the request already has a live job.
pub fn claim_execution(
    conn: &mut crate::store::StoreConn,
    request_id: &str,
    owner: &str,
    lease: chrono::Duration,
) -> Result<Option<JobRow>, StoreError> {
    js::enqueue_claimed(
        conn,
        &js::NewJob {
            kind: JobKind::RequestExecute.as_str(),
            target: request_id,
            args: "{}".into(),
            dedupe_key: None,
            run_after: now(),
        },
        owner,
        lease,
    )
}

/// Queues a retention run. `dedupe_key` makes a scheduled occurrence run once across
/// replicas.
pub fn enqueue_retention(
    conn: &mut crate::store::StoreConn,
    req: &RunRequest,
    dedupe_key: Option<String>,
) -> Result<bool, StoreError> {
    js::enqueue(
        conn,
        &js::NewJob {
            kind: JobKind::RetentionRun.as_str(),
            target: &req.rule,
            args: serde_json::to_string(req).unwrap_or_else(|_| "{}".into()),
            dedupe_key,
            run_after: now(),
        },
    )
}

/// Queues the resumption of a rule's unfinished run, due at `at` (a run that waits for a
/// source). Nothing when the rule already has a live job (the one running it is queued
/// again with its own back-off).
pub fn enqueue_retention_resume(
    conn: &mut crate::store::StoreConn,
    rule: &str,
    at: NaiveDateTime,
) -> Result<bool, StoreError> {
    let req = RunRequest {
        rule: rule.to_string(),
        at: None,
        dry_run: false,
        batch_size: None,
        budget: None,
        trigger: "resume".into(),
        not_before: None,
    };
    js::enqueue(
        conn,
        &js::NewJob {
            kind: JobKind::RetentionRun.as_str(),
            target: rule,
            args: serde_json::to_string(&req).unwrap_or_else(|_| "{}".into()),
            dedupe_key: None,
            run_after: at,
        },
    )
}

/// Runs a job of `kind` for `target` in this thread now: claims its live job (ignoring a
/// back-off wait), or creates one already claimed. NotClaimed when another live worker
/// holds it.
pub fn run_now(app: &App, kind: JobKind, target: &str, args: String) -> JobOutcome {
    let owner = owner_id(app);
    let lease = app.config.jobs.lease;
    let claimed = app.store.write(|c| -> Result<Option<JobRow>, StoreError> {
        // A job held by a process of this host that no longer exists is free at once.
        if let Some(j) = js::live(c, kind.as_str(), target)?
            && let Some(dead) = j.lease_owner.as_deref().filter(|o| owner_is_dead(app, o))
        {
            js::expire_lease(c, &j.id, dead)?;
        }
        if let Some(j) = js::claim(c, &owner, lease, Some((kind.as_str(), target)))? {
            return Ok(Some(j));
        }
        if js::live(c, kind.as_str(), target)?.is_some() {
            return Ok(None);
        }
        js::enqueue_claimed(
            c,
            &js::NewJob {
                kind: kind.as_str(),
                target,
                args: args.clone(),
                dedupe_key: None,
                run_after: now(),
            },
            &owner,
            lease,
        )
    });
    match claimed {
        Ok(Some(job)) => run_claimed(app, &job, &owner),
        Ok(None) => JobOutcome::NotClaimed,
        Err(e) => JobOutcome::Failed(e.to_string()),
    }
}

/// Claims and runs due jobs one after another until none is due or `max` ran. Returns what
/// each did (`lethe jobs run`, tests).
pub fn run_due(app: &App, max: usize) -> Vec<(JobRow, JobOutcome)> {
    let owner = owner_id(app);
    let mut out = Vec::new();
    while out.len() < max {
        let job = match app
            .store
            .write(|c| js::claim(c, &owner, app.config.jobs.lease, None))
        {
            Ok(Some(j)) => j,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim a job");
                break;
            }
        };
        let outcome = run_claimed(app, &job, &owner);
        out.push((job, outcome));
    }
    out
}

/// Runs a job this process claimed, renewing its lease from a second thread while it runs,
/// then records the outcome.
pub fn run_claimed(app: &App, job: &JobRow, owner: &str) -> JobOutcome {
    let lease = app.config.jobs.lease;
    let every = (lease / 3)
        .to_std()
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_millis(200));
    let (stop, stopped) = mpsc::channel::<()>();
    let started = std::time::Instant::now();
    let outcome = std::thread::scope(|s| {
        s.spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                match app.store.write(|c| js::renew(c, &job.id, owner, lease)) {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(job = %job.id, "lease lost: another worker claimed this job");
                        break;
                    }
                    Err(e) => tracing::warn!(job = %job.id, error = %e, "cannot renew the lease"),
                }
            }
        });
        let outcome = dispatch(app, job);
        let _ = stop.send(());
        outcome
    });
    let recorded = app.store.write(|c| match &outcome {
        JobOutcome::Done | JobOutcome::NotClaimed => js::finish(c, &job.id, owner, js::DONE, None),
        JobOutcome::Failed(e) => js::finish(c, &job.id, owner, js::FAILED, Some(e)),
        JobOutcome::RetryAt(at, e) => js::requeue(c, &job.id, owner, *at, Some(e)),
        JobOutcome::StoreFailed(at, ..) => {
            let e = outcome.store_error().map(|e| e.to_string());
            js::requeue(c, &job.id, owner, *at, e.as_deref())
        }
    });
    match recorded {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(job = %job.id, kind = %job.kind, "the job's lease was lost before its outcome was recorded")
        }
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "cannot record the job's outcome; its lease will expire and another worker resumes it")
        }
    }
    let outcome_name = match &outcome {
        JobOutcome::Done => "done",
        JobOutcome::RetryAt(..) | JobOutcome::StoreFailed(..) => "retry",
        JobOutcome::Failed(_) => "failed",
        JobOutcome::NotClaimed => "not_claimed",
    };
    app.metrics
        .observe_job(&job.kind, outcome_name, started.elapsed());
    match &outcome {
        JobOutcome::Done => {
            tracing::debug!(job = %job.id, kind = %job.kind, target = %job.target, "job done")
        }
        JobOutcome::RetryAt(at, e) => {
            tracing::info!(job = %job.id, kind = %job.kind, target = %job.target, retry_at = %at, reason = %e, "job will be retried")
        }
        JobOutcome::Failed(e) => {
            tracing::warn!(job = %job.id, kind = %job.kind, target = %job.target, error = %e, "job failed")
        }
        JobOutcome::StoreFailed(at, ..) => {
            let e = outcome
                .store_error()
                .map(|e| e.to_string())
                .unwrap_or_default();
            tracing::error!(job = %job.id, kind = %job.kind, target = %job.target, retry_at = %at, error = %e, "the engine store refused the job's writes; the job will be retried")
        }
        JobOutcome::NotClaimed => {}
    }
    outcome
}

fn retryable_request_error(e: &RequestError) -> bool {
    matches!(
        e,
        RequestError::Trace(TraceError::Source(SourceError::Unavailable(_)))
            | RequestError::Conflict(_)
    )
}

fn dispatch(app: &App, job: &JobRow) -> JobOutcome {
    match JobKind::parse(&job.kind) {
        Some(JobKind::RequestExecute) => match erase::run::continue_execution(app, &job.target) {
            Ok(_) => JobOutcome::Done,
            Err(RequestError::Store(e)) if e.is_retryable() => {
                JobOutcome::store_failed(retry_at(app, job.attempts), e)
            }
            Err(e) if retryable_request_error(&e) => {
                let at = retry_at(app, job.attempts);
                erase::run::record_waiting(app, &job.target, &e.to_string(), &at);
                JobOutcome::RetryAt(at, e.to_string())
            }
            Err(RequestError::NotFound(_)) => JobOutcome::Done,
            Err(e) => JobOutcome::Failed(e.to_string()),
        },
        Some(JobKind::RetentionRun) => {
            let req: RunRequest = match serde_json::from_str(&job.args) {
                Ok(r) => r,
                Err(e) => return JobOutcome::Failed(format!("bad job arguments: {e}")),
            };
            match crate::retention::run::run(app, &req, &mut |_| {}) {
                Ok(o) => match o.status {
                    RunStatus::Completed | RunStatus::Partial | RunStatus::AlreadyRan => {
                        tracing::info!(rule = %o.rule, status = ?o.status, deleted = o.deleted, anonymized = o.anonymized, held = o.held, "retention run finished");
                        JobOutcome::Done
                    }
                    RunStatus::DryRun => JobOutcome::Done,
                    RunStatus::Busy => JobOutcome::RetryAt(
                        now() + app.config.jobs.lease / 2,
                        o.message
                            .unwrap_or_else(|| "another process runs this rule".into()),
                    ),
                    RunStatus::Waiting => JobOutcome::RetryAt(
                        o.retry_at.unwrap_or_else(|| retry_at(app, job.attempts)),
                        o.message
                            .unwrap_or_else(|| "a source is unavailable".into()),
                    ),
                    RunStatus::Failed => {
                        JobOutcome::Failed(o.message.unwrap_or_else(|| "run failed".into()))
                    }
                },
                Err(RetentionError::Store(e)) if e.is_retryable() => {
                    JobOutcome::store_failed(retry_at(app, job.attempts), e)
                }
                Err(e) => JobOutcome::Failed(e.to_string()),
            }
        }
        Some(JobKind::Notify) => crate::request::notices::deliver(app, job),
        None => JobOutcome::Failed(format!("unknown job kind {}", job.kind)),
    }
}

/// Queues the work a previous process may have left without a job (requests in
/// `executing`/`verifying`, unfinished retention runs). Idempotent: work with a live job is
/// left to it.
pub fn recover(app: &App) -> Result<usize, StoreError> {
    use crate::request::RequestState;
    use crate::store::requests as rq;
    let f = rq::RequestFilter {
        states: vec![
            RequestState::Executing.as_str().into(),
            RequestState::Verifying.as_str().into(),
        ],
        limit: 1000,
        ..Default::default()
    };
    let mut n = 0;
    // Jobs held by a process of this host that no longer exists are claimable at once.
    for j in app.store.read(|c| js::list(c, Some(js::RUNNING), 1000))? {
        if let Some(dead) = j.lease_owner.as_deref().filter(|o| owner_is_dead(app, o))
            && app.store.write(|c| js::expire_lease(c, &j.id, dead))?
        {
            n += 1;
        }
    }
    let (rows, waiting) = app.store.read(|c| {
        Ok((
            rq::list(c, &f)?,
            crate::store::notifications::requests_with_pending(c)?,
        ))
    })?;
    // A request waiting for notices is queued again when the last one settles.
    for r in rows.iter().filter(|r| !waiting.contains(&r.id)) {
        if app.store.write(|c| enqueue_execution(c, &r.id))? {
            n += 1;
        }
    }
    for rule in &app.policy.retention.rules {
        let unfinished = app
            .store
            .read(|c| crate::store::retention::running(c, &rule.name))?;
        // Only a run whose owner stopped beating (a live one renews every batch).
        let stale = now() - app.config.jobs.lease;
        if unfinished.is_some_and(|r| r.heartbeat_at < stale) {
            let req = RunRequest {
                rule: rule.name.clone(),
                at: None,
                dry_run: false,
                batch_size: None,
                budget: None,
                trigger: "resume".into(),
                not_before: None,
            };
            if app.store.write(|c| enqueue_retention(c, &req, None))? {
                n += 1;
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in [
            JobKind::RequestExecute,
            JobKind::RetentionRun,
            JobKind::Notify,
        ] {
            assert_eq!(JobKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(JobKind::parse("x"), None);
    }
}
