//! The audit log for auditors: the chain's status and the entries, newest first, page by
//! page. Each view re-hashes the entries added since this process last verified the chain
//! and checks the head and the newer signed checkpoints; the whole chain is re-hashed when
//! the last full pass is older than ten minutes, after a failure, or on request
//! (`?verify=full`).

use super::page::blocking;
use super::page::{Layout, PageError, humanize, render};
use super::session::Session;
use super::view::time;
use crate::app::AppState;
use crate::audit;
use crate::cert::keys;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

pub struct EntryLine {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub object: String,
    pub details: String,
    pub hash: String,
}

pub struct ChainStatus {
    pub valid: bool,
    /// Entries re-hashed in the last full pass, and when.
    pub full_seq: i64,
    pub full_at: String,
    /// Whether this view re-hashed the whole chain.
    pub full_now: bool,
    pub entries: u64,
    pub head_seq: i64,
    pub head_hash: String,
    pub problem: String,
    pub checkpoints: u64,
    pub last_checkpoint_seq: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    chain: ChainStatus,
    entries: Vec<EntryLine>,
    next_url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub before: Option<i64>,
    /// `full`: re-hash the whole chain now.
    pub verify: Option<String>,
}

/// How old the last full pass may be before a view re-hashes the whole chain again.
const FULL_EVERY_MINUTES: i64 = 10;

const PAGE: i64 = 100;

fn details_text(d: &str) -> String {
    match serde_json::from_str::<Value>(d) {
        Ok(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                format!("{}: {v}", humanize(k))
            })
            .collect::<Vec<_>>()
            .join(" · "),
        _ => d.to_string(),
    }
}

pub async fn show(
    State(app): State<AppState>,
    s: Session,
    Query(q): Query<PageQuery>,
) -> Result<Response, PageError> {
    let page = blocking(&app, move |app| -> Result<AuditPage, PageError> {
        let now = crate::store::now();
        let cached = app
            .audit_verified
            .lock()
            .map(|g| g.clone())
            .unwrap_or(None)
            .filter(|p| {
                q.verify.as_deref() != Some("full")
                    && now - p.full_at < chrono::Duration::minutes(FULL_EVERY_MINUTES)
            });
        let (report, rows) = app.store.read(|c| {
            let jwks = keys::jwks(c)?;
            Ok((
                audit::verify_since(c, &jwks, cached.as_ref())?,
                audit::page(c, q.before, PAGE)?,
            ))
        })?;
        let full_now = cached.is_none();
        let prefix = report.is_valid().then(|| audit::VerifiedPrefix {
            seq: report.chain.head_seq,
            hash: report.chain.head_hash.clone(),
            full_at: cached.as_ref().map_or(now, |p| p.full_at),
            full_seq: cached
                .as_ref()
                .map_or(report.chain.head_seq, |p| p.full_seq),
        });
        let (full_seq, full_at) = prefix
            .as_ref()
            .or(cached.as_ref())
            .map_or((0, time(&now)), |p| (p.full_seq, time(&p.full_at)));
        if let Ok(mut g) = app.audit_verified.lock() {
            // A full pass always records its result (a broken chain forgets the prefix, so
            // the next view re-hashes everything); an incremental check only moves the
            // prefix it started from, never one another view replaced or dropped meanwhile.
            if full_now || *g == cached {
                *g = prefix;
            }
        }
        let problem = report
            .chain
            .first_bad
            .as_ref()
            .map(|(seq, why)| format!("entry {seq}: {why}"))
            .or_else(|| {
                report
                    .bad_checkpoint
                    .as_ref()
                    .map(|(seq, why)| format!("checkpoint at entry {seq}: {why}"))
            })
            .unwrap_or_default();
        let next_url = (rows.len() as i64 == PAGE)
            .then(|| rows.last().map(|r| format!("/audit?before={}", r.seq)))
            .flatten();
        Ok(AuditPage {
            layout: s.layout("Audit log", "audit"),
            chain: ChainStatus {
                valid: report.is_valid(),
                full_seq,
                full_at,
                full_now,
                entries: report.chain.entries,
                head_seq: report.chain.head_seq,
                head_hash: report.chain.head_hash.clone(),
                problem,
                checkpoints: report.checkpoints,
                last_checkpoint_seq: report
                    .last_checkpoint_seq
                    .map_or_else(|| "none yet".into(), |s| s.to_string()),
            },
            entries: rows
                .iter()
                .map(|r| EntryLine {
                    seq: r.seq,
                    at: time(&r.at),
                    actor: r.actor.clone(),
                    action: r.action.clone(),
                    object: r.object.clone(),
                    details: details_text(&r.details),
                    hash: r.hash.chars().take(16).collect(),
                })
                .collect(),
            next_url,
        })
    })
    .await?;
    Ok(render(&page))
}
