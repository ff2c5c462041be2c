//! Expiry: exports are deleted `LETHE_EXPORT_TTL_DAYS` after they were made. The sweep
//! deletes the files of expired exports (and the sealed payload of exports made before
//! files), records the deletion on the export row with an audit entry, so the request page
//! says the export expired and its links answer 410 Gone, and later drops the dead links.
//! It also removes files no export row refers to (a run that crashed between writing its
//! files and recording them).

use super::{Format, remove_files};
use crate::app::{Actor, App};
use crate::audit;
use crate::store::{StoreError, exports as xs, now};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

/// Files nobody refers to are removed once they are this old (a run writing them may still
/// be about to record them).
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    pub exports_deleted: usize,
    pub links_deleted: usize,
    pub orphan_files_removed: usize,
}

/// Deletes expired exports and dead links (see the module documentation).
pub fn sweep(app: &App) -> Result<SweepReport, StoreError> {
    let at = now();
    let ttl = app.config.exports.ttl;
    let dir = &app.config.exports.dir;
    let mut report = SweepReport::default();
    let due = app.store.read(|c| xs::expired(c, at, at - ttl))?;
    for (request_id, file_id) in due {
        if let Some(f) = &file_id {
            remove_files(dir, f);
        }
        app.store.write(|conn| -> Result<(), StoreError> {
            xs::mark_deleted(conn, &request_id, at)?;
            audit::append(
                conn,
                &Actor::system().id,
                "export.deleted",
                &format!("request:{request_id}"),
                json!({"reason": "expired"}),
            )?;
            Ok(())
        })?;
        tracing::info!(request = %request_id, "expired export deleted");
        report.exports_deleted += 1;
    }
    // A link is kept for as long again as exports are, after it expired, so that following
    // it says "gone" rather than "not found"; then it is deleted.
    report.links_deleted = app
        .store
        .write(|c| xs::delete_links_expired_before(c, at - ttl))?;
    report.orphan_files_removed = remove_orphans(app)?;
    Ok(report)
}

fn remove_orphans(app: &App) -> Result<usize, StoreError> {
    let dir = &app.config.exports.dir;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let live: BTreeSet<String> = app.store.read(xs::live_file_ids)?.into_iter().collect();
    let old_enough = |e: &std::fs::DirEntry| {
        e.metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age >= ORPHAN_AGE)
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let temporary = name.starts_with('.') && name.ends_with(".tmp");
        let sealed_id = [Format::Json, Format::Csv]
            .iter()
            .find_map(|f| name.strip_suffix(&format!(".{}.sealed", f.extension())));
        let orphan = match sealed_id {
            Some(id) => !live.contains(id),
            None => temporary,
        };
        if orphan && old_enough(&e) && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}
