//! The HTTP boundary's error type and the one place where errors become status codes.
//!
//! Bad input is a 4xx that names the field; an unreachable store or source is a 503; only
//! real defects are 500s (and are logged). Messages never carry identity values.

use crate::request::RequestError;
use crate::source::SourceError;
use crate::store::StoreError;
use crate::trace::TraceError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub allowed_actions: Option<Vec<String>>,
}

/// The body of every API error: `{"error": {...}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: the HTTP status again, a stable machine-readable code, a message for
/// people (never an identity value), the offending field for bad input, and for a refused
/// workflow action the actions allowed in the request's current state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    #[schema(example = 422)]
    pub status: u16,
    /// e.g. `invalid_input`, `not_found`, `unauthorized`, `forbidden`, `illegal_transition`,
    /// `conflict`, `body_too_large`, `unsupported_media_type`, `malformed_json`,
    /// `rate_limited`, `store_unavailable`, `source_unavailable`.
    #[schema(example = "invalid_input")]
    pub code: String,
    pub message: String,
    /// The request field or query parameter at fault (bad input only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The workflow actions allowed now (a refused transition only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_actions: Option<Vec<String>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            allowed_actions: None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_input",
            message: format!("{field}: {message}"),
            field: Some(field),
            allowed_actions: None,
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), code = self.code, message = %self.message, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                status: self.status.as_u16(),
                code: self.code.to_string(),
                message: self.message,
                field: self.field,
                allowed_actions: self.allowed_actions,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lethe\""),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("not found"),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            StoreError::Unavailable(m) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                format!("engine store unavailable: {m}"),
            ),
            e @ StoreError::Unwritable(..) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                e.to_string(),
            ),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<SourceError> for ApiError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Unavailable(_) | SourceError::Config(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "source_unavailable",
                e.to_string(),
            ),
            SourceError::Query { .. } => ApiError::internal(e.to_string()),
        }
    }
}

impl From<TraceError> for ApiError {
    fn from(e: TraceError) -> Self {
        match e {
            TraceError::Source(s) => s.into(),
            TraceError::UnknownIdentityKind(k) => {
                ApiError::invalid("identities", format!("unknown identity kind \"{k}\""))
            }
            TraceError::InvalidIdentityValue(_) => ApiError::invalid("identities", e.to_string()),
            TraceError::Plan(p) => ApiError::internal(p.to_string()),
            TraceError::Internal(m) => ApiError::internal(m),
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Invalid { field, message } => ApiError::invalid(field, message),
            RequestError::NotFound(id) => ApiError::not_found(format!("request {id} not found")),
            RequestError::Illegal(t) => ApiError {
                status: StatusCode::CONFLICT,
                code: "illegal_transition",
                message: t.to_string(),
                field: None,
                allowed_actions: Some(t.allowed.iter().map(|a| a.as_str().to_string()).collect()),
            },
            RequestError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            RequestError::Refused { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            RequestError::Store(s) => s.into(),
            RequestError::Trace(t) => t.into(),
            RequestError::Crypto(c) => ApiError::internal(c.to_string()),
            RequestError::Internal(m) => ApiError::internal(m),
        }
    }
}
