//! The engine's own database (SQLite or PostgreSQL): one diesel schema, per-backend
//! migrations embedded in the binary, a connection pool, and transactions that take
//! SQLite's write lock up front.
//!
//! Architecture invariant: per-backend SQL for the engine store lives in this module only.

pub mod erasure;
pub mod exports;
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
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
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
    /// The store refuses writes: it is read-only (a read-only database, mount or standby)
    /// or its disk is full. Retry once the operator has fixed it; nothing was written.
    #[error("{}", unwritable_message(*.0, .1))]
    Unwritable(StoreFault, String),
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
            Error::DatabaseError(DatabaseErrorKind::ReadOnlyTransaction, info) => {
                StoreError::Unwritable(StoreFault::ReadOnly, info.message().to_string())
            }
            Error::DatabaseError(_, info) => {
                let msg = info.message().to_string();
                match unwritable_cause(&msg) {
                    Some(fault) => StoreError::Unwritable(fault, msg),
                    None if msg.to_ascii_lowercase().contains("database is locked") => {
                        StoreError::Unavailable(msg)
                    }
                    None => StoreError::Db(msg),
                }
            }
            other => StoreError::Db(other.to_string()),
        }
    }
}

/// Why the engine store refuses writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFault {
    /// A read-only database, file, mount, session setting or standby server.
    ReadOnly,
    /// No space left (or the database reached its size limit).
    DiskFull,
}

fn unwritable_message(fault: StoreFault, detail: &str) -> String {
    match fault {
        StoreFault::ReadOnly => {
            format!("engine store is read-only ({detail}); retry once it is writable again")
        }
        StoreFault::DiskFull => {
            format!("engine store disk is full ({detail}); retry once space is freed")
        }
    }
}

/// Recognizes the read-only and disk-full errors of SQLite and PostgreSQL by their
/// messages (SQLITE_READONLY, SQLITE_FULL; PostgreSQL 25006 and 53100).
fn unwritable_cause(msg: &str) -> Option<StoreFault> {
    let m = msg.to_ascii_lowercase();
    if m.contains("readonly") || m.contains("read-only") {
        Some(StoreFault::ReadOnly)
    } else if m.contains("disk is full")
        || m.contains("no space left on device")
        || m.contains("could not extend file")
    {
        Some(StoreFault::DiskFull)
    } else {
        None
    }
}

impl StoreError {
    /// Whether the same work may succeed later without a change to it: the store was
    /// unreachable, read-only or full. Nothing was written.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Unwritable(..)
        )
    }
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
    /// An injected fault (see [`Store::inject_fault`]), shared by the clones of this store.
    fault: Arc<AtomicU8>,
}

/// [`Store::fault`] values: never injected (the fast path), injected and cleared since,
/// read-only.
const FAULT_NEVER: u8 = 0;
const FAULT_CLEARED: u8 = 1;
const FAULT_READ_ONLY: u8 = 2;

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
            fault: Arc::new(AtomicU8::new(FAULT_NEVER)),
        })
    }

    /// Fault injection (`LETHE_FAULTS=<point>.store_read_only=sleep:0`, tests and drills):
    /// from now on every connection this store hands out refuses writes as a read-only
    /// store does (SQLite `query_only`, PostgreSQL `default_transaction_read_only`), until
    /// `inject_fault(None)`. A full disk cannot be injected this way (SQLite's page limit
    /// fails only writes that need a new page): a test fills a small file system instead.
    pub fn inject_fault(&self, fault: Option<StoreFault>) -> Result<(), StoreError> {
        let v = match fault {
            None if self.fault.load(Ordering::SeqCst) == FAULT_NEVER => FAULT_NEVER,
            None => FAULT_CLEARED,
            Some(StoreFault::ReadOnly) => FAULT_READ_ONLY,
            Some(StoreFault::DiskFull) => {
                return Err(StoreError::Config(
                    "a full disk cannot be injected; fill the store's file system".into(),
                ));
            }
        };
        self.fault.store(v, Ordering::SeqCst);
        Ok(())
    }

    /// At a fault point, injects the store faults configured for it:
    /// `<point>.store_read_only`, or `<point>.store_ok` (ends it).
    pub fn fault_point(&self, point: &str, faults: &std::collections::BTreeMap<String, u64>) {
        if faults.is_empty() {
            return;
        }
        for (suffix, fault) in [
            ("store_read_only", Some(StoreFault::ReadOnly)),
            ("store_ok", None),
        ] {
            if faults.contains_key(&format!("{point}.{suffix}")) {
                eprintln!("lethe: fault point {point} reached: engine store fault {suffix}");
                if let Err(e) = self.inject_fault(fault) {
                    eprintln!("lethe: {e}");
                }
            }
        }
    }

    /// Applies the injected fault (or its end) to a connection being handed out.
    fn apply_fault(&self, conn: &mut StoreConn, fault: u8) -> Result<(), StoreError> {
        let sql = match (&*conn, fault) {
            (StoreConn::Sqlite(_), FAULT_READ_ONLY) => "PRAGMA query_only = 1",
            (StoreConn::Sqlite(_), _) => "PRAGMA query_only = 0",
            (StoreConn::Postgres(_), FAULT_READ_ONLY) => "SET default_transaction_read_only = on",
            (StoreConn::Postgres(_), _) => "SET default_transaction_read_only = off",
        };
        conn.batch_execute(sql).map_err(StoreError::from)
    }

    pub fn url(&self) -> &DbUrl {
        &self.url
    }

    pub fn conn(&self) -> Result<StorePooled, StoreError> {
        let mut conn = self.pool.get()?;
        let fault = self.fault.load(Ordering::Relaxed);
        if fault != FAULT_NEVER {
            self.apply_fault(&mut conn, fault)?;
        }
        Ok(conn)
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

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorKind, Error};

    fn db_error(kind: DatabaseErrorKind, msg: &str) -> StoreError {
        StoreError::from(Error::DatabaseError(kind, Box::new(msg.to_string())))
    }

    #[test]
    fn read_only_and_full_stores_are_named_and_retryable() {
        let cases = [
            (
                db_error(
                    DatabaseErrorKind::Unknown,
                    "attempt to write a readonly database",
                ),
                "engine store is read-only (attempt to write a readonly database)",
            ),
            (
                db_error(
                    DatabaseErrorKind::ReadOnlyTransaction,
                    "cannot execute INSERT in a read-only transaction",
                ),
                "engine store is read-only (cannot execute INSERT in a read-only transaction)",
            ),
            (
                db_error(DatabaseErrorKind::Unknown, "database or disk is full"),
                "engine store disk is full (database or disk is full)",
            ),
            (
                db_error(
                    DatabaseErrorKind::Unknown,
                    "could not extend file \"base/16384/2619\": No space left on device",
                ),
                "engine store disk is full (could not extend file",
            ),
        ];
        for (e, text) in cases {
            assert!(e.is_retryable(), "{e}");
            assert!(e.to_string().starts_with(text), "{e}");
        }
        let locked = db_error(DatabaseErrorKind::Unknown, "database is locked");
        assert!(matches!(locked, StoreError::Unavailable(_)));
        let other = db_error(DatabaseErrorKind::Unknown, "no such table: x");
        assert!(matches!(other, StoreError::Db(_)) && !other.is_retryable());
        assert!(!StoreError::NotFound.is_retryable());
    }

    #[test]
    fn an_injected_read_only_fault_refuses_writes_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&DbUrl::Sqlite(dir.path().join("s.sqlite3"))).unwrap();
        let write = |s: &Store| {
            s.write(|c| -> Result<(), StoreError> {
                c.batch_execute(
                    "CREATE TABLE IF NOT EXISTS t (x INTEGER); INSERT INTO t VALUES (1)",
                )
                .map_err(StoreError::from)
            })
        };
        write(&store).unwrap();
        store.inject_fault(Some(StoreFault::ReadOnly)).unwrap();
        let e = write(&store).unwrap_err();
        assert!(
            matches!(e, StoreError::Unwritable(StoreFault::ReadOnly, _)),
            "{e}"
        );
        // Reads still work; a clone shares the fault.
        store
            .clone()
            .read(|c| c.batch_execute("SELECT 1").map_err(StoreError::from))
            .unwrap();
        assert!(write(&store.clone()).is_err());
        store.inject_fault(None).unwrap();
        write(&store).unwrap();
        assert!(store.inject_fault(Some(StoreFault::DiskFull)).is_err());
    }
}
