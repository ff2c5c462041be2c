//! Export download links: `POST /api/v1/requests/{id}/export-links` (officers) creates an
//! expiring, single-purpose link; `GET /exports/{token}` (no bearer token: the link's token
//! is the credential) streams the decrypted export.
//!
//! The download is decrypted and authenticated chunk by chunk on the blocking pool while it
//! is sent; a file found changed part-way aborts the response, so a client never receives a
//! complete-looking download of tampered data.

use crate::app::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::export::Format;
use crate::export::links::{self, DownloadError};
use crate::http::auth::Officer;
use crate::http::blocking;
use crate::http::extract::{ApiPath, OptionalJson};
use crate::http::openapi::{OfficerOnly, RequestNotFound};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::io::Read;
use utoipa::ToSchema;

/// Which download the link serves.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// `json` (the default) or `csv` (a zip with one CSV file per table).
    #[schema(example = "json")]
    pub format: Option<String>,
}

/// A new download link. `url` carries the token: it is shown this once and stored nowhere.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    /// The link's id (as the audit log names it).
    pub id: String,
    /// `/exports/<token>`, relative to this service.
    pub url: String,
    pub format: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    pub expires_at: String,
}

impl From<DownloadError> for ApiError {
    fn from(e: DownloadError) -> Self {
        match e {
            DownloadError::NotFound => ApiError::not_found("no such download link"),
            DownloadError::Gone(m) => ApiError::new(StatusCode::GONE, "gone", m),
            DownloadError::Store(s) => s.into(),
            DownloadError::Internal(m) => ApiError::internal(m),
        }
    }
}

/// Creates a download link for a completed request's export.
///
/// Role: officer or admin.
#[utoipa::path(
    post,
    path = "/api/v1/requests/{id}/export-links",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    request_body(content = Option<LinkBody>, description = "Optional; `{\"format\": \"json\"}` by default"),
    responses(
        (status = 201, description = "The link; its URL is shown only this once", body = LinkView),
        (status = 422, description = "Unknown `format`", body = ErrorBody),
        (status = 409, description = "The request has no export yet (`conflict`), or it expired (`export_expired`)", body = ErrorBody),
        OfficerOnly, RequestNotFound,
    )
)]
pub async fn create_link(
    State(app): State<AppState>,
    Officer(actor): Officer,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<LinkBody>,
) -> Result<Response, ApiError> {
    let format = match body.format.as_deref() {
        None => Format::Json,
        Some(f) => Format::parse(f).ok_or_else(|| {
            ApiError::invalid(
                "format",
                format!("unknown value \"{f}\"; expected json or csv"),
            )
        })?,
    };
    link_response(&app, actor, id, format, StatusCode::CREATED).await
}

/// Creates a link and answers with it (201, or 303 with `Location` for the former export
/// URL).
pub(crate) async fn link_response(
    app: &AppState,
    actor: crate::app::Actor,
    id: String,
    format: Format,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let link = blocking(app, move |app| links::create(app, &actor, &id, format)).await?;
    let view = LinkView {
        id: link.id.clone(),
        url: link.path(),
        format: format.as_str().into(),
        expires_at: crate::audit::format_time(&link.expires_at),
    };
    let mut resp = (status, Json(view)).into_response();
    if status.is_redirection()
        && let Ok(v) = HeaderValue::from_str(&link.path())
    {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// Bytes per body frame of a download.
const FRAME: usize = 64 * 1024;

/// Reads up to one frame; `true` when the end was reached (the whole export authenticated).
fn read_frame(body: &mut impl Read) -> std::io::Result<(Vec<u8>, bool)> {
    let mut buf = vec![0u8; FRAME];
    let mut filled = 0;
    while filled < FRAME {
        match body.read(&mut buf[filled..]) {
            Ok(0) => {
                buf.truncate(filled);
                return Ok((buf, true));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((buf, false))
}

/// Streams an export through a download link (no bearer token: the link is the credential).
#[utoipa::path(
    get,
    path = "/exports/{token}",
    tag = "exports",
    security(()),
    params(("token" = String, Path, description = "The token of a download link")),
    responses(
        (status = 200, description = "The export as a download (`Content-Disposition: attachment`)",
            content((Object = "application/json"), (Vec<u8> = "application/zip"))),
        (status = 404, description = "No such link", body = ErrorBody),
        (status = 410, description = "The link or its export expired, or the export was deleted or replaced", body = ErrorBody),
    )
)]
pub async fn download(
    State(app): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, ApiError> {
    // The first frame is read (decrypted and authenticated) before answering, so a file
    // found changed at its start is an error status, not a broken download.
    let (dl, first) = blocking(&app, move |app| {
        let mut dl = links::open(app, &token)?;
        let first = read_frame(&mut dl.body).map_err(|e| DownloadError::Internal(e.to_string()))?;
        Ok::<_, DownloadError>((dl, first))
    })
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let mut body = dl.body;
    // Read the rest on the blocking pool; an error ends the body with an error, which
    // aborts the response instead of ending it cleanly.
    tokio::task::spawn_blocking(move || {
        let mut frame = Ok(first);
        loop {
            match frame {
                Ok((buf, done)) => {
                    if !buf.is_empty() && tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return; // the client went away
                    }
                    if done {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "export download aborted");
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
            frame = read_frame(&mut body);
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(dl.format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"lethe-export-{}.{}\"",
        dl.request_id,
        dl.format.extension()
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(dl.size));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(resp)
}
