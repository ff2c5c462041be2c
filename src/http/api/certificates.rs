//! Certificates: list, show (with the decoded payload and a verification), the raw JWS,
//! verification of a pasted certificate, and the public JWKS.

use crate::app::AppState;
use crate::cert::{issue, jws, keys};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::http::auth::Caller;
use crate::http::blocking;
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::openapi::JwkSet;
use crate::store::StoreError;
use crate::store::models::CertificateRow;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// The certificate with this id, or a 404 naming it.
pub fn find(app: &crate::app::App, id: &str) -> Result<CertificateRow, ApiError> {
    app.store.read(|c| issue::get(c, id)).map_err(|e| match e {
        StoreError::NotFound => ApiError::not_found(format!("certificate {id} not found")),
        other => other.into(),
    })
}

/// A certificate in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateSummary {
    pub id: String,
    /// erasure | rectification | opt_out | access | portability | retention | ...
    pub kind: String,
    /// The request it certifies (request certificates).
    pub request_id: Option<String>,
    /// The retention run it certifies (retention certificates).
    pub run_id: Option<String>,
    /// The signing key's RFC 7638 thumbprint.
    pub kid: String,
    pub issued_at: String,
    pub url: String,
}

fn summary(row: &CertificateRow) -> CertificateSummary {
    CertificateSummary {
        id: row.id.clone(),
        kind: row.kind.clone(),
        request_id: row.request_id.clone(),
        run_id: row.run_id.clone(),
        kid: row.kid.clone(),
        issued_at: crate::audit::format_time(&row.issued_at),
        url: format!("/api/v1/certificates/{}", row.id),
    }
}

/// Certificates, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateList {
    pub certificates: Vec<CertificateSummary>,
}

/// A certificate with its decoded payload and whether its signature verifies now.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateDetail {
    #[serde(flatten)]
    pub summary: CertificateSummary,
    /// The JWS as stored (JSON serialization, flattened: `protected`, `payload`,
    /// `signature`).
    #[schema(value_type = Option<Object>)]
    pub jws: Value,
    /// The decoded payload (`format: lethe.certificate/1`).
    #[schema(value_type = Option<Object>)]
    pub payload: Value,
    pub verification: Verdict,
}

/// The result of verifying a certificate against lethe's public keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verdict {
    pub valid: bool,
    /// The key that signed it (valid certificates, verification endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The verified payload (valid certificates, verification endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
    /// Why it does not verify (invalid certificates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Verdict {
    fn invalid(reason: String) -> Self {
        Verdict {
            valid: false,
            kid: None,
            payload: None,
            reason: Some(reason),
        }
    }
}

/// Paging of the certificate list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// How many, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// Certificates, newest first.
///
/// Role: any.
#[utoipa::path(
    get,
    path = "/api/v1/certificates",
    tag = "certificates",
    params(ListQuery),
    responses(
        (status = 200, description = "Certificates", body = CertificateList),
        (status = 422, description = "`limit` outside 1..=1000 or an unknown parameter", body = ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    Caller(_a): Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<CertificateList>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    blocking(
        &app,
        move |app| -> Result<Json<CertificateList>, ApiError> {
            let rows = app.store.read(|c| issue::list(c, limit))?;
            Ok(Json(CertificateList {
                certificates: rows.iter().map(summary).collect(),
            }))
        },
    )
    .await
}

/// One certificate, decoded, with a verification of its signature.
///
/// Role: any.
#[utoipa::path(
    get,
    path = "/api/v1/certificates/{id}",
    tag = "certificates",
    params(("id" = String, Path, description = "Certificate id")),
    responses(
        (status = 200, description = "The certificate", body = CertificateDetail),
        (status = 404, description = "No certificate has this id", body = ErrorBody),
    )
)]
pub async fn show(
    State(app): State<AppState>,
    Caller(_a): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CertificateDetail>, ApiError> {
    blocking(
        &app,
        move |app| -> Result<Json<CertificateDetail>, ApiError> {
            let row = find(app, &id)?;
            let jwks = app.store.read(keys::jwks)?;
            let verification = match jws::verify(&row.jws, &jwks) {
                Ok(_) => Verdict {
                    valid: true,
                    kid: None,
                    payload: None,
                    reason: None,
                },
                Err(e) => Verdict::invalid(e.0),
            };
            let jws: Value = serde_json::from_str(&row.jws).unwrap_or(Value::Null);
            let payload = jws::parse(&row.jws)
                .ok()
                .and_then(|j| j.payload_json())
                .unwrap_or(Value::Null);
            Ok(Json(CertificateDetail {
                summary: summary(&row),
                jws,
                payload,
                verification,
            }))
        },
    )
    .await
}

/// The certificate exactly as signed (RFC 7515 JSON serialization), as a download.
///
/// Role: any.
#[utoipa::path(
    get,
    path = "/api/v1/certificates/{id}/jws",
    tag = "certificates",
    params(("id" = String, Path, description = "Certificate id")),
    responses(
        (status = 200, description = "The JWS (`<id>.jws.json`)", content_type = "application/jose+json", body = Object,
            headers(("Content-Disposition" = String, description = "attachment; filename=\"<id>.jws.json\""))),
        (status = 404, description = "No certificate has this id", body = ErrorBody),
    )
)]
pub async fn raw(
    State(app): State<AppState>,
    Caller(_a): Caller,
    ApiPath(id): ApiPath<String>,
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

/// What `POST /certificates/verify` takes: a certificate as lethe issues it (a flattened
/// JWS), or `{"jws": ...}` with the JWS as an object or as its text.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct VerifyInput {
    jws: Option<JwsInput>,
    /// The JWS itself: its protected header (base64url).
    protected: Option<String>,
    /// The JWS itself: its payload (base64url).
    payload: Option<String>,
    /// The JWS itself: its signature (base64url).
    signature: Option<String>,
}

/// A JWS as an object or as its text.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum JwsInput {
    Text(String),
    Object(FlattenedJws),
}

/// A JWS in the flattened JSON serialization (RFC 7515, section 7.2.2).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct FlattenedJws {
    protected: String,
    payload: String,
    signature: String,
}

/// Verifies a certificate given in the body (the JWS JSON itself, or `{"jws": ...}` with
/// the JWS as an object or a string). Invalid certificates are a 200 with the reason;
/// only a body that is not a certificate at all is a 4xx.
///
/// Role: any.
#[utoipa::path(
    post,
    path = "/api/v1/certificates/verify",
    tag = "certificates",
    request_body(content = VerifyInput, description = "The JWS (`{\"protected\", \"payload\", \"signature\"}`) or `{\"jws\": <JWS object or text>}`"),
    responses(
        (status = 200, description = "The verdict: `valid`, and the payload or the reason", body = Verdict),
        (status = 400, description = "The body is not UTF-8 JSON (`malformed_json`)", body = ErrorBody),
        (status = 422, description = "The body is JSON but holds no certificate (`jws` names the field)", body = ErrorBody),
    )
)]
pub async fn verify(
    State(app): State<AppState>,
    Caller(_a): Caller,
    body: Bytes,
) -> Result<Json<Verdict>, ApiError> {
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
    blocking(&app, move |app| -> Result<Json<Verdict>, ApiError> {
        let jwks = app.store.read(keys::jwks)?;
        Ok(Json(match jws::verify(&candidate, &jwks) {
            Ok(ok) => Verdict {
                valid: true,
                kid: Some(ok.kid),
                payload: Some(ok.payload),
                reason: None,
            },
            Err(e) => Verdict::invalid(e.0),
        }))
    })
    .await
}

/// `/.well-known/jwks.json`: every public key lethe has signed with (no authentication).
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "certificates",
    responses(
        (status = 200, description = "The public keys (JWK Set, RFC 7517), newest first",
            body = JwkSet, headers(("Cache-Control" = String, description = "public, max-age=300"))),
    )
)]
pub async fn jwks(State(app): State<AppState>) -> Result<Response, ApiError> {
    let set = blocking(&app, |app| app.store.read(keys::jwks)).await?;
    let mut resp = Json(set).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}
