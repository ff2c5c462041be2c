//! Legal holds: list (in force or all), create (on a person, a table or rows) and release
//! with a reason.

use super::page::blocking;
use super::page::{Layout, PageError, humanize, nonempty, render, render_status};
use super::session::{CsrfForm, OfficerSession, Session};
use super::view::time;
use crate::app::{App, AppState};
use crate::error::ApiError;
use crate::hold;
use crate::http::api::holds::{CreateHold, new_hold, release_hold};
use crate::http::api::requests::IdentitiesInput;
use crate::policy::ExemptionGround;
use crate::store::models::HoldRow;
use crate::store::now;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub struct HoldLine {
    pub id: String,
    pub scope: String,
    pub target: String,
    pub matter: String,
    pub reason: String,
    pub ground: String,
    pub citation: String,
    pub issued_by: String,
    pub created: String,
    pub expires: String,
    pub active: bool,
    pub released: String,
}

fn line(h: &HoldRow) -> HoldLine {
    let target = match h.scope.as_str() {
        "subject" => h.identity_summary.clone().unwrap_or_default(),
        "rows" => format!(
            "{}: {}",
            h.table_name.clone().unwrap_or_default(),
            h.row_keys.clone().unwrap_or_default()
        ),
        _ => h.table_name.clone().unwrap_or_default(),
    };
    HoldLine {
        id: h.id.clone(),
        scope: h.scope.clone(),
        target,
        matter: h.matter.clone(),
        reason: h.reason.clone(),
        ground: humanize(&h.ground),
        citation: ExemptionGround::parse(&h.ground)
            .map(|g| g.citation().to_string())
            .unwrap_or_default(),
        issued_by: h.issued_by.clone(),
        created: time(&h.created_at),
        expires: h.expires_at.as_ref().map(time).unwrap_or_default(),
        active: hold::is_active(h, now()),
        released: h
            .released_at
            .as_ref()
            .map(|t| {
                format!(
                    "{} by {}: {}",
                    time(t),
                    h.released_by.clone().unwrap_or_default(),
                    h.release_reason.clone().unwrap_or_default()
                )
            })
            .unwrap_or_default(),
    }
}

/// The create form as submitted.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct HoldForm {
    pub scope: Option<String>,
    pub table: Option<String>,
    /// One row per line; composite keys separated by commas.
    pub keys: Option<String>,
    pub matter: Option<String>,
    pub reason: Option<String>,
    pub ground: Option<String>,
    pub expires_on: Option<String>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, String>,
}

pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub struct IdField {
    pub name: String,
    pub label: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "holds.html")]
struct HoldsPage {
    layout: Layout,
    holds: Vec<HoldLine>,
    show_all: bool,
    tables: Vec<Opt>,
    grounds: Vec<Opt>,
    scopes: Vec<Opt>,
    identities: Vec<IdField>,
    form: HoldForm,
    error: Option<String>,
    done: Option<&'static str>,
}

fn page(
    app: &App,
    s: &Session,
    show_all: bool,
    form: HoldForm,
    error: Option<String>,
    done: Option<&'static str>,
) -> Result<HoldsPage, PageError> {
    let rows = app.store.read(|c| hold::list(c, !show_all))?;
    let table = nonempty(&form.table).unwrap_or("").to_string();
    let ground = nonempty(&form.ground).unwrap_or("legal_claims").to_string();
    let scope = nonempty(&form.scope).unwrap_or("subject").to_string();
    Ok(HoldsPage {
        layout: s.layout("Legal holds", "holds"),
        holds: rows.iter().map(line).collect(),
        show_all,
        tables: app
            .policy
            .datamap
            .tables
            .iter()
            .map(|t| Opt {
                value: t.name.clone(),
                label: format!("{} ({})", t.name, t.label),
                selected: t.name == table,
            })
            .collect(),
        grounds: ExemptionGround::NAMES
            .iter()
            .map(|g| Opt {
                value: (*g).to_string(),
                label: humanize(g),
                selected: *g == ground,
            })
            .collect(),
        scopes: [
            ("subject", "A person (all their rows)"),
            ("table", "A whole table"),
            ("rows", "Specific rows"),
        ]
        .iter()
        .map(|(v, l)| Opt {
            value: (*v).to_string(),
            label: (*l).to_string(),
            selected: *v == scope,
        })
        .collect(),
        identities: app
            .policy
            .datamap
            .identity_kinds
            .values()
            .map(|k| IdField {
                name: format!("id_{}", k.name),
                label: k.label.clone(),
                value: form
                    .rest
                    .get(&format!("id_{}", k.name))
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect(),
        form,
        error,
        done,
    })
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub all: Option<String>,
    pub done: Option<String>,
}

pub async fn list(
    State(app): State<AppState>,
    OfficerSession(s): OfficerSession,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let show_all = q.all.as_deref() == Some("1");
    let done = match q.done.as_deref() {
        Some("created") => Some("Hold created. Rows it covers are kept and listed as exemptions."),
        Some("released") => Some("Hold released."),
        _ => None,
    };
    let p = blocking(&app, move |app| {
        page(app, &s, show_all, HoldForm::default(), None, done)
    })
    .await?;
    Ok(render(&p))
}

fn parse_keys(text: &str) -> Vec<Vec<Value>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split(',')
                .map(str::trim)
                .map(|v| match v.parse::<i64>() {
                    Ok(i) => Value::from(i),
                    Err(_) => Value::from(v),
                })
                .collect()
        })
        .collect()
}

fn create_hold(app: &App, f: &HoldForm) -> Result<CreateHold, ApiError> {
    let scope = nonempty(&f.scope).unwrap_or("subject").to_string();
    let mut ids = BTreeMap::new();
    for k in app.policy.datamap.identity_kinds.keys() {
        if let Some(v) = f.rest.get(&format!("id_{k}")).map(|v| v.trim())
            && !v.is_empty()
        {
            ids.insert(k.clone(), v.to_string());
        }
    }
    Ok(CreateHold {
        identities: (scope == "subject").then_some(IdentitiesInput::Map(ids)),
        table: if scope == "subject" {
            None
        } else {
            nonempty(&f.table).map(str::to_string)
        },
        keys: if scope == "rows" {
            nonempty(&f.keys).map(parse_keys)
        } else {
            None
        },
        scope,
        matter: nonempty(&f.matter)
            .ok_or_else(|| ApiError::invalid("matter", "name the matter the hold is for"))?
            .to_string(),
        reason: nonempty(&f.reason)
            .ok_or_else(|| ApiError::invalid("reason", "give the reason for the hold"))?
            .to_string(),
        ground: nonempty(&f.ground).map(str::to_string),
        expires_at: nonempty(&f.expires_on).map(str::to_string),
    })
}

pub async fn create(
    State(app): State<AppState>,
    OfficerSession(s): OfficerSession,
    CsrfForm(form): CsrfForm<HoldForm>,
) -> Result<Response, PageError> {
    let (actor, f2) = (s.actor.clone(), form.clone());
    let r = crate::http::blocking(&app, move |app| -> Result<(), ApiError> {
        let new = new_hold(create_hold(app, &f2)?)?;
        hold::create(app, &actor, new)?;
        Ok(())
    })
    .await;
    match r {
        Ok(()) => Ok(Redirect::to("/holds?done=created").into_response()),
        Err(e) if e.status.is_client_error() => {
            let status = e.status;
            let p = blocking(&app, move |app| {
                page(app, &s, false, form, Some(e.message), None)
            })
            .await?;
            Ok(render_status(status, &p))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct ReleaseForm {
    pub reason: Option<String>,
}

pub async fn release(
    State(app): State<AppState>,
    OfficerSession(s): OfficerSession,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ReleaseForm>,
) -> Result<Response, PageError> {
    let actor = s.actor.clone();
    let r = crate::http::blocking(&app, move |app| -> Result<(), ApiError> {
        let reason = nonempty(&form.reason)
            .ok_or_else(|| ApiError::invalid("reason", "give the reason for releasing the hold"))?;
        release_hold(app, &actor, &id, reason)?;
        Ok(())
    })
    .await;
    match r {
        Ok(()) => Ok(Redirect::to("/holds?done=released").into_response()),
        Err(e) if e.status.is_client_error() && e.status.as_u16() != 404 => {
            let status = e.status;
            let p = blocking(&app, move |app| {
                page(app, &s, false, HoldForm::default(), Some(e.message), None)
            })
            .await?;
            Ok(render_status(status, &p))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_one_row_per_line() {
        let k = parse_keys("42\n 43 \n\nA-1, 7\n");
        assert_eq!(k.len(), 3);
        assert_eq!(k[0], vec![Value::from(42)]);
        assert_eq!(k[2], vec![Value::from("A-1"), Value::from(7)]);
    }
}
