//! Request rows, their events and their exports.

use super::models::{EventRow, ExportRow, RequestRow};
use super::schema::{exports, request_events, requests};
use super::{StoreConn, StoreError};
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub fn insert(conn: &mut StoreConn, row: &RequestRow) -> Result<(), StoreError> {
    diesel::insert_into(requests::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut StoreConn, id: &str) -> Result<RequestRow, StoreError> {
    Ok(requests::table.find(id).first(conn)?)
}

/// Saves a changed request if nobody changed it since it was read (optimistic lock on
/// `version`); bumps the version.
pub fn save(conn: &mut StoreConn, row: &RequestRow) -> Result<RequestRow, StoreError> {
    let mut next = row.clone();
    next.version = row.version + 1;
    let n = diesel::update(
        requests::table
            .filter(requests::id.eq(&row.id))
            .filter(requests::version.eq(row.version)),
    )
    .set(&next)
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "request {} was changed concurrently; reload and retry",
            row.id
        )));
    }
    Ok(next)
}

/// Filters for listing requests.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub states: Vec<String>,
    pub kind: Option<String>,
    pub regime: Option<String>,
    pub due_before: Option<NaiveDateTime>,
    /// Only requests created before this id (keyset pagination, newest first).
    pub before_id: Option<String>,
    pub limit: i64,
}

pub fn list(conn: &mut StoreConn, f: &RequestFilter) -> Result<Vec<RequestRow>, StoreError> {
    let mut q = requests::table.into_boxed();
    if !f.states.is_empty() {
        q = q.filter(requests::state.eq_any(f.states.clone()));
    }
    if let Some(k) = &f.kind {
        q = q.filter(requests::kind.eq(k.clone()));
    }
    if let Some(r) = &f.regime {
        q = q.filter(requests::regime.eq(r.clone()));
    }
    if let Some(d) = f.due_before {
        q = q.filter(requests::due_at.lt(d));
    }
    if let Some(b) = &f.before_id {
        q = q.filter(requests::id.lt(b.clone()));
    }
    Ok(q.order(requests::id.desc())
        .limit(f.limit.clamp(1, 1000))
        .load(conn)?)
}

pub fn count(conn: &mut StoreConn) -> Result<i64, StoreError> {
    Ok(requests::table.count().get_result(conn)?)
}

pub fn events(conn: &mut StoreConn, id: &str) -> Result<Vec<EventRow>, StoreError> {
    Ok(request_events::table
        .filter(request_events::request_id.eq(id))
        .order(request_events::seq.asc())
        .load(conn)?)
}

/// Appends an event; its sequence number is one past the request's last.
pub fn add_event(conn: &mut StoreConn, mut ev: EventRow) -> Result<EventRow, StoreError> {
    let last: Option<i32> = request_events::table
        .filter(request_events::request_id.eq(&ev.request_id))
        .select(diesel::dsl::max(request_events::seq))
        .first(conn)?;
    ev.seq = last.unwrap_or(0) + 1;
    diesel::insert_into(request_events::table)
        .values(&ev)
        .execute(conn)?;
    Ok(ev)
}

/// Stores (or replaces) a request's export.
pub fn put_export(conn: &mut StoreConn, row: &ExportRow) -> Result<(), StoreError> {
    diesel::delete(exports::table.find(&row.request_id)).execute(conn)?;
    diesel::insert_into(exports::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn get_export(conn: &mut StoreConn, request_id: &str) -> Result<ExportRow, StoreError> {
    Ok(exports::table.find(request_id).first(conn)?)
}
