//! API tokens: only their SHA-256 is stored; the token itself is shown once.

use super::models::ApiTokenRow;
use super::schema::api_tokens::dsl as t;
use super::{StoreConn, StoreError, now};
use crate::crypto::{random_token, sha256_hex};
use crate::request::Role;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Creates a token; returns the row and the token text (never stored).
pub fn create(
    conn: &mut StoreConn,
    role: Role,
    label: &str,
    expires_at: Option<NaiveDateTime>,
) -> Result<(ApiTokenRow, String), StoreError> {
    let token = random_token("lethe_");
    let row = ApiTokenRow {
        id: uuid::Uuid::now_v7().to_string(),
        token_hash: sha256_hex(token.as_bytes()),
        role: role.as_str().to_string(),
        label: label.to_string(),
        created_at: now(),
        expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    diesel::insert_into(t::api_tokens)
        .values(&row)
        .execute(conn)?;
    Ok((row, token))
}

/// The live (not revoked, not expired) token with this text, if any.
pub fn authenticate(conn: &mut StoreConn, token: &str) -> Result<Option<ApiTokenRow>, StoreError> {
    let hash = sha256_hex(token.as_bytes());
    let row: Option<ApiTokenRow> = t::api_tokens
        .filter(t::token_hash.eq(&hash))
        .first(conn)
        .optional()?;
    let now = now();
    Ok(row.filter(|r| r.revoked_at.is_none() && r.expires_at.is_none_or(|e| e > now)))
}

pub fn list(conn: &mut StoreConn) -> Result<Vec<ApiTokenRow>, StoreError> {
    Ok(t::api_tokens.order(t::created_at.asc()).load(conn)?)
}

pub fn revoke(conn: &mut StoreConn, id: &str) -> Result<(), StoreError> {
    let n = diesel::update(
        t::api_tokens
            .filter(t::id.eq(id))
            .filter(t::revoked_at.is_null()),
    )
    .set(t::revoked_at.eq(Some(now())))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
