//! Web UI sessions: the cookie's secret is never stored, only its SHA-256. A session lives
//! until its expiry, sign-out, or the revocation or expiry of the token it was opened with.

use super::models::{ApiTokenRow, WebSessionRow};
use super::schema::api_tokens::dsl as t;
use super::schema::web_sessions::dsl as s;
use super::{StoreConn, StoreError, now};
use crate::crypto::{random_token, sha256_hex};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Opens a session for a live token; returns the row and the cookie secret (never stored).
/// The session ends at `expires_at` or at the token's own expiry, whichever is first.
pub fn open(
    conn: &mut StoreConn,
    token: &ApiTokenRow,
    expires_at: NaiveDateTime,
) -> Result<(WebSessionRow, String), StoreError> {
    let secret = random_token("");
    let expires_at = token.expires_at.map_or(expires_at, |e| e.min(expires_at));
    let row = WebSessionRow {
        id: sha256_hex(secret.as_bytes()),
        token_id: token.id.clone(),
        role: token.role.clone(),
        label: token.label.clone(),
        csrf: random_token(""),
        created_at: now(),
        expires_at,
    };
    // Expired sessions are swept here, so the table never grows without bound.
    diesel::delete(s::web_sessions.filter(s::expires_at.le(now()))).execute(conn)?;
    diesel::insert_into(s::web_sessions)
        .values(&row)
        .execute(conn)?;
    Ok((row, secret))
}

/// The live session for this cookie secret: not expired, and its token neither revoked
/// nor expired.
pub fn find(conn: &mut StoreConn, secret: &str) -> Result<Option<WebSessionRow>, StoreError> {
    let id = sha256_hex(secret.as_bytes());
    let row: Option<(WebSessionRow, ApiTokenRow)> = s::web_sessions
        .inner_join(t::api_tokens.on(t::id.eq(s::token_id)))
        .filter(s::id.eq(&id))
        .first(conn)
        .optional()?;
    let now = now();
    Ok(row.and_then(|(sess, tok)| {
        let live = sess.expires_at > now
            && tok.revoked_at.is_none()
            && tok.expires_at.is_none_or(|e| e > now);
        live.then_some(sess)
    }))
}

/// Ends a session (sign-out). Ending one that is already gone is not an error.
pub fn close(conn: &mut StoreConn, id: &str) -> Result<(), StoreError> {
    diesel::delete(s::web_sessions.filter(s::id.eq(id))).execute(conn)?;
    Ok(())
}
