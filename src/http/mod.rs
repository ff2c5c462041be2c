//! The HTTP service: the JSON API under `/api/v1` (bearer tokens), the web UI at the root
//! (session cookies, [`web`]), health, and the well-known endpoints. One handler file per
//! area under [`api`] and [`web`].

pub mod api;
pub mod auth;
pub mod extract;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod server;
pub mod web;

use crate::app::{App, AppState};
use crate::error::ApiError;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

/// The whole router.
pub fn router(app: AppState) -> Router {
    let limit = app.config.max_body_bytes;
    let api = Router::new()
        .route(
            "/requests",
            get(api::requests::list).post(api::requests::create),
        )
        .route("/requests/{id}", get(api::requests::show))
        .route("/requests/due", get(api::requests::due))
        .route(
            "/requests/{id}/acknowledge",
            post(api::requests::acknowledge),
        )
        .route(
            "/requests/{id}/request-identity",
            post(api::requests::request_identity),
        )
        .route("/requests/{id}/verify", post(api::requests::verify))
        .route("/requests/{id}/run", post(api::requests::run))
        .route(
            "/requests/{id}/plan",
            post(api::requests::plan).get(api::requests::show_plan),
        )
        .route("/requests/{id}/approve", post(api::requests::approve))
        .route("/requests/{id}/execute", post(api::requests::execute))
        .route("/requests/{id}/deny", post(api::requests::deny))
        .route("/requests/{id}/withdraw", post(api::requests::withdraw))
        .route("/requests/{id}/cancel", post(api::requests::cancel))
        .route("/requests/{id}/extend", post(api::requests::extend))
        .route("/requests/{id}/export", get(api::requests::export))
        .route(
            "/requests/{id}/export-links",
            post(api::exports::create_link),
        )
        .route("/holds", get(api::holds::list).post(api::holds::create))
        .route("/holds/{id}", get(api::holds::show))
        .route("/holds/{id}/release", post(api::holds::release))
        .route("/certificates", get(api::certificates::list))
        .route(
            "/certificates/verify",
            post(api::certificates::verify).layer(DefaultBodyLimit::max(
                limit.max(limits::CERT_VERIFY_BODY_BYTES),
            )),
        )
        .route("/certificates/{id}", get(api::certificates::show))
        .route("/certificates/{id}/jws", get(api::certificates::raw))
        .route("/retention/rules", get(api::retention::list_rules))
        .route("/retention/plan", get(api::retention::show_plan))
        .route(
            "/retention/runs",
            get(api::retention::list_runs).post(api::retention::start_run),
        )
        .route("/retention/runs/{id}", get(api::retention::show_run))
        .route("/audit", get(api::audit::list))
        .route("/audit/verify", get(api::audit::verify))
        .fallback(api::not_found)
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::require_token,
        ));
    let routes = Router::new()
        .route("/health", get(api::health::health))
        // Prometheus scrapes: outside /api/v1 and its rate limits (its own auth).
        .route("/metrics", get(metrics::metrics))
        .route("/.well-known/jwks.json", get(api::certificates::jwks))
        // Export downloads: the link's token is the credential (no bearer token).
        .route("/exports/{token}", get(api::exports::download))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .nest("/api/v1", api)
        .merge(web::router())
        .fallback(web::not_found)
        .layer(DefaultBodyLimit::max(limit))
        // Hostile input: over-long request targets (414), 413s with the service's error
        // bodies, then the rate limits on the API and the sign-in form (before routing and
        // authentication, so floods cost nothing downstream).
        .layer(axum::middleware::from_fn_with_state(
            app.config.http.max_uri_bytes,
            limits::middleware,
        ))
        .layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(ratelimit::RateLimits::new(&app.config.http)),
            ratelimit::middleware,
        ))
        // Request id, duration histogram and access log for every route (added last, so
        // it sees the final status of everything above).
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ));
    web::with_security_headers(routes).with_state(app)
}

/// Runs blocking work (database, tracing) on the blocking pool, never on a runtime worker.
pub async fn blocking<T, E>(
    app: &AppState,
    f: impl FnOnce(&App) -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    match on_blocking_pool(app, f).await {
        Ok(r) => r.map_err(Into::into),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// Runs `f` on the blocking pool; `Err` when the worker itself failed (panicked). The
/// caller's span (the HTTP request's id) goes along, so the work's log lines carry it.
pub async fn on_blocking_pool<R: Send + 'static>(
    app: &AppState,
    f: impl FnOnce(&App) -> R + Send + 'static,
) -> Result<R, String> {
    let app = app.clone();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| f(&app)))
        .await
        .map_err(|e| format!("worker failed: {e}"))
}
