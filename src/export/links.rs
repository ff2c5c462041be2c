//! Download links: an officer creates a link for one request's export in one format; the
//! token (256 random bits, URL-safe base64) is shown once and only its SHA-256 is stored,
//! with the request, the export it serves, the purpose, who made it and its expiry. The link
//! is the only credential `GET /exports/{token}` needs, and it serves nothing else: it is not
//! an API token (those live in another table under another hash), and an API token is not a
//! link. Creating a link and each download are audited with the link's id, never the token.

use super::file::SealedFileReader;
use super::{Format, file_path};
use crate::app::{Actor, App};
use crate::audit;
use crate::crypto::{constant_time_eq, random_bytes, sha256_hex};
use crate::request::service::{self, RequestError};
use crate::store::models::{ExportLinkRow, ExportRow};
use crate::store::{StoreError, exports as xs, now};
use base64::Engine;
use chrono::NaiveDateTime;
use serde_json::json;
use std::io::Read;

/// The one purpose a link serves.
pub const PURPOSE: &str = "export-download";

/// Length of a token: 32 bytes in unpadded URL-safe base64.
const TOKEN_LEN: usize = 43;

/// A link just created; `token` is shown to the officer once and kept nowhere.
#[derive(Debug)]
pub struct CreatedLink {
    pub id: String,
    pub token: String,
    pub format: Format,
    pub expires_at: NaiveDateTime,
}

impl CreatedLink {
    /// The download path (`/exports/<token>`).
    pub fn path(&self) -> String {
        format!("/exports/{}", self.token)
    }
}

/// Whether an export's data can still be downloaded, or why not (for people).
pub fn unavailable_reason(
    x: &ExportRow,
    ttl: chrono::Duration,
    at: NaiveDateTime,
) -> Option<String> {
    if let Some(d) = x.deleted_at {
        return Some(format!(
            "the export expired and was deleted on {}",
            d.format("%Y-%m-%d")
        ));
    }
    if at >= expiry(x, ttl) {
        return Some("the export has expired".into());
    }
    None
}

/// When an export expires (rows made before expiries were recorded: made + TTL).
pub fn expiry(x: &ExportRow, ttl: chrono::Duration) -> NaiveDateTime {
    x.expires_at.unwrap_or(x.created_at + ttl)
}

/// Creates a download link for a request's export.
pub fn create(
    app: &App,
    actor: &Actor,
    request_id: &str,
    format: Format,
) -> Result<CreatedLink, RequestError> {
    let export = service::export_row(app, request_id)?;
    let at = now();
    let ttl = app.config.exports.ttl;
    if let Some(why) = unavailable_reason(&export, ttl, at) {
        return Err(RequestError::Refused {
            code: "export_expired",
            message: format!("{why}; run a new request to export the data again"),
        });
    }
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let expires_at = (at + app.config.exports.link_ttl).min(expiry(&export, ttl));
    let row = ExportLinkRow {
        id: uuid::Uuid::now_v7().to_string(),
        token_hash: sha256_hex(token.as_bytes()),
        request_id: request_id.to_string(),
        export_file_id: export.file_id.clone(),
        purpose: PURPOSE.into(),
        format: format.as_str().into(),
        created_by: actor.id.clone(),
        created_at: at,
        expires_at,
        uses: 0,
        last_used_at: None,
    };
    app.store.write(|conn| -> Result<(), RequestError> {
        xs::insert_link(conn, &row)?;
        audit::append(
            conn,
            &actor.id,
            "export.link_created",
            &format!("request:{request_id}"),
            json!({
                "link": row.id, "purpose": PURPOSE, "format": format.as_str(),
                "expires_at": audit::format_time(&expires_at),
            }),
        )?;
        Ok(())
    })?;
    tracing::info!(request = %request_id, link = %row.id, format = format.as_str(), "export link created");
    Ok(CreatedLink {
        id: row.id,
        token,
        format,
        expires_at,
    })
}

/// Why a link does not serve a download.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// No such link (404).
    #[error("no such download link")]
    NotFound,
    /// The link or its export expired, or the export was deleted or replaced (410).
    #[error("{0}")]
    Gone(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// The plaintext of a download, read as it is sent.
pub enum DownloadBody {
    /// An export file, decrypted and authenticated chunk by chunk.
    File(Box<SealedFileReader>),
    /// An export made before files (decrypted from the store row).
    Memory(std::io::Cursor<Vec<u8>>),
}

impl Read for DownloadBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            DownloadBody::File(r) => r.read(buf),
            DownloadBody::Memory(c) => c.read(buf),
        }
    }
}

/// A download, ready to stream.
pub struct Download {
    pub request_id: String,
    pub format: Format,
    /// Plaintext bytes.
    pub size: u64,
    pub body: DownloadBody,
}

/// Resolves a token to its export and opens it; counts and audits the download.
pub fn open(app: &App, token: &str) -> Result<Download, DownloadError> {
    if token.len() != TOKEN_LEN
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(DownloadError::NotFound);
    }
    let hash = sha256_hex(token.as_bytes());
    let link = app
        .store
        .read(|c| xs::link_by_hash(c, &hash))?
        .filter(|l| constant_time_eq(l.token_hash.as_bytes(), hash.as_bytes()))
        .filter(|l| l.purpose == PURPOSE)
        .ok_or(DownloadError::NotFound)?;
    let at = now();
    if at >= link.expires_at {
        return Err(DownloadError::Gone("this download link has expired".into()));
    }
    let format = Format::parse(&link.format)
        .ok_or_else(|| DownloadError::Internal(format!("stored link format {}", link.format)))?;
    let export = match app.store.read(|c| xs::get(c, &link.request_id)) {
        Ok(x) => x,
        Err(StoreError::NotFound) => {
            return Err(DownloadError::Gone("the export was deleted".into()));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(why) = unavailable_reason(&export, app.config.exports.ttl, at) {
        return Err(DownloadError::Gone(why));
    }
    if export.file_id != link.export_file_id {
        return Err(DownloadError::Gone(
            "the export this link was made for has been replaced".into(),
        ));
    }
    let (body, size) = match (&export.file_id, &export.payload_enc) {
        (Some(file_id), _) => {
            let path = file_path(&app.config.exports.dir, file_id, format);
            let name = super::file_name(file_id, format);
            let reader = match SealedFileReader::open(&app.key, &name, &path) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::warn!(request = %link.request_id, "export file missing");
                    return Err(DownloadError::Gone("the export was deleted".into()));
                }
                Err(e) => return Err(DownloadError::Internal(e.to_string())),
            };
            let size = match format {
                Format::Json => export.json_size,
                Format::Csv => export.csv_size,
            };
            (
                DownloadBody::File(Box::new(reader)),
                size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            )
        }
        (None, Some(sealed)) => {
            let plain = app
                .key
                .open("export", &link.request_id, sealed)
                .map_err(|e| DownloadError::Internal(e.to_string()))?;
            let bytes = match format {
                Format::Json => plain,
                Format::Csv => {
                    let doc: serde_json::Value = serde_json::from_slice(&plain)
                        .map_err(|e| DownloadError::Internal(e.to_string()))?;
                    crate::request::export::to_csv_zip(&doc).map_err(DownloadError::Internal)?
                }
            };
            let size = bytes.len() as u64;
            (DownloadBody::Memory(std::io::Cursor::new(bytes)), size)
        }
        (None, None) => return Err(DownloadError::Gone("the export was deleted".into())),
    };
    app.store.write(|conn| -> Result<(), StoreError> {
        xs::count_use(conn, &link.id, at)?;
        audit::append(
            conn,
            &format!("link:{}", link.id),
            "export.downloaded",
            &format!("request:{}", link.request_id),
            json!({"link": link.id, "format": format.as_str(), "created_by": link.created_by}),
        )?;
        Ok(())
    })?;
    tracing::info!(request = %link.request_id, link = %link.id, format = format.as_str(), "export download started");
    Ok(Download {
        request_id: link.request_id,
        format,
        size,
        body,
    })
}
