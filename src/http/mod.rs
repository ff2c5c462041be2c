//! The HTTP service: the JSON API under `/api/v1` (bearer tokens), the web UI at the root
//! (session cookies, [`web`]), health, and the well-known endpoints. One handler file per
//! area under [`api`] and [`web`].

pub mod api;
pub mod auth;
pub mod extract;
pub mod web;

use crate::app::{App, AppState};
use crate::error::ApiError;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

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
        .route("/holds", get(api::holds::list).post(api::holds::create))
        .route("/holds/{id}", get(api::holds::show))
        .route("/holds/{id}/release", post(api::holds::release))
        .route("/certificates", get(api::certificates::list))
        .route("/certificates/verify", post(api::certificates::verify))
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
    Router::new()
        .route("/health", get(api::health::health))
        .route("/.well-known/jwks.json", get(api::certificates::jwks))
        .nest("/api/v1", api)
        .merge(web::router())
        .fallback(web::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(app)
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

/// Runs `f` on the blocking pool; `Err` when the worker itself failed (panicked).
pub async fn on_blocking_pool<R: Send + 'static>(
    app: &AppState,
    f: impl FnOnce(&App) -> R + Send + 'static,
) -> Result<R, String> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || f(&app))
        .await
        .map_err(|e| format!("worker failed: {e}"))
}
