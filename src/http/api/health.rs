//! `GET /health`: liveness plus a store check (no authentication, no personal data).

use crate::app::AppState;
use crate::http::blocking;
use crate::store::StoreError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use diesel::connection::SimpleConnection;
use serde::Serialize;
use utoipa::ToSchema;

/// The service's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when the engine store does not answer.
    #[schema(example = "ok")]
    pub status: &'static str,
    pub version: &'static str,
    /// `ok` or `unavailable`.
    pub store: &'static str,
    /// Digest of the loaded policy files.
    pub policy_digest: String,
}

/// Liveness and the engine store's state.
///
/// No authentication.
#[utoipa::path(
    get,
    path = "/health",
    tag = "service",
    responses(
        (status = 200, description = "The service and its store are up", body = Health),
        (status = 503, description = "The engine store does not answer (`status: degraded`)", body = Health),
    )
)]
pub async fn health(State(app): State<AppState>) -> Response {
    let store = blocking(&app, |app| {
        app.store
            .read(|c| c.batch_execute("SELECT 1").map_err(StoreError::from))
    })
    .await;
    let ok = store.is_ok();
    let body = Json(Health {
        status: if ok { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        store: if ok { "ok" } else { "unavailable" },
        policy_digest: app.policy.digest.clone(),
    });
    if ok {
        body.into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}
