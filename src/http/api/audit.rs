//! `/api/v1/audit`: the audit log (newest first) and the state of its chain.

use crate::app::AppState;
use crate::audit;
use crate::cert::keys;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::Caller;
use crate::http::blocking;
use crate::http::extract::ApiQuery;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// Paging of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Entries before this sequence number.
    pub before: Option<i64>,
}

/// One audit entry (identities only as keyed subject references).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub object: String,
    /// The action's details (free-form; never identity values).
    #[schema(value_type = Option<Object>)]
    pub details: Value,
    /// `SHA-256(prev_hash || JCS(entry))`, hex.
    pub hash: String,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<i64>,
}

/// The audit log, newest first.
///
/// Role: any.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of entries", body = AuditPage),
        (status = 422, description = "`limit` outside 1..=1000, `before` not a number, or an unknown parameter", body = ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    Caller(_a): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    blocking(&app, move |app| -> Result<Json<AuditPage>, ApiError> {
        let rows = app.store.read(|c| audit::page(c, q.before, limit))?;
        let entries: Vec<AuditEntry> = rows
            .iter()
            .map(|r| AuditEntry {
                seq: r.seq,
                at: audit::format_time(&r.at),
                actor: r.actor.clone(),
                action: r.action.clone(),
                object: r.object.clone(),
                details: serde_json::from_str::<Value>(&r.details).unwrap_or(Value::Null),
                hash: r.hash.clone(),
            })
            .collect();
        let next_before = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|r| r.seq))
            .flatten();
        Ok(Json(AuditPage {
            entries,
            next_before,
        }))
    })
    .await
}

/// The state of the audit chain and its signed checkpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditVerification {
    /// The chain and every checkpoint verify.
    pub valid: bool,
    pub entries: u64,
    pub head: ChainHead,
    /// The first entry that does not verify.
    pub first_bad_entry: Option<BadItem>,
    /// Signed checkpoints checked.
    pub checkpoints: u64,
    pub last_checkpoint_seq: Option<i64>,
    /// The first checkpoint that does not verify.
    pub bad_checkpoint: Option<BadItem>,
}

/// The newest entry of the chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

/// An entry or checkpoint that does not verify, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct BadItem {
    pub seq: i64,
    pub reason: String,
}

fn bad(item: Option<&(i64, String)>) -> Option<BadItem> {
    item.map(|(seq, reason)| BadItem {
        seq: *seq,
        reason: reason.clone(),
    })
}

/// Re-verifies the whole hash chain and the signed checkpoints.
///
/// Role: any.
#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    tag = "audit",
    responses((status = 200, description = "The verification (a broken chain is a 200 with `valid: false`)", body = AuditVerification))
)]
pub async fn verify(
    State(app): State<AppState>,
    Caller(_a): Caller,
) -> Result<Json<AuditVerification>, ApiError> {
    blocking(&app, |app| -> Result<Json<AuditVerification>, ApiError> {
        let r = app.store.read(|c| {
            let jwks = keys::jwks(c)?;
            audit::verify_full(c, &jwks)
        })?;
        Ok(Json(AuditVerification {
            valid: r.is_valid(),
            entries: r.chain.entries,
            head: ChainHead {
                seq: r.chain.head_seq,
                hash: r.chain.head_hash.clone(),
            },
            first_bad_entry: bad(r.chain.first_bad.as_ref()),
            checkpoints: r.checkpoints,
            last_checkpoint_seq: r.last_checkpoint_seq,
            bad_checkpoint: bad(r.bad_checkpoint.as_ref()),
        }))
    })
    .await
}
