//! Certificates: list, show (with the decoded payload and a verification), the raw JWS,
//! verification of a pasted certificate, and the public JWKS.

use crate::app::AppState;
use crate::cert::{issue, jws, keys};
use crate::error::ApiError;
use crate::http::auth::Caller;
use crate::http::blocking;
use crate::http::extract::ApiQuery;
use crate::store::StoreError;
use crate::store::models::CertificateRow;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

/// The certificate with this id, or a 404 naming it.
pub fn find(app: &crate::app::App, id: &str) -> Result<CertificateRow, ApiError> {
    app.store.read(|c| issue::get(c, id)).map_err(|e| match e {
        StoreError::NotFound => ApiError::not_found(format!("certificate {id} not found")),
        other => other.into(),
    })
}

fn summary(row: &CertificateRow) -> Value {
    json!({
        "id": row.id, "kind": row.kind, "request_id": row.request_id, "run_id": row.run_id,
        "kid": row.kid, "issued_at": crate::audit::format_time(&row.issued_at),
        "url": format!("/api/v1/certificates/{}", row.id),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<i64>,
}

pub async fn list(
    State(app): State<AppState>,
    Caller(_a): Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    blocking(&app, move |app| -> Result<Json<Value>, ApiError> {
        let rows = app.store.read(|c| issue::list(c, limit))?;
        Ok(Json(
            json!({"certificates": rows.iter().map(summary).collect::<Vec<_>>()}),
        ))
    })
    .await
}

pub async fn show(
    State(app): State<AppState>,
    Caller(_a): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(&app, move |app| -> Result<Json<Value>, ApiError> {
        let row = find(app, &id)?;
        let jwks = app.store.read(keys::jwks)?;
        let verdict = match jws::verify(&row.jws, &jwks) {
            Ok(_) => json!({"valid": true}),
            Err(e) => json!({"valid": false, "reason": e.0}),
        };
        let parsed: Value = serde_json::from_str(&row.jws).unwrap_or(Value::Null);
        let payload = jws::parse(&row.jws)
            .ok()
            .and_then(|j| j.payload_json())
            .unwrap_or(Value::Null);
        let mut v = summary(&row);
        v["jws"] = parsed;
        v["payload"] = payload;
        v["verification"] = verdict;
        Ok(Json(v))
    })
    .await
}

/// The certificate exactly as signed (RFC 7515 JSON serialization).
pub async fn raw(
    State(app): State<AppState>,
    Caller(_a): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id2 = id.clone();
    let row = blocking(&app, move |app| find(app, &id2)).await?;
    Ok(jws_download(&id, row.jws))
}

/// A certificate exactly as signed, as a download (`<id>.jws.json`).
pub fn jws_download(id: &str, jws: String) -> Response {
    let mut resp = (StatusCode::OK, jws).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jose+json"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.jws.json\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// Verifies a certificate given in the body (the JWS JSON itself, or `{"jws": ...}` with
/// the JWS as an object or a string). Invalid certificates are a 200 with the reason;
/// only a body that is not a certificate at all is a 4xx.
pub async fn verify(
    State(app): State<AppState>,
    Caller(_a): Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "body is not UTF-8",
            )
        })?
        .to_string();
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("body is not JSON: {e}"),
        )
    })?;
    let candidate = match v.get("jws") {
        Some(Value::String(s)) => s.clone(),
        Some(obj @ Value::Object(_)) => obj.to_string(),
        Some(_) => {
            return Err(ApiError::invalid(
                "jws",
                "must be the JWS (an object) or its text",
            ));
        }
        None if v.get("payload").is_some() => text,
        None => {
            return Err(ApiError::invalid(
                "jws",
                "expected a JWS ({\"protected\", \"payload\", \"signature\"}) or {\"jws\": ...}",
            ));
        }
    };
    blocking(&app, move |app| -> Result<Json<Value>, ApiError> {
        let jwks = app.store.read(keys::jwks)?;
        Ok(Json(match jws::verify(&candidate, &jwks) {
            Ok(ok) => json!({"valid": true, "kid": ok.kid, "payload": ok.payload}),
            Err(e) => json!({"valid": false, "reason": e.0}),
        }))
    })
    .await
}

/// `/.well-known/jwks.json`: every public key lethe has signed with (no authentication).
pub async fn jwks(State(app): State<AppState>) -> Result<Response, ApiError> {
    let set = blocking(&app, |app| app.store.read(keys::jwks)).await?;
    let mut resp = Json(set).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}
