//! Exports at rest: access and portability exports are written as encrypted files in the
//! export directory (`LETHE_EXPORT_DIR`), handed out only through expiring, single-purpose
//! download links, and deleted when they expire.
//!
//! - [`build`] writes the export as a stream from a lean trace (bounded memory whatever the
//!   number of rows): the JSON document and a zip of CSV files, in one pass;
//! - [`file`] is the file format: chunked AES-256-GCM (STREAM) under a per-file data key
//!   sealed with the master key, written to a temporary file and renamed when complete;
//! - [`links`] creates download links (the token is shown once, its SHA-256 stored) and
//!   resolves them for `GET /exports/{token}`;
//! - [`sweep`] deletes expired exports and dead links (`lethe serve`'s workers, and
//!   `lethe exports sweep`).
//!
//! Exports made before files (a sealed JSON payload in the store row) stay downloadable
//! through links until they expire; their CSV is built from the JSON when downloaded.

pub mod build;
pub mod file;
pub mod links;
pub mod sweep;
mod zipstream;

use crate::app::App;
use crate::request::export::ExportContext;
use crate::trace::{Identity, TraceError, TraceOptions, trace_lean};
use build::{ExportKind, ExportSummary};
use file::{SealedFileInfo, SealedFileWriter};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("cannot write the export file: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot serialize the export: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<csv::Error> for ExportError {
    fn from(e: csv::Error) -> Self {
        ExportError::Io(std::io::Error::other(e.to_string()))
    }
}

/// A download format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }

    /// The download's file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "zip",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "application/zip",
        }
    }
}

/// The file of an export in one format; the name doubles as the id sealed into its header,
/// so the two files of an export cannot stand in for each other.
pub fn file_name(file_id: &str, format: Format) -> String {
    format!("{file_id}.{}.sealed", format.extension())
}

pub fn file_path(dir: &Path, file_id: &str, format: Format) -> PathBuf {
    dir.join(file_name(file_id, format))
}

/// The files of one export, written and in place.
#[derive(Debug)]
pub struct WrittenExport {
    pub file_id: String,
    pub json: SealedFileInfo,
    pub csv: SealedFileInfo,
    pub summary: ExportSummary,
    /// Counters of the trace that found the rows.
    pub trace_micros: u64,
}

impl WrittenExport {
    /// Removes the files (the export was not recorded).
    pub fn discard(&self, dir: &Path) {
        remove_files(dir, &self.file_id);
    }
}

/// Removes an export's files (missing files are fine).
pub fn remove_files(dir: &Path, file_id: &str) {
    for f in [Format::Json, Format::Csv] {
        let _ = std::fs::remove_file(file_path(dir, file_id, f));
    }
}

fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Traces the subject and writes their export (JSON and CSV zip) as encrypted files, reading
/// the rows in the trace's read transactions.
pub fn write_export(
    app: &App,
    ctx: &ExportContext<'_>,
    kind: ExportKind,
    identities: &[Identity],
    modified: chrono::NaiveDateTime,
) -> Result<WrittenExport, ExportError> {
    let dir = &app.config.exports.dir;
    create_dir(dir)?;
    let plan = app.trace_plan()?;
    let map = &app.policy.datamap;
    let mut trace = trace_lean(
        map,
        &plan,
        &app.sources,
        identities,
        &TraceOptions::default(),
    )?;
    let trace_micros = trace.footprint.stats.link_micros + trace.footprint.stats.residual_micros;
    let file_id = uuid::Uuid::new_v4().to_string();
    let json_name = file_name(&file_id, Format::Json);
    let csv_name = file_name(&file_id, Format::Csv);
    let mut json = BufWriter::with_capacity(
        file::CHUNK_SIZE,
        SealedFileWriter::create(&app.key, &json_name, &dir.join(&json_name))?,
    );
    let mut csv = BufWriter::with_capacity(
        file::CHUNK_SIZE,
        SealedFileWriter::create(&app.key, &csv_name, &dir.join(&csv_name))?,
    );
    let summary = build::write_export(
        map,
        &|ti| plan.table(ti).columns.clone(),
        ctx,
        kind,
        &mut trace,
        &mut json,
        &mut csv,
        modified,
    )?;
    trace.finish()?;
    json.flush()?;
    csv.flush()?;
    let json = json.into_inner().map_err(|e| e.into_error())?.finish()?;
    let csv = match csv
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(SealedFileWriter::finish)
    {
        Ok(info) => info,
        Err(e) => {
            remove_files(dir, &file_id);
            return Err(e.into());
        }
    };
    Ok(WrittenExport {
        file_id,
        json,
        csv,
        summary,
        trace_micros,
    })
}

/// The JSON document of an export that is still available, read whole: only for exports of
/// at most `max_bytes` (the request page lists their rows); `None` when larger, expired or
/// deleted.
pub fn read_small_document(
    app: &App,
    x: &crate::store::models::ExportRow,
    max_bytes: u64,
) -> Result<Option<serde_json::Value>, ExportError> {
    use std::io::Read;
    if links::unavailable_reason(x, app.config.exports.ttl, crate::store::now()).is_some() {
        return Ok(None);
    }
    let plain = match (&x.file_id, &x.payload_enc) {
        (Some(id), _) => {
            let size = x
                .json_size
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(u64::MAX);
            if size > max_bytes {
                return Ok(None);
            }
            let name = file_name(id, Format::Json);
            let mut r = match file::SealedFileReader::open(
                &app.key,
                &name,
                &file_path(&app.config.exports.dir, id, Format::Json),
            ) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let mut buf = Vec::new();
            r.read_to_end(&mut buf)?;
            buf
        }
        (None, Some(sealed)) => app
            .key
            .open("export", &x.request_id, sealed)
            .map_err(|e| ExportError::Io(std::io::Error::other(e.to_string())))?,
        (None, None) => return Ok(None),
    };
    Ok(Some(serde_json::from_slice(&plain)?))
}
