//! The web UI for privacy officers and auditors: server-rendered askama pages (templates in
//! `templates/`) over the same services as the JSON API. One handler file per area.
//!
//! Sign-in turns an API token into a session cookie ([`session`]); every mutating form
//! carries the session's CSRF token ([`session::CsrfForm`]); officer pages and actions take
//! an [`session::OfficerSession`], so auditor sessions get a 403. Pages work without
//! JavaScript; `/static/app.js` only adds small conveniences. [`with_security_headers`] puts
//! the security headers (CSP, no framing, no sniffing, no referrer, no-store) on every
//! response of the service, API included.

pub mod assets;
pub mod audit;
pub mod certificates;
pub mod dashboard;
pub mod datamap;
pub mod holds;
pub mod page;
pub mod reports;
pub mod requests;
pub mod retention;
pub mod session;
pub mod view;

use crate::app::AppState;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

/// Content Security Policy of every response: nothing inline, nothing from elsewhere, never
/// framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'";

/// Powerful browser features the UI never uses, turned off.
pub const PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), geolocation=(), gyroscope=(), \
magnetometer=(), microphone=(), payment=(), usb=()";

/// The security headers of every response lethe sends (pages, API JSON, errors, 404s,
/// assets, downloads), applied around the whole router: no sniffing, no framing, no
/// referrer, no caching unless a handler chose a cache policy (the static assets and the
/// JWKS do), isolation from other origins' windows and resources, no powerful features.
pub fn with_security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let header = |name: &'static str| HeaderName::from_static(name);
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header("permissions-policy"),
            HeaderValue::from_static(PERMISSIONS_POLICY),
        ))
}

/// The pages, merged into the service's router at the root.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route(
            "/sign-in",
            get(session::sign_in_form).post(session::sign_in),
        )
        .route("/sign-out", post(session::sign_out))
        .route("/dashboard", get(dashboard::show))
        .route("/requests", get(requests::list).post(requests::create))
        .route("/requests/new", get(requests::new_form))
        .route("/requests/{id}", get(requests::show))
        .route("/requests/{id}/export", get(requests::export))
        .route("/requests/{id}/export-links", post(requests::create_link))
        .route("/requests/{id}/{action}", post(requests::act))
        .route("/holds", get(holds::list).post(holds::create))
        .route("/holds/{id}/release", post(holds::release))
        .route("/retention", get(retention::show))
        .route("/retention/runs", post(retention::start))
        .route("/retention/runs/{id}", get(retention::run))
        .route("/certificates", get(certificates::list))
        .route("/certificates/{id}", get(certificates::show))
        .route("/certificates/{id}/jws", get(certificates::raw))
        .route(
            "/verify",
            get(certificates::verify_form)
                .post(certificates::verify)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::http::limits::CERT_VERIFY_BODY_BYTES,
                )),
        )
        .route("/audit", get(audit::show))
        .route("/reports", get(reports::show))
        .route("/reports/requests.csv", get(reports::csv))
        .route("/data-map", get(datamap::show))
        .route("/static/app.css", get(assets::css))
        .route("/static/app.js", get(assets::js))
}

/// `/`: the signed-in role's home, or the sign-in page.
async fn home(session: Result<session::Session, page::PageError>) -> Response {
    match session {
        Ok(s) => Redirect::to(session::home_of(s.actor.role)).into_response(),
        Err(_) => Redirect::to("/sign-in").into_response(),
    }
}

/// Unknown addresses: an HTML page for browsers (that accept `text/html`) outside `/api`,
/// the API's JSON 404 otherwise.
pub async fn not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    let api = uri.path() == "/api" || uri.path().starts_with("/api/");
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if api || !browser {
        return crate::http::api::not_found().await.into_response();
    }
    page::PageError::NotFound("There is no page at this address.".into()).into_response()
}
