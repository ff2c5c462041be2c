//! The application: configuration, engine store, policy snapshot, CRM sources and keys,
//! shared (as [`AppState`]) by the HTTP layer, the CLI and background jobs.

use crate::config::Config;
use crate::crypto::MasterKey;
use crate::policy::{self, Policy, PolicyErrors};
use crate::request::Role;
use crate::source::{Catalog, DbUrl, SourceError, Sources};
use crate::store::{Store, StoreError};
use crate::trace::{Footprint, Identity, TraceError, TraceOptions, TracePlan};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

pub type AppState = Arc<App>;

/// Who is acting: a token's holder, the CLI user, or the engine itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Stable, non-secret name used in events and the audit log (`token:<id>`, `cli`).
    pub id: String,
    pub label: String,
    pub role: Role,
}

impl Actor {
    pub fn cli() -> Actor {
        Actor {
            id: "cli".into(),
            label: "command line".into(),
            role: Role::Admin,
        }
    }

    pub fn system() -> Actor {
        Actor {
            id: "system".into(),
            label: "lethe".into(),
            role: Role::Admin,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Policy(#[from] PolicyErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{0}")]
    Key(String),
}

pub struct App {
    pub config: Config,
    pub store: Store,
    pub policy: Arc<Policy>,
    pub sources: Sources,
    pub key: MasterKey,
    plan: RwLock<Option<Arc<TracePlan>>>,
    /// The audit-log prefix this process has verified (the audit page re-hashes only newer
    /// entries, and the whole chain again every few minutes or on request).
    pub audit_verified: std::sync::Mutex<Option<crate::audit::VerifiedPrefix>>,
    /// What this process observed for `/metrics` (HTTP and job durations).
    pub metrics: crate::metrics::Recorder,
}

impl App {
    /// Loads the policy, opens the store (which must be migrated) and the sources, and
    /// reads the master key.
    pub fn open(config: Config) -> Result<App, StartError> {
        let policy = policy::load_dir(&config.policy_dir)?;
        let store = Store::open(
            &DbUrl::parse(&config.store_url)
                .map_err(|e| crate::config::ConfigError(format!("LETHE_STORE_URL: {e}")))?,
        )?;
        let pending = store.pending_migrations()?;
        if pending > 0 {
            return Err(StartError::Store(StoreError::Migration(format!(
                "{pending} migration(s) pending: run `lethe migrate` first"
            ))));
        }
        let sources = Sources::open(
            &policy.datamap,
            &config.env,
            &config.source_urls,
            config.source_pool_size,
        )?;
        let key = load_master_key(&config)?;
        // The first start generates the signing key (sealed under the master key).
        store.write(|c| crate::cert::keys::ensure(c, &key))?;
        Ok(App {
            config,
            store,
            policy: Arc::new(policy),
            sources,
            key,
            plan: RwLock::new(None),
            audit_verified: std::sync::Mutex::new(None),
            metrics: crate::metrics::Recorder::new(),
        })
    }

    /// The trace plan, compiled from the live catalogs on first use (and again after a
    /// failure, e.g. when a source was down at start-up).
    pub fn trace_plan(&self) -> Result<Arc<TracePlan>, TraceError> {
        if let Ok(guard) = self.plan.read()
            && let Some(p) = guard.as_ref()
        {
            return Ok(p.clone());
        }
        let mut catalogs: BTreeMap<String, Arc<Catalog>> = BTreeMap::new();
        for h in self.sources.iter() {
            catalogs.insert(h.name.clone(), h.catalog()?);
        }
        let plan = Arc::new(TracePlan::compile(&self.policy.datamap, &catalogs)?);
        if let Ok(mut guard) = self.plan.write() {
            *guard = Some(plan.clone());
        }
        Ok(plan)
    }

    /// A fault-injection point (crash tests): when configured, announce it on stderr and
    /// sleep so the test can kill the process here.
    pub fn fault(&self, point: &str) {
        if let Some(ms) = self.config.faults.get(point) {
            eprintln!(
                "lethe: fault point {point} reached (pid {})",
                std::process::id()
            );
            std::thread::sleep(std::time::Duration::from_millis(*ms));
        }
        self.store.fault_point(point, &self.config.faults);
    }

    /// Traces a subject with the current policy.
    pub fn trace(
        &self,
        identities: &[Identity],
        opts: &TraceOptions,
    ) -> Result<Footprint, TraceError> {
        let plan = self.trace_plan()?;
        crate::trace::trace(&self.policy.datamap, &plan, &self.sources, identities, opts)
    }
}

/// `LETHE_MASTER_KEY` if set, else the key file.
pub fn load_master_key(config: &Config) -> Result<MasterKey, StartError> {
    if let Some(k) = &config.master_key {
        return MasterKey::parse(k).map_err(|e| StartError::Key(format!("LETHE_MASTER_KEY: {e}")));
    }
    let path = &config.master_key_file;
    if !path.exists() {
        return Err(StartError::Key(format!(
            "no master key: set LETHE_MASTER_KEY or create {} with `lethe keys init`",
            path.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(file = %path.display(), "the master key file is readable by other users; chmod 600 it");
        }
    }
    MasterKey::read_file(path).map_err(|e| StartError::Key(e.to_string()))
}
