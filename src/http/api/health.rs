//! `GET /health`: liveness plus a store check (no authentication, no personal data).

use crate::app::AppState;
use crate::http::blocking;
use crate::store::StoreError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use diesel::connection::SimpleConnection;
use serde_json::json;

pub async fn health(State(app): State<AppState>) -> Response {
    let store = blocking(&app, |app| {
        app.store
            .read(|c| c.batch_execute("SELECT 1").map_err(StoreError::from))
    })
    .await;
    let ok = store.is_ok();
    let body = Json(json!({
        "status": if ok { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "store": if ok { "ok" } else { "unavailable" },
        "policy_digest": app.policy.digest,
    }));
    if ok {
        body.into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}
