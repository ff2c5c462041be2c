//! `/api/v1/retention`: rules, the dry-run plan with forecast, run history with live
//! progress, and starting a run.

use crate::app::AppState;
use crate::audit::format_time;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::http::auth::{Caller, Officer};
use crate::http::blocking;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::openapi::OfficerOnly;
use crate::retention::run::{RunRequest, run};
use crate::retention::{plan, rules};
use crate::store::models::RunRow;
use crate::store::{StoreError, retention as rs};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

/// Schema of a retention run as [`run_view`] shows it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RunView {
    id: String,
    rule: String,
    /// running | waiting | completed | partial | failed
    status: String,
    /// schedule | api | cli | web | catch_up ...
    trigger: String,
    cutoff: String,
    started_at: String,
    finished_at: Option<String>,
    heartbeat_at: String,
    batches: i32,
    /// A batch's intent is recorded and its outcome not yet counted.
    batch_in_flight: bool,
    deleted: i64,
    anonymized: i64,
    held: i64,
    /// Counts per table: `{"<table>": {"deleted", "anonymized", "held"}}`.
    #[schema(value_type = Option<Object>)]
    per_table: Value,
    longest_batch_ms: i64,
    /// Why the run failed.
    error: Option<String>,
    /// Why a waiting run waits (a source was unavailable).
    waiting_reason: Option<String>,
    policy_digest: String,
    certificate: Option<CertificateLink>,
}

/// A link to a certificate.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CertificateLink {
    id: String,
    url: String,
}

/// Retention runs, newest first.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RunList {
    runs: Vec<RunView>,
}

/// Schema of the rules as [`list_rules`] shows them.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RulesView {
    settings: RetentionSettingsView,
    rules: Vec<RuleView>,
}

/// The `[settings]` of `retention.toml`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RetentionSettingsView {
    /// Default cron schedule.
    schedule: String,
    timezone: String,
    batch_size: u32,
    batch_target_ms: Option<u64>,
    max_batch_size: u32,
    time_budget_seconds: u64,
}

/// One retention rule.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RuleView {
    name: String,
    table: String,
    /// The timestamp column the window counts from.
    anchor: String,
    /// `{"kind": "days" | "months" | "years" | "years_after_year_end", "n": N}`
    #[schema(value_type = Object)]
    window: Value,
    window_text: String,
    conditions: Vec<ConditionView>,
    /// delete | anonymize
    action: String,
    /// Child tables whose rows go with each parent row.
    cascade: Vec<String>,
    basis: String,
    schedule: String,
    enabled: bool,
    /// The next scheduled run (UTC); null when disabled.
    next_run: Option<String>,
}

/// A row condition of a rule.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ConditionView {
    column: String,
    /// = != < <= > >= in not_in is_null is_not_null ...
    op: String,
    #[schema(value_type = Vec<serde_json::Value>)]
    values: Vec<Value>,
}

/// Schema of the dry-run plan of every rule (`retention::plan::RulePlan`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RetentionPlanView {
    /// The time the plan is computed for.
    at: String,
    rules: Vec<RulePlanView>,
}

/// What one rule would do at `at`, with a forecast.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RulePlanView {
    rule: String,
    table: String,
    anchor: String,
    /// delete | anonymize
    action: String,
    window: String,
    basis: String,
    cascade: Vec<String>,
    enabled: bool,
    cutoff: String,
    /// Rows due now (including those held back).
    due_now: i64,
    /// Due rows a legal hold keeps.
    held_back: i64,
    forecast: ForecastView,
    schedule: String,
    next_run: Option<String>,
    last_run: Option<LastRunView>,
}

/// Rows that become due in the next days.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ForecastView {
    next_7_days: i64,
    next_30_days: i64,
    next_90_days: i64,
}

/// The last run of a rule.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LastRunView {
    id: String,
    status: String,
    started_at: String,
    finished_at: Option<String>,
    deleted: i64,
    anonymized: i64,
    held: i64,
    certificate_id: Option<String>,
}

/// Schema of a dry run's outcome (`retention::run::RunOutcome`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DryRunOutcome {
    /// dry_run (or busy, waiting, failed ...)
    status: String,
    rule: String,
    run_id: Option<String>,
    cutoff: String,
    batches: i64,
    /// Counts per table: `{"<table>": {"deleted", "anonymized", "held"}}`.
    #[schema(value_type = Object)]
    per_table: Value,
    deleted: i64,
    anonymized: i64,
    held: i64,
    longest_batch_ms: i64,
    elapsed_ms: i64,
    certificate_id: Option<String>,
    message: Option<String>,
    /// When a waiting run is tried again.
    retry_at: Option<String>,
}

/// A real run started in the background.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RunStarted {
    rule: String,
    /// `started`
    status: String,
    /// Where its progress shows.
    runs_url: String,
}

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
        // A waiting run (a source was unavailable) shows why and when it is tried again.
        "error": r.error.as_ref().filter(|_| r.status != "waiting"),
        "waiting_reason": r.error.as_ref().filter(|_| r.status == "waiting"),
        "policy_digest": r.policy_digest,
        "certificate": r.certificate_id.as_ref().map(|c| json!({"id": c, "url": format!("/api/v1/certificates/{c}")})),
    })
}

/// The retention rules and settings, with each rule's next scheduled run.
///
/// Role: any.
#[utoipa::path(
    get,
    path = "/api/v1/retention/rules",
    tag = "retention",
    responses((status = 200, description = "Settings and rules", body = RulesView))
)]
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

/// When to plan for.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PlanQuery {
    /// RFC 3339 or YYYY-MM-DD; default now.
    pub at: Option<String>,
}

/// The dry-run plan: what each rule would delete or anonymize at `at`, what holds keep,
/// and a forecast for the next 7, 30 and 90 days.
///
/// Role: any.
#[utoipa::path(
    get,
    path = "/api/v1/retention/plan",
    tag = "retention",
    params(PlanQuery),
    responses(
        (status = 200, description = "The plan of every rule", body = RetentionPlanView),
        (status = 422, description = "`at` is not a timestamp or date, or an unknown parameter", body = ErrorBody),
    )
)]
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

/// Filter and size of the run list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Only runs of this rule.
    pub rule: Option<String>,
    /// How many, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// Retention runs, newest first, with live progress.
///
/// Role: any.
#[utoipa::path(
    get,
    path = "/api/v1/retention/runs",
    tag = "retention",
    params(RunsQuery),
    responses(
        (status = 200, description = "The runs", body = RunList),
        (status = 422, description = "Unknown `rule`, `limit` outside 1..=1000, or an unknown parameter", body = ErrorBody),
    )
)]
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

/// One retention run.
///
/// Role: any.
#[utoipa::path(
    get,
    path = "/api/v1/retention/runs/{id}",
    tag = "retention",
    params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 404, description = "No run has this id", body = ErrorBody),
    )
)]
pub async fn show_run(
    State(app): State<AppState>,
    Caller(_a): Caller,
    ApiPath(id): ApiPath<String>,
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

/// A run to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    #[schema(example = "web_sessions")]
    pub rule: String,
    #[serde(default)]
    pub dry_run: bool,
    /// Rows of the rule's table per batch, 1 to 100000 (default: the settings').
    #[schema(minimum = 1, maximum = 100000)]
    pub batch_size: Option<u32>,
    /// A duration like 30m, 2h or 90s; at most 7 days.
    pub budget: Option<String>,
}

/// The longest time budget a run may be given over the API.
const MAX_BUDGET: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Starts a run. A dry run answers with its counts; a real run starts in the background
/// (202) and shows up under `/runs` with its live progress.
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/retention/runs",
    tag = "retention",
    request_body = StartRun,
    responses(
        (status = 200, description = "A dry run's outcome", body = DryRunOutcome),
        (status = 202, description = "A real run started in the background", body = RunStarted),
        (status = 409, description = "A run of this rule is in progress (`run_in_progress`) or the rule is disabled (`rule_disabled`)", body = ErrorBody),
        (status = 422, description = "Unknown `rule`, `batch_size` outside 1..=100000 or a bad `budget`; `field` names it", body = ErrorBody),
        OfficerOnly,
    )
)]
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
        .map(|s| match rules::parse_duration(s) {
            Some(d) if d <= MAX_BUDGET => Ok(d),
            Some(_) => Err(ApiError::invalid("budget", "at most 7 days (168h)")),
            None => Err(ApiError::invalid(
                "budget",
                "expected a duration like 30m, 2h or 90s",
            )),
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
    // A run waiting for a source is tried again now (its queued job is claimed at once).
    if let Some(r) = in_flight.filter(|r| r.status != "waiting") {
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

#[cfg(test)]
mod tests {
    use super::MAX_BUDGET;
    use crate::retention::rules::parse_duration;
    use std::time::Duration;

    #[test]
    fn budgets_that_overflow_are_refused() {
        // Used to overflow (a panic in a debug build, a wrapped budget in release).
        assert_eq!(parse_duration("9999999999999999h"), None);
        assert_eq!(parse_duration("18446744073709551615m"), None);
        assert_eq!(parse_duration("168h"), Some(MAX_BUDGET));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert!(parse_duration("18446744073709551615s").is_some_and(|d| d > MAX_BUDGET));
    }
}
