//! Plans, executed steps and per-subject keys of erasure-type requests.

use super::models::{PlanRow, StepRow};
use super::schema::{erasure_steps, plans, subject_keys};
use super::{StoreConn, StoreError, now};
use diesel::prelude::*;

pub fn put_plan(conn: &mut StoreConn, row: &PlanRow) -> Result<(), StoreError> {
    diesel::delete(plans::table.find(&row.request_id)).execute(conn)?;
    diesel::insert_into(plans::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn get_plan(conn: &mut StoreConn, request_id: &str) -> Result<PlanRow, StoreError> {
    Ok(plans::table.find(request_id).first(conn)?)
}

pub fn steps(conn: &mut StoreConn, request_id: &str) -> Result<Vec<StepRow>, StoreError> {
    Ok(erasure_steps::table
        .filter(erasure_steps::request_id.eq(request_id))
        .load(conn)?)
}

pub fn clear_steps(conn: &mut StoreConn, request_id: &str) -> Result<(), StoreError> {
    diesel::delete(erasure_steps::table.filter(erasure_steps::request_id.eq(request_id)))
        .execute(conn)?;
    Ok(())
}

/// Records a source as done; a second record for the same source is a no-op.
pub fn record_step(conn: &mut StoreConn, row: &StepRow) -> Result<(), StoreError> {
    let exists: i64 = erasure_steps::table
        .filter(erasure_steps::request_id.eq(&row.request_id))
        .filter(erasure_steps::source.eq(&row.source))
        .count()
        .get_result(conn)?;
    if exists == 0 {
        diesel::insert_into(erasure_steps::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Stores (or replaces) the sealed key of a request's subject.
pub fn put_subject_key(
    conn: &mut StoreConn,
    request_id: &str,
    sealed: &[u8],
) -> Result<(), StoreError> {
    diesel::delete(subject_keys::table.find(request_id)).execute(conn)?;
    diesel::insert_into(subject_keys::table)
        .values((
            subject_keys::request_id.eq(request_id),
            subject_keys::key_enc.eq(Some(sealed.to_vec())),
            subject_keys::created_at.eq(now()),
            subject_keys::shredded_at.eq(None::<chrono::NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

/// The sealed subject key, if it exists and was not shredded.
pub fn subject_key(conn: &mut StoreConn, request_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let row: Option<Option<Vec<u8>>> = subject_keys::table
        .find(request_id)
        .select(subject_keys::key_enc)
        .first(conn)
        .optional()?;
    Ok(row.flatten())
}

/// Deletes the key material (crypto-shredding); returns whether a key was shredded.
pub fn shred_subject_key(conn: &mut StoreConn, request_id: &str) -> Result<bool, StoreError> {
    let n = diesel::update(
        subject_keys::table
            .find(request_id)
            .filter(subject_keys::key_enc.is_not_null()),
    )
    .set((
        subject_keys::key_enc.eq(None::<Vec<u8>>),
        subject_keys::shredded_at.eq(Some(now())),
    ))
    .execute(conn)?;
    Ok(n > 0)
}
