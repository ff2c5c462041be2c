//! `/api/v1/requests`: create, list, show, verify, run and export data-subject requests.

use crate::app::{App, AppState};
use crate::erase::plan::Change;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::http::auth::{Caller, Officer};
use crate::http::blocking;
use crate::http::extract::ApiPath;
use crate::http::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::http::openapi::{ActionRefused, OfficerOnly, RequestNotFound};
use crate::request::service::{self, NewRequest};
use crate::request::view::{CertificateRef, JobView, RequestView, identity_views, request_view};
use crate::request::workflow::Action;
use crate::request::{Channel, Regime, RequestKind, RequestState, Role};
use crate::source::Value;
use crate::store::models::RequestRow;
use crate::store::{now, requests as rq};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Identities as a list of `{kind, value}` or as an object `{"email": "..."}` (identity
/// kinds as the data map names them: `email`, `phone`, `customer_no`, ...).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum IdentitiesInput {
    List(Vec<IdentityInput>),
    Map(BTreeMap<String, String>),
}

/// One identity of the subject.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityInput {
    #[schema(example = "email")]
    pub kind: String,
    pub value: String,
}

/// A new data-subject request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    #[schema(value_type = RequestKind, example = "access")]
    pub kind: String,
    #[schema(value_type = Regime, example = "gdpr")]
    pub regime: String,
    #[schema(example = json!({"email": "jane.doe@example.com"}))]
    pub identities: IdentitiesInput,
    /// Default `api`.
    #[schema(value_type = Option<Channel>)]
    pub channel: Option<String>,
    /// RFC 3339 timestamp or a date (`2026-11-23`); defaults to now.
    pub received_at: Option<String>,
    pub note: Option<String>,
    /// Rectification: `[{"table", "column", "value"}]`.
    #[serde(default)]
    pub changes: Vec<ChangeInput>,
}

/// A rectification: the new value of one mapped column.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeInput {
    pub table: String,
    pub column: String,
    /// A string, number, boolean or null.
    #[schema(value_type = crate::http::openapi::ColumnValue)]
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

/// Parses `received_at`: RFC 3339 (converted to UTC) or a plain date `YYYY-MM-DD`
/// (midnight UTC), in the years 1 to 9999 (what both engine stores can hold).
pub fn parse_received(s: &str) -> Result<NaiveDateTime, ApiError> {
    let rfc3339 = chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.naive_utc());
    let parsed = rfc3339.or_else(|| {
        // Four-digit years only: chrono's `%Y` alone would take "-262000-01-01".
        let b = s.as_bytes();
        let plain = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        plain
            .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .flatten()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    });
    match parsed {
        Some(t) if (1..=9999).contains(&chrono::Datelike::year(&t)) => Ok(t),
        _ => Err(ApiError::invalid(
            "received_at",
            "expected an RFC 3339 timestamp or a date like 2026-11-23 (years 1 to 9999)",
        )),
    }
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
        v.job = job.map(|j| JobView {
            run_after: crate::audit::format_time(&j.run_after),
            id: j.id,
            state: j.state,
            attempts: j.attempts,
            last_error: j.last_error,
        });
    }
    Ok(v)
}

/// Creates a request; its deadlines follow from the regime and `received_at`.
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/requests",
    tag = "requests",
    request_body = CreateBody,
    responses(
        (status = 201, description = "The request as created", body = RequestView,
            headers(("Location" = String, description = "The request's URL"))),
        (status = 422, description = "A field is invalid (an unknown kind, regime, channel or identity kind, a bad date, a change to an unmapped column); `field` names it", body = ErrorBody),
        OfficerOnly,
    )
)]
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

/// Filters and paging of the request list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Comma-separated states; `open` means every non-final state.
    #[param(example = "open")]
    pub state: Option<String>,
    #[param(value_type = Option<RequestKind>)]
    pub kind: Option<String>,
    #[param(value_type = Option<Regime>)]
    pub regime: Option<String>,
    /// `overdue` or `due_soon` (within 7 days).
    #[param(value_type = Option<DueFilter>)]
    pub due: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The last id of the previous page.
    pub cursor: Option<String>,
}

/// The `due` filter of the request list.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum DueFilter {
    Overdue,
    DueSoon,
}

/// One page of requests, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestPage {
    /// The requests (without the detail fields).
    pub requests: Vec<RequestView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Lists requests, newest first, filtered by state, kind, regime or deadline.
///
/// Role: any.
#[utoipa::path(
    get,
    path = "/api/v1/requests",
    tag = "requests",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of requests", body = RequestPage),
        (status = 422, description = "A query parameter is invalid (unknown state, kind, regime or due filter, limit outside 1..=1000, unknown parameter)", body = ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<RequestPage>, ApiError> {
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
    blocking(&app, move |app| -> Result<Json<RequestPage>, ApiError> {
        let rows = app.store.read(|c| rq::list(c, &f))?;
        let next_cursor = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|r| r.id.clone()))
            .flatten();
        let requests: Vec<RequestView> = rows
            .iter()
            .map(|r| view(app, r, actor.role, false))
            .collect::<Result<_, _>>()?;
        Ok(Json(RequestPage {
            requests,
            next_cursor,
        }))
    })
    .await
}

/// One request with its identities (masked for auditors), events, export, certificates,
/// plan, notices and job.
///
/// Role: any (identity values for officers and admins only).
#[utoipa::path(
    get,
    path = "/api/v1/requests/{id}",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request", body = RequestView),
        RequestNotFound,
    )
)]
pub async fn show(
    State(app): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RequestView>, ApiError> {
    blocking(&app, move |app| -> Result<Json<RequestView>, ApiError> {
        let row = service::get(app, &id)?;
        Ok(Json(view(app, &row, actor.role, true)?))
    })
    .await
}

/// Verification methods (`service::VERIFICATION_METHODS`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum VerificationMethod {
    DocumentCheck,
    EmailConfirmation,
    AccountLogin,
    KnowledgeBased,
    InPerson,
    AuthorizedAgent,
    Other,
}

/// How the subject's identity was verified.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// How the identity was verified (`other` needs a `note`).
    #[schema(value_type = VerificationMethod, example = "email_confirmation")]
    pub method: String,
    pub note: Option<String>,
}

/// Records the identity verification (state `verified`).
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/requests/{id}/verify",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    request_body = VerifyBody,
    responses(
        (status = 200, description = "The request afterwards", body = RequestView),
        (status = 422, description = "Unknown verification method; `field` names it", body = ErrorBody),
        OfficerOnly, RequestNotFound, ActionRefused,
    )
)]
pub async fn verify(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiPath(id): ApiPath<String>,
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

/// Runs an access or portability request (trace, export; state `completed`) or an opt-out.
/// A source that is down answers 503 and changes nothing.
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/requests/{id}/run",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request afterwards", body = RequestView),
        OfficerOnly, RequestNotFound, ActionRefused,
    )
)]
pub async fn run(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| service::run(app, a, &id)).await
}

/// Schema of the body of `deny` and `extend`: the reason and the notice sent to the
/// subject are both required (at most 2000 bytes each).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ReasonNoticeInput {
    #[schema(min_length = 1, example = "manifestly unfounded")]
    reason: String,
    /// What the subject is told (for a denial: their remedies).
    #[schema(
        min_length = 1,
        example = "You may complain to the supervisory authority."
    )]
    notice: String,
    note: Option<String>,
}

/// Schema of the body of `withdraw` and `cancel`: the reason is required (at most 2000
/// bytes).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ReasonInput {
    #[schema(min_length = 1, example = "duplicate of an earlier request")]
    reason: String,
    note: Option<String>,
    notice: Option<String>,
}

/// Optional note, reason or notice of an action.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    pub note: Option<String>,
    pub reason: Option<String>,
    pub notice: Option<String>,
}

/// Acknowledges receipt of the request (state `acknowledged`); the body is optional.
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/requests/{id}/acknowledge",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    request_body(content = Option<NoteBody>, description = "Optional: a `note` for the event", content_type = "application/json"),
    responses(
        (status = 200, description = "The request afterwards", body = RequestView),
        OfficerOnly, RequestNotFound, ActionRefused,
    )
)]
pub async fn acknowledge(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiPath(id): ApiPath<String>,
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

/// Asks the subject for proof of identity (state `identity_pending`); the body is optional.
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/requests/{id}/request-identity",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    request_body(content = Option<NoteBody>, description = "Optional: a `note` for the event", content_type = "application/json"),
    responses(
        (status = 200, description = "The request afterwards", body = RequestView),
        OfficerOnly, RequestNotFound, ActionRefused,
    )
)]
pub async fn request_identity(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiPath(id): ApiPath<String>,
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

/// Traces the subject and stores an erasure, rectification or opt-out plan for review
/// (state `planned`).
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/requests/{id}/plan",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request afterwards (`plan_url` points to the plan)", body = RequestView),
        (status = 422, description = "The request's kind is not planned (access, portability)", body = ErrorBody),
        OfficerOnly, RequestNotFound, ActionRefused,
    )
)]
pub async fn plan(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        crate::erase::run::plan(app, a, &id)
    })
    .await
}

/// The plan for review: counts per table, strategies per column, exemptions, and (for
/// officers) the pinned rows with the path that found each.
///
/// Role: any (auditors get the summary without the rows).
#[utoipa::path(
    get,
    path = "/api/v1/requests/{id}/plan",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The plan", body = crate::http::openapi::PlanView),
        RequestNotFound,
        (status = 409, description = "The request has no plan yet (`no_plan`)", body = ErrorBody),
    )
)]
pub async fn show_plan(
    State(app): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<String>,
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

/// Approves the reviewed erasure plan (state `approved`); the body is optional.
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/requests/{id}/approve",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    request_body(content = Option<NoteBody>, description = "Optional: a `note` for the event", content_type = "application/json"),
    responses(
        (status = 200, description = "The request afterwards", body = RequestView),
        OfficerOnly, RequestNotFound, ActionRefused,
    )
)]
pub async fn approve(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiPath(id): ApiPath<String>,
    OptionalJson(b): OptionalJson<NoteBody>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        crate::erase::run::approve(app, a, &id, b.note.as_deref())
    })
    .await
}

/// Executes the approved plan as a job and verifies the result; completes with a
/// certificate, or waits (state `executing` with the reason) while a source is down.
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/requests/{id}/execute",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request afterwards", body = RequestView),
        OfficerOnly, RequestNotFound, ActionRefused,
    )
)]
pub async fn execute(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        crate::erase::run::execute(app, a, &id)
    })
    .await
}

/// Denies the request (state `denied`) with the `reason` and the `notice` sent to the subject.
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/requests/{id}/deny",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    request_body(content = ReasonNoticeInput, description = "`reason` and `notice` (the subject's remedies), both required"),
    responses(
        (status = 200, description = "The request afterwards", body = RequestView),
        (status = 422, description = "A required field is missing or invalid; `field` names it", body = ErrorBody),
        OfficerOnly, RequestNotFound, ActionRefused,
    )
)]
pub async fn deny(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NoteBody>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        service::deny(app, a, &id, b.reason.as_deref(), b.notice.as_deref())
    })
    .await
}

/// Records that the subject withdrew the request (state `withdrawn`).
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/requests/{id}/withdraw",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    request_body(content = ReasonInput, description = "`reason`"),
    responses(
        (status = 200, description = "The request afterwards", body = RequestView),
        (status = 422, description = "A required field is missing or invalid; `field` names it", body = ErrorBody),
        OfficerOnly, RequestNotFound, ActionRefused,
    )
)]
pub async fn withdraw(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NoteBody>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        service::close(app, a, &id, Action::Withdraw, b.reason.as_deref())
    })
    .await
}

/// Cancels the request (state `cancelled`).
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/requests/{id}/cancel",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    request_body(content = ReasonInput, description = "`reason`"),
    responses(
        (status = 200, description = "The request afterwards", body = RequestView),
        (status = 422, description = "A required field is missing or invalid; `field` names it", body = ErrorBody),
        OfficerOnly, RequestNotFound, ActionRefused,
    )
)]
pub async fn cancel(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NoteBody>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        service::close(app, a, &id, Action::Cancel, b.reason.as_deref())
    })
    .await
}

/// Extends the deadline once, as the regime allows, with the `reason` and the `notice` to the subject.
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/requests/{id}/extend",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    request_body(content = ReasonNoticeInput, description = "`reason` and `notice`"),
    responses(
        (status = 200, description = "The request afterwards", body = RequestView),
        (status = 422, description = "A required field is missing or invalid; `field` names it", body = ErrorBody),
        OfficerOnly, RequestNotFound, ActionRefused,
    )
)]
pub async fn extend(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NoteBody>,
) -> Result<Json<RequestView>, ApiError> {
    act(app, actor, move |app, a| {
        service::extend(app, a, &id, b.reason.as_deref(), b.notice.as_deref())
    })
    .await
}

/// Open requests by deadline, soonest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DueRequests {
    /// Past their deadline.
    pub overdue: Vec<RequestView>,
    /// Due within 7 days.
    pub due_soon: Vec<RequestView>,
}

/// Open requests past their deadline and those due within 7 days, soonest first.
///
/// Role: any.
#[utoipa::path(
    get,
    path = "/api/v1/requests/due",
    tag = "requests",
    responses((status = 200, description = "Overdue and soon-due requests", body = DueRequests))
)]
pub async fn due(
    State(app): State<AppState>,
    Caller(actor): Caller,
) -> Result<Json<DueRequests>, ApiError> {
    blocking(&app, move |app| -> Result<Json<DueRequests>, ApiError> {
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
        Ok(Json(DueRequests { overdue, due_soon }))
    })
    .await
}

/// The format of an export download.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (default) or `csv` (a zip with one CSV per table).
    #[param(value_type = Option<ExportFormat>)]
    pub format: Option<String>,
}

/// Export download formats.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ExportFormat {
    Json,
    Csv,
}

/// Former direct export download. Exports are handed out only through expiring download
/// links now: this creates one (as `POST /api/v1/requests/{id}/export-links` does, audited)
/// and redirects to it (`303 See Other`, `Location: /exports/<token>`).
///
/// Role: officer or admin.
#[utoipa::path(
    get,
    path = "/api/v1/requests/{id}/export",
    tag = "requests",
    params(("id" = String, Path, description = "Request id"), ExportQuery),
    responses(
        (status = 303, description = "A new download link; `Location` is its URL",
            body = crate::http::api::exports::LinkView,
            headers(("Location" = String, description = "/exports/<token>"))),
        (status = 422, description = "Unknown `format`", body = ErrorBody),
        OfficerOnly, RequestNotFound,
        (status = 409, description = "The request has no export (not a completed access or portability request), or it expired", body = ErrorBody),
    )
)]
pub async fn export(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = match q.format.as_deref() {
        None => crate::export::Format::Json,
        Some(f) => crate::export::Format::parse(f).ok_or_else(|| {
            ApiError::invalid(
                "format",
                format!("unknown value \"{f}\"; expected json or csv"),
            )
        })?,
    };
    crate::http::api::exports::link_response(&app, actor, id, format, StatusCode::SEE_OTHER).await
}

#[cfg(test)]
mod tests {
    use super::parse_received;

    #[test]
    fn received_at_takes_rfc3339_or_a_four_digit_date() {
        let t = parse_received("2026-11-23").expect("date");
        assert_eq!(t.to_string(), "2026-11-23 00:00:00");
        let t = parse_received("2026-11-23T10:00:00+01:00").expect("rfc 3339");
        assert_eq!(t.to_string(), "2026-11-23 09:00:00");
        for bad in [
            "-262000-01-01",
            "262143-12-31",
            "+2026-11-23",
            "0000-01-01",
            "2026-13-01",
            "2026-11-23T10:00",
            "2026-1-23",
            "2026\u{e9}11-2",
            "",
        ] {
            let e = parse_received(bad).expect_err(bad);
            assert_eq!(e.status.as_u16(), 422, "{bad}");
            assert_eq!(e.field.as_deref(), Some("received_at"), "{bad}");
        }
    }
}
