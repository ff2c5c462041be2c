//! JSON API handlers, one file per area.

pub mod audit;
pub mod certificates;
pub mod exports;
pub mod health;
pub mod holds;
pub mod requests;
pub mod retention;

use crate::error::ApiError;

/// 404 for unknown paths, as JSON.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}
