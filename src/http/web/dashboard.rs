//! The officer's dashboard: open requests by deadline (overdue and due within 7 days
//! marked), counts by state, kind and regime, and retention at a glance.

use super::page::blocking;
use super::page::{Layout, PageError, render};
use super::session::OfficerSession;
use super::view::RequestLine;
use crate::app::AppState;
use crate::request::RequestState;
use crate::store::requests::{self as rq, CountBy};
use crate::store::{now, retention as rs};
use askama::Template;
use axum::extract::State;
use axum::response::Response;

pub struct Count {
    pub label: String,
    pub value: String,
    pub n: i64,
}

pub struct RuleLine {
    pub rule: String,
    pub table: String,
    pub action: String,
    pub due_now: i64,
    pub held_back: i64,
    pub next_run: String,
    pub last_status: String,
    pub last_run_id: String,
}

pub struct RunLine {
    pub id: String,
    pub rule: String,
    pub status: String,
    pub started: String,
    pub rows: i64,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    open_total: i64,
    overdue: i64,
    due_soon: i64,
    upcoming: Vec<RequestLine>,
    by_state: Vec<Count>,
    by_kind: Vec<Count>,
    by_regime: Vec<Count>,
    rules: Vec<RuleLine>,
    runs: Vec<RunLine>,
    retention_error: Option<String>,
}

fn open_states() -> Vec<String> {
    RequestState::ALL
        .iter()
        .filter(|s| s.is_open())
        .map(|s| s.as_str().to_string())
        .collect()
}

fn counts(rows: Vec<(String, i64)>) -> Vec<Count> {
    let mut out: Vec<Count> = rows
        .into_iter()
        .map(|(v, n)| Count {
            label: v.replace('_', " "),
            value: v,
            n,
        })
        .collect();
    out.sort_by(|a, b| b.n.cmp(&a.n).then(a.value.cmp(&b.value)));
    out
}

pub async fn show(
    State(app): State<AppState>,
    OfficerSession(s): OfficerSession,
) -> Result<Response, PageError> {
    let page = blocking(&app, move |app| -> Result<DashboardPage, PageError> {
        let open = open_states();
        let now = now();
        let soon = now + chrono::Duration::days(7);
        let (open_total, overdue, due_soon, upcoming, by_state, by_kind, by_regime, runs) =
            app.store.read(|c| {
                let overdue = rq::count_due(c, &open, Some(now))?;
                Ok((
                    rq::count_due(c, &open, None)?,
                    overdue,
                    rq::count_due(c, &open, Some(soon))? - overdue,
                    rq::by_deadline(c, &open, 25)?,
                    rq::count_by(c, CountBy::State, &[])?,
                    rq::count_by(c, CountBy::Kind, &open)?,
                    rq::count_by(c, CountBy::Regime, &open)?,
                    rs::runs(c, None, 5)?,
                ))
            })?;
        // Rows due per rule, without the forecast (the retention page has that).
        let (rules, retention_error) = match crate::retention::plan::plan_with(app, now, false) {
            Ok(plans) => (
                plans
                    .into_iter()
                    .map(|p| RuleLine {
                        rule: p.rule,
                        table: p.table,
                        action: format!("{:?}", p.action).to_lowercase(),
                        due_now: p.due_now,
                        held_back: p.held_back,
                        next_run: p
                            .next_run
                            .as_deref()
                            .map_or_else(|| "not scheduled".into(), super::view::time_text),
                        last_status: p
                            .last_run
                            .as_ref()
                            .map_or_else(|| "never run".into(), |r| r.status.clone()),
                        last_run_id: p.last_run.map(|r| r.id).unwrap_or_default(),
                    })
                    .collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        Ok(DashboardPage {
            layout: s.layout("Dashboard", "dashboard"),
            open_total,
            overdue,
            due_soon,
            upcoming: upcoming.iter().map(|r| RequestLine::new(r, now)).collect(),
            by_state: counts(by_state),
            by_kind: counts(by_kind),
            by_regime: counts(by_regime),
            rules,
            runs: runs
                .iter()
                .map(|r| RunLine {
                    id: r.id.clone(),
                    rule: r.rule.clone(),
                    status: r.status.clone(),
                    started: super::view::time(&r.started_at),
                    rows: r.rows_deleted + r.rows_anonymized,
                })
                .collect(),
            retention_error,
        })
    })
    .await?;
    Ok(render(&page))
}
