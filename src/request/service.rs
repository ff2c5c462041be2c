//! The request workflow service: creates requests, applies transitions (each with its event
//! and audit entry in the same store transaction), runs traces and stores exports.
//!
//! Synchronous; the HTTP layer calls it on the blocking thread pool.

use super::deadline;
use super::export::ExportContext;
use super::model::{Channel, Regime, RequestKind, RequestState};
use super::workflow::{self, Action, IllegalTransition};
use crate::app::{Actor, App};
use crate::audit;
use crate::crypto::{CryptoError, subject_ref};
use crate::erase::plan::Change;
use crate::export::build::{ExportKind, ExportSummary};
use crate::store::models::{EventRow, ExportRow, RequestRow};
use crate::store::{StoreConn, StoreError, now, requests as rq};
use crate::trace::{Identity, TraceError};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Bad input: names the field.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("request {0} not found")]
    NotFound(String),
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("{0}")]
    Conflict(String),
    /// The action is refused in this situation (409 with a specific code).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for RequestError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => RequestError::Conflict(m),
            other => RequestError::Store(other),
        }
    }
}

pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> RequestError {
    RequestError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// A new request as received.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub kind: RequestKind,
    pub regime: Regime,
    /// (kind, value as typed)
    pub identities: Vec<(String, String)>,
    pub channel: Channel,
    pub received_at: Option<NaiveDateTime>,
    pub note: Option<String>,
    /// Rectification: the corrections asked for.
    pub changes: Vec<Change>,
}

/// How an officer verified the requester's identity.
pub const VERIFICATION_METHODS: [&str; 7] = [
    "document_check",
    "email_confirmation",
    "account_login",
    "knowledge_based",
    "in_person",
    "authorized_agent",
    "other",
];

const MAX_IDENTITIES: usize = 20;
const MAX_NOTE: usize = 2000;

/// The end of a deadline day (deadlines run to the end of the day, UTC).
fn end_of_day(d: NaiveDate) -> NaiveDateTime {
    d.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default())
}

pub(crate) fn parse_kind(row: &RequestRow) -> Result<(RequestKind, RequestState), RequestError> {
    let kind = RequestKind::parse(&row.kind)
        .ok_or_else(|| RequestError::Internal(format!("stored kind {}", row.kind)))?;
    let state = RequestState::parse(&row.state)
        .ok_or_else(|| RequestError::Internal(format!("stored state {}", row.state)))?;
    Ok((kind, state))
}

/// Normalizes and validates identities against the data map.
pub fn normalize_identities(
    app: &App,
    raw: &[(String, String)],
) -> Result<Vec<Identity>, RequestError> {
    if raw.is_empty() {
        return Err(invalid(
            "identities",
            "give at least one identity (e.g. an e-mail address)",
        ));
    }
    if raw.len() > MAX_IDENTITIES {
        return Err(invalid(
            "identities",
            format!("at most {MAX_IDENTITIES} identities"),
        ));
    }
    let map = &app.policy.datamap;
    let mut out: Vec<Identity> = Vec::new();
    for (i, (kind, value)) in raw.iter().enumerate() {
        let norm = map.normalizer(kind).ok_or_else(|| {
            let known: Vec<&str> = map.identity_kinds.keys().map(String::as_str).collect();
            invalid(
                format!("identities[{i}].kind"),
                format!(
                    "unknown identity kind \"{kind}\"; the data map defines: {}",
                    known.join(", ")
                ),
            )
        })?;
        if value.len() > 320 {
            return Err(invalid(format!("identities[{i}].value"), "is too long"));
        }
        let v = norm
            .normalize(value)
            .map_err(|e| invalid(format!("identities[{i}].value"), format!("{kind} {e}")))?;
        let id = Identity {
            kind: kind.clone(),
            value: v,
        };
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out.sort();
    Ok(out)
}

fn summary(app: &App, ids: &[Identity]) -> String {
    ids.iter()
        .map(|i| {
            let masked = app
                .policy
                .datamap
                .normalizer(&i.kind)
                .map_or("***".to_string(), |n| n.mask(&i.value));
            format!("{} {masked}", i.kind)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks rectification changes against the data map and, where the source is reachable,
/// the column types.
fn check_changes(app: &App, kind: RequestKind, changes: &[Change]) -> Result<(), RequestError> {
    if kind != RequestKind::Rectification {
        if !changes.is_empty() {
            return Err(invalid(
                "changes",
                "only rectification requests carry changes",
            ));
        }
        return Ok(());
    }
    if changes.is_empty() {
        return Err(invalid(
            "changes",
            "a rectification names at least one change: {table, column, value}",
        ));
    }
    if changes.len() > 100 {
        return Err(invalid("changes", "at most 100 changes"));
    }
    let map = &app.policy.datamap;
    for (i, c) in changes.iter().enumerate() {
        let t = map.table(&c.table).ok_or_else(|| {
            invalid(
                format!("changes[{i}].table"),
                format!("unknown table \"{}\" (not in the data map)", c.table),
            )
        })?;
        if t.column(&c.column).is_none() || t.primary_key.contains(&c.column) {
            return Err(invalid(
                format!("changes[{i}].column"),
                format!(
                    "{}.{} is not a personal-data column of the data map",
                    c.table, c.column
                ),
            ));
        }
        if let Ok(h) = app.sources.get(&t.source)
            && let Ok(cat) = h.catalog()
            && let Some(ci) = cat.table(&c.table).and_then(|ti| ti.column(&c.column))
        {
            if !crate::policy::lint::literal_fits(&c.value, ci.ty.kind) {
                return Err(invalid(
                    format!("changes[{i}].value"),
                    format!(
                        "does not fit column {}.{} of type {}",
                        c.table, c.column, ci.ty.declared
                    ),
                ));
            }
            if c.value.is_null() && !ci.nullable {
                return Err(invalid(
                    format!("changes[{i}].value"),
                    format!("{}.{} may not be NULL", c.table, c.column),
                ));
            }
        }
    }
    Ok(())
}

/// Creates a request in state `received`.
pub fn create(app: &App, actor: &Actor, new: NewRequest) -> Result<RequestRow, RequestError> {
    check_changes(app, new.kind, &new.changes)?;
    let ids = normalize_identities(app, &new.identities)?;
    let now = now();
    let received = new.received_at.unwrap_or(now);
    if received > now + chrono::Duration::minutes(5) {
        return Err(invalid("received_at", "is in the future"));
    }
    if let Some(n) = &new.note
        && n.len() > MAX_NOTE
    {
        return Err(invalid("note", format!("at most {MAX_NOTE} characters")));
    }
    let dl = deadline::deadlines(new.regime, new.kind, received.date());
    let id = uuid::Uuid::now_v7().to_string();
    let pairs: Vec<(String, String)> = ids
        .iter()
        .map(|i| (i.kind.clone(), i.value.clone()))
        .collect();
    let sealed = app.key.seal(
        "request-identities",
        &id,
        &serde_json::to_vec(&ids).map_err(|e| RequestError::Internal(e.to_string()))?,
    )?;
    let row = RequestRow {
        id: id.clone(),
        kind: new.kind.as_str().into(),
        regime: new.regime.as_str().into(),
        state: RequestState::Received.as_str().into(),
        channel: new.channel.as_str().into(),
        subject_ref: subject_ref(&app.key, &pairs),
        identities_enc: sealed,
        identity_summary: summary(app, &ids),
        received_at: received,
        due_at: end_of_day(dl.respond_by),
        acknowledge_by: dl.acknowledge_by.map(end_of_day),
        extended_due_at: None,
        verified_at: None,
        verification: None,
        completed_at: None,
        state_reason: None,
        note: new.note.clone(),
        policy_digest: Some(app.policy.digest.clone()),
        created_by: actor.id.clone(),
        created_at: now,
        updated_at: now,
        version: 0,
        extension_reason: None,
        extension_notice: None,
        extended_at: None,
        details_enc: if new.changes.is_empty() {
            None
        } else {
            let details = crate::erase::run::RequestDetails {
                changes: new.changes.clone(),
            };
            Some(app.key.seal(
                "request-details",
                &id,
                &serde_json::to_vec(&details).map_err(|e| RequestError::Internal(e.to_string()))?,
            )?)
        },
    };
    app.store.write(|conn| -> Result<(), RequestError> {
        rq::insert(conn, &row)?;
        rq::add_event(
            conn,
            EventRow {
                request_id: id.clone(),
                seq: 0,
                at: now,
                actor: actor.id.clone(),
                action: "create".into(),
                from_state: None,
                to_state: RequestState::Received.as_str().into(),
                reason: None,
                details: json!({"channel": new.channel, "identity_kinds": ids.iter().map(|i| &i.kind).collect::<Vec<_>>()}).to_string(),
            },
        )?;
        audit::append(
            conn,
            &actor.id,
            "request.created",
            &format!("request:{id}"),
            json!({
                "kind": new.kind, "regime": new.regime, "channel": new.channel,
                "subject_ref": row.subject_ref, "due_at": audit::format_time(&row.due_at),
            }),
        )?;
        Ok(())
    })?;
    tracing::info!(request = %id, kind = %new.kind, regime = %new.regime, "request created");
    Ok(row)
}

pub fn get(app: &App, id: &str) -> Result<RequestRow, RequestError> {
    app.store.read(|c| rq::get(c, id)).map_err(|e| match e {
        StoreError::NotFound => RequestError::NotFound(id.to_string()),
        other => other.into(),
    })
}

/// The request's identities (decrypted).
pub fn identities(app: &App, row: &RequestRow) -> Result<Vec<Identity>, RequestError> {
    let plain = app
        .key
        .open("request-identities", &row.id, &row.identities_enc)?;
    serde_json::from_slice(&plain).map_err(|e| RequestError::Internal(e.to_string()))
}

/// Applies a transition to `row` in the caller's transaction: event, audit entry, new state.
pub(crate) fn transition(
    conn: &mut StoreConn,
    row: &mut RequestRow,
    actor: &Actor,
    action: Action,
    reason: Option<&str>,
    details: Value,
) -> Result<(), RequestError> {
    let (kind, state) = parse_kind(row)?;
    let next = workflow::apply(kind, state, action)?;
    let at = now();
    rq::add_event(
        conn,
        EventRow {
            request_id: row.id.clone(),
            seq: 0,
            at,
            actor: actor.id.clone(),
            action: action.as_str().into(),
            from_state: Some(state.as_str().into()),
            to_state: next.as_str().into(),
            reason: reason.map(str::to_string),
            details: details.to_string(),
        },
    )?;
    let mut audit_details = json!({"from": state, "to": next});
    if let (Some(obj), Value::Object(extra)) = (audit_details.as_object_mut(), details) {
        obj.extend(extra);
    }
    audit::append(
        conn,
        &actor.id,
        &format!("request.{}", action.as_str()),
        &format!("request:{}", row.id),
        audit_details,
    )?;
    row.state = next.as_str().into();
    row.updated_at = at;
    Ok(())
}

/// Loads a request for a change, checking the action is allowed before any work is done.
pub(crate) fn load_for(app: &App, id: &str, action: Action) -> Result<RequestRow, RequestError> {
    let row = get(app, id)?;
    let (kind, state) = parse_kind(&row)?;
    workflow::apply(kind, state, action)?;
    Ok(row)
}

/// Records how the requester's identity was verified.
pub fn verify(
    app: &App,
    actor: &Actor,
    id: &str,
    method: &str,
    note: Option<&str>,
) -> Result<RequestRow, RequestError> {
    if !VERIFICATION_METHODS.contains(&method) {
        return Err(invalid(
            "method",
            format!(
                "unknown verification method \"{method}\"; use one of: {}",
                VERIFICATION_METHODS.join(", ")
            ),
        ));
    }
    if method == "other" && note.is_none_or(|n| n.trim().is_empty()) {
        return Err(invalid(
            "note",
            "describe how the identity was verified when the method is \"other\"",
        ));
    }
    if note.is_some_and(|n| n.len() > MAX_NOTE) {
        return Err(invalid("note", format!("at most {MAX_NOTE} characters")));
    }
    load_for(app, id, Action::Verify)?;
    app.store.write(|conn| -> Result<RequestRow, RequestError> {
        let mut row = rq::get(conn, id)?;
        let at = now();
        transition(
            conn,
            &mut row,
            actor,
            Action::Verify,
            note,
            json!({"method": method}),
        )?;
        row.verified_at = Some(at);
        row.verification = Some(
            json!({"method": method, "note": note, "by": actor.id, "at": audit::format_time(&at)})
                .to_string(),
        );
        Ok(rq::save(conn, &row)?)
    })
}

/// Traces the subject and stores the export; the request completes. A failure (a source
/// down) leaves the request as it was, with nothing written.
pub fn run(app: &App, actor: &Actor, id: &str) -> Result<RequestRow, RequestError> {
    let row = load_for(app, id, Action::Run)?;
    let (kind, _) = parse_kind(&row)?;
    if kind == RequestKind::OptOut {
        return crate::erase::run::run_opt_out(app, actor, id);
    }
    let ids = identities(app, &row)?;
    let generated = now();
    let ctx = ExportContext {
        request_id: &row.id,
        kind: kind.as_str(),
        regime: &row.regime,
        received_at: audit::format_time(&row.received_at),
        due_at: audit::format_time(&row.due_at),
        generated_at: audit::format_time(&generated),
        policy_digest: &app.policy.digest,
    };
    let export_kind = match kind {
        RequestKind::Portability => ExportKind::Portability,
        _ => ExportKind::Access,
    };
    // Traced and written as encrypted files in bounded memory; recorded below, or removed.
    let written = crate::export::write_export(app, &ctx, export_kind, &ids, generated).map_err(
        |e| match e {
            crate::export::ExportError::Trace(t) => RequestError::Trace(t),
            other => RequestError::Internal(other.to_string()),
        },
    )?;
    let summary = &written.summary;
    let digest = format!("sha256:{}", written.json.sha256);
    let tables = i32::try_from(summary.tables).unwrap_or(i32::MAX);
    let rows = i64::try_from(summary.records).unwrap_or(i64::MAX);
    let stats = json!({
        "tables": tables, "records": rows, "mentions": summary.mentions,
        "export_digest": digest, "trace_micros": written.trace_micros,
    });
    let expires_at = generated + app.config.exports.ttl;
    let export_row = ExportRow {
        request_id: id.to_string(),
        kind: kind.as_str().into(),
        created_at: generated,
        table_count: tables,
        row_count: rows,
        digest: digest.clone(),
        payload_enc: None,
        file_id: Some(written.file_id.clone()),
        json_size: i64::try_from(written.json.plain_size).ok(),
        csv_digest: Some(format!("sha256:{}", written.csv.sha256)),
        csv_size: i64::try_from(written.csv.plain_size).ok(),
        tables_json: serde_json::to_string(&summary.per_table)
            .map_err(|e| RequestError::Internal(e.to_string()))?,
        expires_at: Some(expires_at),
        deleted_at: None,
    };
    let saved = app.store.write(
        |conn| -> Result<(RequestRow, Option<String>), RequestError> {
            let mut cur = rq::get(conn, id)?;
            if cur.version != row.version {
                return Err(RequestError::Conflict(format!(
                    "request {id} changed while it was running; retry"
                )));
            }
            transition(conn, &mut cur, actor, Action::Run, None, json!({}))?;
            cur.completed_at = Some(generated);
            let controller = &app.policy.datamap.controller;
            let body = access_certificate(&cur, kind, &app.policy.digest, &digest, summary);
            let cert = crate::cert::issue::issue(
                conn,
                &app.key,
                &crate::cert::issue::Issuer {
                    controller: &controller.name,
                    contact: &controller.contact,
                },
                "access",
                Some(id),
                None,
                body,
            )?;
            let mut stats = stats.clone();
            stats["certificate_id"] = json!(cert.id);
            transition(
                conn,
                &mut cur,
                &Actor::system(),
                Action::Complete,
                None,
                stats,
            )?;
            let replaced = crate::store::exports::put(conn, &export_row)?;
            cur.policy_digest = Some(app.policy.digest.clone());
            Ok((rq::save(conn, &cur)?, replaced))
        },
    );
    let (saved, replaced) = match saved {
        Ok(v) => v,
        Err(e) => {
            written.discard(&app.config.exports.dir);
            return Err(e);
        }
    };
    if let Some(old) = replaced.filter(|old| *old != written.file_id) {
        crate::export::remove_files(&app.config.exports.dir, &old);
    }
    tracing::info!(request = %id, tables, rows, mentions = ?summary.mentions, "request completed");
    Ok(saved)
}

/// A request's export metadata: 409 when the request has none yet.
pub fn export_row(app: &App, id: &str) -> Result<ExportRow, RequestError> {
    get(app, id)?;
    app.store
        .read(|c| crate::store::exports::get(c, id))
        .map_err(|e| match e {
            StoreError::NotFound => RequestError::Conflict(format!(
                "request {id} has no export yet: verify and run it first"
            )),
            other => other.into(),
        })
}

/// The body of an access (or portability) certificate: what was exported, by digest.
fn access_certificate(
    row: &RequestRow,
    kind: RequestKind,
    policy_digest: &str,
    export_digest: &str,
    summary: &ExportSummary,
) -> Value {
    let verification_method: Option<String> = row
        .verification
        .as_deref()
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
        .and_then(|v| v["method"].as_str().map(str::to_string));
    json!({
        "subject_ref": row.subject_ref,
        "request": {
            "id": row.id,
            "kind": kind,
            "regime": row.regime,
            "received_at": audit::format_time(&row.received_at),
            "verified_at": row.verified_at.as_ref().map(audit::format_time),
            "identity_verification": verification_method,
            "due_at": audit::format_time(&row.due_at),
            "effective_due_at": audit::format_time(&row.extended_due_at.unwrap_or(row.due_at)),
            "completed_at": row.completed_at.as_ref().map(audit::format_time),
        },
        "policy_digest": policy_digest,
        "export": {
            "format": summary.format,
            "digest": export_digest,
            "tables": summary.tables,
            "records": summary.records,
            "mentions": summary.mentions,
        },
        "results": summary.per_table.iter().map(|t| json!({"source": t.source, "table": t.table, "rows_exported": t.records})).collect::<Vec<_>>(),
    })
}

/// Applies a transition that only records who, when and why (acknowledge, request
/// identity, deny, withdraw, cancel).
pub fn simple_transition(
    app: &App,
    actor: &Actor,
    id: &str,
    action: Action,
    reason: Option<&str>,
    details: Value,
) -> Result<RequestRow, RequestError> {
    if reason.is_some_and(|r| r.len() > MAX_NOTE) {
        return Err(invalid("reason", format!("at most {MAX_NOTE} characters")));
    }
    let row = load_for(app, id, action)?;
    app.store.write(|conn| -> Result<RequestRow, RequestError> {
        let mut cur = rq::get(conn, id)?;
        if cur.version != row.version {
            return Err(RequestError::Conflict(format!(
                "request {id} changed; reload and retry"
            )));
        }
        transition(conn, &mut cur, actor, action, reason, details)?;
        if matches!(action, Action::Deny | Action::Withdraw | Action::Cancel) {
            cur.state_reason = reason.map(str::to_string);
            cur.completed_at = Some(now());
        }
        Ok(rq::save(conn, &cur)?)
    })
}

fn required<'a>(field: &str, v: Option<&'a str>) -> Result<&'a str, RequestError> {
    match v.map(str::trim) {
        Some(s) if !s.is_empty() => {
            if s.len() > MAX_NOTE {
                Err(invalid(field, format!("at most {MAX_NOTE} characters")))
            } else {
                Ok(s)
            }
        }
        _ => Err(invalid(field, "is required")),
    }
}

/// Denies a request: the reason and the notice of the person's remedies (complaint to a
/// supervisory authority, judicial remedy) are both required.
pub fn deny(
    app: &App,
    actor: &Actor,
    id: &str,
    reason: Option<&str>,
    notice: Option<&str>,
) -> Result<RequestRow, RequestError> {
    let reason = required("reason", reason)?;
    let notice = required("notice", notice)?;
    simple_transition(
        app,
        actor,
        id,
        Action::Deny,
        Some(reason),
        json!({"remedy_notice": notice}),
    )
}

/// Withdrawn by the person, or cancelled (duplicate, mistake): a reason is required.
pub fn close(
    app: &App,
    actor: &Actor,
    id: &str,
    action: Action,
    reason: Option<&str>,
) -> Result<RequestRow, RequestError> {
    let reason = required("reason", reason)?;
    simple_transition(app, actor, id, action, Some(reason), json!({}))
}

/// Extends the deadline once, before it passes, with a reason and the notice sent to the
/// person, where the regime allows it.
pub fn extend(
    app: &App,
    actor: &Actor,
    id: &str,
    reason: Option<&str>,
    notice: Option<&str>,
) -> Result<RequestRow, RequestError> {
    let reason = required("reason", reason)?;
    let notice = required("notice", notice)?;
    let row = get(app, id)?;
    let (kind, state) = parse_kind(&row)?;
    if state.is_final() {
        return Err(RequestError::Refused {
            code: "final_state",
            message: format!("request {id} is {state}; its deadline no longer runs"),
        });
    }
    if row.extended_due_at.is_some() {
        return Err(RequestError::Refused {
            code: "already_extended",
            message: "the deadline was already extended; it can be extended only once".into(),
        });
    }
    let at = now();
    if at > row.due_at {
        return Err(RequestError::Refused {
            code: "deadline_passed",
            message: format!(
                "the deadline ({}) has passed; an extension must be decided and notified before it",
                row.due_at.date()
            ),
        });
    }
    let regime = crate::request::Regime::parse(&row.regime)
        .ok_or_else(|| RequestError::Internal(format!("stored regime {}", row.regime)))?;
    let ext = deadline::deadlines(regime, kind, row.received_at.date()).extension;
    let new_due =
        deadline::extended(row.due_at.date(), ext).ok_or_else(|| RequestError::Refused {
            code: "no_extension",
            message: format!(
                "{} allows no extension for {kind} requests",
                regime.describe()
            ),
        })?;
    app.store.write(|conn| -> Result<RequestRow, RequestError> {
        let mut cur = rq::get(conn, id)?;
        if cur.version != row.version {
            return Err(RequestError::Conflict(format!("request {id} changed; reload and retry")));
        }
        let rq_event = EventRow {
            request_id: id.to_string(),
            seq: 0,
            at,
            actor: actor.id.clone(),
            action: "extend".into(),
            from_state: Some(cur.state.clone()),
            to_state: cur.state.clone(),
            reason: Some(reason.to_string()),
            details: json!({"notice": notice, "from": audit::format_time(&cur.due_at), "to": audit::format_time(&end_of_day(new_due))}).to_string(),
        };
        rq::add_event(conn, rq_event)?;
        audit::append(
            conn,
            &actor.id,
            "request.extend",
            &format!("request:{id}"),
            json!({"from": audit::format_time(&cur.due_at), "to": audit::format_time(&end_of_day(new_due)), "reason": reason}),
        )?;
        cur.extended_due_at = Some(end_of_day(new_due));
        cur.extension_reason = Some(reason.to_string());
        cur.extension_notice = Some(notice.to_string());
        cur.extended_at = Some(at);
        cur.updated_at = at;
        Ok(rq::save(conn, &cur)?)
    })
}
