//! The job table: enqueue, claim with a lease, renew, finish, retry.
//!
//! Claims are single statements. On PostgreSQL the candidate row is picked with
//! `FOR UPDATE SKIP LOCKED`, so replicas polling at the same moment claim different jobs
//! instead of queueing behind each other; on SQLite the write transaction (BEGIN IMMEDIATE)
//! already serializes claimers. A job is claimable when it is queued and due, or when it is
//! running under a lease that expired (its worker died or hung).

use super::models::JobRow;
use super::schema::jobs;
use super::{StoreConn, StoreError, now};
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Text, Timestamp};

/// Job states.
pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";

/// What to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub target: &'a str,
    pub args: String,
    /// At most one job ever carries this key (a scheduled occurrence).
    pub dedupe_key: Option<String>,
    pub run_after: NaiveDateTime,
}

fn row(job: &NewJob<'_>, state: &str, owner: Option<&str>, until: Option<NaiveDateTime>) -> JobRow {
    let at = now();
    JobRow {
        id: format!("job-{}", uuid::Uuid::now_v7()),
        kind: job.kind.to_string(),
        target: job.target.to_string(),
        args: job.args.clone(),
        dedupe_key: job.dedupe_key.clone(),
        state: state.to_string(),
        run_after: job.run_after,
        lease_owner: owner.map(str::to_string),
        lease_expires_at: until,
        attempts: i32::from(owner.is_some()),
        last_error: None,
        created_at: at,
        updated_at: at,
        finished_at: None,
    }
}

/// Inserts a row unless a unique index (one live job per target, one job per dedupe key)
/// already holds it. `ON CONFLICT DO NOTHING` keeps a racing replica's insert from aborting
/// the caller's transaction.
fn insert_or_skip(conn: &mut StoreConn, r: &JobRow) -> Result<bool, StoreError> {
    let sql = |p: &dyn Fn(usize) -> String| {
        format!(
            "INSERT INTO jobs (id, kind, target, args, dedupe_key, state, run_after, lease_owner, \
             lease_expires_at, attempts, last_error, created_at, updated_at, finished_at) \
             VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, NULL, {}, {}, NULL) ON CONFLICT DO NOTHING",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6),
            p(7),
            p(8),
            p(9),
            p(10),
            p(11),
            p(12)
        )
    };
    macro_rules! run {
        ($c:expr, $text:expr) => {
            diesel::sql_query($text)
                .bind::<Text, _>(&r.id)
                .bind::<Text, _>(&r.kind)
                .bind::<Text, _>(&r.target)
                .bind::<Text, _>(&r.args)
                .bind::<Nullable<Text>, _>(&r.dedupe_key)
                .bind::<Text, _>(&r.state)
                .bind::<Timestamp, _>(r.run_after)
                .bind::<Nullable<Text>, _>(&r.lease_owner)
                .bind::<Nullable<Timestamp>, _>(r.lease_expires_at)
                .bind::<Integer, _>(r.attempts)
                .bind::<Timestamp, _>(r.created_at)
                .bind::<Timestamp, _>(r.updated_at)
                .execute($c)?
        };
    }
    let n = match conn {
        StoreConn::Sqlite(c) => run!(c, sql(&|_| "?".to_string())),
        StoreConn::Postgres(c) => run!(c, sql(&|i| format!("${i}"))),
    };
    Ok(n > 0)
}

/// Queues a job. Returns false when the target already has a live job or the dedupe key was
/// used before (both mean the work is, or was, already scheduled).
pub fn enqueue(conn: &mut StoreConn, job: &NewJob<'_>) -> Result<bool, StoreError> {
    insert_or_skip(conn, &row(job, QUEUED, None, None))
}

/// Queues a job already claimed by `owner` (the process that will run it at once), so no
/// other worker can take it between the insert and the claim. None when the target already
/// has a live job.
pub fn enqueue_claimed(
    conn: &mut StoreConn,
    job: &NewJob<'_>,
    owner: &str,
    lease: Duration,
) -> Result<Option<JobRow>, StoreError> {
    let r = row(job, RUNNING, Some(owner), Some(now() + lease));
    Ok(insert_or_skip(conn, &r)?.then_some(r))
}

/// Claims the next due job (queued and due, or running under an expired lease), oldest due
/// first. `target` restricts the claim to one job's target (run it now, ignoring its
/// back-off).
pub fn claim(
    conn: &mut StoreConn,
    owner: &str,
    lease: Duration,
    target: Option<(&str, &str)>,
) -> Result<Option<JobRow>, StoreError> {
    let at = now();
    let until = at + lease;
    let (kind, tgt) = target.unwrap_or(("", ""));
    let one = i32::from(target.is_some());
    // The due condition: with a target, a queued job is claimable before its run_after.
    let text = |p: &dyn Fn(usize) -> String, lock: &str| {
        format!(
            "UPDATE jobs SET state = 'running', lease_owner = {owner}, lease_expires_at = {until}, \
             attempts = attempts + 1, updated_at = {at} \
             WHERE id IN (SELECT id FROM jobs WHERE \
               ((state = 'queued' AND (run_after <= {at} OR {one} = 1)) \
                OR (state = 'running' AND lease_expires_at < {at})) \
               AND ({one} = 0 OR (kind = {kind} AND target = {tgt})) \
               ORDER BY run_after, id LIMIT 1{lock}) \
             RETURNING *",
            owner = p(1),
            until = p(2),
            at = p(3),
            one = p(4),
            kind = p(5),
            tgt = p(6),
        )
    };
    macro_rules! run {
        ($c:expr, $text:expr) => {
            diesel::sql_query($text)
                .bind::<Text, _>(owner)
                .bind::<Timestamp, _>(until)
                .bind::<Timestamp, _>(at)
                .bind::<Integer, _>(one)
                .bind::<Text, _>(kind)
                .bind::<Text, _>(tgt)
                .get_results::<JobRow>($c)?
        };
    }
    // Positional parameters are numbered on PostgreSQL and may repeat; SQLite's `?NNN`
    // does the same.
    let rows = match conn {
        StoreConn::Sqlite(c) => run!(c, text(&|i| format!("?{i}"), "")),
        StoreConn::Postgres(c) => run!(c, text(&|i| format!("${i}"), " FOR UPDATE SKIP LOCKED")),
    };
    Ok(rows.into_iter().next())
}

/// Extends the lease of a job this owner still holds. False when the lease was lost (it
/// expired and another worker claimed the job).
pub fn renew(
    conn: &mut StoreConn,
    id: &str,
    owner: &str,
    lease: Duration,
) -> Result<bool, StoreError> {
    let at = now();
    let n = diesel::update(
        jobs::table
            .find(id)
            .filter(jobs::lease_owner.eq(owner))
            .filter(jobs::state.eq(RUNNING)),
    )
    .set((
        jobs::lease_expires_at.eq(at + lease),
        jobs::updated_at.eq(at),
    ))
    .execute(conn)?;
    Ok(n > 0)
}

/// Ends a job this owner holds (done or failed). False when the lease was lost.
pub fn finish(
    conn: &mut StoreConn,
    id: &str,
    owner: &str,
    state: &str,
    error: Option<&str>,
) -> Result<bool, StoreError> {
    let at = now();
    let n = diesel::update(
        jobs::table
            .find(id)
            .filter(jobs::lease_owner.eq(owner))
            .filter(jobs::state.eq(RUNNING)),
    )
    .set((
        jobs::state.eq(state),
        jobs::lease_owner.eq(None::<String>),
        jobs::lease_expires_at.eq(None::<NaiveDateTime>),
        jobs::last_error.eq(error),
        jobs::updated_at.eq(at),
        jobs::finished_at.eq(Some(at)),
    ))
    .execute(conn)?;
    Ok(n > 0)
}

/// Puts a job this owner holds back in the queue, due at `run_after` (back-off after a
/// retryable error, or at once when a worker stops before it started the work).
pub fn requeue(
    conn: &mut StoreConn,
    id: &str,
    owner: &str,
    run_after: NaiveDateTime,
    error: Option<&str>,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        jobs::table
            .find(id)
            .filter(jobs::lease_owner.eq(owner))
            .filter(jobs::state.eq(RUNNING)),
    )
    .set((
        jobs::state.eq(QUEUED),
        jobs::run_after.eq(run_after),
        jobs::lease_owner.eq(None::<String>),
        jobs::lease_expires_at.eq(None::<NaiveDateTime>),
        jobs::last_error.eq(error),
        jobs::updated_at.eq(now()),
    ))
    .execute(conn)?;
    Ok(n > 0)
}

/// The live (queued or running) job of a target.
pub fn live(conn: &mut StoreConn, kind: &str, target: &str) -> Result<Option<JobRow>, StoreError> {
    Ok(jobs::table
        .filter(jobs::kind.eq(kind))
        .filter(jobs::target.eq(target))
        .filter(jobs::state.eq_any([QUEUED, RUNNING]))
        .first(conn)
        .optional()?)
}

/// Jobs, newest first, optionally in one state.
pub fn list(
    conn: &mut StoreConn,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRow>, StoreError> {
    let mut q = jobs::table.into_boxed();
    if let Some(s) = state {
        q = q.filter(jobs::state.eq(s.to_string()));
    }
    Ok(q.order(jobs::created_at.desc())
        .limit(limit.clamp(1, 1000))
        .load(conn)?)
}

/// Queue depth: (kind, state, count) for live jobs.
pub fn depth(conn: &mut StoreConn) -> Result<Vec<(String, String, i64)>, StoreError> {
    Ok(jobs::table
        .filter(jobs::state.eq_any([QUEUED, RUNNING]))
        .group_by((jobs::kind, jobs::state))
        .select((jobs::kind, jobs::state, diesel::dsl::count_star()))
        .load(conn)?)
}

/// Ends the lease of a running job held by `owner` at once (its process is known to be
/// dead), so the job is claimable now rather than when the lease runs out.
pub fn expire_lease(conn: &mut StoreConn, id: &str, owner: &str) -> Result<bool, StoreError> {
    let at = now();
    let n = diesel::update(
        jobs::table
            .find(id)
            .filter(jobs::lease_owner.eq(owner))
            .filter(jobs::state.eq(RUNNING)),
    )
    .set(jobs::lease_expires_at.eq(Some(at - Duration::seconds(1))))
    .execute(conn)?;
    Ok(n > 0)
}
