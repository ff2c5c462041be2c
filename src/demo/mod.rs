//! The demo CRM: schema, deterministic seed data, and the `lethe demo` set-up (CRM, engine
//! store, master key and an officer token under one data directory).

pub mod schema;
pub mod seed;

pub use seed::{SeedReport, demo_now, seed};

use crate::app::StartError;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::request::Role;
use crate::source::{self, DbUrl, SourceError, Value};
use crate::store::{Store, tokens};
use std::path::{Path, PathBuf};

/// The demo data map, embedded so `lethe demo` also works outside a checkout.
pub const DEMO_DATAMAP: &str = include_str!("../../policies/datamap.toml");

/// The demo retention rules, embedded likewise.
pub const DEMO_RETENTION: &str = include_str!("../../policies/retention.toml");

/// The default seed of the demo data.
pub const DEFAULT_SEED: u64 = 20_261_123;

/// What `lethe demo` prepared.
pub struct DemoSetup {
    pub crm_path: PathBuf,
    pub crm_created: Option<SeedReport>,
    pub crm_contacts: i64,
    pub store_url: String,
    pub key_file: Option<PathBuf>,
    pub key_created: bool,
    pub policy_dir: PathBuf,
    pub policy_written: bool,
    pub officer_token: String,
    pub migrations: Vec<String>,
}

/// Creates the demo CRM (if absent) and returns its path; `progress` sees contacts written.
pub fn ensure_crm(
    path: &Path,
    contacts: u64,
    seed_value: u64,
    progress: impl FnMut(u64),
) -> Result<Option<SeedReport>, SourceError> {
    if path.exists() {
        return Ok(None);
    }
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let url = DbUrl::Sqlite(partial.clone());
    let report = {
        let mut conn = source::connect(&url, true)?;
        seed::seed(&mut conn, contacts, seed_value, progress)?
    };
    // WAL files belong to the partial name; checkpointed on close. Rename atomically so a
    // crashed seeding never leaves a half-filled CRM behind.
    std::fs::rename(&partial, path).map_err(|e| {
        SourceError::Config(format!("cannot move {} into place: {e}", partial.display()))
    })?;
    for ext in ["partial-wal", "partial-shm"] {
        let _ = std::fs::remove_file(path.with_extension(ext));
    }
    Ok(Some(report))
}

/// Counts the contacts of an existing demo CRM.
pub fn count_contacts(path: &Path) -> Result<i64, SourceError> {
    let mut conn = source::connect(&DbUrl::Sqlite(path.to_path_buf()), false)?;
    let mut q = conn.sql();
    q.push("SELECT count(*) FROM contacts");
    let rows = conn.query(&q)?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(Value::as_int)
        .unwrap_or(0))
}

/// Prepares everything `lethe demo` serves: the CRM, the policies, the master key, the
/// migrated engine store and a fresh officer token. Adjusts `config` to use them.
pub fn setup(
    config: &mut Config,
    contacts: u64,
    seed_value: u64,
    progress: impl FnMut(u64),
) -> Result<DemoSetup, StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        StartError::Key(format!("cannot create {}: {e}", config.data_dir.display()))
    })?;
    let crm_path = config.data_dir.join("demo-crm.sqlite3");
    let crm_created = ensure_crm(&crm_path, contacts, seed_value, progress)?;
    let crm_contacts = count_contacts(&crm_path)?;
    config
        .source_urls
        .insert("crm".into(), format!("sqlite://{}", crm_path.display()));

    // Policies: ./policies when present, else the embedded demo data map.
    let mut policy_written = false;
    if !config.policy_dir.join("datamap.toml").exists() {
        let dir = config.data_dir.join("policies");
        if !dir.join("datamap.toml").exists() {
            std::fs::create_dir_all(&dir)
                .map_err(|e| StartError::Key(format!("cannot create {}: {e}", dir.display())))?;
            std::fs::write(dir.join("datamap.toml"), DEMO_DATAMAP)
                .and_then(|()| std::fs::write(dir.join("retention.toml"), DEMO_RETENTION))
                .map_err(|e| StartError::Key(format!("cannot write {}: {e}", dir.display())))?;
            policy_written = true;
        }
        config.policy_dir = dir;
    }

    let mut key_created = false;
    let key_file = if config.master_key.is_none() {
        if !config.master_key_file.exists() {
            MasterKey::generate()
                .write_new_file(&config.master_key_file)
                .map_err(|e| StartError::Key(e.to_string()))?;
            key_created = true;
        }
        Some(config.master_key_file.clone())
    } else {
        None
    };

    let store = Store::open(
        &DbUrl::parse(&config.store_url)
            .map_err(|e| StartError::Key(format!("LETHE_STORE_URL: {e}")))?,
    )?;
    let migrations = store.migrate()?;
    let (_, officer_token) =
        store.write(|c| tokens::create(c, Role::Officer, "demo officer", None))?;
    Ok(DemoSetup {
        crm_path,
        crm_created,
        crm_contacts,
        store_url: config.store_url.clone(),
        key_file,
        key_created,
        policy_dir: config.policy_dir.clone(),
        policy_written,
        officer_token,
        migrations,
    })
}
