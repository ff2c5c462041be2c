//! Yearly request metrics (received, complied with, denied per kind; median days to respond,
//! as CCPA regulation § 7102 asks of large businesses) and the CSV of request records, which
//! carries no identity values.

use super::page::blocking;
use super::page::{Layout, PageError, humanize, nonempty, render};
use super::session::Session;
use crate::app::AppState;
use crate::request::Regime;
use crate::request::metrics::{self, KindMetrics, RequestFacts};
use crate::store::{now, requests as rq};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    pub year: Option<String>,
    pub regime: Option<String>,
}

struct Scope {
    year: i32,
    regime: String,
}

fn scope(q: &ReportQuery) -> Result<Scope, PageError> {
    let year = match nonempty(&q.year) {
        Some(y) => y
            .parse::<i32>()
            .ok()
            .filter(|y| (1970..=9999).contains(y))
            .ok_or_else(|| {
                PageError::Status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("year: \"{y}\" is not a year like 2026"),
                )
            })?,
        None => now().year(),
    };
    let regime = nonempty(&q.regime).unwrap_or("").to_string();
    if !regime.is_empty() && Regime::parse(&regime).is_none() {
        return Err(PageError::Status(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "regime: unknown value \"{regime}\"; expected one of: {}",
                Regime::names().join(", ")
            ),
        ));
    }
    Ok(Scope { year, regime })
}

fn year_start(y: i32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

fn load(app: &crate::app::App, s: &Scope) -> Result<Vec<RequestFacts>, PageError> {
    let regime = (!s.regime.is_empty()).then_some(s.regime.as_str());
    Ok(app
        .store
        .read(|c| rq::facts(c, year_start(s.year), year_start(s.year + 1), regime))?)
}

pub struct MetricLine {
    pub kind: String,
    pub m: KindMetrics,
    pub median: String,
    pub mean: String,
}

fn line(m: KindMetrics) -> MetricLine {
    let days = |d: Option<f64>| d.map_or_else(|| "—".into(), |d| format!("{d:.1}"));
    MetricLine {
        kind: humanize(&m.kind),
        median: days(m.median_days_to_respond),
        mean: days(m.mean_days_to_respond),
        m,
    }
}

pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportPage {
    layout: Layout,
    year: i32,
    regime: String,
    years: Vec<Opt>,
    regimes: Vec<Opt>,
    rows: Vec<MetricLine>,
    total: MetricLine,
    csv_url: String,
}

pub async fn show(
    State(app): State<AppState>,
    s: Session,
    Query(q): Query<ReportQuery>,
) -> Result<Response, PageError> {
    let sc = scope(&q)?;
    let page = blocking(&app, move |app| -> Result<ReportPage, PageError> {
        let facts = load(app, &sc)?;
        let span = app.store.read(rq::received_span)?;
        let this = now().year();
        let (first, last) = span.map_or((this, this), |(a, b)| (a.year(), b.year().max(this)));
        let m = metrics::yearly(&facts, sc.year);
        let csv_url = format!(
            "/reports/requests.csv?{}",
            serde_urlencoded::to_string([
                ("year", sc.year.to_string()),
                ("regime", sc.regime.clone())
            ])
            .unwrap_or_default()
        );
        Ok(ReportPage {
            layout: s.layout("Reports", "reports"),
            years: (first.min(sc.year)..=last.max(sc.year))
                .rev()
                .map(|y| Opt {
                    value: y.to_string(),
                    label: y.to_string(),
                    selected: y == sc.year,
                })
                .collect(),
            regimes: std::iter::once(("", "All regimes"))
                .chain(Regime::ALL.iter().map(|r| (r.as_str(), r.describe())))
                .map(|(v, l)| Opt {
                    value: v.to_string(),
                    label: l.to_string(),
                    selected: v == sc.regime,
                })
                .collect(),
            year: sc.year,
            regime: sc.regime,
            rows: m.rows.into_iter().map(line).collect(),
            total: line(m.total),
            csv_url,
        })
    })
    .await?;
    Ok(render(&page))
}

/// The request records of the year as CSV (no identity values; formula-safe).
pub async fn csv(
    State(app): State<AppState>,
    _s: Session,
    Query(q): Query<ReportQuery>,
) -> Result<Response, PageError> {
    let sc = scope(&q)?;
    let name = if sc.regime.is_empty() {
        format!("lethe-requests-{}.csv", sc.year)
    } else {
        format!("lethe-requests-{}-{}.csv", sc.year, sc.regime)
    };
    let body = blocking(&app, move |app| -> Result<String, PageError> {
        Ok(metrics::csv(&load(app, &sc)?))
    })
    .await?;
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
