//! `/api/v1/retention`: rules, the dry-run plan with forecast, run history with live
//! progress, and starting a run.

use crate::app::AppState;
use crate::audit::format_time;
use crate::error::ApiError;
use crate::http::auth::{Caller, Officer};
use crate::http::blocking;
use crate::http::extract::{ApiJson, ApiQuery};
use crate::retention::run::{RunRequest, run};
use crate::retention::{plan, rules};
use crate::store::models::RunRow;
use crate::store::{StoreError, retention as rs};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

fn run_view(r: &RunRow) -> Value {
    json!({
        "id": r.id,
        "rule": r.rule,
        "status": r.status,
        "trigger": r.trigger_kind,
        "cutoff": format_time(&r.cutoff),
        "started_at": format_time(&r.started_at),
        "finished_at": r.finished_at.as_ref().map(format_time),
        "heartbeat_at": format_time(&r.heartbeat_at),
        "batches": r.batches,
        "batch_in_flight": r.pending.is_some(),
        "deleted": r.rows_deleted,
        "anonymized": r.rows_anonymized,
        "held": r.rows_held,
        "per_table": serde_json::from_str::<Value>(&r.per_table).unwrap_or(Value::Null),
        "longest_batch_ms": r.longest_batch_ms,
        "error": r.error,
        "policy_digest": r.policy_digest,
        "certificate": r.certificate_id.as_ref().map(|c| json!({"id": c, "url": format!("/api/v1/certificates/{c}")})),
    })
}

pub async fn list_rules(State(app): State<AppState>, Caller(_a): Caller) -> Json<Value> {
    let ret = &app.policy.retention;
    Json(json!({
        "settings": {
            "schedule": ret.settings.schedule,
            "timezone": ret.settings.timezone.name(),
            "batch_size": ret.settings.batch_size,
            "batch_target_ms": ret.settings.batch_target.map(|d| d.as_millis()),
            "max_batch_size": ret.settings.max_batch_size,
            "time_budget_seconds": ret.settings.time_budget.as_secs(),
        },
        "rules": ret.rules.iter().map(|r| json!({
            "name": r.name, "table": r.table, "anchor": r.anchor, "window": r.window, "window_text": r.window.describe(),
            "conditions": r.conditions.iter().map(|c| json!({"column": c.column, "op": c.op, "values": c.values})).collect::<Vec<_>>(),
            "action": r.action, "cascade": r.cascade, "basis": r.basis, "schedule": ret.schedule_of(r), "enabled": r.enabled,
            "next_run": next_run(ret.schedule_of(r), ret.settings.timezone).filter(|_| r.enabled),
        })).collect::<Vec<_>>(),
    }))
}

/// The next occurrence of a schedule (UTC, RFC 3339), as the scheduler computes it.
fn next_run(schedule: &str, tz: chrono_tz::Tz) -> Option<String> {
    use chrono::TimeZone;
    let cron = rules::parse_cron(schedule).ok()?;
    let local = tz.from_utc_datetime(&crate::store::now());
    let next = cron.find_next_occurrence(&local, false).ok()?;
    Some(crate::audit::format_time(
        &next.with_timezone(&chrono::Utc).naive_utc(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanQuery {
    /// RFC 3339 or YYYY-MM-DD; default now.
    pub at: Option<String>,
}

pub async fn show_plan(
    State(app): State<AppState>,
    Caller(_a): Caller,
    ApiQuery(q): ApiQuery<PlanQuery>,
) -> Result<Json<Value>, ApiError> {
    let at = match q.at.as_deref() {
        Some(s) => super::requests::parse_received(s)
            .map_err(|_| ApiError::invalid("at", "expected an RFC 3339 timestamp or a date"))?,
        None => crate::store::now(),
    };
    blocking(&app, move |app| -> Result<Json<Value>, ApiError> {
        let plans = plan::plan(app, at).map_err(retention_error)?;
        Ok(Json(json!({"at": format_time(&at), "rules": plans})))
    })
    .await
}

fn retention_error(e: crate::retention::run::RetentionError) -> ApiError {
    use crate::retention::run::RetentionError as E;
    match e {
        E::UnknownRule(r) => ApiError::not_found(format!("unknown retention rule \"{r}\"")),
        E::Disabled(r) => ApiError::new(
            StatusCode::CONFLICT,
            "rule_disabled",
            format!("rule {r} is disabled"),
        ),
        E::Source(s) => s.into(),
        E::Store(s) => s.into(),
        E::Trace(t) => t.into(),
        E::Failed(m) => ApiError::internal(m),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    pub rule: Option<String>,
    pub limit: Option<i64>,
}

pub async fn list_runs(
    State(app): State<AppState>,
    Caller(_a): Caller,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    if let Some(r) = &q.rule
        && app.policy.retention.rule(r).is_none()
    {
        return Err(ApiError::invalid(
            "rule",
            format!("unknown retention rule \"{r}\""),
        ));
    }
    blocking(&app, move |app| -> Result<Json<Value>, ApiError> {
        let runs = app.store.read(|c| rs::runs(c, q.rule.as_deref(), limit))?;
        Ok(Json(
            json!({"runs": runs.iter().map(run_view).collect::<Vec<_>>()}),
        ))
    })
    .await
}

pub async fn show_run(
    State(app): State<AppState>,
    Caller(_a): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(&app, move |app| -> Result<Json<Value>, ApiError> {
        let r = app
            .store
            .read(|c| rs::get_run(c, &id))
            .map_err(|e| match e {
                StoreError::NotFound => {
                    ApiError::not_found(format!("retention run {id} not found"))
                }
                other => other.into(),
            })?;
        Ok(Json(run_view(&r)))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    pub rule: String,
    #[serde(default)]
    pub dry_run: bool,
    pub batch_size: Option<u32>,
    /// A duration like 30m.
    pub budget: Option<String>,
}

/// Starts a run. A dry run answers with its counts; a real run starts in the background
/// (202) and shows up under `/runs` with its live progress.
pub async fn start_run(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiJson(b): ApiJson<StartRun>,
) -> Result<Response, ApiError> {
    if app.policy.retention.rule(&b.rule).is_none() {
        return Err(ApiError::invalid(
            "rule",
            format!("unknown retention rule \"{}\"", b.rule),
        ));
    }
    if let Some(n) = b.batch_size
        && !(1..=100_000).contains(&n)
    {
        return Err(ApiError::invalid(
            "batch_size",
            "must be between 1 and 100000",
        ));
    }
    let budget = b
        .budget
        .as_deref()
        .map(|s| {
            rules::parse_duration(s).ok_or_else(|| {
                ApiError::invalid("budget", "expected a duration like 30m, 2h or 90s")
            })
        })
        .transpose()?;
    let req = RunRequest {
        rule: b.rule.clone(),
        at: None,
        dry_run: b.dry_run,
        batch_size: b.batch_size,
        budget,
        trigger: "api".into(),
        not_before: None,
    };
    if b.dry_run {
        let out = blocking(&app, move |app| {
            run(app, &req, &mut |_| {}).map_err(retention_error)
        })
        .await?;
        return Ok(Json(json!(out)).into_response());
    }
    start_in_background(&app, req, actor.id.clone()).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"rule": b.rule, "status": "started", "runs_url": format!("/api/v1/retention/runs?rule={}", b.rule)}))).into_response())
}

/// Starts a real run in the background unless one of the same rule is in progress (409).
/// Its progress shows under the runs.
pub async fn start_in_background(
    app: &AppState,
    req: RunRequest,
    who: String,
) -> Result<(), ApiError> {
    let rule = req.rule.clone();
    let in_flight = blocking(app, move |app| app.store.read(|c| rs::running(c, &rule))).await?;
    if let Some(r) = in_flight {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "run_in_progress",
            format!("run {} of rule {} is in progress", r.id, r.rule),
        ));
    }
    // A job claimed by this process and run on the blocking pool; if this process dies, its
    // lease expires and another replica's worker resumes the run.
    let app2 = app.clone();
    tokio::task::spawn_blocking(move || {
        use crate::jobs::{JobKind, JobOutcome, run_now};
        let args = serde_json::to_string(&req).unwrap_or_else(|_| "{}".into());
        match run_now(&app2, JobKind::RetentionRun, &req.rule, args) {
            JobOutcome::NotClaimed => {
                tracing::info!(rule = %req.rule, by = %who, "a run of this rule is already queued or running")
            }
            o => {
                tracing::info!(rule = %req.rule, by = %who, outcome = ?o, "retention run job ended")
            }
        }
    });
    Ok(())
}
