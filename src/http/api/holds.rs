//! `/api/v1/holds`: legal holds on a person, a table or rows.

use crate::app::AppState;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::hold::{self, HoldScope, NewHold};
use crate::http::auth::{Caller, Officer};
use crate::http::blocking;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::openapi::OfficerOnly;
use crate::policy::ExemptionGround;
use crate::source::Value;
use crate::store::models::HoldRow;
use crate::store::{StoreError, now};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json_;
use utoipa::{IntoParams, ToSchema};

/// A new legal hold.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateHold {
    /// subject | table | rows
    #[schema(value_type = HoldScopeName, example = "subject")]
    pub scope: String,
    /// scope subject: `{"email": "..."}` or `[{"kind", "value"}]`
    #[schema(example = json!({"email": "jane.doe@example.com"}))]
    pub identities: Option<super::requests::IdentitiesInput>,
    /// scope table | rows
    pub table: Option<String>,
    /// scope rows: primary-key values per row, e.g. `[[42], [43]]`
    #[schema(value_type = Option<Vec<Vec<crate::http::openapi::ColumnValue>>>)]
    pub keys: Option<Vec<Vec<Json_>>>,
    #[schema(example = "Doe v. Acme")]
    pub matter: String,
    #[schema(example = "litigation hold")]
    pub reason: String,
    /// legal_claims (default) | legal_obligation | public_interest | ...
    #[schema(value_type = Option<HoldGround>)]
    pub ground: Option<String>,
    /// RFC 3339 timestamp or a date (`2027-01-31`).
    pub expires_at: Option<String>,
}

/// What a hold covers.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum HoldScopeName {
    /// A person, by their identities.
    Subject,
    /// A whole table.
    Table,
    /// Rows of a table, by primary key.
    Rows,
}

/// The legal ground of a hold (`ExemptionGround`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum HoldGround {
    LegalObligation,
    LegalClaims,
    PublicInterest,
    FreedomOfExpression,
    PublicHealth,
}

/// A legal hold as the API shows it (a person only as masked identities).
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldView {
    pub id: String,
    #[schema(value_type = HoldScopeName)]
    pub scope: String,
    /// Masked identities (subject holds).
    pub subject: Option<String>,
    pub table: Option<String>,
    /// Primary-key values per row (row holds).
    #[schema(value_type = Option<Vec<Vec<serde_json::Value>>>)]
    pub keys: Option<Json_>,
    pub matter: String,
    pub reason: String,
    #[schema(value_type = HoldGround)]
    pub ground: String,
    pub citation: Option<&'static str>,
    pub issued_by: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub released_at: Option<String>,
    pub released_by: Option<String>,
    pub release_reason: Option<String>,
    /// In force now (not released, not expired).
    pub active: bool,
}

/// Legal holds, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldList {
    pub holds: Vec<HoldView>,
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
pub fn hold_view(h: &HoldRow) -> HoldView {
    HoldView {
        id: h.id.clone(),
        scope: h.scope.clone(),
        subject: h.identity_summary.clone(),
        table: h.table_name.clone(),
        keys: h
            .row_keys
            .as_deref()
            .and_then(|k| serde_json::from_str::<Json_>(k).ok()),
        matter: h.matter.clone(),
        reason: h.reason.clone(),
        ground: h.ground.clone(),
        citation: ExemptionGround::parse(&h.ground).map(|g| g.citation()),
        issued_by: h.issued_by.clone(),
        created_at: crate::audit::format_time(&h.created_at),
        expires_at: h.expires_at.as_ref().map(crate::audit::format_time),
        released_at: h.released_at.as_ref().map(crate::audit::format_time),
        released_by: h.released_by.clone(),
        release_reason: h.release_reason.clone(),
        active: hold::is_active(h, now()),
    }
}

/// Places a legal hold: on a person (by identities), a table, or rows by primary key.
/// Held rows are kept by erasures (as exemptions) and skipped by retention.
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/holds",
    tag = "holds",
    request_body = CreateHold,
    responses(
        (status = 201, description = "The hold", body = HoldView),
        (status = 422, description = "A field is invalid (unknown scope, ground, table or identity kind, missing identities, table or keys, a bad date); `field` names it", body = ErrorBody),
        OfficerOnly,
    )
)]
pub async fn create(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiJson(b): ApiJson<CreateHold>,
) -> Result<Response, ApiError> {
    let new = new_hold(b)?;
    let v = blocking(&app, move |app| -> Result<HoldView, ApiError> {
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

/// Which holds to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `true` (default): only holds in force.
    pub active: Option<bool>,
}

/// Legal holds, newest first (by default only those in force).
///
/// Role: any.
#[utoipa::path(
    get,
    path = "/api/v1/holds",
    tag = "holds",
    params(ListQuery),
    responses(
        (status = 200, description = "The holds", body = HoldList),
        (status = 422, description = "`active` is not true or false, or an unknown parameter", body = ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    Caller(_actor): Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<HoldList>, ApiError> {
    blocking(&app, move |app| -> Result<Json<HoldList>, ApiError> {
        let rows = app
            .store
            .read(|c| hold::list(c, q.active.unwrap_or(true)))?;
        Ok(Json(HoldList {
            holds: rows.iter().map(hold_view).collect(),
        }))
    })
    .await
}

/// One hold.
///
/// Role: any.
#[utoipa::path(
    get,
    path = "/api/v1/holds/{id}",
    tag = "holds",
    params(("id" = String, Path, description = "Hold id")),
    responses(
        (status = 200, description = "The hold", body = HoldView),
        (status = 404, description = "No hold has this id", body = ErrorBody),
    )
)]
pub async fn show(
    State(app): State<AppState>,
    Caller(_actor): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<HoldView>, ApiError> {
    blocking(&app, move |app| -> Result<Json<HoldView>, ApiError> {
        let h = app.store.read(|c| hold::get(c, &id)).map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(format!("hold {id} not found")),
            other => other.into(),
        })?;
        Ok(Json(hold_view(&h)))
    })
    .await
}

/// Why a hold is released.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    #[schema(example = "matter settled")]
    pub reason: String,
}

/// Releases a hold (it stays listed, no longer in force).
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/holds/{id}/release",
    tag = "holds",
    params(("id" = String, Path, description = "Hold id")),
    request_body = ReleaseBody,
    responses(
        (status = 200, description = "The hold afterwards", body = HoldView),
        (status = 404, description = "No hold has this id", body = ErrorBody),
        (status = 409, description = "The hold is already released", body = ErrorBody),
        (status = 422, description = "`reason` is missing or empty", body = ErrorBody),
        OfficerOnly,
    )
)]
pub async fn release(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ReleaseBody>,
) -> Result<Json<HoldView>, ApiError> {
    blocking(&app, move |app| -> Result<Json<HoldView>, ApiError> {
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
