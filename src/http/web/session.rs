//! Web UI sign-in: an API token turns into a session cookie (HttpOnly, SameSite=Strict,
//! with an expiry), every form carries the session's CSRF token, and officer pages refuse
//! auditor sessions with a 403.
//!
//! The cookie carries a random secret; the store keeps only its SHA-256 (see
//! [`crate::store::sessions`]). The sign-in form itself is protected by a short-lived
//! pre-session cookie whose value the form must echo (double submit).

use super::page::blocking;
use super::page::{Layout, PageError, render};
use crate::app::{Actor, AppState};
use crate::crypto::{random_token, sha256_hex};
use crate::request::Role;
use crate::store::{now, sessions, tokens};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDateTime;
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub const SESSION_COOKIE: &str = "lethe_session";
pub const SIGNIN_COOKIE: &str = "lethe_signin";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie secret (the row id).
    pub id: String,
    pub actor: Actor,
    pub csrf: String,
    pub expires_at: NaiveDateTime,
}

impl Session {
    pub fn is_officer(&self) -> bool {
        self.actor.role.can_write()
    }

    /// The page frame for this session.
    pub fn layout(&self, title: impl Into<String>, section: &'static str) -> Layout {
        Layout {
            title: title.into(),
            section,
            signed_in: true,
            who: self.actor.label.clone(),
            role: self.actor.role.as_str(),
            officer: self.is_officer(),
            csrf: self.csrf.clone(),
            expires_at: crate::audit::format_time(&self.expires_at),
        }
    }
}

/// The value of a cookie, from every `Cookie` header.
/// A name sent twice (e.g. one planted with a narrower path by a sibling site) counts as
/// absent, so a planted cookie cannot shadow the real one.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string());
    let first = found.next()?;
    if found.next().is_some() {
        return None;
    }
    Some(first).filter(|v| !v.is_empty() && v.len() <= 256)
}

/// Whether the session cookie gets `Secure`: always when configured, and also when a TLS
/// proxy in front says the browser came over HTTPS (a spoofed header only makes the
/// cookie stricter).
fn secure(app: &AppState, headers: &HeaderMap) -> bool {
    app.config.cookie_secure
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (sha256_hex(a.as_bytes()), sha256_hex(b.as_bytes()));
    a.bytes()
        .zip(b.bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

fn path_of(parts: &Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.as_str().to_string())
}

impl FromRequestParts<AppState> for Session {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, PageError> {
        if let Some(s) = parts.extensions.get::<Session>() {
            return Ok(s.clone());
        }
        let next = if parts.method == axum::http::Method::GET {
            path_of(parts)
        } else {
            "/".to_string()
        };
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(PageError::SignIn { next });
        };
        let row = blocking(app, move |app| {
            app.store.read(|c| sessions::find(c, &secret))
        })
        .await?;
        let Some(row) = row else {
            return Err(PageError::SignIn { next });
        };
        let Some(role) = Role::parse(&row.role) else {
            return Err(PageError::SignIn { next });
        };
        let s = Session {
            id: row.id,
            actor: Actor {
                id: format!("token:{}", row.token_id),
                label: row.label,
                role,
            },
            csrf: row.csrf,
            expires_at: row.expires_at,
        };
        parts.extensions.insert(s.clone());
        Ok(s)
    }
}

/// A session that may change things (officer or admin). Auditor sessions get a 403 page:
/// they see no officer actions and cannot reach them by URL.
pub struct OfficerSession(pub Session);

impl FromRequestParts<AppState> for OfficerSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, PageError> {
        let s = Session::from_request_parts(parts, app).await?;
        if !s.is_officer() {
            return Err(PageError::Forbidden(format!(
                "This page is for privacy officers. You are signed in as {} with the {} role, \
                 which can read certificates, the audit log, reports and the data map, but \
                 cannot act on requests, holds or retention.",
                s.actor.label, s.actor.role
            )));
        }
        Ok(OfficerSession(s))
    }
}

/// A urlencoded form whose `_csrf` field matches the session's CSRF token; anything else is
/// a 403 before the form is even parsed.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, PageError> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, app).await?;
        let form_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !form_type {
            return Err(PageError::Status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "This form must be sent as application/x-www-form-urlencoded.".into(),
            ));
        }
        let bytes = Bytes::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(|e| PageError::Status(e.status(), e.body_text()))?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            PageError::Status(StatusCode::BAD_REQUEST, format!("malformed form: {e}"))
        })?;
        check_csrf(
            &session,
            pairs
                .iter()
                .find(|(k, _)| k == CSRF_FIELD)
                .map(|(_, v)| v.as_str()),
        )?;
        let value = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            PageError::Status(StatusCode::UNPROCESSABLE_ENTITY, format!("form: {e}"))
        })?;
        Ok(CsrfForm(value))
    }
}

/// Checks a submitted CSRF token against the session's.
pub fn check_csrf(session: &Session, given: Option<&str>) -> Result<(), PageError> {
    match given {
        Some(g) if same_secret(g, &session.csrf) => Ok(()),
        Some(_) => Err(PageError::Csrf(
            "The form's security token does not match your session.",
        )),
        None => Err(PageError::Csrf("The form carried no security token.")),
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    layout: Layout,
    csrf: String,
    next: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SignInQuery {
    pub next: Option<String>,
}

/// Only same-site paths are followed after sign-in (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    let plain = |n: &str| {
        n.len() <= 512
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_.~%?=&-+,:".contains(&b))
    };
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && plain(n) => n.into(),
        _ => "/".into(),
    }
}

fn sign_in_page(
    app: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    next: String,
    error: Option<String>,
) -> Response {
    let csrf = random_token("");
    let mut resp = render(&SignInPage {
        layout: Layout::anonymous("Sign in"),
        csrf: csrf.clone(),
        next,
        error,
    });
    *resp.status_mut() = status;
    if let Some(v) = set_cookie(SIGNIN_COOKIE, &csrf, 3600, secure(app, headers)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

pub async fn sign_in_form(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    sign_in_page(&app, &headers, StatusCode::OK, next, None)
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    pub token: String,
    #[serde(rename = "_csrf", default)]
    pub csrf: String,
    pub next: Option<String>,
}

pub async fn sign_in(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form: SignInForm = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => {
            return PageError::Status(StatusCode::BAD_REQUEST, format!("malformed form: {e}"))
                .into_response();
        }
    };
    let next = safe_next(form.next.as_deref());
    let expected = cookie(&headers, SIGNIN_COOKIE);
    if !expected.is_some_and(|e| !form.csrf.is_empty() && same_secret(&e, &form.csrf)) {
        return PageError::Csrf(
            "The sign-in form expired or did not come from this site. Load it again.",
        )
        .into_response();
    }
    let token = form.token.trim().to_string();
    if token.is_empty() || token.len() > 256 {
        return sign_in_page(
            &app,
            &headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            next,
            Some("Enter your lethe API token.".into()),
        );
    }
    let ttl = app.config.session_ttl;
    let previous = cookie(&headers, SESSION_COOKIE).map(|s| sha256_hex(s.as_bytes()));
    let opened = blocking(&app, move |app| {
        app.store.write(|c| {
            let Some(tok) = tokens::authenticate(c, &token)? else {
                return Ok(None);
            };
            // Signing in again ends the session this browser had.
            if let Some(old) = &previous {
                sessions::close(c, old)?;
            }
            if Role::parse(&tok.role).is_none() {
                return Ok(None);
            }
            let (row, secret) = sessions::open(c, &tok, now() + ttl)?;
            crate::audit::append(
                c,
                &format!("token:{}", tok.id),
                "web.sign_in",
                &format!("token:{}", tok.id),
                serde_json::json!({"role": tok.role, "expires_at": crate::audit::format_time(&row.expires_at)}),
            )?;
            Ok::<_, crate::store::StoreError>(Some((row, secret)))
        })
    })
    .await;
    let (row, secret) = match opened {
        Ok(Some(x)) => x,
        Ok(None) => {
            return sign_in_page(
                &app,
                &headers,
                StatusCode::UNAUTHORIZED,
                next,
                Some("That token is not valid, or it has expired or been revoked.".into()),
            );
        }
        Err(e) => return e.into_response(),
    };
    let max_age = (row.expires_at - now()).num_seconds().max(0);
    let target = if next == "/" {
        home_of(Role::parse(&row.role).unwrap_or(Role::Auditor)).to_string()
    } else {
        next
    };
    let mut resp = Redirect::to(&target).into_response();
    let secure = secure(&app, &headers);
    if let Some(v) = set_cookie(SESSION_COOKIE, &secret, max_age, secure) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    if let Some(v) = set_cookie(SIGNIN_COOKIE, "", 0, secure) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Where a role lands after sign-in.
pub fn home_of(role: Role) -> &'static str {
    if role.can_write() {
        "/dashboard"
    } else {
        "/certificates"
    }
}

#[derive(Debug, Deserialize)]
pub struct SignOutForm {}

pub async fn sign_out(
    State(app): State<AppState>,
    headers: HeaderMap,
    session: Session,
    CsrfForm(_f): CsrfForm<SignOutForm>,
) -> Result<Response, PageError> {
    let id = session.id.clone();
    let who = session.actor.id.clone();
    blocking(&app, move |app| {
        app.store.write(|c| {
            sessions::close(c, &id)?;
            crate::audit::append(c, &who, "web.sign_out", &who, serde_json::json!({}))?;
            Ok::<_, crate::store::StoreError>(())
        })
    })
    .await?;
    let mut resp = Redirect::to("/sign-in").into_response();
    if let Some(v) = set_cookie(SESSION_COOKIE, "", 0, secure(&app, &headers)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_many() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; lethe_session=abc"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        h.append(
            header::COOKIE,
            HeaderValue::from_static("lethe_session=planted"),
        );
        assert_eq!(
            cookie(&h, SESSION_COOKIE),
            None,
            "a duplicate counts as absent"
        );
    }

    #[test]
    fn next_must_stay_on_site() {
        assert_eq!(safe_next(Some("/requests/1")), "/requests/1");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(Some("/\r\nSet-Cookie: x=y")), "/");
        assert_eq!(safe_next(Some("/ /evil")), "/");
        assert_eq!(
            safe_next(Some("/requests?state=open&kind=access")),
            "/requests?state=open&kind=access"
        );
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", ""));
    }

    #[test]
    fn cookie_flags() {
        let v = set_cookie("x", "y", 60, true).unwrap();
        let s = v.to_str().unwrap();
        assert!(s.contains("HttpOnly") && s.contains("SameSite=Strict") && s.contains("Secure"));
        assert!(s.contains("Max-Age=60"));
    }
}
