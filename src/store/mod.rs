//! The engine's own database (SQLite or PostgreSQL): one diesel schema, per-backend
//! migrations embedded in the binary, a connection pool, and transactions that take
//! SQLite's write lock up front.
//!
//! Architecture invariant: per-backend SQL for the engine store lives in this module only.

pub mod erasure;
pub mod jobs;
pub mod models;
pub mod notifications;
pub mod requests;
pub mod retention;
pub mod schema;
pub mod sessions;
pub mod tokens;

use crate::source::DbUrl;
use chrono::{NaiveDateTime, Timelike, Utc};
use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::time::Duration;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[cfg_attr(not(feature = "mysql"), allow(dead_code))]
const STORE_BACKENDS: &str = "the engine store runs on SQLite or PostgreSQL; MySQL/MariaDB is supported for CRM sources only";

/// A connection to the engine store, on either backend; typed diesel queries run on both.
#[derive(diesel::MultiConnection)]
pub enum StoreConn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached (pool timeout, connection refused); retry later.
    #[error("engine store unavailable: {0}")]
    Unavailable(String),
    #[error("not found")]
    NotFound,
    /// A concurrent change won; the caller may retry.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("engine store: {0}")]
    Db(String),
    #[error("engine store migration failed: {0}")]
    Migration(String),
    #[error("engine store: {0}")]
    Config(String),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => StoreError::NotFound,
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => StoreError::Unavailable(info.message().to_string()),
            Error::DatabaseError(
                DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::SerializationFailure,
                info,
            ) => StoreError::Conflict(info.message().to_string()),
            Error::DatabaseError(_, info) if is_read_only_or_full(info.message()) => {
                StoreError::Unavailable(info.message().to_string())
            }
            other => StoreError::Db(other.to_string()),
        }
    }
}

fn is_read_only_or_full(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("readonly")
        || m.contains("read-only")
        || m.contains("disk is full")
        || m.contains("database is locked")
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// Opens engine-store connections for one URL, choosing the backend from the scheme (never
/// by trial, so a PostgreSQL URL can never become a SQLite file).
#[derive(Debug)]
pub struct StoreManager {
    url: DbUrl,
}

impl ManageConnection for StoreManager {
    type Connection = StoreConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<StoreConn, Self::Error> {
        match &self.url {
            DbUrl::Sqlite(path) => {
                let mut c = SqliteConnection::establish(&path.display().to_string())
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                c.batch_execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(StoreConn::Sqlite(c))
            }
            DbUrl::Postgres(u) => PgConnection::establish(u)
                .map(StoreConn::Postgres)
                .map_err(diesel::r2d2::Error::ConnectionError),
            #[cfg(feature = "mysql")]
            DbUrl::Mysql(_) => Err(diesel::r2d2::Error::ConnectionError(
                diesel::ConnectionError::BadConnection(STORE_BACKENDS.into()),
            )),
        }
    }

    fn is_valid(&self, conn: &mut StoreConn) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut StoreConn) -> bool {
        false
    }
}

pub type StorePooled = PooledConnection<StoreManager>;

/// The engine store.
#[derive(Clone)]
pub struct Store {
    pool: Pool<StoreManager>,
    url: DbUrl,
}

impl Store {
    /// The engine store runs on SQLite or PostgreSQL only (MySQL/MariaDB are CRM sources).
    pub fn check_backend(url: &DbUrl) -> Result<(), StoreError> {
        match url {
            DbUrl::Sqlite(_) | DbUrl::Postgres(_) => Ok(()),
            #[cfg(feature = "mysql")]
            DbUrl::Mysql(_) => Err(StoreError::Config(STORE_BACKENDS.into())),
        }
    }

    /// Opens the store (creating a SQLite file's directory). Does not migrate.
    pub fn open(url: &DbUrl) -> Result<Store, StoreError> {
        Self::check_backend(url)?;
        if let DbUrl::Sqlite(path) = url
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let size = match url {
            DbUrl::Sqlite(_) => 8,
            _ => 10,
        };
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .build(StoreManager { url: url.clone() })
            .map_err(|e| StoreError::Unavailable(format!("{url}: {e}")))?;
        Ok(Store {
            pool,
            url: url.clone(),
        })
    }

    pub fn url(&self) -> &DbUrl {
        &self.url
    }

    pub fn conn(&self) -> Result<StorePooled, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Applies pending migrations; returns their names.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        let applied = match &mut *conn {
            StoreConn::Sqlite(c) => c
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|v| v.iter().map(|m| m.to_string()).collect()),
            StoreConn::Postgres(c) => c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|v| v.iter().map(|m| m.to_string()).collect()),
        };
        applied.map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// Whether migrations are pending (the service refuses to start on an old schema).
    pub fn pending_migrations(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let n = match &mut *conn {
            StoreConn::Sqlite(c) => c.pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
            StoreConn::Postgres(c) => c.pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len()),
        };
        n.map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// Runs `f` on a connection without an explicit transaction.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&mut StoreConn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        f(&mut conn)
    }

    /// Runs `f` in a write transaction (BEGIN IMMEDIATE on SQLite, so concurrent writers
    /// queue instead of failing); rolls back if `f` fails.
    pub fn write<T, E>(&self, f: impl FnOnce(&mut StoreConn) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self.conn()?;
        begin(&mut conn).map_err(StoreError::from)?;
        match f(&mut conn) {
            Ok(v) => {
                commit(&mut conn).map_err(StoreError::from)?;
                Ok(v)
            }
            Err(e) => {
                let _ = rollback(&mut conn);
                Err(e)
            }
        }
    }

    pub fn backend_name(&self) -> &'static str {
        self.url.backend_name()
    }
}

fn begin(conn: &mut StoreConn) -> diesel::QueryResult<()> {
    match conn {
        StoreConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"),
        StoreConn::Postgres(c) => AnsiTransactionManager::begin_transaction(c),
    }
}

fn commit(conn: &mut StoreConn) -> diesel::QueryResult<()> {
    match conn {
        StoreConn::Sqlite(c) => AnsiTransactionManager::commit_transaction(c),
        StoreConn::Postgres(c) => AnsiTransactionManager::commit_transaction(c),
    }
}

fn rollback(conn: &mut StoreConn) -> diesel::QueryResult<()> {
    match conn {
        StoreConn::Sqlite(c) => AnsiTransactionManager::rollback_transaction(c),
        StoreConn::Postgres(c) => AnsiTransactionManager::rollback_transaction(c),
    }
}

/// The current UTC time at microsecond precision (what both backends store, so values read
/// back compare and hash equal to what was written).
pub fn now() -> NaiveDateTime {
    let t = Utc::now().naive_utc();
    t.with_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}
