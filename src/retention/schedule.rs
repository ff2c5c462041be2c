//! The scheduler inside `lethe serve`: each enabled rule runs on its cron expression (or
//! the global one) in the configured time zone. A missed occurrence (the service was down
//! after the rule had run before) is caught up once at start-up, not once per missed
//! occurrence. Leases keep replicas
//! sharing a PostgreSQL store from running a rule twice at once, and the occurrence check
//! keeps a second replica from repeating a run another one already made.

use super::rules::parse_cron;
use super::run::{RunRequest, RunStatus, run};
use crate::app::AppState;
use crate::store::{now, retention as rs};
use chrono::{NaiveDateTime, TimeZone, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

struct Entry {
    cron: croner::Cron,
    /// The next occurrence to run (UTC), and the occurrence it stands for.
    next: NaiveDateTime,
    occurrence: NaiveDateTime,
    busy: Arc<AtomicBool>,
}

fn to_utc<Tz: TimeZone>(t: chrono::DateTime<Tz>) -> NaiveDateTime {
    t.with_timezone(&Utc).naive_utc()
}

/// Runs forever (until the task is dropped with the runtime).
pub async fn scheduler(app: AppState) {
    let ret = &app.policy.retention;
    let tz = ret.settings.timezone;
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for rule in ret.rules.iter().filter(|r| r.enabled) {
        let schedule = ret.schedule_of(rule);
        let cron = match parse_cron(schedule) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(rule = %rule.name, error = %e, "bad schedule; the rule is not scheduled");
                continue;
            }
        };
        let local_now = tz.from_utc_datetime(&now());
        let app2 = app.clone();
        let name = rule.name.clone();
        let last =
            tokio::task::spawn_blocking(move || app2.store.read(|c| rs::last_start(c, &name)))
                .await;
        let last = last.ok().and_then(Result::ok).flatten();
        let prev = cron
            .find_previous_occurrence(&local_now, false)
            .ok()
            .map(to_utc);
        let next = cron
            .find_next_occurrence(&local_now, false)
            .ok()
            .map(to_utc);
        let (next_at, occurrence) = match (prev, last) {
            // Missed while down (no run since the last occurrence): catch up once, now. A
            // store that never ran the rule starts with the next occurrence.
            (Some(p), Some(l)) if l < p => (now(), p),
            _ => match next {
                Some(n) => (n, n),
                None => continue,
            },
        };
        tracing::info!(rule = %rule.name, schedule, next = %next_at, "retention rule scheduled");
        entries.insert(
            rule.name.clone(),
            Entry {
                cron,
                next: next_at,
                occurrence,
                busy: Arc::new(AtomicBool::new(false)),
            },
        );
    }
    if entries.is_empty() {
        return;
    }
    loop {
        let t = now();
        for (name, e) in entries.iter_mut() {
            if t < e.next || e.busy.load(Ordering::SeqCst) {
                continue;
            }
            let occurrence = e.occurrence;
            let local_now = tz.from_utc_datetime(&t);
            match e.cron.find_next_occurrence(&local_now, false) {
                Ok(n) => {
                    e.next = to_utc(n);
                    e.occurrence = e.next;
                }
                Err(_) => e.next = NaiveDateTime::MAX,
            }
            let busy = e.busy.clone();
            busy.store(true, Ordering::SeqCst);
            let app = app.clone();
            let rule = name.clone();
            tokio::task::spawn_blocking(move || {
                let req = RunRequest {
                    rule: rule.clone(),
                    at: None,
                    dry_run: false,
                    batch_size: None,
                    budget: None,
                    trigger: "schedule".into(),
                    not_before: Some(occurrence),
                };
                match run(&app, &req, &mut |_| {}) {
                    Ok(o) if o.status == RunStatus::Busy || o.status == RunStatus::AlreadyRan => {
                        tracing::info!(rule = %rule, status = ?o.status, "retention run skipped");
                    }
                    Ok(o) => {
                        tracing::info!(rule = %rule, status = ?o.status, deleted = o.deleted, anonymized = o.anonymized, held = o.held, "retention run finished")
                    }
                    Err(e) => tracing::error!(rule = %rule, error = %e, "retention run failed"),
                }
                busy.store(false, Ordering::SeqCst);
            });
        }
        let wait = entries
            .values()
            .map(|e| (e.next - now()).num_milliseconds())
            .min()
            .unwrap_or(1000)
            .clamp(50, 1000);
        tokio::time::sleep(std::time::Duration::from_millis(
            u64::try_from(wait).unwrap_or(1000),
        ))
        .await;
    }
}
