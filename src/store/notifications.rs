//! Notices to processors and recipients, and their delivery state.

use super::models::NotificationRow;
use super::schema::notifications;
use super::{StoreConn, StoreError};
use diesel::prelude::*;

/// Delivery states.
pub const PENDING: &str = "pending";
pub const ACKNOWLEDGED: &str = "acknowledged";
pub const FAILED: &str = "failed";

/// Inserts the notices of a request that do not exist yet (one per recipient); returns the
/// rows that were new.
pub fn insert_missing(
    conn: &mut StoreConn,
    rows: &[NotificationRow],
) -> Result<Vec<NotificationRow>, StoreError> {
    let mut added = Vec::new();
    for r in rows {
        let exists: i64 = notifications::table
            .filter(notifications::request_id.eq(&r.request_id))
            .filter(notifications::recipient.eq(&r.recipient))
            .count()
            .get_result(conn)?;
        if exists == 0 {
            diesel::insert_into(notifications::table)
                .values(r)
                .execute(conn)?;
            added.push(r.clone());
        }
    }
    Ok(added)
}

pub fn get(conn: &mut StoreConn, id: &str) -> Result<NotificationRow, StoreError> {
    Ok(notifications::table.find(id).first(conn)?)
}

pub fn save(conn: &mut StoreConn, row: &NotificationRow) -> Result<(), StoreError> {
    diesel::update(notifications::table.find(&row.id))
        .set(row)
        .execute(conn)?;
    Ok(())
}

/// The notices of a request, by recipient.
pub fn for_request(
    conn: &mut StoreConn,
    request_id: &str,
) -> Result<Vec<NotificationRow>, StoreError> {
    Ok(notifications::table
        .filter(notifications::request_id.eq(request_id))
        .order(notifications::recipient.asc())
        .load(conn)?)
}

/// The requests that have a notice still pending.
pub fn requests_with_pending(
    conn: &mut StoreConn,
) -> Result<std::collections::BTreeSet<String>, StoreError> {
    Ok(notifications::table
        .filter(notifications::status.eq(PENDING))
        .select(notifications::request_id)
        .distinct()
        .load::<String>(conn)?
        .into_iter()
        .collect())
}
