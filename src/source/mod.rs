//! CRM source connections (SQLite, PostgreSQL and, with the `mysql` cargo feature,
//! MySQL/MariaDB) and the SQL dialect layer.
//!
//! Sources are other people's databases: lethe never changes their settings (journal mode,
//! foreign-key enforcement), binds every value, and only names tables and columns that the
//! validated data map allows.

pub mod catalog;
pub mod conn;
pub mod dialect;
pub mod url;
pub mod value;

pub use catalog::{Catalog, ColumnInfo, TableInfo, TextIndex};
pub use conn::{SourceConn, SourcePool, connect};
pub use dialect::{ColumnType, Dialect, Sql, TypeKind, like_pattern};
pub use url::{DbUrl, SourceUrl};
pub use value::{Key, Value};

use crate::policy::DataMap;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Errors talking to a CRM source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Misconfiguration: a bad URL, a missing variable, a missing file.
    #[error("{0}")]
    Config(String),
    /// The database cannot be reached now; retrying later may succeed.
    #[error("source unavailable: {0}")]
    Unavailable(String),
    /// A statement failed. The message never contains bound values.
    #[error("query failed ({message}) in: {statement}")]
    Query { statement: String, message: String },
}

impl SourceError {
    pub(crate) fn unavailable(e: impl std::fmt::Display) -> Self {
        SourceError::Unavailable(e.to_string())
    }

    pub(crate) fn query(sql: &Sql, e: diesel::result::Error) -> Self {
        Self::from_diesel(&sql.text(), e)
    }

    pub(crate) fn from_diesel(statement: &str, e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match &e {
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => SourceError::Unavailable(info.message().to_string()),
            #[cfg(feature = "mysql")]
            Error::DatabaseError(_, info) if mysql_connection_lost(info.message()) => {
                SourceError::Unavailable(info.message().to_string())
            }
            Error::DatabaseError(_, info) => SourceError::Query {
                statement: statement.chars().take(300).collect(),
                message: info.message().to_string(),
            },
            other => SourceError::Query {
                statement: statement.chars().take(300).collect(),
                message: other.to_string(),
            },
        }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, SourceError::Unavailable(_))
    }
}

/// Whether a MySQL client error says the server went away (diesel reports these as unknown
/// database errors): the statement may succeed later, so the source counts as unavailable.
#[cfg(feature = "mysql")]
fn mysql_connection_lost(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "server has gone away",
        "lost connection to",
        "can't connect to",
    ]
    .iter()
    .any(|s| m.contains(s))
}

/// One configured source: its URL, pool and (lazily loaded, cached) catalog.
pub struct SourceHandle {
    pub name: String,
    pub url: DbUrl,
    pub pool: SourcePool,
    catalog: RwLock<Option<Arc<Catalog>>>,
}

impl SourceHandle {
    pub fn dialect(&self) -> Dialect {
        self.pool.dialect()
    }

    /// The live catalog, read on first use and cached.
    pub fn catalog(&self) -> Result<Arc<Catalog>, SourceError> {
        if let Ok(guard) = self.catalog.read()
            && let Some(c) = guard.as_ref()
        {
            return Ok(c.clone());
        }
        self.refresh_catalog()
    }

    /// Re-reads the catalog (after a schema change).
    pub fn refresh_catalog(&self) -> Result<Arc<Catalog>, SourceError> {
        let mut conn = self.pool.get()?;
        let c = Arc::new(Catalog::load(&mut conn)?);
        if let Ok(mut guard) = self.catalog.write() {
            *guard = Some(c.clone());
        }
        Ok(c)
    }
}

/// Every source of a data map.
#[derive(Clone)]
pub struct Sources {
    handles: Arc<BTreeMap<String, Arc<SourceHandle>>>,
}

impl Sources {
    /// Resolves and opens (lazily) every source the data map names. `env` holds the
    /// environment captured at start-up; `overrides` maps source names to URLs.
    pub fn open(
        map: &DataMap,
        env: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
        pool_size: u32,
    ) -> Result<Sources, SourceError> {
        let mut handles = BTreeMap::new();
        for (name, def) in &map.sources {
            let url =
                SourceUrl::resolve(name, &def.url, env, overrides).map_err(SourceError::Config)?;
            let pool = SourcePool::new(&url, pool_size)?;
            handles.insert(
                name.clone(),
                Arc::new(SourceHandle {
                    name: name.clone(),
                    url,
                    pool,
                    catalog: RwLock::new(None),
                }),
            );
        }
        Ok(Sources {
            handles: Arc::new(handles),
        })
    }

    pub fn get(&self, name: &str) -> Result<&Arc<SourceHandle>, SourceError> {
        self.handles
            .get(name)
            .ok_or_else(|| SourceError::Config(format!("unknown source {name}")))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<SourceHandle>> {
        self.handles.values()
    }
}
