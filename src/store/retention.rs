//! Retention runs and the per-rule leases.

use super::models::RunRow;
use super::schema::{retention_leases, retention_runs};
use super::{StoreConn, StoreError, now};
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub fn insert_run(conn: &mut StoreConn, row: &RunRow) -> Result<(), StoreError> {
    diesel::insert_into(retention_runs::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn save_run(conn: &mut StoreConn, row: &RunRow) -> Result<(), StoreError> {
    diesel::update(retention_runs::table.find(&row.id))
        .set(row)
        .execute(conn)?;
    Ok(())
}

pub fn get_run(conn: &mut StoreConn, id: &str) -> Result<RunRow, StoreError> {
    Ok(retention_runs::table.find(id).first(conn)?)
}

/// Runs, newest first, optionally of one rule.
pub fn runs(
    conn: &mut StoreConn,
    rule: Option<&str>,
    limit: i64,
) -> Result<Vec<RunRow>, StoreError> {
    let mut q = retention_runs::table.into_boxed();
    if let Some(r) = rule {
        q = q.filter(retention_runs::rule.eq(r.to_string()));
    }
    Ok(q.order(retention_runs::started_at.desc())
        .limit(limit.clamp(1, 1000))
        .load(conn)?)
}

/// The unfinished run of a rule, if any (to resume): running, or waiting for a source.
pub fn running(conn: &mut StoreConn, rule: &str) -> Result<Option<RunRow>, StoreError> {
    Ok(retention_runs::table
        .filter(retention_runs::rule.eq(rule))
        .filter(retention_runs::status.eq_any(["running", "waiting"]))
        .order(retention_runs::started_at.desc())
        .first(conn)
        .optional()?)
}

/// When the rule's latest run started.
pub fn last_start(conn: &mut StoreConn, rule: &str) -> Result<Option<NaiveDateTime>, StoreError> {
    Ok(retention_runs::table
        .filter(retention_runs::rule.eq(rule))
        .select(diesel::dsl::max(retention_runs::started_at))
        .first(conn)?)
}

/// Takes (or renews) the lease of a rule for `ttl_secs`. Returns false when another owner
/// holds an unexpired lease. Runs inside the caller's write transaction.
pub fn acquire_lease(
    conn: &mut StoreConn,
    rule: &str,
    owner: &str,
    run_id: Option<&str>,
    ttl_secs: i64,
) -> Result<bool, StoreError> {
    let at = now();
    let until = at + chrono::Duration::seconds(ttl_secs);
    let taken = diesel::update(
        retention_leases::table
            .filter(retention_leases::rule.eq(rule))
            .filter(
                retention_leases::owner
                    .eq(owner)
                    .or(retention_leases::expires_at.lt(at)),
            ),
    )
    .set((
        retention_leases::owner.eq(owner),
        retention_leases::run_id.eq(run_id),
        retention_leases::expires_at.eq(until),
    ))
    .execute(conn)?;
    if taken > 0 {
        return Ok(true);
    }
    let exists: i64 = retention_leases::table
        .filter(retention_leases::rule.eq(rule))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Ok(false);
    }
    // ON CONFLICT DO NOTHING: a racing replica that inserts first wins without aborting
    // this transaction (per-backend SQL: the placeholders differ).
    use diesel::sql_types::{Nullable, Text, Timestamp};
    let sql = |p: [&str; 4]| {
        format!(
            "INSERT INTO retention_leases (rule, owner, run_id, expires_at) VALUES ({}, {}, {}, {}) ON CONFLICT (rule) DO NOTHING",
            p[0], p[1], p[2], p[3]
        )
    };
    let inserted = match conn {
        StoreConn::Sqlite(c) => diesel::sql_query(sql(["?", "?", "?", "?"]))
            .bind::<Text, _>(rule)
            .bind::<Text, _>(owner)
            .bind::<Nullable<Text>, _>(run_id)
            .bind::<Timestamp, _>(until)
            .execute(c)?,
        StoreConn::Postgres(c) => diesel::sql_query(sql(["$1", "$2", "$3", "$4"]))
            .bind::<Text, _>(rule)
            .bind::<Text, _>(owner)
            .bind::<Nullable<Text>, _>(run_id)
            .bind::<Timestamp, _>(until)
            .execute(c)?,
    };
    Ok(inserted > 0)
}

pub fn release_lease(conn: &mut StoreConn, rule: &str, owner: &str) -> Result<(), StoreError> {
    diesel::delete(
        retention_leases::table
            .filter(retention_leases::rule.eq(rule))
            .filter(retention_leases::owner.eq(owner)),
    )
    .execute(conn)?;
    Ok(())
}
