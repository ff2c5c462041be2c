//! Connections to CRM sources through diesel, for schemas known only at run time: a
//! statement type that diesel can prepare and cache ([`DynQuery`]) and a row type that
//! decodes any column ([`DynRow`]). SQLite and PostgreSQL always; MySQL/MariaDB with the
//! `mysql` cargo feature (libmysqlclient).

use super::SourceError;
use super::dialect::{Dialect, Frag, Sql};
use super::url::DbUrl;
use super::value::Value;
use diesel::backend::Backend;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::deserialize::{FromSql, QueryableByName};
#[cfg(feature = "mysql")]
use diesel::mysql::{Mysql, MysqlConnection};
use diesel::pg::{Pg, PgConnection};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::row::{Field, NamedRow};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Binary, Bool, Double, HasSqlType, Text, Untyped};
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel::{QueryResult, RunQueryDsl};
use std::time::Duration;

/// A statement built by [`Sql`], as diesel sees it. Not marked unsafe to cache, so
/// diesel keeps one prepared statement per distinct SQL text on each connection.
pub(crate) struct DynQuery<'a>(&'a Sql);

impl QueryId for DynQuery<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for DynQuery<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for DynQuery<'_> {}

impl<DB> QueryFragment<DB> for DynQuery<'_>
where
    DB: Backend
        + HasSqlType<BigInt>
        + HasSqlType<Double>
        + HasSqlType<Text>
        + HasSqlType<Bool>
        + HasSqlType<Binary>,
    i64: ToSql<BigInt, DB>,
    f64: ToSql<Double, DB>,
    String: ToSql<Text, DB>,
    bool: ToSql<Bool, DB>,
    Vec<u8>: ToSql<Binary, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        for f in &self.0.frags {
            match f {
                Frag::Text(t) => out.push_sql(t),
                Frag::Bind { index, cast } => {
                    if cast.is_some() {
                        out.push_sql("CAST(");
                    }
                    match &self.0.binds[*index] {
                        Value::Int(i) => out.push_bind_param::<BigInt, i64>(i)?,
                        Value::Float(x) => out.push_bind_param::<Double, f64>(x)?,
                        Value::Text(s) => out.push_bind_param::<Text, String>(s)?,
                        Value::Bool(b) => out.push_bind_param::<Bool, bool>(b)?,
                        Value::Bytes(b) => out.push_bind_param::<Binary, Vec<u8>>(b)?,
                        Value::Null => out.push_sql("NULL"),
                    }
                    if let Some(c) = cast {
                        out.push_sql(" AS ");
                        out.push_sql(c);
                        out.push_sql(")");
                    }
                }
            }
        }
        Ok(())
    }
}

/// A row with any columns, decoded by their run-time type.
pub struct DynRow(pub Vec<Value>);

fn field_error(i: usize, e: impl std::fmt::Display) -> Box<dyn std::error::Error + Send + Sync> {
    format!("column {i}: {e}").into()
}

impl QueryableByName<Sqlite> for DynRow {
    fn build<'a>(row: &impl NamedRow<'a, Sqlite>) -> diesel::deserialize::Result<Self> {
        use diesel::sqlite::SqliteType;
        let n = row.field_count();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let field = diesel::row::Row::get(row, i).ok_or_else(|| field_error(i, "missing"))?;
            let v = match field.value() {
                None => Value::Null,
                Some(raw) => match raw.value_type() {
                    None => Value::Null,
                    Some(SqliteType::Long | SqliteType::Integer | SqliteType::SmallInt) => {
                        Value::Int(<i64 as FromSql<BigInt, Sqlite>>::from_sql(raw)?)
                    }
                    Some(SqliteType::Double | SqliteType::Float) => {
                        Value::Float(<f64 as FromSql<Double, Sqlite>>::from_sql(raw)?)
                    }
                    Some(SqliteType::Binary) => {
                        Value::Bytes(<Vec<u8> as FromSql<Binary, Sqlite>>::from_sql(raw)?)
                    }
                    Some(SqliteType::Text) => {
                        Value::Text(<String as FromSql<Text, Sqlite>>::from_sql(raw)?)
                    }
                },
            };
            out.push(v);
        }
        Ok(DynRow(out))
    }
}

impl QueryableByName<Pg> for DynRow {
    fn build<'a>(row: &impl NamedRow<'a, Pg>) -> diesel::deserialize::Result<Self> {
        use diesel::sql_types::{Float, Integer, SmallInt};
        let n = row.field_count();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let field = diesel::row::Row::get(row, i).ok_or_else(|| field_error(i, "missing"))?;
            let v = match field.value() {
                None => Value::Null,
                Some(raw) => match raw.get_oid().get() {
                    16 => Value::Bool(<bool as FromSql<Bool, Pg>>::from_sql(raw)?),
                    20 => Value::Int(<i64 as FromSql<BigInt, Pg>>::from_sql(raw)?),
                    23 => Value::Int(i64::from(<i32 as FromSql<Integer, Pg>>::from_sql(raw)?)),
                    21 => Value::Int(i64::from(<i16 as FromSql<SmallInt, Pg>>::from_sql(raw)?)),
                    700 => Value::Float(f64::from(<f32 as FromSql<Float, Pg>>::from_sql(raw)?)),
                    701 => Value::Float(<f64 as FromSql<Double, Pg>>::from_sql(raw)?),
                    17 => Value::Bytes(<Vec<u8> as FromSql<Binary, Pg>>::from_sql(raw)?),
                    // text, varchar, bpchar, name, unknown and anything selected as ::text
                    _ => Value::Text(String::from_utf8_lossy(raw.as_bytes()).into_owned()),
                },
            };
            out.push(v);
        }
        Ok(DynRow(out))
    }
}

/// MySQL/MariaDB values by their wire type: integers as `Int` (so `BOOLEAN`, which is
/// `tinyint(1)`, reads 0/1 as on SQLite), floats as `Float`, binary strings and blobs as
/// `Bytes`, everything else as text: decimals as written (`12.50`), dates as `YYYY-MM-DD`,
/// date-times as `YYYY-MM-DD HH:MM:SS[.ffffff]` (fraction only when non-zero, trailing
/// zeros dropped, as PostgreSQL prints them), times as `HH:MM:SS`, JSON, enums and sets as
/// their text.
#[cfg(feature = "mysql")]
impl QueryableByName<Mysql> for DynRow {
    fn build<'a>(row: &impl NamedRow<'a, Mysql>) -> diesel::deserialize::Result<Self> {
        use diesel::mysql::MysqlType as T;
        use diesel::mysql::data_types::MysqlTime;
        use diesel::mysql::sql_types::Unsigned;
        use diesel::sql_types::Float;
        let n = row.field_count();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let field = diesel::row::Row::get(row, i).ok_or_else(|| field_error(i, "missing"))?;
            let v = match field.value() {
                None => Value::Null,
                Some(raw) => match raw.value_type() {
                    T::Tiny
                    | T::UnsignedTiny
                    | T::Short
                    | T::UnsignedShort
                    | T::Long
                    | T::UnsignedLong
                    | T::LongLong => Value::Int(<i64 as FromSql<BigInt, Mysql>>::from_sql(raw)?),
                    T::UnsignedLongLong => {
                        let u = <u64 as FromSql<Unsigned<BigInt>, Mysql>>::from_sql(raw)?;
                        i64::try_from(u).map_or_else(|_| Value::Text(u.to_string()), Value::Int)
                    }
                    T::Float => {
                        Value::Float(f64::from(<f32 as FromSql<Float, Mysql>>::from_sql(raw)?))
                    }
                    T::Double => Value::Float(<f64 as FromSql<Double, Mysql>>::from_sql(raw)?),
                    T::Date | T::DateTime | T::Timestamp | T::Time => {
                        let kind = raw.value_type();
                        let t =
                            <MysqlTime as FromSql<diesel::sql_types::Timestamp, Mysql>>::from_sql(
                                raw,
                            )
                            .map_err(|e| field_error(i, e))?;
                        Value::Text(mysql_time_text(&t, kind))
                    }
                    T::Bit => Value::Int(
                        raw.as_bytes()
                            .iter()
                            .fold(0i64, |acc, b| (acc << 8) | i64::from(*b)),
                    ),
                    T::Blob => Value::Bytes(raw.as_bytes().to_vec()),
                    // Numeric, String, Enum, Set (and JSON, which arrives as a string).
                    _ => Value::Text(String::from_utf8_lossy(raw.as_bytes()).into_owned()),
                },
            };
            out.push(v);
        }
        Ok(DynRow(out))
    }
}

/// Renders a MySQL date/time value the way PostgreSQL's `::text` does.
#[cfg(feature = "mysql")]
fn mysql_time_text(
    t: &diesel::mysql::data_types::MysqlTime,
    kind: diesel::mysql::MysqlType,
) -> String {
    use diesel::mysql::MysqlType as T;
    let fraction = if t.second_part == 0 {
        String::new()
    } else {
        let f = format!(".{:06}", t.second_part);
        f.trim_end_matches('0').to_string()
    };
    match kind {
        T::Date => format!("{:04}-{:02}-{:02}", t.year, t.month, t.day),
        T::Time => {
            // TIME may exceed 24 hours and be negative (it is a duration in MySQL).
            let sign = if t.neg { "-" } else { "" };
            let hours = u64::from(t.day) * 24 + u64::from(t.hour);
            format!("{sign}{hours:02}:{:02}:{:02}{fraction}", t.minute, t.second)
        }
        _ => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{fraction}",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        ),
    }
}

/// Sets per-connection options on SQLite CRM connections.
#[derive(Debug)]
struct SqliteOptions;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqliteOptions {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // Wait for other writers rather than fail; leave the CRM's journal mode alone.
        conn.batch_execute("PRAGMA busy_timeout = 10000;")
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// A pool of connections to one CRM source.
#[derive(Clone)]
pub enum SourcePool {
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
    Postgres(Pool<ConnectionManager<PgConnection>>),
    #[cfg(feature = "mysql")]
    Mysql(Pool<ConnectionManager<MysqlConnection>>),
}

impl SourcePool {
    /// Builds a lazily connecting pool (the service starts even when a source is down; the
    /// first use reports it).
    pub fn new(url: &DbUrl, max_size: u32) -> Result<Self, SourceError> {
        Self::open(url, max_size, false)
    }

    /// Like [`Self::new`], but a missing SQLite file is created (the demo seeder).
    pub fn open(url: &DbUrl, max_size: u32, create: bool) -> Result<Self, SourceError> {
        let timeout = Duration::from_secs(5);
        Ok(match url {
            DbUrl::Sqlite(path) => {
                if create && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        SourceError::Config(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                if !create && !path.exists() {
                    return Err(SourceError::Config(format!(
                        "SQLite source {} does not exist",
                        path.display()
                    )));
                }
                let mgr = ConnectionManager::<SqliteConnection>::new(path.display().to_string());
                SourcePool::Sqlite(
                    Pool::builder()
                        .max_size(max_size)
                        .min_idle(Some(0))
                        .connection_timeout(timeout)
                        .connection_customizer(Box::new(SqliteOptions))
                        .build_unchecked(mgr),
                )
            }
            DbUrl::Postgres(u) => {
                let mgr = ConnectionManager::<PgConnection>::new(u.clone());
                SourcePool::Postgres(
                    Pool::builder()
                        .max_size(max_size)
                        .min_idle(Some(0))
                        .connection_timeout(timeout)
                        .build_unchecked(mgr),
                )
            }
            #[cfg(feature = "mysql")]
            DbUrl::Mysql(u) => {
                let mgr = ConnectionManager::<MysqlConnection>::new(u.clone());
                SourcePool::Mysql(
                    Pool::builder()
                        .max_size(max_size)
                        .min_idle(Some(0))
                        .connection_timeout(timeout)
                        .build_unchecked(mgr),
                )
            }
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            SourcePool::Sqlite(_) => Dialect::Sqlite,
            SourcePool::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "mysql")]
            SourcePool::Mysql(_) => Dialect::Mysql,
        }
    }

    pub fn get(&self) -> Result<SourceConn, SourceError> {
        Ok(match self {
            SourcePool::Sqlite(p) => SourceConn::Sqlite(p.get().map_err(SourceError::unavailable)?),
            SourcePool::Postgres(p) => {
                SourceConn::Postgres(p.get().map_err(SourceError::unavailable)?)
            }
            #[cfg(feature = "mysql")]
            SourcePool::Mysql(p) => SourceConn::Mysql(p.get().map_err(SourceError::unavailable)?),
        })
    }
}

/// One checked-out CRM connection.
pub enum SourceConn {
    Sqlite(PooledConnection<ConnectionManager<SqliteConnection>>),
    Postgres(PooledConnection<ConnectionManager<PgConnection>>),
    #[cfg(feature = "mysql")]
    Mysql(PooledConnection<ConnectionManager<MysqlConnection>>),
}

impl SourceConn {
    pub fn dialect(&self) -> Dialect {
        match self {
            SourceConn::Sqlite(_) => Dialect::Sqlite,
            SourceConn::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "mysql")]
            SourceConn::Mysql(_) => Dialect::Mysql,
        }
    }

    pub fn sql(&self) -> Sql {
        Sql::new(self.dialect())
    }

    /// Runs a query and returns its rows.
    pub fn query(&mut self, sql: &Sql) -> Result<Vec<Vec<Value>>, SourceError> {
        let q = DynQuery(sql);
        let rows: Vec<DynRow> = match self {
            SourceConn::Sqlite(c) => q.load(&mut **c),
            SourceConn::Postgres(c) => q.load(&mut **c),
            #[cfg(feature = "mysql")]
            SourceConn::Mysql(c) => q.load(&mut **c),
        }
        .map_err(|e| SourceError::query(sql, e))?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Runs a statement and returns the number of affected rows.
    pub fn execute(&mut self, sql: &Sql) -> Result<usize, SourceError> {
        let q = DynQuery(sql);
        match self {
            SourceConn::Sqlite(c) => q.execute(&mut **c),
            SourceConn::Postgres(c) => q.execute(&mut **c),
            #[cfg(feature = "mysql")]
            SourceConn::Mysql(c) => q.execute(&mut **c),
        }
        .map_err(|e| SourceError::query(sql, e))
    }

    /// Runs several statements without parameters (DDL, pragmas).
    pub fn batch(&mut self, sql: &str) -> Result<(), SourceError> {
        match self {
            SourceConn::Sqlite(c) => c.batch_execute(sql),
            SourceConn::Postgres(c) => c.batch_execute(sql),
            #[cfg(feature = "mysql")]
            SourceConn::Mysql(c) => c.batch_execute(sql),
        }
        .map_err(|e| SourceError::Query {
            statement: sql.chars().take(120).collect(),
            message: e.to_string(),
        })
    }

    /// Readies a dedicated connection for a long run of write batches. SQLite: a page cache
    /// of `cache_mb` megabytes, so the index pages one batch touches are still in memory for
    /// the next, and no automatic checkpoint inside a batch's commit (the caller runs
    /// [`Self::checkpoint`] between batches, outside any transaction). PostgreSQL and MySQL:
    /// nothing.
    /// The settings last as long as the connection: use one that is not returned to a pool.
    pub fn prepare_for_batches(&mut self, cache_mb: u32) -> Result<(), SourceError> {
        if self.dialect() == Dialect::Sqlite {
            let kib = i64::from(cache_mb) * 1024;
            self.batch(&format!(
                "PRAGMA cache_size = -{kib}; PRAGMA wal_autocheckpoint = 0;"
            ))?;
        }
        Ok(())
    }

    /// Copies committed write-ahead-log frames back into an SQLite database without waiting
    /// for readers or writers (PASSIVE); nothing on PostgreSQL and MySQL.
    pub fn checkpoint(&mut self) -> Result<(), SourceError> {
        if self.dialect() == Dialect::Sqlite {
            let mut q = self.sql();
            q.push("PRAGMA wal_checkpoint(PASSIVE)");
            self.query(&q)?;
        }
        Ok(())
    }

    /// Starts a transaction. `write` takes SQLite's write lock up front (BEGIN IMMEDIATE); a
    /// read-only transaction on PostgreSQL and MySQL sees one snapshot (REPEATABLE READ). A
    /// write transaction on MySQL runs at READ COMMITTED, as on PostgreSQL: the rows it
    /// changes are read with `FOR UPDATE`, and InnoDB then locks only the rows that match,
    /// not every row (and gap) a scan passes.
    pub fn begin(&mut self, write: bool) -> Result<(), SourceError> {
        let begin = match (self.dialect(), write) {
            (Dialect::Sqlite, true) => "BEGIN IMMEDIATE",
            (Dialect::Sqlite, false) => "BEGIN",
            (Dialect::Postgres, true) => "BEGIN",
            (Dialect::Postgres, false) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            // SET TRANSACTION (without SESSION) applies to the next transaction only.
            #[cfg(feature = "mysql")]
            (Dialect::Mysql, true) => {
                "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION READ WRITE"
            }
            #[cfg(feature = "mysql")]
            (Dialect::Mysql, false) => {
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
                 START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"
            }
        };
        match self {
            SourceConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(&mut **c, begin),
            SourceConn::Postgres(c) => {
                AnsiTransactionManager::begin_transaction_sql(&mut **c, begin)
            }
            #[cfg(feature = "mysql")]
            SourceConn::Mysql(c) => AnsiTransactionManager::begin_transaction_sql(&mut **c, begin),
        }
        .map_err(|e| SourceError::from_diesel("BEGIN", e))
    }

    pub fn commit(&mut self) -> Result<(), SourceError> {
        match self {
            SourceConn::Sqlite(c) => AnsiTransactionManager::commit_transaction(&mut **c),
            SourceConn::Postgres(c) => AnsiTransactionManager::commit_transaction(&mut **c),
            #[cfg(feature = "mysql")]
            SourceConn::Mysql(c) => AnsiTransactionManager::commit_transaction(&mut **c),
        }
        .map_err(|e| SourceError::from_diesel("COMMIT", e))
    }

    pub fn rollback(&mut self) -> Result<(), SourceError> {
        match self {
            SourceConn::Sqlite(c) => AnsiTransactionManager::rollback_transaction(&mut **c),
            SourceConn::Postgres(c) => AnsiTransactionManager::rollback_transaction(&mut **c),
            #[cfg(feature = "mysql")]
            SourceConn::Mysql(c) => AnsiTransactionManager::rollback_transaction(&mut **c),
        }
        .map_err(|e| SourceError::from_diesel("ROLLBACK", e))
    }

    /// Runs `f` in a transaction (see [`Self::begin`]); rolls back when `f` fails.
    pub fn transaction<T, E>(
        &mut self,
        write: bool,
        f: impl FnOnce(&mut SourceConn) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<SourceError>,
    {
        self.begin(write)?;
        match f(self) {
            Ok(v) => {
                self.commit()?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.rollback();
                Err(e)
            }
        }
    }
}

/// Opens a single connection without a pool (CLI tools, the demo seeder); `create` makes a
/// missing SQLite file (a PostgreSQL or MySQL database must exist).
pub fn connect(url: &DbUrl, create: bool) -> Result<SourceConn, SourceError> {
    SourcePool::open(url, 1, create)?.get()
}
