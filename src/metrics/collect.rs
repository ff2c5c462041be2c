//! The figures of one scrape: read from the engine store at scrape time (requests by state
//! and kind, overdue requests, retention totals per rule, run durations, the job queue),
//! plus this process's own observations ([`super::recorder::Recorder`]) and build facts.
//!
//! Blocking (store reads): call it on the blocking pool. The store figures are shared by
//! every replica on one store, so each replica reports the same values for them; aggregate
//! them with `max`, not `sum`. Labels carry only closed sets and policy names (states,
//! kinds, rule names, route templates), never identities or ids.

use super::encode::{Family, Histogram, Kind};
use super::recorder::WORK_BUCKETS;
use crate::app::App;
use crate::jobs::JobKind;
use crate::request::{RequestKind, RequestState};
use crate::store::schema::{jobs, requests, retention_runs};
use crate::store::{StoreConn, StoreError, jobs as js, now, requests as rq};
use chrono::NaiveDateTime;
use diesel::dsl::count_star;
use diesel::prelude::*;
use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

/// The job kinds listed even when they have no job (so their series exist at 0).
const JOB_KINDS: [JobKind; 3] = [
    JobKind::RequestExecute,
    JobKind::RetentionRun,
    JobKind::Notify,
];

/// The job states counted as queue depth.
const LIVE_JOB_STATES: [&str; 2] = [js::QUEUED, js::RUNNING];

/// The run statuses listed for every rule even without a run in them (so that alerts on a
/// change see the series before the first failure).
const RUN_STATUSES: [&str; 5] = ["running", "waiting", "completed", "partial", "failed"];

/// One retention run, as the metrics need it.
type RunFacts = (
    String,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    i64,
    i64,
    i64,
);

/// What the store says at scrape time.
#[derive(Debug, Default)]
pub struct StoreFigures {
    /// (state, kind, count).
    pub requests: Vec<(String, String, i64)>,
    /// Open requests past their deadline in force (as the dashboard counts them).
    pub overdue: i64,
    /// Open requests due within 7 days and not overdue.
    pub due_soon: i64,
    /// Every retention run: rule, status, started, finished, deleted, anonymized, held.
    pub runs: Vec<RunFacts>,
    /// (kind, state, count) of queued and running jobs.
    pub job_depth: Vec<(String, String, i64)>,
    /// (kind, count) of queued jobs waiting after a failed attempt (a source or recipient
    /// was unavailable).
    pub jobs_retrying: Vec<(String, i64)>,
}

/// Reads the store figures in one read transaction.
pub fn read_store(conn: &mut StoreConn, at: NaiveDateTime) -> Result<StoreFigures, StoreError> {
    let open: Vec<String> = RequestState::ALL
        .iter()
        .filter(|s| s.is_open())
        .map(|s| s.as_str().to_string())
        .collect();
    let requests = requests::table
        .group_by((requests::state, requests::kind))
        .select((requests::state, requests::kind, count_star()))
        .load::<(String, String, i64)>(conn)?;
    let overdue = rq::count_due(conn, &open, Some(at))?;
    let due_soon = rq::count_due(conn, &open, Some(at + chrono::Duration::days(7)))? - overdue;
    let runs = retention_runs::table
        .select((
            retention_runs::rule,
            retention_runs::status,
            retention_runs::started_at,
            retention_runs::finished_at,
            retention_runs::rows_deleted,
            retention_runs::rows_anonymized,
            retention_runs::rows_held,
        ))
        .load::<RunFacts>(conn)?;
    let job_depth = js::depth(conn)?;
    let jobs_retrying = jobs::table
        .filter(jobs::state.eq(js::QUEUED))
        .filter(jobs::last_error.is_not_null())
        .group_by(jobs::kind)
        .select((jobs::kind, count_star()))
        .load::<(String, i64)>(conn)?;
    Ok(StoreFigures {
        requests,
        overdue,
        due_soon,
        runs,
        job_depth,
        jobs_retrying,
    })
}

fn unix_seconds(t: NaiveDateTime) -> f64 {
    t.and_utc().timestamp_micros() as f64 / 1e6
}

/// Every family of a scrape: build facts, this process's observations and (when the store
/// answered) the store figures.
pub fn families(app: &App) -> Vec<Family> {
    let store = app.store.read(|c| read_store(c, now()));
    if let Err(e) = &store {
        tracing::warn!(error = %e, "metrics: cannot read the engine store");
    }
    let rules: Vec<String> = app
        .policy
        .retention
        .rules
        .iter()
        .map(|r| r.name.clone())
        .collect();
    let mut out = process_families(app);
    let mut up = Family::new(
        "lethe_store_up",
        "1 when the engine store answered this scrape, 0 when it did not.",
        Kind::Gauge,
        &[],
    );
    up.number(&[], if store.is_ok() { 1.0 } else { 0.0 });
    out.push(up);
    if let Ok(figures) = store {
        out.extend(store_families(&figures, &rules));
    }
    out
}

/// Build facts and what this process observed.
fn process_families(app: &App) -> Vec<Family> {
    let mut build = Family::new(
        "lethe_build_info",
        "Always 1; the labels say which lethe runs, on which engine store backend, with which policy.",
        Kind::Gauge,
        &["version", "store", "policy_digest"],
    );
    build.number(
        &[
            env!("CARGO_PKG_VERSION"),
            app.store.backend_name(),
            &app.policy.digest,
        ],
        1.0,
    );
    let mut start = Family::new(
        "lethe_process_start_time_seconds",
        "When this process started (Unix time, seconds).",
        Kind::Gauge,
        &[],
    );
    start.number(
        &[],
        app.metrics
            .started
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    );
    let mut http = Family::new(
        "lethe_http_request_duration_seconds",
        "HTTP requests served by this process, by method, route template and status class.",
        Kind::Histogram,
        &["method", "route", "status_class"],
    );
    for (labels, h) in app.metrics.http.snapshot() {
        http.histogram(labels, h);
    }
    let mut jobs = Family::new(
        "lethe_job_duration_seconds",
        "Jobs run by this process, by job kind and outcome (done, retry, failed, not_claimed).",
        Kind::Histogram,
        &["kind", "outcome"],
    );
    for (labels, h) in app.metrics.jobs.snapshot() {
        jobs.histogram(labels, h);
    }
    vec![build, start, http, jobs]
}

/// The families read from the store. `rules` are the policy's retention rules (listed at 0
/// before their first run).
pub fn store_families(f: &StoreFigures, rules: &[String]) -> Vec<Family> {
    let mut requests = Family::new(
        "lethe_requests",
        "Data-subject requests in the engine store, by workflow state and kind.",
        Kind::Gauge,
        &["state", "kind"],
    );
    let mut by: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for s in RequestState::ALL {
        for k in RequestKind::ALL {
            by.insert((s.as_str(), k.as_str()), 0);
        }
    }
    for (s, k, n) in &f.requests {
        *by.entry((s.as_str(), k.as_str())).or_default() += n;
    }
    for ((s, k), n) in by {
        requests.number(&[s, k], n as f64);
    }
    let mut overdue = Family::new(
        "lethe_requests_overdue",
        "Open requests past their deadline in force (the extended one when extended).",
        Kind::Gauge,
        &[],
    );
    overdue.number(&[], f.overdue as f64);
    let mut due_soon = Family::new(
        "lethe_requests_due_soon",
        "Open requests due within 7 days that are not overdue yet.",
        Kind::Gauge,
        &[],
    );
    due_soon.number(&[], f.due_soon as f64);

    // Retention: totals per rule and outcome, runs per status, durations, last success.
    let mut totals: BTreeMap<&str, [i64; 3]> = rules.iter().map(|r| (r.as_str(), [0; 3])).collect();
    let mut runs: BTreeMap<(&str, &str), i64> = rules
        .iter()
        .flat_map(|r| RUN_STATUSES.iter().map(move |s| ((r.as_str(), *s), 0)))
        .collect();
    let mut durations: BTreeMap<&str, Histogram> = rules
        .iter()
        .map(|r| (r.as_str(), Histogram::new(WORK_BUCKETS)))
        .collect();
    let mut last_success: BTreeMap<&str, NaiveDateTime> = BTreeMap::new();
    for (rule, status, started, finished, deleted, anonymized, held) in &f.runs {
        let t = totals.entry(rule.as_str()).or_default();
        t[0] += deleted;
        t[1] += anonymized;
        t[2] += held;
        *runs.entry((rule.as_str(), status.as_str())).or_default() += 1;
        if let Some(end) = finished {
            let secs = (*end - *started).num_microseconds().unwrap_or(0) as f64 / 1e6;
            durations
                .entry(rule.as_str())
                .or_insert_with(|| Histogram::new(WORK_BUCKETS))
                .observe(secs);
            if matches!(status.as_str(), "completed" | "partial") {
                let e = last_success.entry(rule.as_str()).or_insert(*end);
                *e = (*e).max(*end);
            }
        }
    }
    let mut rows = Family::new(
        "lethe_retention_rows_processed_total",
        "Rows retention runs deleted or anonymized, and rows they skipped because of a legal hold, by rule.",
        Kind::Counter,
        &["rule", "outcome"],
    );
    for (rule, [d, a, h]) in &totals {
        rows.number(&[rule, "deleted"], *d as f64);
        rows.number(&[rule, "anonymized"], *a as f64);
        rows.number(&[rule, "skipped_held"], *h as f64);
    }
    let mut run_count = Family::new(
        "lethe_retention_runs",
        "Retention runs in the engine store, by rule and status (running, completed, partial, failed, ...).",
        Kind::Gauge,
        &["rule", "status"],
    );
    for ((rule, status), n) in runs {
        run_count.number(&[rule, status], n as f64);
    }
    let mut run_seconds = Family::new(
        "lethe_retention_run_duration_seconds",
        "How long finished retention runs took, from start to finish, by rule.",
        Kind::Histogram,
        &["rule"],
    );
    for (rule, h) in durations {
        run_seconds.histogram(vec![rule.to_string()], h);
    }
    let mut success = Family::new(
        "lethe_retention_last_success_timestamp_seconds",
        "When the rule's latest completed or partial run finished (Unix time, seconds).",
        Kind::Gauge,
        &["rule"],
    );
    for (rule, t) in last_success {
        success.number(&[rule], unix_seconds(t));
    }

    // The job queue.
    let mut depth: BTreeMap<(String, String), i64> = BTreeMap::new();
    for k in JOB_KINDS {
        for s in LIVE_JOB_STATES {
            depth.insert((k.as_str().to_string(), s.to_string()), 0);
        }
    }
    for (k, s, n) in &f.job_depth {
        *depth.entry((k.clone(), s.clone())).or_default() += n;
    }
    let mut queue = Family::new(
        "lethe_jobs",
        "Job queue depth: queued and running jobs by kind.",
        Kind::Gauge,
        &["kind", "state"],
    );
    for ((k, s), n) in &depth {
        queue.number(&[k, s], *n as f64);
    }
    let mut retrying: BTreeMap<String, i64> = JOB_KINDS
        .iter()
        .map(|k| (k.as_str().to_string(), 0))
        .collect();
    for (k, n) in &f.jobs_retrying {
        *retrying.entry(k.clone()).or_default() += n;
    }
    let mut waiting = Family::new(
        "lethe_jobs_retrying",
        "Queued jobs waiting to be retried after a failed attempt (a source, the store or a recipient was unavailable), by kind.",
        Kind::Gauge,
        &["kind"],
    );
    for (k, n) in &retrying {
        waiting.number(&[k], *n as f64);
    }
    vec![
        requests,
        overdue,
        due_soon,
        rows,
        run_count,
        run_seconds,
        success,
        queue,
        waiting,
    ]
}

#[cfg(test)]
mod tests {
    use super::super::encode::{encode, valid_label_name, valid_metric_name};
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn figures() -> StoreFigures {
        StoreFigures {
            requests: vec![
                ("completed".into(), "erasure".into(), 3),
                ("verified".into(), "access".into(), 2),
            ],
            overdue: 1,
            due_soon: 4,
            runs: vec![
                (
                    "web_sessions".into(),
                    "completed".into(),
                    t("2026-11-01 02:00:00"),
                    Some(t("2026-11-01 02:00:03")),
                    10,
                    0,
                    2,
                ),
                (
                    "web_sessions".into(),
                    "partial".into(),
                    t("2026-11-02 02:00:00"),
                    Some(t("2026-11-02 02:20:00")),
                    5,
                    1,
                    0,
                ),
                (
                    "leads".into(),
                    "running".into(),
                    t("2026-11-03 02:00:00"),
                    None,
                    7,
                    0,
                    0,
                ),
            ],
            job_depth: vec![("retention.run".into(), "running".into(), 1)],
            jobs_retrying: vec![("request.execute".into(), 2)],
        }
    }

    #[test]
    fn store_figures_become_families_with_every_series() {
        let rules = vec!["web_sessions".to_string(), "invoices".to_string()];
        let text = encode(&store_families(&figures(), &rules));
        for line in [
            "lethe_requests{state=\"completed\",kind=\"erasure\"} 3",
            "lethe_requests{state=\"verified\",kind=\"access\"} 2",
            "lethe_requests{state=\"received\",kind=\"opt_out\"} 0",
            "lethe_requests_overdue 1",
            "lethe_requests_due_soon 4",
            "lethe_retention_rows_processed_total{rule=\"web_sessions\",outcome=\"deleted\"} 15",
            "lethe_retention_rows_processed_total{rule=\"web_sessions\",outcome=\"anonymized\"} 1",
            "lethe_retention_rows_processed_total{rule=\"web_sessions\",outcome=\"skipped_held\"} 2",
            "lethe_retention_rows_processed_total{rule=\"invoices\",outcome=\"deleted\"} 0",
            "lethe_retention_rows_processed_total{rule=\"leads\",outcome=\"deleted\"} 7",
            "lethe_retention_runs{rule=\"web_sessions\",status=\"partial\"} 1",
            "lethe_retention_runs{rule=\"leads\",status=\"running\"} 1",
            "lethe_retention_runs{rule=\"invoices\",status=\"failed\"} 0",
            "lethe_retention_runs{rule=\"web_sessions\",status=\"waiting\"} 0",
            "lethe_retention_run_duration_seconds_bucket{rule=\"web_sessions\",le=\"5\"} 1",
            "lethe_retention_run_duration_seconds_bucket{rule=\"web_sessions\",le=\"1800\"} 2",
            "lethe_retention_run_duration_seconds_sum{rule=\"web_sessions\"} 1203",
            "lethe_retention_run_duration_seconds_count{rule=\"invoices\"} 0",
            "lethe_retention_last_success_timestamp_seconds{rule=\"web_sessions\"} 1793586000",
            "lethe_jobs{kind=\"retention.run\",state=\"running\"} 1",
            "lethe_jobs{kind=\"notify\",state=\"queued\"} 0",
            "lethe_jobs_retrying{kind=\"request.execute\"} 2",
            "# TYPE lethe_retention_rows_processed_total counter",
            "# TYPE lethe_retention_run_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        // Every state x kind combination is a series.
        let n = text
            .lines()
            .filter(|l| l.starts_with("lethe_requests{"))
            .count();
        assert_eq!(n, RequestState::ALL.len() * RequestKind::ALL.len());
        // A running run has no duration and no success time.
        assert!(!text.contains("lethe_retention_run_duration_seconds_count{rule=\"leads\"} 1"));
        assert!(!text.contains("last_success_timestamp_seconds{rule=\"leads\"}"));
    }

    #[test]
    fn every_family_name_and_label_is_valid() {
        for f in store_families(&figures(), &["r".into()]) {
            assert!(valid_metric_name(f.name), "{}", f.name);
            assert!(f.name.starts_with("lethe_"), "{}", f.name);
            assert!(f.label_names.iter().all(|l| valid_label_name(l)));
            if f.kind == Kind::Counter {
                assert!(f.name.ends_with("_total"), "{}", f.name);
            }
        }
    }
}
