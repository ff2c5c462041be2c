//! Export metadata and download links. The export data lives in encrypted files
//! (`crate::export`); a link's token is never stored, only its SHA-256.

use super::models::{ExportLinkRow, ExportRow};
use super::schema::export_links::dsl as l;
use super::schema::exports::dsl as x;
use super::{StoreConn, StoreError};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Stores (or replaces) a request's export; returns the file id of the export it replaced.
pub fn put(conn: &mut StoreConn, row: &ExportRow) -> Result<Option<String>, StoreError> {
    let old: Option<Option<String>> = x::exports
        .find(&row.request_id)
        .select(x::file_id)
        .first(conn)
        .optional()?;
    diesel::delete(x::exports.find(&row.request_id)).execute(conn)?;
    diesel::insert_into(x::exports).values(row).execute(conn)?;
    Ok(old.flatten())
}

pub fn get(conn: &mut StoreConn, request_id: &str) -> Result<ExportRow, StoreError> {
    Ok(x::exports.find(request_id).first(conn)?)
}

/// Exports due for deletion at `now` (not deleted yet): their expiry passed, or, for rows
/// from before expiries were recorded, they were made before `legacy_before`.
pub fn expired(
    conn: &mut StoreConn,
    now: NaiveDateTime,
    legacy_before: NaiveDateTime,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    Ok(x::exports
        .filter(x::deleted_at.is_null())
        .filter(
            x::expires_at
                .lt(now)
                .or(x::expires_at.is_null().and(x::created_at.lt(legacy_before))),
        )
        .select((x::request_id, x::file_id))
        .load(conn)?)
}

/// Records that an export's data was deleted (and drops a legacy sealed payload).
pub fn mark_deleted(
    conn: &mut StoreConn,
    request_id: &str,
    at: NaiveDateTime,
) -> Result<(), StoreError> {
    diesel::update(x::exports.find(request_id))
        .set((
            x::deleted_at.eq(Some(at)),
            x::payload_enc.eq(None::<Vec<u8>>),
        ))
        .execute(conn)?;
    Ok(())
}

/// File ids of exports whose files should exist.
pub fn live_file_ids(conn: &mut StoreConn) -> Result<Vec<String>, StoreError> {
    let ids: Vec<Option<String>> = x::exports
        .filter(x::deleted_at.is_null())
        .filter(x::file_id.is_not_null())
        .select(x::file_id)
        .load(conn)?;
    Ok(ids.into_iter().flatten().collect())
}

pub fn insert_link(conn: &mut StoreConn, row: &ExportLinkRow) -> Result<(), StoreError> {
    diesel::insert_into(l::export_links)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The link whose token has this SHA-256 (hex), if any.
pub fn link_by_hash(
    conn: &mut StoreConn,
    token_hash: &str,
) -> Result<Option<ExportLinkRow>, StoreError> {
    Ok(l::export_links
        .filter(l::token_hash.eq(token_hash))
        .first(conn)
        .optional()?)
}

/// Counts one download through a link.
pub fn count_use(conn: &mut StoreConn, id: &str, at: NaiveDateTime) -> Result<(), StoreError> {
    diesel::update(l::export_links.find(id))
        .set((l::uses.eq(l::uses + 1), l::last_used_at.eq(Some(at))))
        .execute(conn)?;
    Ok(())
}

/// A request's links, newest first.
pub fn links_for(conn: &mut StoreConn, request_id: &str) -> Result<Vec<ExportLinkRow>, StoreError> {
    Ok(l::export_links
        .filter(l::request_id.eq(request_id))
        .order(l::created_at.desc())
        .load(conn)?)
}

/// Deletes links that expired before `before` (kept until then to answer 410 Gone rather
/// than 404); returns how many.
pub fn delete_links_expired_before(
    conn: &mut StoreConn,
    before: NaiveDateTime,
) -> Result<usize, StoreError> {
    Ok(diesel::delete(l::export_links.filter(l::expires_at.lt(before))).execute(conn)?)
}
