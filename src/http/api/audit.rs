//! `/api/v1/audit`: the audit log (newest first) and the state of its chain.

use crate::app::AppState;
use crate::audit;
use crate::cert::keys;
use crate::error::ApiError;
use crate::http::auth::Caller;
use crate::http::blocking;
use crate::http::extract::ApiQuery;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<i64>,
    /// Entries before this sequence number.
    pub before: Option<i64>,
}

pub async fn list(
    State(app): State<AppState>,
    Caller(_a): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    blocking(&app, move |app| -> Result<Json<Value>, ApiError> {
        let rows = app.store.read(|c| audit::page(c, q.before, limit))?;
        let entries: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "seq": r.seq, "at": audit::format_time(&r.at), "actor": r.actor, "action": r.action,
                    "object": r.object, "details": serde_json::from_str::<Value>(&r.details).unwrap_or(Value::Null),
                    "hash": r.hash,
                })
            })
            .collect();
        let next = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.seq)).flatten();
        Ok(Json(json!({"entries": entries, "next_before": next})))
    })
    .await
}

pub async fn verify(
    State(app): State<AppState>,
    Caller(_a): Caller,
) -> Result<Json<Value>, ApiError> {
    blocking(&app, |app| -> Result<Json<Value>, ApiError> {
        let r = app.store.read(|c| {
            let jwks = keys::jwks(c)?;
            audit::verify_full(c, &jwks)
        })?;
        Ok(Json(json!({
            "valid": r.is_valid(),
            "entries": r.chain.entries,
            "head": {"seq": r.chain.head_seq, "hash": r.chain.head_hash},
            "first_bad_entry": r.chain.first_bad.as_ref().map(|(s, w)| json!({"seq": s, "reason": w})),
            "checkpoints": r.checkpoints,
            "last_checkpoint_seq": r.last_checkpoint_seq,
            "bad_checkpoint": r.bad_checkpoint.as_ref().map(|(s, w)| json!({"seq": s, "reason": w})),
        })))
    })
    .await
}
