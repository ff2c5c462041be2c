//! `/api/v1/holds`: legal holds on a person, a table or rows.

use crate::app::AppState;
use crate::error::ApiError;
use crate::hold::{self, HoldScope, NewHold};
use crate::http::auth::{Caller, Officer};
use crate::http::blocking;
use crate::http::extract::{ApiJson, ApiQuery};
use crate::policy::ExemptionGround;
use crate::source::Value;
use crate::store::models::HoldRow;
use crate::store::{StoreError, now};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json_, json};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateHold {
    /// subject | table | rows
    pub scope: String,
    /// scope subject: `{"email": "..."}` or `[{"kind", "value"}]`
    pub identities: Option<super::requests::IdentitiesInput>,
    /// scope table | rows
    pub table: Option<String>,
    /// scope rows: primary-key values per row, e.g. `[[42], [43]]`
    pub keys: Option<Vec<Vec<Json_>>>,
    pub matter: String,
    pub reason: String,
    /// legal_claims (default) | legal_obligation | public_interest | ...
    pub ground: Option<String>,
    pub expires_at: Option<String>,
}

fn json_value(v: Json_) -> Result<Value, ApiError> {
    Ok(match v {
        Json_::Null => Value::Null,
        Json_::Bool(b) => Value::Bool(b),
        Json_::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or_default()),
        },
        Json_::String(s) => Value::Text(s),
        _ => {
            return Err(ApiError::invalid(
                "keys",
                "key values must be strings or numbers",
            ));
        }
    })
}

/// A hold for the API (identities only as masks).
pub fn hold_view(h: &HoldRow) -> Json_ {
    json!({
        "id": h.id,
        "scope": h.scope,
        "subject": h.identity_summary,
        "table": h.table_name,
        "keys": h.row_keys.as_deref().and_then(|k| serde_json::from_str::<Json_>(k).ok()),
        "matter": h.matter,
        "reason": h.reason,
        "ground": h.ground,
        "citation": ExemptionGround::parse(&h.ground).map(|g| g.citation()),
        "issued_by": h.issued_by,
        "created_at": crate::audit::format_time(&h.created_at),
        "expires_at": h.expires_at.as_ref().map(crate::audit::format_time),
        "released_at": h.released_at.as_ref().map(crate::audit::format_time),
        "released_by": h.released_by,
        "release_reason": h.release_reason,
        "active": hold::is_active(h, now()),
    })
}

pub async fn create(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiJson(b): ApiJson<CreateHold>,
) -> Result<Response, ApiError> {
    let new = new_hold(b)?;
    let v = blocking(&app, move |app| -> Result<Json_, ApiError> {
        let row = hold::create(app, &actor, new)?;
        Ok(hold_view(&row))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// Checks a hold as submitted (API body or web form) and turns it into a [`NewHold`].
pub fn new_hold(b: CreateHold) -> Result<NewHold, ApiError> {
    let scope = match b.scope.as_str() {
        "subject" => {
            let ids = match b.identities {
                Some(super::requests::IdentitiesInput::List(l)) => {
                    l.into_iter().map(|i| (i.kind, i.value)).collect()
                }
                Some(super::requests::IdentitiesInput::Map(m)) => m.into_iter().collect::<Vec<_>>(),
                None => {
                    return Err(ApiError::invalid(
                        "identities",
                        "a subject hold needs the person's identities",
                    ));
                }
            };
            HoldScope::Subject(ids)
        }
        "table" => HoldScope::Table(
            b.table
                .ok_or_else(|| ApiError::invalid("table", "a table hold names the table"))?,
        ),
        "rows" => {
            let table = b
                .table
                .ok_or_else(|| ApiError::invalid("table", "a row hold names the table"))?;
            let keys = b
                .keys
                .ok_or_else(|| {
                    ApiError::invalid("keys", "a row hold lists the rows' primary keys")
                })?
                .into_iter()
                .map(|k| k.into_iter().map(json_value).collect::<Result<Vec<_>, _>>())
                .collect::<Result<Vec<_>, _>>()?;
            HoldScope::Rows { table, keys }
        }
        other => {
            return Err(ApiError::invalid(
                "scope",
                format!("unknown value \"{other}\"; expected subject, table or rows"),
            ));
        }
    };
    let ground = match b.ground.as_deref() {
        None => ExemptionGround::LegalClaims,
        Some(g) => ExemptionGround::parse(g).ok_or_else(|| {
            ApiError::invalid(
                "ground",
                format!(
                    "unknown value \"{g}\"; expected one of: {}",
                    ExemptionGround::NAMES.join(", ")
                ),
            )
        })?,
    };
    let expires_at = b
        .expires_at
        .as_deref()
        .map(super::requests::parse_received)
        .transpose()
        .map_err(|_| ApiError::invalid("expires_at", "expected an RFC 3339 timestamp or a date"))?;
    Ok(NewHold {
        scope,
        matter: b.matter,
        reason: b.reason,
        ground,
        expires_at,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `true` (default): only holds in force.
    pub active: Option<bool>,
}

pub async fn list(
    State(app): State<AppState>,
    Caller(_actor): Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Json_>, ApiError> {
    blocking(&app, move |app| -> Result<Json<Json_>, ApiError> {
        let rows = app
            .store
            .read(|c| hold::list(c, q.active.unwrap_or(true)))?;
        Ok(Json(
            json!({"holds": rows.iter().map(hold_view).collect::<Vec<_>>()}),
        ))
    })
    .await
}

pub async fn show(
    State(app): State<AppState>,
    Caller(_actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    blocking(&app, move |app| -> Result<Json<Json_>, ApiError> {
        let h = app.store.read(|c| hold::get(c, &id)).map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(format!("hold {id} not found")),
            other => other.into(),
        })?;
        Ok(Json(hold_view(&h)))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    pub reason: String,
}

pub async fn release(
    State(app): State<AppState>,
    Officer(actor): Officer,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReleaseBody>,
) -> Result<Json<Json_>, ApiError> {
    blocking(&app, move |app| -> Result<Json<Json_>, ApiError> {
        Ok(Json(hold_view(&release_hold(app, &actor, &id, &b.reason)?)))
    })
    .await
}

/// Releases a hold (API or web form); an unknown hold is a 404 naming it.
pub fn release_hold(
    app: &crate::app::App,
    actor: &crate::app::Actor,
    id: &str,
    reason: &str,
) -> Result<HoldRow, ApiError> {
    hold::release(app, actor, id, reason).map_err(|e| match e {
        crate::request::RequestError::NotFound(id) => {
            ApiError::not_found(format!("hold {id} not found"))
        }
        other => other.into(),
    })
}
