//! Bearer-token authentication and role checks for the API.
//!
//! Only a token's SHA-256 is stored; a missing or wrong token is a 401, a token whose role
//! may not do something is a 403.

use super::blocking;
use crate::app::{Actor, AppState};
use crate::error::ApiError;
use crate::request::Role;
use crate::store::tokens;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Resolves the bearer token to an [`Actor`] (request extension) or answers 401.
pub async fn require_token(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = match bearer(&req) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let found = blocking(&app, move |app| {
        app.store.read(|c| tokens::authenticate(c, &token))
    })
    .await;
    let row = match found {
        Ok(Some(row)) => row,
        Ok(None) => {
            return ApiError::unauthorized("invalid, expired or revoked token").into_response();
        }
        Err(e) => return e.into_response(),
    };
    let Some(role) = Role::parse(&row.role) else {
        return ApiError::unauthorized("token has an unknown role").into_response();
    };
    req.extensions_mut().insert(Actor {
        id: format!("token:{}", row.id),
        label: row.label,
        role,
    });
    next.run(req).await
}

pub(crate) fn bearer(req: &Request) -> Result<String, ApiError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token> header"))?;
    let text = header
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let (scheme, token) = text
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("malformed Authorization header"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > 256 {
        return Err(ApiError::unauthorized(
            "expected Authorization: Bearer <token>",
        ));
    }
    Ok(token.to_string())
}

/// Any authenticated caller.
pub struct Caller(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Actor>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| ApiError::unauthorized("authentication required"))
    }
}

/// A caller who may change things (officer or admin); auditors get 403.
pub struct Officer(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for Officer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Caller(actor) = Caller::from_request_parts(parts, state).await?;
        if !actor.role.can_write() {
            return Err(ApiError::forbidden(format!(
                "the {} role is read-only; this action needs an officer or admin token",
                actor.role
            )));
        }
        Ok(Officer(actor))
    }
}
