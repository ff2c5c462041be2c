//! Officer pages for requests: the list with filters, the intake form, the request page
//! (timeline, deadline and extension, verification, footprint with the path that found each
//! row, the erasure plan, actions, export, certificates) and the actions' form posts.

use super::page::blocking;
use super::page::{Layout, PageError, humanize, nonempty, render, render_status};
use super::session::{CsrfForm, OfficerSession, Session};
use super::view::{RequestLine, time, time_text};
use crate::app::{Actor, App, AppState};
use crate::error::ApiError;
use crate::http::api::requests::{CreateBody, IdentitiesInput, view};
use crate::request::service::{self, VERIFICATION_METHODS};
use crate::request::view::RequestView;
use crate::request::workflow::Action;
use crate::request::{Channel, Regime, RequestError, RequestKind, RequestState};
use crate::store::models::RequestRow;
use crate::store::{now, requests as rq};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One option of a `<select>`.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn choices(values: &[&str], selected: &str, label: impl Fn(&str) -> String) -> Vec<Choice> {
    values
        .iter()
        .map(|v| Choice {
            value: (*v).to_string(),
            label: label(v),
            selected: *v == selected,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The list

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub state: Option<String>,
    pub kind: Option<String>,
    pub regime: Option<String>,
    pub due: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "requests.html")]
struct ListPage {
    layout: Layout,
    upcoming: Vec<RequestLine>,
    states: Vec<Choice>,
    kinds: Vec<Choice>,
    regimes: Vec<Choice>,
    dues: Vec<Choice>,
    next_url: Option<String>,
    heading: String,
}

const PAGE: i64 = 50;

pub async fn list(
    State(app): State<AppState>,
    OfficerSession(s): OfficerSession,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let state = nonempty(&q.state).unwrap_or("open").to_string();
    let kind = nonempty(&q.kind).unwrap_or("").to_string();
    let regime = nonempty(&q.regime).unwrap_or("").to_string();
    let due = nonempty(&q.due).unwrap_or("").to_string();
    let mut f = rq::RequestFilter {
        limit: PAGE,
        ..Default::default()
    };
    let open: Vec<String> = RequestState::ALL
        .iter()
        .filter(|s| s.is_open())
        .map(|s| s.as_str().to_string())
        .collect();
    match state.as_str() {
        "open" => f.states = open.clone(),
        "all" => {}
        other => {
            let st = RequestState::parse(other).ok_or_else(|| {
                PageError::Status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("state: unknown value \"{other}\""),
                )
            })?;
            f.states.push(st.as_str().to_string());
        }
    }
    if !kind.is_empty() {
        RequestKind::parse(&kind).ok_or_else(|| {
            PageError::Status(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("kind: unknown value \"{kind}\""),
            )
        })?;
        f.kind = Some(kind.clone());
    }
    if !regime.is_empty() {
        Regime::parse(&regime).ok_or_else(|| {
            PageError::Status(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("regime: unknown value \"{regime}\""),
            )
        })?;
        f.regime = Some(regime.clone());
    }
    let now = now();
    let by_deadline = match due.as_str() {
        "" => false,
        "overdue" => {
            f.due_before = Some(now);
            true
        }
        "due_soon" => {
            f.due_before = Some(now + chrono::Duration::days(7));
            true
        }
        other => {
            return Err(PageError::Status(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("due: unknown value \"{other}\"; expected overdue or due_soon"),
            ));
        }
    };
    if by_deadline && f.states.is_empty() {
        f.states = open;
    }
    f.before_id = nonempty(&q.cursor).map(str::to_string);
    let rows = blocking(&app, move |app| app.store.read(|c| rq::list(c, &f))).await?;
    let lines: Vec<RequestLine> = rows.iter().map(|r| RequestLine::new(r, now)).collect();
    let next_url = (rows.len() as i64 == PAGE)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten()
        .map(|last| {
            let qs = serde_urlencoded::to_string([
                ("state", state.as_str()),
                ("kind", kind.as_str()),
                ("regime", regime.as_str()),
                ("due", due.as_str()),
                ("cursor", last.as_str()),
            ])
            .unwrap_or_default();
            format!("/requests?{qs}")
        });
    let mut state_values = vec!["open", "all"];
    state_values.extend(RequestState::names());
    let kinds_v: Vec<&str> = std::iter::once("").chain(RequestKind::names()).collect();
    let regimes_v: Vec<&str> = std::iter::once("").chain(Regime::names()).collect();
    let heading = match due.as_str() {
        "overdue" => "Overdue requests".to_string(),
        "due_soon" => "Requests due within 7 days".to_string(),
        _ if state == "open" => "Open requests".to_string(),
        _ if state == "all" => "All requests".to_string(),
        _ => format!("Requests: {}", state.replace('_', " ")),
    };
    Ok(render(&ListPage {
        layout: s.layout("Requests", "requests"),
        upcoming: lines,
        states: choices(&state_values, &state, humanize),
        kinds: choices(&kinds_v, &kind, |v| {
            if v.is_empty() {
                "Any kind".into()
            } else {
                humanize(v)
            }
        }),
        regimes: choices(&regimes_v, &regime, |v| {
            Regime::parse(v).map_or_else(|| "Any regime".into(), |r| r.describe().to_string())
        }),
        dues: choices(&["", "overdue", "due_soon"], &due, |v| match v {
            "overdue" => "Overdue".into(),
            "due_soon" => "Due within 7 days".into(),
            _ => "Any deadline".into(),
        }),
        next_url,
        heading,
    }))
}

// ---------------------------------------------------------------------------------------
// Intake

/// The intake form as submitted (every field optional so that a bad submission can be
/// shown again with its values and a message).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct IntakeForm {
    pub kind: Option<String>,
    pub regime: Option<String>,
    pub channel: Option<String>,
    pub received_on: Option<String>,
    pub note: Option<String>,
    pub change_table: Option<String>,
    pub change_column: Option<String>,
    pub change_value: Option<String>,
    /// `id_<kind>` fields, one per identity kind of the data map.
    #[serde(flatten)]
    pub rest: BTreeMap<String, String>,
}

pub struct IdentityField {
    pub name: String,
    pub label: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "request_new.html")]
struct IntakePage {
    layout: Layout,
    kinds: Vec<Choice>,
    regimes: Vec<Choice>,
    channels: Vec<Choice>,
    identities: Vec<IdentityField>,
    form: IntakeForm,
    error: Option<String>,
}

fn intake_page(app: &App, s: &Session, form: IntakeForm, error: Option<String>) -> IntakePage {
    let kind = nonempty(&form.kind).unwrap_or("access").to_string();
    let regime = nonempty(&form.regime).unwrap_or("gdpr").to_string();
    let channel = nonempty(&form.channel).unwrap_or("email").to_string();
    let identities = app
        .policy
        .datamap
        .identity_kinds
        .values()
        .map(|k| IdentityField {
            name: format!("id_{}", k.name),
            label: k.label.clone(),
            value: form
                .rest
                .get(&format!("id_{}", k.name))
                .cloned()
                .unwrap_or_default(),
        })
        .collect();
    IntakePage {
        layout: s.layout("New request", "requests"),
        kinds: choices(&RequestKind::names(), &kind, humanize),
        regimes: choices(&Regime::names(), &regime, |v| {
            Regime::parse(v).map_or_else(|| v.to_string(), |r| r.describe().to_string())
        }),
        channels: choices(&Channel::names(), &channel, humanize),
        identities,
        form,
        error,
    }
}

pub async fn new_form(State(app): State<AppState>, OfficerSession(s): OfficerSession) -> Response {
    let form = IntakeForm {
        received_on: Some(now().format("%Y-%m-%d").to_string()),
        ..Default::default()
    };
    render(&intake_page(&app, &s, form, None))
}

fn intake_body(app: &App, f: &IntakeForm) -> Result<CreateBody, ApiError> {
    let mut ids = BTreeMap::new();
    for k in app.policy.datamap.identity_kinds.keys() {
        if let Some(v) = f.rest.get(&format!("id_{k}")).map(|v| v.trim())
            && !v.is_empty()
        {
            ids.insert(k.clone(), v.to_string());
        }
    }
    let mut changes = Vec::new();
    if let (Some(t), Some(c)) = (nonempty(&f.change_table), nonempty(&f.change_column)) {
        changes.push(crate::http::api::requests::ChangeInput {
            table: t.to_string(),
            column: c.to_string(),
            value: Value::String(f.change_value.clone().unwrap_or_default()),
        });
    }
    Ok(CreateBody {
        kind: nonempty(&f.kind).unwrap_or_default().to_string(),
        regime: nonempty(&f.regime).unwrap_or_default().to_string(),
        identities: IdentitiesInput::Map(ids),
        channel: nonempty(&f.channel).map(str::to_string),
        received_at: nonempty(&f.received_on).map(str::to_string),
        note: nonempty(&f.note).map(str::to_string),
        changes,
    })
}

pub async fn create(
    State(app): State<AppState>,
    OfficerSession(s): OfficerSession,
    CsrfForm(form): CsrfForm<IntakeForm>,
) -> Result<Response, PageError> {
    let actor = s.actor.clone();
    let f2 = form.clone();
    let created = crate::http::blocking(&app, move |app| -> Result<RequestRow, ApiError> {
        let new = intake_body(app, &f2)?.into_new()?;
        Ok(service::create(app, &actor, new)?)
    })
    .await;
    match created {
        Ok(row) => Ok(Redirect::to(&format!("/requests/{}?done=created", row.id)).into_response()),
        Err(e) if e.status.is_client_error() => Ok(render_status(
            e.status,
            &intake_page(&app, &s, form, Some(e.message)),
        )),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------
// The request page

pub struct Pair {
    pub key: String,
    pub value: String,
}

pub struct EventLine {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub from_state: String,
    pub to_state: String,
    pub reason: String,
    pub details: String,
}

pub struct FoundRow {
    pub key: String,
    pub found_via: String,
}

pub struct FootprintTable {
    pub table: String,
    pub action: String,
    pub count: usize,
    pub rows: Vec<FoundRow>,
}

pub struct StepLine {
    pub source: String,
    pub table: String,
    pub action: String,
    pub rows: i64,
    pub columns: String,
    pub reason: String,
}

pub struct ExemptLine {
    pub table: String,
    pub rows: i64,
    pub ground: String,
    pub citation: String,
    pub hold_id: String,
    pub treatment: String,
}

pub struct PlanView {
    pub digest: String,
    pub created_at: String,
    pub totals: Vec<Pair>,
    pub steps: Vec<StepLine>,
    pub exemptions: Vec<ExemptLine>,
    pub warnings: Vec<String>,
}

/// The request's dates for people.
pub struct Dates {
    pub received: String,
    pub acknowledge_by: Option<String>,
    pub due: String,
    pub extended_to: Option<String>,
    pub completed: Option<String>,
    pub extended_at: String,
    pub channel: String,
    pub export_made: String,
}

#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage {
    layout: Layout,
    dates: Dates,
    r: RequestView,
    line: RequestLine,
    identities: Vec<Pair>,
    verification: Vec<Pair>,
    events: Vec<EventLine>,
    plan: Option<PlanView>,
    footprint: Vec<FootprintTable>,
    footprint_note: String,
    actions: Vec<String>,
    can_extend: bool,
    methods: Vec<Choice>,
    done: Option<&'static str>,
    error: Option<String>,
    notices: Vec<NoticeLine>,
}

/// A notice to a recipient, as the request page lists it.
struct NoticeLine {
    recipient: String,
    event: String,
    status: String,
    attempts: String,
    ack: String,
    error: String,
}

fn notice_lines(v: Option<&Value>) -> Vec<NoticeLine> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|n| NoticeLine {
                    recipient: n["recipient_name"]
                        .as_str()
                        .or(n["recipient"].as_str())
                        .unwrap_or_default()
                        .to_string(),
                    event: text_of(&n["event"]),
                    status: text_of(&n["status"]),
                    attempts: text_of(&n["attempts"]),
                    ack: match (n["ack_id"].as_str(), n["acknowledged_at"].as_str()) {
                        (Some(id), Some(at)) => format!("{id} at {at}"),
                        (None, Some(at)) => format!("at {at}"),
                        _ => String::new(),
                    },
                    error: text_of(&n["error"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

impl RequestPage {
    fn allows(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == action)
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn pairs(v: &Value) -> Vec<Pair> {
    match v {
        Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| Pair {
                key: humanize(k),
                value: time_text(&text_of(v)),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn plan_view(review: &Value) -> PlanView {
    let arr = |k: &str| review[k].as_array().cloned().unwrap_or_default();
    PlanView {
        digest: text_of(&review["plan_digest"]),
        created_at: time_text(&text_of(&review["created_at"])),
        totals: pairs(&review["totals"]),
        steps: arr("steps")
            .iter()
            .map(|s| StepLine {
                source: text_of(&s["source"]),
                table: text_of(&s["table"]),
                action: text_of(&s["action"]),
                rows: s["rows"].as_i64().unwrap_or(0),
                columns: s["columns"]
                    .as_array()
                    .map(|cs| {
                        cs.iter()
                            .map(|c| {
                                format!("{}: {}", text_of(&c["column"]), text_of(&c["strategy"]))
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
                reason: text_of(&s["reason"]),
            })
            .collect(),
        exemptions: arr("exemptions")
            .iter()
            .map(|e| ExemptLine {
                table: text_of(&e["table"]),
                rows: e["rows"].as_i64().unwrap_or(0),
                ground: text_of(&e["ground"]),
                citation: text_of(&e["citation"]),
                hold_id: text_of(&e["hold_id"]),
                treatment: text_of(&e["treatment"]),
            })
            .collect(),
        warnings: arr("warnings").iter().map(text_of).collect(),
    }
}

fn plan_footprint(review: &Value) -> Vec<FootprintTable> {
    review["rows"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|st| {
                    let rows: Vec<FoundRow> = st["rows"]
                        .as_array()
                        .map(|rs| {
                            rs.iter()
                                .map(|r| FoundRow {
                                    key: text_of(&r["key"]),
                                    found_via: text_of(&r["found_via"]),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    FootprintTable {
                        table: text_of(&st["table"]),
                        action: text_of(&st["action"]),
                        count: rows.len(),
                        rows,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn export_footprint(doc: &Value) -> Vec<FootprintTable> {
    // A portability export holds only the provided data per table, without row paths.
    if let Some(data) = doc["data"].as_object() {
        return data
            .iter()
            .map(|(table, rows)| FootprintTable {
                table: table.clone(),
                action: "export (data the person provided)".into(),
                count: rows.as_array().map_or(0, Vec::len),
                rows: Vec::new(),
            })
            .collect();
    }
    doc["records"]
        .as_array()
        .map(|tables| {
            tables
                .iter()
                .map(|t| {
                    let rows: Vec<FoundRow> = t["records"]
                        .as_array()
                        .map(|rs| {
                            rs.iter()
                                .map(|r| FoundRow {
                                    key: text_of(&r["record_id"]),
                                    found_via: text_of(&r["found_via"]),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let name = text_of(&t["table"]);
                    FootprintTable {
                        table: if name.is_empty() {
                            text_of(&t["label"])
                        } else {
                            name
                        },
                        action: "export".into(),
                        count: rows.len(),
                        rows,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

const DONE: &[(&str, &str)] = &[
    (
        "created",
        "Request recorded. Its deadline is computed from the date received.",
    ),
    ("acknowledge", "Acknowledged."),
    (
        "request_identity",
        "Marked as waiting for the requester's identity.",
    ),
    ("verify", "Identity verified."),
    (
        "run",
        "Run: the footprint was traced and the result recorded.",
    ),
    ("plan", "Erasure plan ready for review."),
    ("approve", "Plan approved. It can be executed now."),
    ("execute", "Executed and verified."),
    ("deny", "Request denied; the reason is recorded."),
    ("withdraw", "Request withdrawn."),
    ("cancel", "Request cancelled."),
    ("extend", "Deadline extended; the reason is recorded."),
];

fn request_page(
    app: &App,
    s: &Session,
    id: &str,
    done: Option<&str>,
    error: Option<String>,
) -> Result<RequestPage, PageError> {
    let row = service::get(app, id)?;
    let r = view(app, &row, s.actor.role, true)?;
    let now = now();
    let line = RequestLine::new(&row, now);
    let identities = r
        .identities
        .as_ref()
        .map(|ids| {
            ids.iter()
                .map(|i| Pair {
                    key: humanize(&i.kind),
                    value: i.value.clone().unwrap_or_else(|| i.masked.clone()),
                })
                .collect()
        })
        .unwrap_or_default();
    let verification = r.verification.as_ref().map(pairs).unwrap_or_default();
    let events = r
        .events
        .as_ref()
        .map(|evs| {
            evs.iter()
                .rev()
                .map(|e| EventLine {
                    at: time_text(&e.at),
                    actor: e.actor.clone(),
                    action: humanize(&e.action),
                    from_state: e.from_state.clone().unwrap_or_default().replace('_', " "),
                    to_state: e.to_state.replace('_', " "),
                    reason: e.reason.clone().unwrap_or_default(),
                    details: match &e.details {
                        Value::Object(m) if !m.is_empty() => m
                            .iter()
                            .map(|(k, v)| format!("{}: {}", humanize(k), text_of(v)))
                            .collect::<Vec<_>>()
                            .join(" · "),
                        _ => String::new(),
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    let (plan, mut footprint, mut footprint_note) = match r.plan_url {
        Some(_) => {
            let (prow, p) = crate::erase::run::load_plan(app, id)?;
            let review = crate::erase::run::review(&p, &prow.digest);
            (
                Some(plan_view(&review)),
                plan_footprint(&review),
                "Rows pinned by the erasure plan, with the path that found each.".to_string(),
            )
        }
        None => (None, Vec::new(), String::new()),
    };
    if plan.is_none()
        && r.export.is_some()
        && let Ok(x) = service::export_row(app, id)
    {
        let doc = crate::export::read_small_document(app, &x, LIST_EXPORT_ROWS_UP_TO)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(doc) = doc {
            footprint = export_footprint(&doc);
            footprint_note = if doc["data"].is_object() {
                "Records in the portability export per table (the format carries no paths).".into()
            } else {
                "Records in the export, with the path that found each.".into()
            };
        } else {
            let counts: Vec<crate::export::build::TableCount> =
                serde_json::from_str(&x.tables_json).unwrap_or_default();
            footprint = counts
                .into_iter()
                .map(|t| FootprintTable {
                    table: t.table,
                    action: "export".into(),
                    count: usize::try_from(t.records).unwrap_or(usize::MAX),
                    rows: Vec::new(),
                })
                .collect();
            footprint_note = match crate::export::links::unavailable_reason(
                &x,
                app.config.exports.ttl,
                crate::store::now(),
            ) {
                Some(why) => format!("Records in the export per table; {why}."),
                None => "Records in the export per table (too many to list here: download the export for the rows).".into(),
            };
        }
    }
    if footprint.is_empty() && footprint_note.is_empty() {
        footprint_note =
            "The footprint appears once the request is run (access) or planned (erasure).".into();
    }
    let open = RequestState::parse(&row.state).is_some_and(RequestState::is_open);
    let dates = Dates {
        received: time(&row.received_at),
        acknowledge_by: row.acknowledge_by.as_ref().map(time),
        due: time(&row.due_at),
        extended_to: row.extended_due_at.as_ref().map(time),
        completed: row.completed_at.as_ref().map(time),
        extended_at: row.extended_at.as_ref().map(time).unwrap_or_default(),
        channel: row.channel.replace('_', " "),
        export_made: r
            .export
            .as_ref()
            .map(|x| time_text(&x.created_at))
            .unwrap_or_default(),
    };
    let notices = notice_lines(r.notifications.as_ref());
    Ok(RequestPage {
        notices,
        dates,
        layout: s.layout(format!("Request {}", line.short_id), "requests"),
        actions: r.allowed_actions.clone(),
        can_extend: open && row.extended_due_at.is_none(),
        methods: choices(&VERIFICATION_METHODS, "document_check", humanize),
        done: done.and_then(|d| DONE.iter().find(|(k, _)| *k == d).map(|(_, m)| *m)),
        error,
        r,
        line,
        identities,
        verification,
        events,
        plan,
        footprint,
        footprint_note,
    })
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    pub done: Option<String>,
}

pub async fn show(
    State(app): State<AppState>,
    OfficerSession(s): OfficerSession,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let page = blocking(&app, move |app| {
        request_page(app, &s, &id, q.done.as_deref(), None)
    })
    .await?;
    Ok(render(&page))
}

/// The fields any action form may carry.
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    pub note: Option<String>,
    pub reason: Option<String>,
    pub notice: Option<String>,
    pub method: Option<String>,
}

fn perform(
    app: &App,
    a: &Actor,
    id: &str,
    action: &str,
    f: &ActionForm,
) -> Result<RequestRow, RequestError> {
    let note = nonempty(&f.note);
    let reason = nonempty(&f.reason);
    let notice = nonempty(&f.notice);
    match action {
        "acknowledge" => {
            service::simple_transition(app, a, id, Action::Acknowledge, note, serde_json::json!({}))
        }
        "request_identity" => service::simple_transition(
            app,
            a,
            id,
            Action::RequestIdentity,
            note,
            serde_json::json!({}),
        ),
        "verify" => service::verify(app, a, id, nonempty(&f.method).unwrap_or(""), note),
        "run" => service::run(app, a, id),
        "plan" => crate::erase::run::plan(app, a, id),
        "approve" => crate::erase::run::approve(app, a, id, note),
        "execute" => crate::erase::run::execute(app, a, id),
        "deny" => service::deny(app, a, id, reason, notice),
        "withdraw" => service::close(app, a, id, Action::Withdraw, reason),
        "cancel" => service::close(app, a, id, Action::Cancel, reason),
        "extend" => service::extend(app, a, id, reason, notice),
        other => Err(RequestError::Invalid {
            field: "action".into(),
            message: format!("unknown action \"{other}\""),
        }),
    }
}

const ACTIONS: &[&str] = &[
    "acknowledge",
    "request_identity",
    "verify",
    "run",
    "plan",
    "approve",
    "execute",
    "deny",
    "withdraw",
    "cancel",
    "extend",
];

/// `POST /requests/{id}/{action}`: runs the action, then shows the request again (after a
/// redirect on success; with the reason and the error's status on refusal).
pub async fn act(
    State(app): State<AppState>,
    OfficerSession(s): OfficerSession,
    Path((id, action)): Path<(String, String)>,
    CsrfForm(form): CsrfForm<ActionForm>,
) -> Result<Response, PageError> {
    if !ACTIONS.contains(&action.as_str()) {
        return Err(PageError::NotFound(format!(
            "there is no action \"{action}\""
        )));
    }
    let (id2, action2, actor) = (id.clone(), action.clone(), s.actor.clone());
    let result = crate::http::blocking(&app, move |app| {
        perform(app, &actor, &id2, &action2, &form).map_err(ApiError::from)
    })
    .await;
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/requests/{id}?done={action}")).into_response()),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let status = e.status;
            let page = blocking(&app, move |app| {
                request_page(app, &s, &id, None, Some(e.message))
            })
            .await?;
            Ok(render_status(status, &page))
        }
        Err(e) => Err(e.into()),
    }
}

/// Exports up to this size (JSON bytes) have their rows listed on the request page.
const LIST_EXPORT_ROWS_UP_TO: u64 = 2 * 1024 * 1024;

/// The former download URL: exports are fetched through download links now, which the
/// request page creates; this goes back there.
pub async fn export(OfficerSession(_s): OfficerSession, Path(id): Path<String>) -> Response {
    Redirect::to(&format!("/requests/{id}#evidence")).into_response()
}

#[derive(Debug, Default, Deserialize)]
pub struct LinkForm {
    pub format: Option<String>,
}

#[derive(Template)]
#[template(path = "export_link.html")]
struct LinkPage {
    layout: Layout,
    request_id: String,
    url: String,
    format: String,
    expires: String,
}

/// `POST /requests/{id}/export-links`: creates a download link and shows it, this once.
pub async fn create_link(
    State(app): State<AppState>,
    OfficerSession(s): OfficerSession,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<LinkForm>,
) -> Result<Response, PageError> {
    let format = match nonempty(&form.format) {
        None => crate::export::Format::Json,
        Some(f) => crate::export::Format::parse(f).ok_or_else(|| {
            PageError::Status(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("format: unknown value \"{f}\"; expected json or csv"),
            )
        })?,
    };
    let (id2, actor) = (id.clone(), s.actor.clone());
    let result = crate::http::blocking(&app, move |app| {
        crate::export::links::create(app, &actor, &id2, format).map_err(ApiError::from)
    })
    .await;
    match result {
        Ok(link) => {
            let page = LinkPage {
                layout: s.layout(
                    format!("Download link for request {}", &id[..id.len().min(13)]),
                    "requests",
                ),
                request_id: id,
                url: link.path(),
                format: match format {
                    crate::export::Format::Json => "JSON".into(),
                    crate::export::Format::Csv => "CSV (zip)".into(),
                },
                expires: time(&link.expires_at),
            };
            let mut resp = render(&page);
            resp.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            Ok(resp)
        }
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let status = e.status;
            let page = blocking(&app, move |app| {
                request_page(app, &s, &id, None, Some(e.message))
            })
            .await?;
            Ok(render_status(status, &page))
        }
        Err(e) => Err(e.into()),
    }
}
