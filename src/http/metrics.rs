//! `/metrics` (Prometheus text format, see [`crate::metrics`]) and the per-request
//! middleware every route runs through: a request id, the HTTP duration histogram and one
//! access-log line.
//!
//! `/metrics` takes `Authorization: Bearer <token>` with an API token of any role or the
//! dedicated `LETHE_METRICS_TOKEN`. It lives outside `/api/v1` (and its rate limits): a
//! scraper polls it every few seconds.
//!
//! The access log line carries the method, the route *template* (`/api/v1/requests/{id}`,
//! never the raw path with ids, never the query string), the status, the duration and the
//! request id (also returned as `X-Request-Id`); never a header, cookie or body.

use super::{auth, blocking, on_blocking_pool};
use crate::app::AppState;
use crate::error::ApiError;
use crate::metrics::encode;
use crate::store::tokens;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::time::Instant;
use tracing::Instrument;

/// The response header that names the request in the logs.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// `GET /metrics`.
pub async fn metrics(State(app): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let token = auth::bearer(&req)?;
    let dedicated = app
        .config
        .metrics_token
        .as_deref()
        .is_some_and(|m| same_secret(m, &token));
    if !dedicated {
        let found = blocking(&app, move |app| {
            app.store.read(|c| tokens::authenticate(c, &token))
        })
        .await?;
        if found.is_none() {
            return Err(ApiError::unauthorized("invalid, expired or revoked token"));
        }
    }
    let body = on_blocking_pool(&app, crate::metrics::render)
        .await
        .map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(encode::CONTENT_TYPE),
        )],
        body,
    )
        .into_response())
}

/// Compares two secrets by their SHA-256, so the time taken says nothing about where they
/// differ.
fn same_secret(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// Middleware for every route: gives the request an id (a span field of every log line
/// while it is handled, and the `X-Request-Id` response header), records its duration by
/// route template and status class, and writes one access-log line.
pub async fn track(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_string(), |p| p.as_str().to_string());
    let id = uuid::Uuid::new_v4().simple().to_string();
    let span = tracing::info_span!("http", request_id = %id);
    let mut resp = next.run(req).instrument(span).await;
    let took = started.elapsed();
    let status = resp.status().as_u16();
    app.metrics.observe_http(&method, &route, status, took);
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    let duration_ms = took.as_secs_f64() * 1000.0;
    // Probes and scrapes come every few seconds: debug level, so they do not drown the rest.
    if route == "/health" || route == "/metrics" {
        tracing::debug!(target: "lethe::access", request_id = %id, method = %method, route = %route, status, duration_ms, "http request");
    } else {
        tracing::info!(target: "lethe::access", request_id = %id, method = %method, route = %route, status, duration_ms, "http request");
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_value() {
        assert!(same_secret(
            "metrics-token-0123456789",
            "metrics-token-0123456789"
        ));
        assert!(!same_secret(
            "metrics-token-0123456789",
            "metrics-token-012345678"
        ));
        assert!(!same_secret("", "x"));
    }
}
