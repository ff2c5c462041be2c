//! Request rows, their events and their exports.

use super::models::{EventRow, ExportRow, RequestRow};
use super::schema::{request_events, requests};
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
    /// Only requests whose deadline in force (the extended one if extended) is before this.
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
        q = q.filter(effective_due_before(d));
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

/// A request's export metadata (see [`super::exports`]).
pub fn get_export(conn: &mut StoreConn, request_id: &str) -> Result<ExportRow, StoreError> {
    super::exports::get(conn, request_id)
}

/// Which column to count requests by.
#[derive(Debug, Clone, Copy)]
pub enum CountBy {
    State,
    Kind,
    Regime,
}

/// Request counts per value of a column, over these states (all states when empty).
pub fn count_by(
    conn: &mut StoreConn,
    by: CountBy,
    states: &[String],
) -> Result<Vec<(String, i64)>, StoreError> {
    use diesel::dsl::count_star;
    let all: Vec<String>;
    let states = if states.is_empty() {
        all = crate::request::RequestState::names()
            .into_iter()
            .map(str::to_string)
            .collect();
        &all[..]
    } else {
        states
    };
    let q = requests::table.filter(requests::state.eq_any(states.to_vec()));
    let rows = match by {
        CountBy::State => q
            .group_by(requests::state)
            .select((requests::state, count_star()))
            .load(conn)?,
        CountBy::Kind => q
            .group_by(requests::kind)
            .select((requests::kind, count_star()))
            .load(conn)?,
        CountBy::Regime => q
            .group_by(requests::regime)
            .select((requests::regime, count_star()))
            .load(conn)?,
    };
    Ok(rows)
}

/// How many requests in these states have an effective deadline (extended or not) before
/// `before` (all of them without a bound).
pub fn count_due(
    conn: &mut StoreConn,
    states: &[String],
    before: Option<NaiveDateTime>,
) -> Result<i64, StoreError> {
    let mut q = requests::table
        .filter(requests::state.eq_any(states.to_vec()))
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(effective_due_before(b));
    }
    Ok(q.count().get_result(conn)?)
}

/// The deadline in force (the extended one if extended) is before `before`.
#[diesel::dsl::auto_type(no_type_alias)]
fn effective_due_before(before: NaiveDateTime) -> _ {
    requests::extended_due_at
        .lt(before)
        .or(requests::extended_due_at
            .is_null()
            .and(requests::due_at.lt(before)))
}

/// Requests in these states, the soonest effective deadline (extended or not) first.
pub fn by_deadline(
    conn: &mut StoreConn,
    states: &[String],
    limit: i64,
) -> Result<Vec<RequestRow>, StoreError> {
    use diesel::dsl::sql;
    use diesel::sql_types::Timestamp;
    Ok(requests::table
        .filter(requests::state.eq_any(states.to_vec()))
        .order((
            sql::<Timestamp>("COALESCE(extended_due_at, due_at)").asc(),
            requests::id.asc(),
        ))
        .limit(limit.clamp(1, 1000))
        .load(conn)?)
}

/// The columns the yearly metrics and the CSV of request records need (no identities),
/// for requests received in `[from, to)`, optionally of one regime.
pub fn facts(
    conn: &mut StoreConn,
    from: NaiveDateTime,
    to: NaiveDateTime,
    regime: Option<&str>,
) -> Result<Vec<crate::request::metrics::RequestFacts>, StoreError> {
    let mut q = requests::table
        .filter(requests::received_at.ge(from))
        .filter(requests::received_at.lt(to))
        .into_boxed();
    if let Some(r) = regime {
        q = q.filter(requests::regime.eq(r.to_string()));
    }
    Ok(q.order(requests::received_at.asc())
        .select((
            requests::id,
            requests::kind,
            requests::regime,
            requests::state,
            requests::channel,
            requests::received_at,
            requests::due_at,
            requests::extended_due_at,
            requests::completed_at,
        ))
        .load(conn)?)
}

/// The earliest and latest receipt times (for the reports' year list).
pub fn received_span(
    conn: &mut StoreConn,
) -> Result<Option<(NaiveDateTime, NaiveDateTime)>, StoreError> {
    use diesel::dsl::{max, min};
    let (a, b): (Option<NaiveDateTime>, Option<NaiveDateTime>) = requests::table
        .select((min(requests::received_at), max(requests::received_at)))
        .first(conn)?;
    Ok(a.zip(b))
}
