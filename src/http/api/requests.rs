//! `/api/v1/requests`: create, list, show, verify, run and export data-subject requests.

use crate::app::{App, AppState};
use crate::erase::plan::Change;
use crate::error::ApiError;
use crate::http::auth::{Caller, Officer};
use crate::http::blocking;
use crate::http::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::request::export::to_csv_zip;
use crate::request::service::{self, NewRequest};
use crate::request::view::{CertificateRef, RequestView, identity_views, request_view};
use crate::request::workflow::Action;
use crate::request::{Channel, Regime, RequestKind, RequestState, Role};
use crate::source::Value;
use crate::store::models::RequestRow;
use crate::store::{now, requests as rq};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Identities as a list of `{kind, value}` or as an object `{"email": "..."}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum IdentitiesInput {
    List(Vec<IdentityInput>),
    Map(BTreeMap<String, String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityInput {
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub kind: String,
    pub regime: String,
    pub identities: IdentitiesInput,
    pub channel: Option<String>,
    /// RFC 3339 timestamp or a date (`2026-11-23`); defaults to now.
    pub received_at: Option<String>,
    pub note: Option<String>,
    /// Rectification: `[{"table", "column", "value"}]`.
    #[serde(default)]
    pub changes: Vec<ChangeInput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeInput {
    pub table: String,
    pub column: String,
    pub value: serde_json::Value,
}

fn parse_enum<T>(
    field: &str,
    value: &str,
    parse: impl Fn(&str) -> Option<T>,
    names: Vec<&'static str>,
) -> Result<T, ApiError> {
    parse(value).ok_or_else(|| {
        ApiError::invalid(
            field,
            format!(
                "unknown value \"{value}\"; expected one of: {}",
                names.join(", ")
            ),
        )
    })
}

/// Parses `received_at`: RFC 3339 (converted to UTC) or a plain date (midnight UTC).
pub fn parse_received(s: &str) -> Result<NaiveDateTime, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.naive_utc());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default());
    }
    Err(ApiError::invalid(
        "received_at",
        "expected an RFC 3339 timestamp or a date like 2026-11-23",
    ))
}

impl CreateBody {
    pub(crate) fn into_new(self) -> Result<NewRequest, ApiError> {
        let kind = parse_enum("kind", &self.kind, RequestKind::parse, RequestKind::names())?;
        let regime = parse_enum("regime", &self.regime, Regime::parse, Regime::names())?;
        let channel = match &self.channel {
            Some(c) => parse_enum("channel", c, Channel::parse, Channel::names())?,
            None => Channel::Api,
        };
        let received_at = self
            .received_at
            .as_deref()
            .map(parse_received)
            .transpose()?;
        let identities = match self.identities {
            IdentitiesInput::List(l) => l.into_iter().map(|i| (i.kind, i.value)).collect(),
            IdentitiesInput::Map(m) => m.into_iter().collect(),
        };
        let mut changes = Vec::new();
        for (i, c) in self.changes.into_iter().enumerate() {
            let value = match c.value {
                serde_json::Value::Null => Value::Null,
                serde_json::Value::Bool(b) => Value::Bool(b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => Value::Int(i),
                    None => Value::Float(n.as_f64().unwrap_or_default()),
                },
                serde_json::Value::String(s) => Value::Text(s),
                _ => {
                    return Err(ApiError::invalid(
                        format!("changes[{i}].value"),
                        "must be a string, number, boolean or null",
                    ));
                }
            };
            changes.push(Change {
                table: c.table,
                column: c.column,
                value,
            });
        }
        Ok(NewRequest {
            kind,
            regime,
            identities,
            channel,
            received_at,
            note: self.note,
            changes,
        })
    }
}

pub(crate) fn view(
    app: &App,
    row: &RequestRow,
    role: Role,
    detail: bool,
) -> Result<RequestView, ApiError> {
    let ids = if detail {
        Some(identity_views(
            &app.policy.datamap,
            &service::identities(app, row)?,
            role,
        ))
    } else {
        None
    };
    let (events, export) = if detail {
        app.store.read(|c| {
            let ev = rq::events(c, &row.id)?;
            let ex = rq::get_export(c, &row.id).ok();
            Ok((Some(ev), ex))
        })?
    } else {
        (None, None)
    };
    let mut v = request_view(row, role, ids, events, export.as_ref(), now());
    if detail {
        let certs = app
            .store
            .read(|c| crate::cert::issue::for_request(c, &row.id))?;
        v.certificates = Some(
            certs
                .iter()
                .map(|c| CertificateRef {
                    id: c.id.clone(),
                    kind: c.kind.clone(),
                    issued_at: crate::audit::format_time(&c.issued_at),
                    url: format!("/api/v1/certificates/{}", c.id),
                })
                .collect(),
        );
        let has_plan = app
            .store
            .read(|c| Ok(crate::store::erasure::get_plan(c, &row.id).is_ok()))?;
        if has_plan {
            v.plan_url = Some(format!("/api/v1/requests/{}/plan", row.id));
        }
        let (notices, job) = app.store.read(|c| {
            Ok((
                crate::store::notifications::for_request(c, &row.id)?,
                crate::store::jobs::live(
                    c,
                    crate::jobs::JobKind::RequestExecute.as_str(),
                    &row.id,
                )?,
            ))
        })?;
        if !notices.is_empty() {
            v.notifications = Some(crate::request::notices::summary(app, &notices));
        }
        v.job = job.map(|j| {
            serde_json::json!({
                "id": j.id, "state": j.state, "attempts": j.attempts,
                "run_after": crate::audit::format_time(&j.run_after),
                "last_error": j.last_error,
            })
        });
    }
    Ok(v)
}

pub async fn create(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Response, ApiError> {
    let new = body.into_new()?;
    let v = blocking(&app, move |app| -> Result<RequestView, ApiError> {
        let row = service::create(app, &actor, new)?;
        view(app, &row, actor.role, true)
    })
    .await?;
    let mut resp = (StatusCode::CREATED, Json(&v)).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/requests/{}", v.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Comma-separated states; `open` means every non-final state.
    pub state: Option<String>,
    pub kind: Option<String>,
    pub regime: Option<String>,
    /// `overdue` or `due_soon` (within 7 days).
    pub due: Option<String>,
    pub limit: Option<i64>,
    /// The last id of the previous page.
    pub cursor: Option<String>,
}

pub async fn list(
    State(app): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut f = rq::RequestFilter {
        limit: q.limit.unwrap_or(50),
        ..Default::default()
    };
    if !(1..=1000).contains(&f.limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    if let Some(s) = &q.state {
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "open" {
                f.states.extend(
                    RequestState::ALL
                        .iter()
                        .filter(|s| s.is_open())
                        .map(|s| s.as_str().to_string()),
                );
            } else {
                let st = parse_enum("state", part, RequestState::parse, RequestState::names())?;
                f.states.push(st.as_str().to_string());
            }
        }
    }
    if let Some(k) = &q.kind {
        f.kind = Some(
            parse_enum("kind", k, RequestKind::parse, RequestKind::names())?
                .as_str()
                .to_string(),
        );
    }
    if let Some(r) = &q.regime {
        f.regime = Some(
            parse_enum("regime", r, Regime::parse, Regime::names())?
                .as_str()
                .to_string(),
        );
    }
    match q.due.as_deref() {
        None => {}
        Some("overdue") => {
            f.due_before = Some(now());
        }
        Some("due_soon") => {
            f.due_before = Some(now() + chrono::Duration::days(7));
        }
        Some(other) => {
            return Err(ApiError::invalid(
                "due",
                format!("unknown value \"{other}\"; expected overdue or due_soon"),
            ));
        }
    }
    if q.due.is_some() && f.states.is_empty() {
        f.states.extend(
            RequestState::ALL
                .iter()
                .filter(|s| s.is_open())
                .map(|s| s.as_str().to_string()),
        );
    }
    f.before_id = q.cursor.clone();
    let limit = f.limit;
    blocking(
        &app,
        move |app| -> Result<Json<serde_json::Value>, ApiError> {
            let rows = app.store.read(|c| rq::list(c, &f))?;
            let next = (rows.len() as i64 == limit)
                .then(|| rows.last().map(|r| r.id.clone()))
                .flatten();
            let views: Vec<RequestView> = rows
                .iter()
                .map(|r| view(app, r, actor.role, false))
                .collect::<Result<_, _>>()?;
            Ok(Json(
                serde_json::json!({ "requests": views, "next_cursor": next }),
            ))
        },
    )
    .await
}

pub async fn show(
    State(app): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    blocking(&app, move |app| -> Result<Json<RequestView>, ApiError> {
        let row = service::get(app, &id)?;
        Ok(Json(view(app, &row, actor.role, true)?))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// How the identity was verified (see `service::VERIFICATION_METHODS`).
    pub method: String,
    pub note: Option<String>,
}

pub async fn verify(
    State(app): State<AppState>,
    Officer(actor): Officer,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Json<RequestView>, ApiError> {
    blocking(&app, move |app| -> Result<Json<RequestView>, ApiError> {
        let row = service::verify(app, &actor, &id, &body.method, body.note.as_deref())?;
        Ok(Json(view(app, &row, actor.role, true)?))
    })
    .await
}

/// Runs a workflow action and answers with the request as it is afterwards.
async fn act(
    app: AppState,
    actor: crate::app::Actor,
    f: impl FnOnce(&App, &crate::app::Actor) -> Result<RequestRow, crate::request::RequestError>
    + Send
    + 'static,
) -> Result<Json<RequestView>, ApiError> {
    blocking(&app, move |app| -> Result<Json<RequestView>, ApiError> {
        let row = f(app, &actor)?;
        Ok(Json(view(app, &row, actor.role, true)?))
    })
    .await
}

pub async fn run(
    State(app): State<AppState>,
    Officer(actor): Officer,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| service::run(app, a, &id)).await
}

/// Optional note, reason or notice of an action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    pub note: Option<String>,
    pub reason: Option<String>,
    pub notice: Option<String>,
}

pub async fn acknowledge(
    State(app): State<AppState>,
    Officer(actor): Officer,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<NoteBody>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        service::simple_transition(
            app,
            a,
            &id,
            Action::Acknowledge,
            b.note.as_deref(),
            serde_json::json!({}),
        )
    })
    .await
}

pub async fn request_identity(
    State(app): State<AppState>,
    Officer(actor): Officer,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<NoteBody>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        service::simple_transition(
            app,
            a,
            &id,
            Action::RequestIdentity,
            b.note.as_deref(),
            serde_json::json!({}),
        )
    })
    .await
}

pub async fn plan(
    State(app): State<AppState>,
    Officer(actor): Officer,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        crate::erase::run::plan(app, a, &id)
    })
    .await
}

/// The plan for review: counts per table, strategies per column, exemptions, and (for
/// officers) the pinned rows with the path that found each.
pub async fn show_plan(
    State(app): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    blocking(
        &app,
        move |app| -> Result<Json<serde_json::Value>, ApiError> {
            service::get(app, &id)?;
            let (row, plan) = crate::erase::run::load_plan(app, &id)?;
            let mut v = if actor.role.can_write() {
                crate::erase::run::review(&plan, &row.digest)
            } else {
                crate::erase::run::summary(&plan)
            };
            v["request_id"] = serde_json::json!(id);
            v["plan_digest"] = serde_json::json!(row.digest);
            Ok(Json(v))
        },
    )
    .await
}

pub async fn approve(
    State(app): State<AppState>,
    Officer(actor): Officer,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<NoteBody>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        crate::erase::run::approve(app, a, &id, b.note.as_deref())
    })
    .await
}

pub async fn execute(
    State(app): State<AppState>,
    Officer(actor): Officer,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        crate::erase::run::execute(app, a, &id)
    })
    .await
}

pub async fn deny(
    State(app): State<AppState>,
    Officer(actor): Officer,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<NoteBody>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        service::deny(app, a, &id, b.reason.as_deref(), b.notice.as_deref())
    })
    .await
}

pub async fn withdraw(
    State(app): State<AppState>,
    Officer(actor): Officer,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<NoteBody>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        service::close(app, a, &id, Action::Withdraw, b.reason.as_deref())
    })
    .await
}

pub async fn cancel(
    State(app): State<AppState>,
    Officer(actor): Officer,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<NoteBody>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        service::close(app, a, &id, Action::Cancel, b.reason.as_deref())
    })
    .await
}

pub async fn extend(
    State(app): State<AppState>,
    Officer(actor): Officer,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<NoteBody>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        service::extend(app, a, &id, b.reason.as_deref(), b.notice.as_deref())
    })
    .await
}

/// Open requests past their deadline and those due within 7 days, soonest first.
pub async fn due(
    State(app): State<AppState>,
    Caller(actor): Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    blocking(
        &app,
        move |app| -> Result<Json<serde_json::Value>, ApiError> {
            let f = rq::RequestFilter {
                states: RequestState::ALL
                    .iter()
                    .filter(|s| s.is_open())
                    .map(|s| s.as_str().to_string())
                    .collect(),
                limit: 1000,
                ..Default::default()
            };
            let mut rows = app.store.read(|c| rq::list(c, &f))?;
            rows.sort_by_key(|r| r.extended_due_at.unwrap_or(r.due_at));
            let now = now();
            let soon = now + chrono::Duration::days(7);
            let mut overdue = Vec::new();
            let mut due_soon = Vec::new();
            for r in &rows {
                let due = r.extended_due_at.unwrap_or(r.due_at);
                if due < now {
                    overdue.push(view(app, r, actor.role, false)?);
                } else if due <= soon {
                    due_soon.push(view(app, r, actor.role, false)?);
                }
            }
            Ok(Json(
                serde_json::json!({"overdue": overdue, "due_soon": due_soon}),
            ))
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    pub format: Option<String>,
}

/// The export: JSON, or `?format=csv` for a zip with one CSV per table. Contains the
/// subject's personal data, so only officers may fetch it.
pub async fn export(
    State(app): State<AppState>,
    Officer(_actor): Officer,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "format",
                format!("unknown value \"{other}\"; expected json or csv"),
            ));
        }
    };
    let id2 = id.clone();
    let (_row, doc) = blocking(&app, move |app| service::export_doc(app, &id2)).await?;
    export_download(&id, &doc, csv)
}

/// The export as a download: pretty JSON, or a zip with one CSV per table.
pub fn export_download(id: &str, doc: &serde_json::Value, csv: bool) -> Result<Response, ApiError> {
    let (body, ctype, ext) = if csv {
        (
            to_csv_zip(doc).map_err(ApiError::internal)?,
            "application/zip",
            "zip",
        )
    } else {
        (
            serde_json::to_vec_pretty(doc).map_err(|e| ApiError::internal(e.to_string()))?,
            "application/json",
            "json",
        )
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) =
        HeaderValue::from_str(&format!("attachment; filename=\"lethe-export-{id}.{ext}\""))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
