//! Auditor pages for certificates: the list, a certificate rendered for people from its
//! payload (with the signature checked against lethe's keys), the raw JWS download, and a
//! verify page for a pasted or uploaded certificate.

use super::page::blocking;
use super::page::{Layout, PageError, humanize, nonempty, render, render_status};
use super::session::{Session, check_csrf};
use super::view::time;
use crate::app::AppState;
use crate::cert::{issue, jws, keys};
use crate::error::ApiError;
use crate::http::api::certificates::find;
use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

pub struct CertLine {
    pub id: String,
    pub kind: String,
    pub issued: String,
    pub subject: String,
    pub kid: String,
}

#[derive(Template)]
#[template(path = "certificates.html")]
struct ListPage {
    layout: Layout,
    certs: Vec<CertLine>,
    kind: String,
    next_url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub kind: Option<String>,
    /// RFC 3339: only certificates issued before.
    pub before: Option<String>,
}

const PAGE: i64 = 100;

pub async fn list(
    State(app): State<AppState>,
    s: Session,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let kind = nonempty(&q.kind).unwrap_or("").to_string();
    if !kind.is_empty() && !["erasure", "access", "retention"].contains(&kind.as_str()) {
        return Err(PageError::Status(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("kind: unknown value \"{kind}\"; expected erasure, access or retention"),
        ));
    }
    let before = match nonempty(&q.before) {
        Some(b) => Some(
            chrono::DateTime::parse_from_rfc3339(b)
                .map_err(|_| {
                    PageError::Status(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "before: expected an RFC 3339 time".into(),
                    )
                })?
                .naive_utc(),
        ),
        None => None,
    };
    let k2 = kind.clone();
    let rows = blocking(&app, move |app| {
        app.store
            .read(|c| issue::page(c, nonempty(&Some(k2)), before, PAGE))
    })
    .await?;
    let next_url = (rows.len() as i64 == PAGE)
        .then(|| rows.last())
        .flatten()
        .map(|r| {
            let qs = serde_urlencoded::to_string([
                ("kind", kind.as_str()),
                ("before", &crate::audit::format_time(&r.issued_at)),
            ])
            .unwrap_or_default();
            format!("/certificates?{qs}")
        });
    let certs = rows
        .iter()
        .map(|r| CertLine {
            id: r.id.clone(),
            kind: r.kind.clone(),
            issued: time(&r.issued_at),
            subject: match (&r.request_id, &r.run_id) {
                (Some(req), _) => format!("request {req}"),
                (None, Some(run)) => format!("retention run {run}"),
                _ => String::new(),
            },
            kid: r.kid.clone(),
        })
        .collect();
    Ok(render(&ListPage {
        layout: s.layout("Certificates", "certificates"),
        certs,
        kind,
        next_url,
    }))
}

/// A table inside a rendered payload.
pub struct Grid {
    pub caption: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One part of a payload for people: plain facts and tables.
pub struct Part {
    pub title: String,
    pub facts: Vec<(String, String)>,
    pub grids: Vec<Grid>,
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            a.iter().map(cell).collect::<Vec<_>>().join(", ")
        }
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::Object(m) => m
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", cell(v)))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => cell(other),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{}: {}", humanize(k), cell(v)))
            .collect::<Vec<_>>()
            .join(" · "),
        other => other.to_string(),
    }
}

fn grid(caption: &str, items: &[Value]) -> Grid {
    let mut headers: Vec<String> = Vec::new();
    for it in items {
        if let Value::Object(m) = it {
            for k in m.keys() {
                if !headers.contains(k) {
                    headers.push(k.clone());
                }
            }
        }
    }
    Grid {
        caption: humanize(caption),
        rows: items
            .iter()
            .map(|it| headers.iter().map(|h| cell(&it[h.as_str()])).collect())
            .collect(),
        headers: headers.iter().map(|h| humanize(h)).collect(),
    }
}

fn is_table(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object))
}

/// Renders a certificate payload (any kind) as parts with facts and tables.
pub fn payload_parts(payload: &Value) -> Vec<Part> {
    let Some(obj) = payload.as_object() else {
        return Vec::new();
    };
    let mut head = Part {
        title: "Certificate".into(),
        facts: Vec::new(),
        grids: Vec::new(),
    };
    let mut parts = Vec::new();
    for (k, v) in obj {
        match v {
            Value::Object(m) => {
                let mut p = Part {
                    title: humanize(k),
                    facts: Vec::new(),
                    grids: Vec::new(),
                };
                for (k2, v2) in m {
                    if is_table(v2) {
                        p.grids.push(grid(k2, v2.as_array().map_or(&[][..], |a| a)));
                    } else {
                        p.facts.push((humanize(k2), cell(v2)));
                    }
                }
                parts.push(p);
            }
            v if is_table(v) => parts.push(Part {
                title: humanize(k),
                facts: Vec::new(),
                grids: vec![grid(k, v.as_array().map_or(&[][..], |a| a))],
            }),
            Value::Array(a) if a.is_empty() => head.facts.push((humanize(k), "none".into())),
            other => head.facts.push((humanize(k), cell(other))),
        }
    }
    parts.insert(0, head);
    parts
}

#[derive(Template)]
#[template(path = "certificate.html")]
struct CertPage {
    layout: Layout,
    id: String,
    kind: String,
    issued: String,
    kid: String,
    request_id: String,
    run_id: String,
    valid: bool,
    reason: String,
    verification_passed: Option<bool>,
    parts: Vec<Part>,
    payload_pretty: String,
}

pub async fn show(
    State(app): State<AppState>,
    s: Session,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let page = blocking(&app, move |app| -> Result<CertPage, ApiError> {
        let row = find(app, &id)?;
        let jwks = app.store.read(keys::jwks)?;
        let (valid, reason) = match jws::verify(&row.jws, &jwks) {
            Ok(_) => (true, String::new()),
            Err(e) => (false, e.0),
        };
        let payload = jws::parse(&row.jws)
            .ok()
            .and_then(|j| j.payload_json())
            .unwrap_or(Value::Null);
        Ok(CertPage {
            layout: s.layout(
                format!("{} certificate", humanize(&row.kind)),
                "certificates",
            ),
            id: row.id.clone(),
            kind: row.kind.clone(),
            issued: time(&row.issued_at),
            kid: row.kid.clone(),
            request_id: row.request_id.clone().unwrap_or_default(),
            run_id: row.run_id.clone().unwrap_or_default(),
            valid,
            reason,
            verification_passed: payload["verification"]["passed"].as_bool(),
            parts: payload_parts(&payload),
            payload_pretty: serde_json::to_string_pretty(&payload).unwrap_or_default(),
        })
    })
    .await?;
    Ok(render(&page))
}

/// The certificate exactly as signed, as a download.
pub async fn raw(
    State(app): State<AppState>,
    _s: Session,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id2 = id.clone();
    let row = blocking(&app, move |app| find(app, &id2)).await?;
    Ok(crate::http::api::certificates::jws_download(&id, row.jws))
}

/// The verify page's outcome.
pub struct Verdict {
    pub valid: bool,
    pub reason: String,
    pub kid: String,
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    layout: Layout,
    text: String,
    verdict: Option<Verdict>,
    parts: Vec<Part>,
    error: Option<String>,
}

pub async fn verify_form(s: Session) -> Response {
    render(&VerifyPage {
        layout: s.layout("Verify a certificate", "verify"),
        text: String::new(),
        verdict: None,
        parts: Vec::new(),
        error: None,
    })
}

/// Largest certificate accepted for verification.
const MAX_CERT_BYTES: usize = 1 << 20;

async fn read_form(mut m: Multipart) -> Result<(Option<String>, String, String), PageError> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        PageError::Status(e.status(), format!("upload: {}", e.body_text()))
    };
    let (mut csrf, mut pasted, mut uploaded) = (None, String::new(), String::new());
    while let Some(field) = m.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(bad)?;
        if bytes.len() > MAX_CERT_BYTES {
            return Err(PageError::Status(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("{name}: larger than {MAX_CERT_BYTES} bytes"),
            ));
        }
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
            PageError::Status(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{name}: the certificate is not UTF-8 text"),
            )
        })?;
        match name.as_str() {
            super::session::CSRF_FIELD => csrf = Some(text),
            "jws" => pasted = text,
            "file" => uploaded = text,
            _ => {}
        }
    }
    Ok((csrf, pasted, uploaded))
}

/// Accepts the JWS itself or `{"jws": ...}` (as the API does).
fn candidate(text: &str) -> String {
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(v) => match v.get("jws") {
            Some(Value::String(s)) => s.clone(),
            Some(obj @ Value::Object(_)) => obj.to_string(),
            _ => text.trim().to_string(),
        },
        Err(_) => text.trim().to_string(),
    }
}

pub async fn verify(
    State(app): State<AppState>,
    s: Session,
    form: Multipart,
) -> Result<Response, PageError> {
    let (csrf, pasted, uploaded) = read_form(form).await?;
    check_csrf(&s, csrf.as_deref())?;
    let text = if uploaded.trim().is_empty() {
        pasted
    } else {
        uploaded
    };
    let layout = s.layout("Verify a certificate", "verify");
    if text.trim().is_empty() {
        return Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &VerifyPage {
                layout,
                text,
                verdict: None,
                parts: Vec::new(),
                error: Some("Paste a certificate or choose a file to upload.".into()),
            },
        ));
    }
    let cand = candidate(&text);
    let (verdict, parts) = blocking(&app, move |app| -> Result<_, ApiError> {
        let jwks = app.store.read(keys::jwks)?;
        Ok(match jws::verify(&cand, &jwks) {
            Ok(ok) => (
                Verdict {
                    valid: true,
                    reason: String::new(),
                    kid: ok.kid,
                },
                payload_parts(&ok.payload),
            ),
            Err(e) => (
                Verdict {
                    valid: false,
                    reason: e.0,
                    kid: String::new(),
                },
                Vec::new(),
            ),
        })
    })
    .await?;
    Ok(render(&VerifyPage {
        layout,
        text,
        verdict: Some(verdict),
        parts,
        error: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_becomes_facts_and_tables() {
        let p = json!({
            "kind": "erasure",
            "request": {"id": "r1", "received_at": "2026-01-01T00:00:00Z"},
            "results": [{"table": "contacts", "deleted": 1}, {"table": "deals", "anonymized": 2}],
            "exemptions": [],
            "verification": {"passed": true, "rows_remaining_outside_exemptions": 0},
        });
        let parts = payload_parts(&p);
        assert_eq!(parts[0].title, "Certificate");
        assert!(
            parts[0]
                .facts
                .iter()
                .any(|(k, v)| k == "Kind" && v == "erasure")
        );
        assert!(
            parts[0]
                .facts
                .iter()
                .any(|(k, v)| k == "Exemptions" && v == "none")
        );
        let results = parts.iter().find(|p| p.title == "Results").unwrap();
        assert_eq!(
            results.grids[0].headers,
            vec!["Table", "Deleted", "Anonymized"]
        );
        assert_eq!(results.grids[0].rows[1], vec!["deals", "—", "2"]);
        let v = parts.iter().find(|p| p.title == "Verification").unwrap();
        assert!(v.facts.iter().any(|(k, v)| k == "Passed" && v == "yes"));
    }

    #[test]
    fn candidate_unwraps_jws_field() {
        assert_eq!(candidate(r#"{"jws": "abc"}"#), "abc");
        assert_eq!(candidate(r#"{"payload": "x"}"#), r#"{"payload": "x"}"#);
    }
}
