//! The scheduler inside `lethe serve`: each enabled rule runs on its cron expression (or
//! the global one) in the configured time zone. A missed occurrence (the service was down
//! after the rule had run before) is caught up once at start-up, not once per missed
//! occurrence. Every replica's scheduler queues a job per occurrence with the dedupe key
//! `retention:<rule>:<occurrence>`, so an occurrence is queued once across replicas and run
//! by whichever worker claims it; the rule's lease and the occurrence check inside the run
//! are a second guard.

use super::rules::parse_cron;
use super::run::RunRequest;
use crate::app::AppState;
use crate::jobs::worker::Workers;
use crate::store::{now, retention as rs};
use chrono::{NaiveDateTime, TimeZone, Utc};
use std::collections::BTreeMap;

struct Entry {
    cron: croner::Cron,
    /// The next occurrence to run (UTC), and the occurrence it stands for.
    next: NaiveDateTime,
    occurrence: NaiveDateTime,
}

fn to_utc<Tz: TimeZone>(t: chrono::DateTime<Tz>) -> NaiveDateTime {
    t.with_timezone(&Utc).naive_utc()
}

/// Runs forever (until the task is dropped with the runtime).
pub async fn scheduler(app: AppState, workers: Workers) {
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
            },
        );
    }
    if entries.is_empty() {
        return;
    }
    loop {
        let t = now();
        for (name, e) in entries.iter_mut() {
            if t < e.next {
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
            let app = app.clone();
            let rule = name.clone();
            let key = format!(
                "retention:{rule}:{}",
                occurrence.format("%Y-%m-%dT%H:%M:%S")
            );
            let queued = tokio::task::spawn_blocking(move || {
                let req = RunRequest {
                    rule: rule.clone(),
                    at: None,
                    dry_run: false,
                    batch_size: None,
                    budget: None,
                    trigger: "schedule".into(),
                    not_before: Some(occurrence),
                };
                app.store
                    .write(|c| crate::jobs::enqueue_retention(c, &req, Some(key)))
            })
            .await;
            match queued {
                Ok(Ok(true)) => {
                    tracing::info!(rule = %name, occurrence = %occurrence, "retention run queued");
                    workers.wake();
                }
                Ok(Ok(false)) => {
                    tracing::debug!(rule = %name, occurrence = %occurrence, "retention run already queued by another replica")
                }
                Ok(Err(e)) => {
                    tracing::error!(rule = %name, error = %e, "cannot queue the retention run")
                }
                Err(_) => {}
            }
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
