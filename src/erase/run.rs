//! Drives erasure, rectification and opt-out requests through the workflow: plan, approve,
//! execute (resumable after a crash), verify, and complete with a signed certificate.
//!
//! Every state change goes through `request::service::transition`, with its event and audit
//! entry in the same store transaction. Source work happens between store transactions and
//! is recorded per source, so a restart continues where the process stopped.

use super::execute::{ExecError, RowState, SourceResult, execute_source, read_digests, row_states};
use super::plan::{self, Change, ErasurePlan, PlanError, PlanInput, PlanKind, StepKind};
use super::verify::{Verification, verify};
use crate::app::{Actor, App};
use crate::audit;
use crate::cert::issue::{self, Issuer};
use crate::crypto::sha256_hex;
use crate::hold;
use crate::request::model::{RequestKind, RequestState};
use crate::request::notices;
use crate::request::service::{self, RequestError, invalid};
use crate::request::workflow::Action;
use crate::source::Catalog;
use crate::store::models::{PlanRow, RequestRow, StepRow};
use crate::store::{StoreConn, StoreError, erasure as es, now, requests as rq};
use crate::trace::{TraceError, TraceOptions};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Details sealed on a request (rectification changes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RequestDetails {
    #[serde(default)]
    pub changes: Vec<Change>,
}

pub fn details(app: &App, row: &RequestRow) -> Result<RequestDetails, RequestError> {
    match &row.details_enc {
        None => Ok(RequestDetails::default()),
        Some(sealed) => {
            let plain = app.key.open("request-details", &row.id, sealed)?;
            serde_json::from_slice(&plain).map_err(|e| RequestError::Internal(e.to_string()))
        }
    }
}

fn plan_kind(kind: RequestKind) -> Option<PlanKind> {
    match kind {
        RequestKind::Erasure => Some(PlanKind::Erasure),
        RequestKind::Rectification => Some(PlanKind::Rectification),
        RequestKind::OptOut => Some(PlanKind::OptOut),
        _ => None,
    }
}

fn catalogs(app: &App) -> Result<BTreeMap<String, Arc<Catalog>>, TraceError> {
    let mut out = BTreeMap::new();
    for h in app.sources.iter() {
        out.insert(h.name.clone(), h.catalog()?);
    }
    Ok(out)
}

fn plan_error(e: PlanError) -> RequestError {
    match e {
        PlanError::Invalid { field, message } => RequestError::Invalid { field, message },
        PlanError::Conflict(m) => RequestError::Refused {
            code: "cannot_plan",
            message: m,
        },
        PlanError::Strategy(m) => RequestError::Internal(format!("erasure strategy: {m}")),
    }
}

/// Traces the subject and builds the plan (and a fresh subject key for `encrypt`).
fn build(
    app: &App,
    row: &RequestRow,
    kind: PlanKind,
) -> Result<(ErasurePlan, [u8; 32]), RequestError> {
    let ids = service::identities(app, row)?;
    let fp = app.trace(&ids, &TraceOptions::default())?;
    let active = app.store.read(|c| hold::list(c, true))?;
    let coverage = hold::coverage(app, &active, &fp.identities);
    let trace_plan = app.trace_plan()?;
    let cats = catalogs(app)?;
    let mut subject_key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut subject_key);
    let input = PlanInput {
        map: &app.policy.datamap,
        trace_plan: &trace_plan,
        catalogs: &cats,
        footprint: &fp,
        holds: &coverage,
        request_id: &row.id,
        created_at: audit::format_time(&now()),
        policy_digest: &app.policy.digest,
        hmac_key: app.key.derive("column-hmac"),
        subject_key: Some(subject_key),
    };
    let plan = match kind {
        PlanKind::Erasure => plan::plan_erasure(&input),
        PlanKind::Rectification => plan::plan_updates(&input, kind, &details(app, row)?.changes),
        PlanKind::OptOut => plan::plan_updates(
            &input,
            kind,
            &plan::opt_out_changes(&app.policy.datamap, &fp),
        ),
    }
    .map_err(plan_error)?;
    Ok((plan, subject_key))
}

/// A summary of the plan without personal data (counts, tables, strategies, grounds).
pub fn summary(plan: &ErasurePlan) -> Value {
    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    let steps: Vec<Value> = plan
        .sources
        .iter()
        .flat_map(|s| s.steps.iter().map(move |st| (s.source.as_str(), st)))
        .map(|(src, st)| {
            let label = match st.kind {
                StepKind::Delete => "delete",
                StepKind::Anonymize => "anonymize",
                StepKind::Redact => "redact",
                StepKind::Rectify => "rectify",
                StepKind::OptOut => "opt_out",
            };
            *totals.entry(label).or_default() += st.rows.len();
            json!({
                "source": src, "table": st.table, "action": label, "rows": st.rows.len(),
                "columns": st.changes.iter().map(|c| json!({"column": c.column, "strategy": c.how})).collect::<Vec<_>>(),
                "reason": st.reason,
            })
        })
        .collect();
    let kept: usize = plan.exemptions.iter().map(|e| e.keys.len()).sum();
    json!({
        "kind": plan.kind,
        "created_at": plan.created_at,
        "policy_digest": plan.policy_digest,
        "footprint_rows": plan.footprint_rows,
        "mentions": plan.mentions,
        "steps": steps,
        "totals": {
            "delete": totals.get("delete").copied().unwrap_or(0),
            "anonymize": totals.get("anonymize").copied().unwrap_or(0),
            "redact": totals.get("redact").copied().unwrap_or(0),
            "update": totals.get("rectify").copied().unwrap_or(0) + totals.get("opt_out").copied().unwrap_or(0),
            "exempt": kept,
        },
        "exemptions": plan.exemptions.iter().map(|e| json!({
            "table": e.table, "rows": e.keys.len(), "ground": e.ground, "citation": e.citation,
            "basis": e.basis, "hold_id": e.hold_id, "treatment": e.treatment,
        })).collect::<Vec<_>>(),
        "holds": plan.holds,
        "warnings": plan.warnings,
    })
}

/// The plan for review: the summary plus every pinned row (keys and how it was found).
pub fn review(plan: &ErasurePlan, digest: &str) -> Value {
    let mut v = summary(plan);
    let rows: Vec<Value> = plan
        .sources
        .iter()
        .flat_map(|s| &s.steps)
        .map(|st| {
            json!({
                "table": st.table,
                "action": st.kind,
                "rows": st.rows.iter().map(|r| json!({"key": r.key, "found_via": r.found_via})).collect::<Vec<_>>(),
            })
        })
        .collect();
    if let Some(o) = v.as_object_mut() {
        o.insert("plan_digest".into(), json!(digest));
        o.insert("rows".into(), Value::Array(rows));
        o.insert(
            "exempt_rows".into(),
            Value::Array(
                plan.exemptions
                    .iter()
                    .map(|e| json!({"table": e.table, "keys": e.keys, "treatment": e.treatment}))
                    .collect(),
            ),
        );
    }
    v
}

fn seal_plan(app: &App, plan: &ErasurePlan) -> Result<PlanRow, RequestError> {
    let bytes = serde_json::to_vec(plan).map_err(|e| RequestError::Internal(e.to_string()))?;
    Ok(PlanRow {
        request_id: plan.request_id.clone(),
        created_at: now(),
        digest: format!("sha256:{}", sha256_hex(&bytes)),
        summary: summary(plan).to_string(),
        plan_enc: app.key.seal("plan", &plan.request_id, &bytes)?,
    })
}

/// The stored plan of a request, decrypted.
pub fn load_plan(app: &App, id: &str) -> Result<(PlanRow, ErasurePlan), RequestError> {
    let row = app
        .store
        .read(|c| es::get_plan(c, id))
        .map_err(|e| match e {
            StoreError::NotFound => RequestError::Refused {
                code: "no_plan",
                message: format!("request {id} has no plan yet: plan it first"),
            },
            other => other.into(),
        })?;
    let plain = app.key.open("plan", id, &row.plan_enc)?;
    let plan = serde_json::from_slice(&plain).map_err(|e| RequestError::Internal(e.to_string()))?;
    Ok((row, plan))
}

fn kind_of(row: &RequestRow) -> Result<(RequestKind, RequestState), RequestError> {
    service::parse_kind(row)
}

/// Traces the subject and stores a plan for review (state `planned`).
pub fn plan(app: &App, actor: &Actor, id: &str) -> Result<RequestRow, RequestError> {
    let row = service::load_for(app, id, Action::Plan)?;
    let (kind, _) = kind_of(&row)?;
    let pk = plan_kind(kind)
        .ok_or_else(|| invalid("kind", format!("{kind} requests are not planned")))?;
    let (plan, subject_key) = build(app, &row, pk)?;
    let sealed = seal_plan(app, &plan)?;
    let key_sealed = if plan.uses_subject_key {
        Some(app.key.seal("subject-key", id, &subject_key)?)
    } else {
        None
    };
    let totals = summary(&plan)["totals"].clone();
    app.store.write(|conn| -> Result<RequestRow, RequestError> {
        let mut cur = rq::get(conn, id)?;
        if cur.version != row.version {
            return Err(RequestError::Conflict(format!(
                "request {id} changed while it was being planned; retry"
            )));
        }
        service::transition(
            conn,
            &mut cur,
            actor,
            Action::Plan,
            None,
            json!({"plan_digest": sealed.digest, "totals": totals}),
        )?;
        es::put_plan(conn, &sealed)?;
        es::clear_steps(conn, id)?;
        if let Some(k) = &key_sealed {
            es::put_subject_key(conn, id, k)?;
        }
        cur.state_reason = None;
        Ok(rq::save(conn, &cur)?)
    })
}

/// Approves the reviewed plan.
pub fn approve(
    app: &App,
    actor: &Actor,
    id: &str,
    note: Option<&str>,
) -> Result<RequestRow, RequestError> {
    let _timer = Timer(std::time::Instant::now(), "approve");
    let row = service::load_for(app, id, Action::Approve)?;
    let (plan_row, plan) = load_plan(app, id)?;
    if plan.actionable_rows() == 0 && !plan.holds.is_empty() {
        return Err(RequestError::Refused {
            code: "under_legal_hold",
            message: format!(
                "every row of this subject is under legal hold ({}); nothing can be erased: deny the request with the legal ground instead",
                plan.holds.join(", ")
            ),
        });
    }
    app.store.write(|conn| -> Result<RequestRow, RequestError> {
        let mut cur = rq::get(conn, id)?;
        if cur.version != row.version {
            return Err(RequestError::Conflict(format!(
                "request {id} changed; reload and retry"
            )));
        }
        service::transition(
            conn,
            &mut cur,
            actor,
            Action::Approve,
            note,
            json!({"plan_digest": plan_row.digest}),
        )?;
        Ok(rq::save(conn, &cur)?)
    })
}

fn stale(msg: String) -> RequestError {
    RequestError::Refused {
        code: "plan_stale",
        message: msg,
    }
}

/// Before execution: every pinned row must still be as planned, no new hold may cover a
/// planned row, and (for erasure) the subject must have no rows the plan does not know.
fn precheck(app: &App, plan: &ErasurePlan) -> Result<(), RequestError> {
    let map = &app.policy.datamap;
    for sp in &plan.sources {
        let handle = app.sources.get(&sp.source).map_err(TraceError::from)?;
        let catalog = handle.catalog().map_err(TraceError::from)?;
        let mut conn = handle.pool.get().map_err(TraceError::from)?;
        for step in &sp.steps {
            let pk = map
                .table(&step.table)
                .map(|t| t.primary_key.clone())
                .unwrap_or_default();
            let digests =
                read_digests(&mut conn, &catalog, &pk, step, false).map_err(TraceError::from)?;
            if let Some((r, _)) = step
                .rows
                .iter()
                .zip(row_states(step, &digests))
                .find(|(_, s)| *s != RowState::AsPlanned)
            {
                return Err(stale(format!(
                    "{} row {} changed since the plan was made; re-plan before executing",
                    step.table, r.key
                )));
            }
        }
    }
    let active = app.store.read(|c| hold::list(c, true))?;
    let cov = hold::coverage(app, &active, &plan.identities);
    for sp in &plan.sources {
        for step in &sp.steps {
            for r in &step.rows {
                let held = if step.kind == StepKind::Redact {
                    cov.other_row(&step.table, &r.key)
                } else {
                    cov.own_row(&step.table, &r.key)
                };
                if let Some((h, _)) = held {
                    return Err(stale(format!(
                        "legal hold {h} now covers {} row {}; re-plan",
                        step.table, r.key
                    )));
                }
            }
        }
    }
    if plan.kind == PlanKind::Erasure {
        let fp = app.trace(
            &plan.identities,
            &TraceOptions {
                residual: false,
                use_text_index: true,
            },
        )?;
        let planned: BTreeSet<(String, String)> = plan
            .sources
            .iter()
            .flat_map(|s| &s.steps)
            .flat_map(|st| {
                st.rows
                    .iter()
                    .map(move |r| (st.table.clone(), r.key.to_string()))
            })
            .collect();
        for (&ti, rows) in &fp.tables {
            let t = &map.tables[ti].name;
            for k in rows.rows.keys() {
                if !planned.contains(&(t.clone(), k.to_string())) && !plan.is_exempt(t, k) {
                    return Err(stale(format!(
                        "{t} row {k} of the subject appeared after the plan was made; re-plan"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Executes the approved plan, verifies, and completes (with a certificate for erasures).
pub fn execute(app: &App, actor: &Actor, id: &str) -> Result<RequestRow, RequestError> {
    let t0 = std::time::Instant::now();
    let row = service::load_for(app, id, Action::Execute)?;
    let (plan_row, plan) = load_plan(app, id)?;
    precheck(app, &plan)?;
    tracing::debug!(
        micros = t0.elapsed().as_micros() as u64,
        "execute: load + precheck"
    );
    // The move to executing and this process's claim on the execution job commit together,
    // so no other replica starts the job first and no request is left executing without one.
    let owner = crate::jobs::owner_id(app);
    let job = app.store.write(|conn| -> Result<_, RequestError> {
        let mut cur = rq::get(conn, id)?;
        if cur.version != row.version {
            return Err(RequestError::Conflict(format!(
                "request {id} changed; reload and retry"
            )));
        }
        service::transition(
            conn,
            &mut cur,
            actor,
            Action::Execute,
            None,
            json!({"plan_digest": plan_row.digest}),
        )?;
        rq::save(conn, &cur)?;
        Ok(crate::jobs::claim_execution(
            conn,
            id,
            &owner,
            app.config.jobs.lease,
        )?)
    })?;
    run_claimed_execution(app, id, job, &owner)
}

/// Runs the execution job this process claimed together with the state change, or, when
/// the request already had a live job, that one (if no other process holds it).
fn run_claimed_execution(
    app: &App,
    id: &str,
    job: Option<crate::store::models::JobRow>,
    owner: &str,
) -> Result<RequestRow, RequestError> {
    match job {
        Some(job) => job_result(app, id, crate::jobs::run_claimed(app, &job, owner)),
        None => run_execution_job(app, id),
    }
}

fn job_result(
    app: &App,
    id: &str,
    outcome: crate::jobs::JobOutcome,
) -> Result<RequestRow, RequestError> {
    if let Some(e) = outcome.store_error() {
        // The store refused to record the work (read-only, full, unreachable): say so
        // rather than show the request as if it were waiting.
        return Err(RequestError::Store(e));
    }
    match outcome {
        crate::jobs::JobOutcome::Failed(e) => Err(RequestError::Internal(e)),
        _ => service::get(app, id),
    }
}

/// Runs the request's execution job in this thread (another process may have claimed it
/// first; then this returns the request as it is). A source that is down leaves the request
/// in `executing` with the reason, and the job retries with back-off.
pub fn run_execution_job(app: &App, id: &str) -> Result<RequestRow, RequestError> {
    use crate::jobs::{JobKind, run_now};
    job_result(
        app,
        id,
        run_now(app, JobKind::RequestExecute, id, "{}".into()),
    )
}

/// Sets a request's `state_reason` (no state change) unless it already says that.
fn set_reason(conn: &mut StoreConn, id: &str, reason: &str) -> Result<RequestRow, StoreError> {
    let cur = rq::get(conn, id)?;
    if cur.state_reason.as_deref() == Some(reason) {
        return Ok(cur);
    }
    let mut cur = cur;
    cur.state_reason = Some(reason.to_string());
    rq::save(conn, &cur)
}

/// Records on a request that its execution waits for a retry (a source or the store was
/// unavailable): the reason shows on the request and in the audit log.
pub fn record_waiting(app: &App, id: &str, reason: &str, retry_at: &chrono::NaiveDateTime) {
    let text = format!(
        "waiting for a retry at {} UTC: {reason}",
        retry_at.format("%Y-%m-%d %H:%M:%S")
    );
    let res = app.store.write(|conn| -> Result<(), StoreError> {
        set_reason(conn, id, &text)?;
        audit::append(
            conn,
            "system",
            "request.execution.waiting",
            &format!("request:{id}"),
            json!({"reason": reason, "retry_at": audit::format_time(retry_at)}),
        )?;
        Ok(())
    });
    if let Err(e) = res {
        tracing::warn!(request = %id, error = %e, "cannot record the waiting reason");
    }
}

/// Opt-out of sale/sharing: plan, execute and verify at once (no identity verification or
/// approval needed).
pub fn run_opt_out(app: &App, actor: &Actor, id: &str) -> Result<RequestRow, RequestError> {
    let row = service::load_for(app, id, Action::Run)?;
    let (plan, _) = build(app, &row, PlanKind::OptOut)?;
    let sealed = seal_plan(app, &plan)?;
    let owner = crate::jobs::owner_id(app);
    let job = app.store.write(|conn| -> Result<_, RequestError> {
        let mut cur = rq::get(conn, id)?;
        if cur.version != row.version {
            return Err(RequestError::Conflict(format!(
                "request {id} changed; reload and retry"
            )));
        }
        service::transition(
            conn,
            &mut cur,
            actor,
            Action::Run,
            None,
            json!({"plan_digest": sealed.digest, "totals": summary(&plan)["totals"]}),
        )?;
        es::put_plan(conn, &sealed)?;
        es::clear_steps(conn, id)?;
        rq::save(conn, &cur)?;
        Ok(crate::jobs::claim_execution(
            conn,
            id,
            &owner,
            app.config.jobs.lease,
        )?)
    })?;
    run_claimed_execution(app, id, job, &owner)
}

fn fail(app: &App, id: &str, reason: &str, details: Value) -> Result<RequestRow, RequestError> {
    let reason = reason.to_string();
    app.store.write(|conn| -> Result<RequestRow, RequestError> {
        let mut cur = rq::get(conn, id)?;
        service::transition(
            conn,
            &mut cur,
            &Actor::system(),
            Action::Fail,
            Some(&reason),
            details,
        )?;
        cur.state_reason = Some(reason.clone());
        Ok(rq::save(conn, &cur)?)
    })
}

/// Continues a request in `executing` or `verifying` (after `execute`, or after a restart).
/// A source that is unreachable leaves the request where it is, to be retried.
pub fn continue_execution(app: &App, id: &str) -> Result<RequestRow, RequestError> {
    let row = service::get(app, id)?;
    let (kind, state) = kind_of(&row)?;
    if !matches!(state, RequestState::Executing | RequestState::Verifying) {
        return Ok(row);
    }
    let (plan_row, plan) = load_plan(app, id)?;
    if state == RequestState::Executing {
        let done: BTreeSet<String> = app
            .store
            .read(|c| es::steps(c, id))?
            .into_iter()
            .map(|s| s.source)
            .collect();
        let mut verifying = false;
        for sp in plan.sources.iter().filter(|s| !done.contains(&s.source)) {
            let t0 = std::time::Instant::now();
            let result = match run_source(app, sp) {
                Ok(r) => r,
                Err(ExecError::Source(e)) if e.is_unavailable() => {
                    tracing::warn!(request = %id, source = %sp.source, error = %e, "source unavailable; the request stays in executing and is retried");
                    let msg = match &e {
                        crate::source::SourceError::Unavailable(m) => m.clone(),
                        other => other.to_string(),
                    };
                    return Err(RequestError::Trace(TraceError::Source(
                        crate::source::SourceError::Unavailable(format!("{}: {msg}", sp.source)),
                    )));
                }
                Err(e) => {
                    let failed = fail(
                        app,
                        id,
                        &format!("execution in source {} failed: {e}", sp.source),
                        json!({"source": sp.source}),
                    )?;
                    return Ok(failed);
                }
            };
            tracing::debug!(
                micros = t0.elapsed().as_micros() as u64,
                "execute: source transaction"
            );
            app.fault("erase.after_source_commit");
            let step = StepRow {
                request_id: id.to_string(),
                source: sp.source.clone(),
                status: "done".into(),
                result: serde_json::to_string(&result).unwrap_or_default(),
                finished_at: now(),
            };
            let last = plan
                .sources
                .iter()
                .rfind(|s| !done.contains(&s.source))
                .is_some_and(|l| l.source == sp.source);
            // The last source's record and the move to verifying share one transaction.
            app.store.write(|conn| -> Result<(), RequestError> {
                es::record_step(conn, &step)?;
                if last && kind != RequestKind::OptOut {
                    let mut cur = rq::get(conn, id)?;
                    service::transition(
                        conn,
                        &mut cur,
                        &Actor::system(),
                        Action::StartVerification,
                        None,
                        json!({}),
                    )?;
                    cur.state_reason = None;
                    rq::save(conn, &cur)?;
                    verifying = true;
                }
                Ok(())
            })?;
            tracing::debug!(
                micros = t0.elapsed().as_micros() as u64,
                "execute: source + record"
            );
        }
        if kind != RequestKind::OptOut && !verifying {
            // Nothing left to run (every source done before a restart, or an empty plan).
            app.store.write(|conn| -> Result<(), RequestError> {
                let mut cur = rq::get(conn, id)?;
                service::transition(
                    conn,
                    &mut cur,
                    &Actor::system(),
                    Action::StartVerification,
                    None,
                    json!({}),
                )?;
                cur.state_reason = None;
                rq::save(conn, &cur)?;
                Ok(())
            })?;
        }
    }
    finish(app, id, kind, &plan_row, &plan)
}

fn run_source(app: &App, sp: &plan::SourcePlan) -> Result<SourceResult, ExecError> {
    let handle = app.sources.get(&sp.source)?;
    let catalog = handle.catalog()?;
    let mut conn = handle.pool.get()?;
    let map = &app.policy.datamap;
    let pk = |t: &str| {
        map.table(t)
            .map(|t| t.primary_key.clone())
            .unwrap_or_default()
    };
    execute_source(&mut conn, &catalog, &pk, sp, &|| {
        app.fault("erase.before_source_commit")
    })
}

/// Verifies and completes (or fails) the request.
fn finish(
    app: &App,
    id: &str,
    kind: RequestKind,
    plan_row: &PlanRow,
    plan: &ErasurePlan,
) -> Result<RequestRow, RequestError> {
    app.fault("erase.before_verify");
    let t0 = std::time::Instant::now();
    let v = verify(app, plan)?;
    tracing::debug!(micros = t0.elapsed().as_micros() as u64, "verify");
    if !v.passed {
        tracing::warn!(request = %id, reason = %v.reason(), "verification failed; no certificate");
        return fail(
            app,
            id,
            &format!("verification failed: {}", v.reason()),
            json!({"verification": v}),
        );
    }
    let steps = app.store.read(|c| es::steps(c, id))?;
    // Processors and recipients are told before completion (GDPR Art. 19); the request
    // completes once every notice is acknowledged or has failed for good.
    let (notices, waiting) = app.store.write(|conn| -> Result<_, StoreError> {
        let row = rq::get(conn, id)?;
        let notices = notices::prepare(app, conn, &row, kind, plan)?;
        let pending = notices.iter().filter(|n| !notices::is_settled(n)).count();
        if pending == 0 {
            return Ok((notices, None));
        }
        let reason = format!(
            "waiting for {pending} of {} recipient notice(s) to be acknowledged",
            notices.len()
        );
        Ok((notices, Some(set_reason(conn, id, &reason)?)))
    })?;
    if let Some(row) = waiting {
        return Ok(row);
    }
    app.fault("erase.before_certificate");
    let t0 = std::time::Instant::now();
    let action = if plan.exemptions.is_empty() {
        Action::Complete
    } else {
        Action::CompletePartially
    };
    let controller = &app.policy.datamap.controller;
    app.store.write(|conn| -> Result<RequestRow, RequestError> {
        let mut cur = rq::get(conn, id)?;
        if RequestState::parse(&cur.state).is_some_and(RequestState::is_final) {
            return Ok(cur);
        }
        let shredded = es::shred_subject_key(conn, id)?;
        let at = now();
        cur.completed_at = Some(at);
        // A reason the request waited for (a source, notices) no longer applies.
        cur.state_reason = None;
        let mut details = json!({"verification": {"passed": true, "identities_traced": v.identities_traced, "exempt_rows": v.exempt_rows}});
        if !notices.is_empty() {
            details["notifications"] = notices::summary(app, &notices);
        }
        if kind == RequestKind::Erasure {
            let mut body = erasure_certificate(&cur, plan, plan_row, &steps, &v, shredded, &at);
            body["sources"] = source_summary(app, plan, &body["results"]);
            body["notifications"] = notices::summary(app, &notices);
            let cert = issue::issue(conn, &app.key, &Issuer { controller: &controller.name, contact: &controller.contact }, "erasure", Some(id), None, body)?;
            // Crash tests: the certificate is written but its transaction not committed.
            app.fault("erase.certificate_issued");
            details["certificate_id"] = json!(cert.id);
        }
        let target = if kind == RequestKind::OptOut { Action::Complete } else { action };
        service::transition(conn, &mut cur, &Actor::system(), target, None, details)?;
        Ok(rq::save(conn, &cur)?)
    })
    .inspect(|_| tracing::debug!(micros = t0.elapsed().as_micros() as u64, "finish: certificate + completion"))
}

fn step_results(steps: &[StepRow]) -> Vec<(String, SourceResult)> {
    steps
        .iter()
        .filter_map(|s| {
            serde_json::from_str::<SourceResult>(&s.result)
                .ok()
                .map(|r| (s.source.clone(), r))
        })
        .collect()
}

/// Per source: its backend, the tables it held, and what happened there (each source ran
/// in its own transaction).
fn source_summary(app: &App, plan: &ErasurePlan, results: &Value) -> Value {
    let rows = results.as_array().cloned().unwrap_or_default();
    Value::Array(
        plan.sources
            .iter()
            .map(|sp| {
                let mine: Vec<&Value> = rows
                    .iter()
                    .filter(|r| r["source"] == sp.source.as_str())
                    .collect();
                let sum = |k: &str| mine.iter().map(|r| r[k].as_u64().unwrap_or(0)).sum::<u64>();
                let tables: BTreeSet<&str> =
                    mine.iter().filter_map(|r| r["table"].as_str()).collect();
                json!({
                    "source": sp.source,
                    "backend": app.sources.get(&sp.source).map(|h| h.url.backend_name()).unwrap_or("unknown"),
                    "tables": tables,
                    "deleted": sum("deleted"),
                    "anonymized": sum("anonymized"),
                    "redacted": sum("redacted"),
                    "updated": sum("updated"),
                })
            })
            .collect(),
    )
}

/// The body of an erasure certificate (DESIGN.md, Formats): no raw identity values.
fn erasure_certificate(
    row: &RequestRow,
    plan: &ErasurePlan,
    plan_row: &PlanRow,
    steps: &[StepRow],
    v: &Verification,
    shredded: bool,
    completed_at: &chrono::NaiveDateTime,
) -> Value {
    let executed = step_results(steps);
    let mut results = Vec::new();
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for sp in &plan.sources {
        let done = executed
            .iter()
            .find(|(s, _)| *s == sp.source)
            .map(|(_, r)| r);
        for st in &sp.steps {
            let rows = done
                .and_then(|d| {
                    d.steps
                        .iter()
                        .find(|x| x.table == st.table && x.kind == st.kind)
                })
                .map_or(0, |x| x.rows);
            let (deleted, anonymized, redacted, updated) = match st.kind {
                StepKind::Delete => (rows, 0, 0, 0),
                StepKind::Anonymize => (0, rows, 0, 0),
                StepKind::Redact => (0, 0, rows, 0),
                StepKind::Rectify | StepKind::OptOut => (0, 0, 0, rows),
            };
            *totals.entry("deleted").or_default() += deleted;
            *totals.entry("anonymized").or_default() += anonymized;
            *totals.entry("redacted").or_default() += redacted;
            results.push(json!({
                "source": sp.source,
                "table": st.table,
                "rows_matched": st.rows.len(),
                "deleted": deleted,
                "anonymized": anonymized,
                "redacted": redacted,
                "updated": updated,
                "columns": st.changes.iter().map(|c| json!({"column": c.column, "strategy": c.how})).collect::<Vec<_>>(),
                "note": st.reason,
            }));
        }
    }
    let kept: usize = plan.exemptions.iter().map(|e| e.keys.len()).sum();
    let verification_method: Option<String> = row
        .verification
        .as_deref()
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
        .and_then(|v| v["method"].as_str().map(str::to_string));
    json!({
        "subject_ref": row.subject_ref,
        "request": {
            "id": row.id,
            "kind": row.kind,
            "regime": row.regime,
            "received_at": audit::format_time(&row.received_at),
            "verified_at": row.verified_at.as_ref().map(audit::format_time),
            "identity_verification": verification_method,
            "due_at": audit::format_time(&row.due_at),
            "effective_due_at": audit::format_time(&row.extended_due_at.unwrap_or(row.due_at)),
            "completed_at": audit::format_time(completed_at),
        },
        "policy_digest": plan.policy_digest,
        "plan_digest": plan_row.digest,
        "results": results,
        "totals": {
            "deleted": totals.get("deleted").copied().unwrap_or(0),
            "anonymized": totals.get("anonymized").copied().unwrap_or(0),
            "redacted": totals.get("redacted").copied().unwrap_or(0),
            "kept_under_exemption": kept,
        },
        "exemptions": plan.exemptions.iter().map(|e| json!({
            "table": e.table, "rows": e.keys.len(), "ground": e.ground, "citation": e.citation,
            "basis": e.basis, "hold_id": e.hold_id, "treatment": e.treatment,
        })).collect::<Vec<_>>(),
        "crypto_shredding": {"subject_key_shredded": shredded},
        "verification": {
            "method": "re-trace of every identity traced at planning, residual scan of free text, and re-read of every pinned row",
            "identities_traced": v.identities_traced,
            "rows_remaining_outside_exemptions": v.rows_remaining.len(),
            "mentions_remaining": v.mentions_remaining.len(),
            "planned_changes_not_in_place": v.not_applied.len(),
            "passed": v.passed,
        },
    })
}

/// Logs the time of a scope at debug level when dropped.
struct Timer(std::time::Instant, &'static str);

impl Drop for Timer {
    fn drop(&mut self) {
        tracing::debug!(micros = self.0.elapsed().as_micros() as u64, "{}", self.1);
    }
}
