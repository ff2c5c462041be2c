//! Notices to processors and recipients (GDPR Art. 19; CCPA regulations 7022(b), 7026(f)):
//! which recipients a completed erasure, rectification or opt-out concerns, the notice rows
//! and their delivery jobs, one delivery attempt, and the summary that goes into the
//! completion (and the erasure certificate).
//!
//! A recipient is concerned when a table that lists it in the data map had rows changed by
//! the request and its webhook subscribes to the event. The notice is built once, stored,
//! and re-sent byte for byte on every attempt (signed afresh with a new timestamp), so a
//! receiver can de-duplicate on `Lethe-Notice-Id`.

use crate::app::App;
use crate::audit;
use crate::erase::plan::{ErasurePlan, StepKind};
use crate::jobs::{JobKind, JobOutcome};
use crate::notify::{self, Backoff, Notice, NoticeInput, NoticeTable, TableAction};
use crate::policy::NoticeEvent;
use crate::request::model::RequestKind;
use crate::store::models::{JobRow, NotificationRow, RequestRow};
use crate::store::notifications::{self as ns, ACKNOWLEDGED, FAILED, PENDING};
use crate::store::{StoreConn, StoreError, jobs as js, now};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The notice event of a request kind, if recipients are told about it.
pub fn event_for(kind: RequestKind) -> Option<NoticeEvent> {
    match kind {
        RequestKind::Erasure => Some(NoticeEvent::Erasure),
        RequestKind::Rectification => Some(NoticeEvent::Rectification),
        RequestKind::OptOut => Some(NoticeEvent::Restriction),
        RequestKind::Access | RequestKind::Portability => None,
    }
}

/// Whether a notice is acknowledged or has failed for good.
pub fn is_settled(n: &NotificationRow) -> bool {
    n.status != PENDING
}

fn action_of(kind: StepKind) -> TableAction {
    match kind {
        StepKind::Delete => TableAction::Deleted,
        StepKind::Anonymize => TableAction::Anonymized,
        StepKind::Redact => TableAction::Redacted,
        StepKind::Rectify => TableAction::Rectified,
        StepKind::OptOut => TableAction::Restricted,
    }
}

/// Creates the notices of a request whose changes are in place (once; later calls return
/// the existing ones) and queues a delivery job for each new one, in the caller's
/// transaction. Returns every notice of the request.
pub fn prepare(
    app: &App,
    conn: &mut StoreConn,
    row: &RequestRow,
    kind: RequestKind,
    plan: &ErasurePlan,
) -> Result<Vec<NotificationRow>, StoreError> {
    let existing = ns::for_request(conn, &row.id)?;
    let Some(event) = event_for(kind) else {
        return Ok(existing);
    };
    let map = &app.policy.datamap;
    // Per recipient: the changed tables that list it.
    let mut per_recipient: BTreeMap<&str, Vec<NoticeTable>> = BTreeMap::new();
    for sp in &plan.sources {
        for st in sp.steps.iter().filter(|s| !s.rows.is_empty()) {
            let Some(table) = map.table(&st.table) else {
                continue;
            };
            for r in &table.recipients {
                per_recipient
                    .entry(r.as_str())
                    .or_default()
                    .push(NoticeTable {
                        table: st.table.clone(),
                        action: action_of(st.kind),
                        rows: st.rows.len() as u64,
                        columns: st.changes.iter().map(|c| c.column.clone()).collect(),
                    });
            }
        }
    }
    let have: BTreeSet<&str> = existing.iter().map(|n| n.recipient.as_str()).collect();
    let completed_at = now();
    let mut new_rows = Vec::new();
    for (name, tables) in per_recipient {
        if have.contains(name) {
            continue;
        }
        let Some(recipient) = map.recipients.get(name) else {
            continue;
        };
        let Some(hook) = recipient.webhook.as_ref().filter(|h| h.wants(event)) else {
            continue;
        };
        let id = format!("ntc-{}", uuid::Uuid::now_v7());
        let notice = Notice::build(NoticeInput {
            id: &id,
            event,
            request_id: &row.id,
            regime: &row.regime,
            subject_ref: &row.subject_ref,
            controller_name: &map.controller.name,
            controller_contact: &map.controller.contact,
            recipient: name,
            tables,
            completed_at,
        })
        .map_err(|e| StoreError::Db(format!("notice to {name}: {e}")))?;
        new_rows.push(NotificationRow {
            id,
            request_id: row.id.clone(),
            recipient: name.to_string(),
            event: event.as_str().to_string(),
            url: hook.url.clone(),
            body: notice.to_json(),
            status: PENDING.into(),
            attempts: 0,
            max_attempts: i32::try_from(hook.max_attempts).unwrap_or(8),
            next_attempt_at: Some(completed_at),
            last_error: None,
            http_status: None,
            ack_id: None,
            ack_body_sha256: None,
            created_at: completed_at,
            acknowledged_at: None,
            settled_at: None,
        });
    }
    for n in ns::insert_missing(conn, &new_rows)? {
        js::enqueue(
            conn,
            &js::NewJob {
                kind: JobKind::Notify.as_str(),
                target: &n.id,
                args: "{}".into(),
                dedupe_key: None,
                run_after: completed_at,
            },
        )?;
        audit::append(
            conn,
            "system",
            "notice.queued",
            &format!("request:{}", n.request_id),
            json!({"notice_id": n.id, "recipient": n.recipient, "event": n.event}),
        )?;
    }
    ns::for_request(conn, &row.id)
}

/// One delivery attempt of the notice a `notify` job names. Settling the last pending
/// notice of a request queues the request's execution job again, which completes it.
pub fn deliver(app: &App, job: &JobRow) -> JobOutcome {
    let n = match app.store.read(|c| ns::get(c, &job.target)) {
        Ok(n) => n,
        Err(StoreError::NotFound) => return JobOutcome::Done,
        Err(e) => return JobOutcome::RetryAt(now() + app.config.jobs.lease, e.to_string()),
    };
    if is_settled(&n) {
        return JobOutcome::Done;
    }
    let hook = app
        .policy
        .datamap
        .recipients
        .get(&n.recipient)
        .and_then(|r| r.webhook.clone());
    let attempt = n.attempts + 1;
    let result: Result<notify::Delivery, (bool, String, Option<std::time::Duration>)> = match &hook
    {
        None => Err((
            false,
            format!(
                "recipient {} has no webhook in the current data map",
                n.recipient
            ),
            None,
        )),
        Some(h) => match app.config.env.get(&h.secret_env).filter(|s| !s.is_empty()) {
            None => Err((
                true,
                format!(
                    "environment variable {} (the webhook secret of {}) is not set",
                    h.secret_env, n.recipient
                ),
                None,
            )),
            Some(secret) => {
                let body = n.body.as_bytes();
                // Several secrets (space-separated, current first) while one is rotated.
                let secrets = notify::split_secrets(secret);
                let header = notify::sign_rotating(&secrets, now().and_utc().timestamp(), body);
                notify::deliver(&n.url, body, &header, &n.id, h.timeout)
                    .map_err(|e| (e.is_retryable(), e.to_string(), e.retry_after()))
            }
        },
    };
    let max_attempts = n.max_attempts.max(1);
    let mut cur = n.clone();
    cur.attempts = attempt;
    let outcome;
    match result {
        Ok(d) => {
            let at = now();
            cur.status = ACKNOWLEDGED.into();
            cur.http_status = Some(i32::from(d.status));
            cur.ack_id = d.ack.clone();
            cur.ack_body_sha256 = Some(d.body_sha256.clone());
            cur.acknowledged_at = Some(at);
            cur.settled_at = Some(at);
            cur.next_attempt_at = None;
            cur.last_error = None;
            outcome = JobOutcome::Done;
        }
        Err((retryable, e, retry_after)) if retryable && attempt < max_attempts => {
            let s = &app.config.jobs;
            let schedule = Backoff {
                base: s.notice_retry_base,
                max: s.notice_retry_max,
            };
            let wait = notify::backoff::honor_retry_after(
                schedule.delay(u32::try_from(attempt).unwrap_or(1), &n.id),
                retry_after,
                s.notice_retry_max,
            );
            let at =
                now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(60));
            cur.next_attempt_at = Some(at);
            cur.last_error = Some(e.clone());
            outcome = JobOutcome::RetryAt(at, e);
        }
        Err((_, e, _)) => {
            let at = now();
            cur.status = FAILED.into();
            cur.settled_at = Some(at);
            cur.next_attempt_at = None;
            cur.last_error = Some(format!("{e} (after {attempt} attempt(s))"));
            outcome = JobOutcome::Failed(e);
        }
    }
    let saved = app.store.write(|c| -> Result<(), StoreError> {
        let now_row = ns::get(c, &cur.id)?;
        if is_settled(&now_row) {
            return Ok(());
        }
        ns::save(c, &cur)?;
        if is_settled(&cur) {
            audit::append(
                c,
                "system",
                if cur.status == ACKNOWLEDGED {
                    "notice.acknowledged"
                } else {
                    "notice.failed"
                },
                &format!("request:{}", cur.request_id),
                json!({
                    "notice_id": cur.id, "recipient": cur.recipient, "event": cur.event,
                    "attempts": cur.attempts, "http_status": cur.http_status,
                    "ack_id": cur.ack_id, "error": cur.last_error,
                }),
            )?;
            let all = ns::for_request(c, &cur.request_id)?;
            if all.iter().all(is_settled) {
                crate::jobs::enqueue_execution(c, &cur.request_id)?;
            }
        }
        Ok(())
    });
    if let Err(e) = saved {
        return JobOutcome::RetryAt(now() + app.config.jobs.lease, e.to_string());
    }
    outcome
}

/// The notices as the completion and the certificate list them: no URL (it may carry a
/// token), no body; the digest of the notice lets the recipient's copy be matched.
pub fn summary(app: &App, notices: &[NotificationRow]) -> Value {
    Value::Array(
        notices
            .iter()
            .map(|n| {
                let r = app.policy.datamap.recipients.get(&n.recipient);
                json!({
                    "notice_id": n.id,
                    "recipient": n.recipient,
                    "recipient_name": r.map(|r| r.display_name.clone()),
                    "recipient_kind": r.map(|r| r.kind),
                    "event": n.event,
                    "notice_sha256": crate::crypto::sha256_hex(n.body.as_bytes()),
                    "status": n.status,
                    "attempts": n.attempts,
                    "http_status": n.http_status,
                    "ack_id": n.ack_id,
                    "acknowledged_at": n.acknowledged_at.as_ref().map(audit::format_time),
                    "error": n.last_error,
                })
            })
            .collect(),
    )
}
