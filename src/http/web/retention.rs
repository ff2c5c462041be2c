//! Retention: the rules, the dry-run plan with its 7/30/90-day forecast, run history, a
//! run's page with live progress (it refreshes itself while the run is going), and starting
//! a run.

use super::page::blocking;
use super::page::{Layout, PageError, render};
use super::session::{CsrfForm, OfficerSession};
use super::view::{time, time_text};
use crate::app::AppState;
use crate::error::ApiError;
use crate::http::api::retention::start_in_background;
use crate::retention::plan::RulePlan;
use crate::retention::run::RunRequest;
use crate::store::models::RunRow;
use crate::store::{StoreError, now, retention as rs};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

pub struct RunLine {
    pub id: String,
    pub rule: String,
    pub status: String,
    pub trigger: String,
    pub started: String,
    pub finished: String,
    pub cutoff: String,
    pub batches: i32,
    pub deleted: i64,
    pub anonymized: i64,
    pub held: i64,
    pub longest_batch_ms: i64,
    pub heartbeat: String,
    pub error: String,
    pub certificate_id: String,
    pub running: bool,
    pub per_table: Vec<(String, i64, i64, i64)>,
}

fn run_line(r: &RunRow) -> RunLine {
    let per: serde_json::Value = serde_json::from_str(&r.per_table).unwrap_or_default();
    let per_table = per
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(t, c)| {
                    (
                        t.clone(),
                        c["deleted"].as_i64().unwrap_or(0),
                        c["anonymized"].as_i64().unwrap_or(0),
                        c["held"].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    RunLine {
        id: r.id.clone(),
        rule: r.rule.clone(),
        status: r.status.clone(),
        trigger: r.trigger_kind.clone(),
        started: time(&r.started_at),
        finished: r.finished_at.as_ref().map(time).unwrap_or_default(),
        cutoff: time(&r.cutoff),
        batches: r.batches,
        deleted: r.rows_deleted,
        anonymized: r.rows_anonymized,
        held: r.rows_held,
        longest_batch_ms: r.longest_batch_ms,
        heartbeat: time(&r.heartbeat_at),
        error: r.error.clone().unwrap_or_default(),
        certificate_id: r.certificate_id.clone().unwrap_or_default(),
        running: r.status == "running" && r.finished_at.is_none(),
        per_table,
    }
}

pub struct PlanLine {
    pub p: RulePlan,
    pub action: String,
    pub next_run: String,
}

#[derive(Template)]
#[template(path = "retention.html")]
struct RetentionPage {
    layout: Layout,
    plans: Vec<PlanLine>,
    runs: Vec<RunLine>,
    schedule: String,
    timezone: String,
    plan_error: Option<String>,
    done: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    pub started: Option<String>,
}

fn retention_page(
    app: &crate::app::App,
    s: &super::session::Session,
    done: Option<String>,
    error: Option<String>,
) -> Result<RetentionPage, PageError> {
    let (plans, plan_error) = match crate::retention::plan::plan(app, now()) {
        Ok(p) => (p, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let runs = app.store.read(|c| rs::runs(c, None, 50))?;
    let ret = &app.policy.retention;
    Ok(RetentionPage {
        layout: s.layout("Retention", "retention"),
        plans: plans
            .into_iter()
            .map(|p| PlanLine {
                action: format!("{:?}", p.action).to_lowercase(),
                next_run: p
                    .next_run
                    .as_deref()
                    .map_or_else(|| "not scheduled".into(), time_text),
                p,
            })
            .collect(),
        runs: runs.iter().map(run_line).collect(),
        schedule: ret.settings.schedule.clone(),
        timezone: ret.settings.timezone.name().to_string(),
        plan_error,
        done,
        error,
    })
}

pub async fn show(
    State(app): State<AppState>,
    OfficerSession(s): OfficerSession,
    Query(q): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let done = q
        .started
        .filter(|r| app.policy.retention.rule(r).is_some())
        .map(|r| format!("Run of rule {r} started; it appears below with its progress."));
    let page = blocking(&app, move |app| retention_page(app, &s, done, None)).await?;
    Ok(render(&page))
}

#[derive(Debug, Deserialize)]
pub struct StartForm {
    pub rule: Option<String>,
}

pub async fn start(
    State(app): State<AppState>,
    OfficerSession(s): OfficerSession,
    CsrfForm(f): CsrfForm<StartForm>,
) -> Result<Response, PageError> {
    let rule = f.rule.unwrap_or_default();
    let checked = match app.policy.retention.rule(&rule) {
        None => Err(ApiError::invalid(
            "rule",
            format!("unknown retention rule \"{rule}\""),
        )),
        Some(r) if !r.enabled => Err(ApiError::new(
            StatusCode::CONFLICT,
            "rule_disabled",
            format!("rule {rule} is disabled"),
        )),
        Some(_) => Ok(()),
    };
    let started = match checked {
        Ok(()) => {
            let req = RunRequest {
                rule: rule.clone(),
                at: None,
                dry_run: false,
                batch_size: None,
                budget: None,
                trigger: "web".into(),
                not_before: None,
            };
            start_in_background(&app, req, s.actor.id.clone()).await
        }
        Err(e) => Err(e),
    };
    match started {
        Ok(()) => {
            let qs = serde_urlencoded::to_string([("started", rule.as_str())]).unwrap_or_default();
            Ok(Redirect::to(&format!("/retention?{qs}")).into_response())
        }
        Err(e) if e.status.is_client_error() => {
            let status = e.status;
            let page = blocking(&app, move |app| {
                retention_page(app, &s, None, Some(e.message))
            })
            .await?;
            let mut r = render(&page);
            *r.status_mut() = status;
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "retention_run.html")]
struct RunPage {
    layout: Layout,
    r: RunLine,
}

pub async fn run(
    State(app): State<AppState>,
    OfficerSession(s): OfficerSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let row = blocking(&app, move |app| {
        app.store
            .read(|c| rs::get_run(c, &id))
            .map_err(|e| match e {
                StoreError::NotFound => {
                    ApiError::not_found(format!("retention run {id} not found"))
                }
                other => other.into(),
            })
    })
    .await?;
    let r = run_line(&row);
    Ok(render(&RunPage {
        layout: s.layout(format!("Retention run of {}", r.rule), "retention"),
        r,
    }))
}
