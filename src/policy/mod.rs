//! Policies: the data map (where personal data lives and what may happen to it) and, later,
//! retention rules. Parsing and validation are pure; [`lint`] compares a validated map with
//! a live database catalog.
//!
//! Architecture invariant: the rest of lethe only sees a validated [`Policy`]; SQL touches
//! only the tables and columns it names.

pub mod diagnostic;
pub mod graph;
pub mod identity;
pub mod lint;
pub mod model;
pub mod spec;
pub mod validate;

pub use diagnostic::{Diagnostic, Origin, PolicyErrors, Severity};
pub use identity::{InvalidIdentity, Match, Normalizer, SearchTerm, Spelling, replace_ranges};
pub use model::*;

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use validate::ParsedFile;

/// The file name reserved for retention rules.
pub const RETENTION_FILE: &str = "retention.toml";

/// A validated policy snapshot.
#[derive(Debug, Clone)]
pub struct Policy {
    pub datamap: DataMap,
    /// Retention rules (`retention.toml`; empty when there is none).
    pub retention: crate::retention::Retention,
    /// `sha256:<hex>` over the policy files (see [`digest_files`]).
    pub digest: String,
    pub files: Vec<PathBuf>,
    pub warnings: Vec<Diagnostic>,
}

/// Loads and validates every data-map file (`*.toml`) in `dir`.
pub fn load_dir(dir: &Path) -> Result<Policy, PolicyErrors> {
    let not_found = |msg: String| {
        PolicyErrors(vec![Diagnostic::error(
            &Origin {
                file: Arc::from(dir.display().to_string()),
                line: 0,
            },
            "",
            msg,
        )])
    };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| not_found(format!("cannot read the policy directory: {e}")))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    paths.sort();
    let mut texts = Vec::new();
    for p in &paths {
        let src = std::fs::read_to_string(p)
            .map_err(|e| not_found(format!("cannot read {}: {e}", p.display())))?;
        texts.push((p.display().to_string(), src));
    }
    let mut policy = load_texts(&texts)?;
    policy.files = paths;
    Ok(policy)
}

/// Loads a policy from in-memory files `(name, text)`; names are used in diagnostics and
/// `retention.toml` is set aside for retention rules.
pub fn load_texts(files: &[(String, String)]) -> Result<Policy, PolicyErrors> {
    let mut parsed = Vec::new();
    let mut diags = Vec::new();
    let mut retention_file: Option<(&String, &String)> = None;
    for (name, src) in files {
        let base = Path::new(name)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(name);
        if base == RETENTION_FILE {
            retention_file = Some((name, src));
            continue;
        }
        let file: Arc<str> = Arc::from(name.as_str());
        match toml::from_str::<spec::DataMapFile>(src) {
            Ok(spec) => parsed.push(ParsedFile {
                file,
                src: src.clone(),
                spec,
            }),
            Err(e) => diags.push(toml_error(&file, src, &e)),
        }
    }
    if !diags.is_empty() {
        return Err(PolicyErrors(diags));
    }
    let (datamap, mut warnings) = validate::validate(&parsed).map_err(PolicyErrors)?;
    let retention = match retention_file {
        None => crate::retention::Retention::default(),
        Some((name, src)) => {
            let (r, w) = crate::retention::rules::load(&Arc::from(name.as_str()), src, &datamap)
                .map_err(PolicyErrors)?;
            warnings.extend(w);
            r
        }
    };
    Ok(Policy {
        datamap,
        retention,
        digest: digest_files(files),
        files: Vec::new(),
        warnings,
    })
}

/// A TOML syntax or shape error as a diagnostic with its line.
pub fn toml_error(file: &Arc<str>, src: &str, e: &toml::de::Error) -> Diagnostic {
    let offset = e.span().map_or(0, |s| s.start);
    let line_text = src
        .lines()
        .nth(diagnostic::line_of(src, offset).saturating_sub(1) as usize)
        .unwrap_or("")
        .trim();
    let key = line_text
        .split(['=', ']'])
        .next()
        .unwrap_or("")
        .trim_matches(|c: char| c == '[' || c.is_whitespace())
        .to_string();
    Diagnostic::error(
        &Origin::new(file, src, offset),
        key,
        e.message().trim().to_string(),
    )
}

/// `sha256:` + hex SHA-256 over the files sorted by base name, each contributing
/// `name NUL length NUL bytes`. An auditor can recompute it from the files alone.
pub fn digest_files(files: &[(String, String)]) -> String {
    let mut sorted: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, s)| {
            let base = Path::new(n)
                .file_name()
                .and_then(|b| b.to_str())
                .unwrap_or(n);
            (base, s.as_str())
        })
        .collect();
    sorted.sort();
    let mut h = Sha256::new();
    for (name, src) in sorted {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(src.len().to_string().as_bytes());
        h.update([0]);
        h.update(src.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}
