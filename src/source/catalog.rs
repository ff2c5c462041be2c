//! The live schema of a CRM source: tables, columns and types, primary keys, indexes
//! (including expression and text-search indexes) and foreign keys, read from the
//! database's own catalog (`sqlite_master` and pragmas, PostgreSQL's `pg_catalog`, MySQL's
//! `information_schema` for the connection's current database).

use super::SourceError;
use super::conn::SourceConn;
use super::dialect::{ColumnType, Dialect};
use super::value::Value;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct ColumnInfo {
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
    /// A single-column unique index or constraint covers this column.
    pub unique: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexInfo {
    pub name: String,
    /// Key columns; expressions are normalized (`lower(email)`).
    pub columns: Vec<String>,
    pub unique: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    /// no_action | restrict | cascade | set_null | set_default
    pub on_delete: String,
}

/// An index that serves substring search on a text column. MySQL/MariaDB has none that
/// gives the same answers as `LIKE '%...%'` (FULLTEXT indexes match words, not substrings),
/// so a MySQL catalog lists no text indexes and the residual scan uses LIKE there.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TextIndex {
    /// An external-content FTS5 table with the trigram tokenizer (SQLite).
    Fts5Trigram {
        fts_table: String,
        column: String,
        rowid_column: String,
    },
    /// A GIN or GiST pg_trgm index (PostgreSQL); used by ILIKE transparently.
    Trigram { index: String, column: String },
}

impl TextIndex {
    pub fn column(&self) -> &str {
        match self {
            TextIndex::Fts5Trigram { column, .. } | TextIndex::Trigram { column, .. } => column,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TableInfo {
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    pub primary_key: Vec<String>,
    pub indexes: Vec<IndexInfo>,
    pub foreign_keys: Vec<ForeignKey>,
    pub text_indexes: Vec<TextIndex>,
}

impl TableInfo {
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether some index (or the primary key) starts with exactly these columns, in any
    /// order, so lookups on them are indexed.
    pub fn has_index_on(&self, cols: &[&str]) -> bool {
        let covers = |key: &[String]| {
            key.len() >= cols.len()
                && cols
                    .iter()
                    .all(|c| key[..cols.len()].iter().any(|k| k == c))
        };
        covers(&self.primary_key) || self.indexes.iter().any(|i| covers(&i.columns))
    }

    /// Whether an expression index on `lower(col)` exists.
    pub fn has_lower_index(&self, col: &str) -> bool {
        let want = format!("lower({col})");
        self.indexes
            .iter()
            .any(|i| i.columns.first().is_some_and(|c| *c == want))
    }

    pub fn text_index(&self, col: &str) -> Option<&TextIndex> {
        self.text_indexes.iter().find(|t| t.column() == col)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Catalog {
    pub dialect: Dialect,
    pub tables: BTreeMap<String, TableInfo>,
    /// SQLite: FTS5 tables whose shadow tables have STAT4 statistics (slows FTS5 queries).
    pub fts_with_stat4: Vec<String>,
}

impl Catalog {
    pub fn table(&self, name: &str) -> Option<&TableInfo> {
        self.tables.get(name)
    }

    pub fn column_type(&self, table: &str, col: &str) -> Option<&ColumnType> {
        self.tables.get(table)?.column(col).map(|c| &c.ty)
    }

    /// Reads the catalog of the connected database (the current schema on PostgreSQL, the
    /// current database on MySQL).
    pub fn load(conn: &mut SourceConn) -> Result<Catalog, SourceError> {
        match conn.dialect() {
            Dialect::Sqlite => load_sqlite(conn),
            Dialect::Postgres => load_postgres(conn),
            #[cfg(feature = "mysql")]
            Dialect::Mysql => load_mysql(conn),
        }
    }
}

/// A catalog value as text. Catalog names may arrive as binary strings (MySQL reports
/// columns with a `_bin` collation as binary), so bytes are read as UTF-8.
fn text(v: &Value) -> String {
    match v {
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        v => v.to_text().unwrap_or_default(),
    }
}

/// `lower((email)::text)` -> `lower(email)`; `"Email"` -> `email`.
fn normalize_expr(e: &str) -> String {
    let mut s: String = e
        .replace("::text", "")
        .replace("::character varying", "")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '"' && *c != '`')
        .collect::<String>()
        .to_lowercase();
    while s.contains("((") {
        s = s.replace("((", "(").replace("))", ")");
    }
    if s.starts_with('(') && s.ends_with(')') && !s[1..].contains('(') {
        s = s[1..s.len() - 1].to_string();
    }
    s
}

fn load_sqlite(conn: &mut SourceConn) -> Result<Catalog, SourceError> {
    let mut q = conn.sql();
    q.push("SELECT name, type, sql, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name");
    let master = conn.query(&q)?;
    let mut fts: Vec<(String, String)> = Vec::new(); // (name, create sql)
    let mut index_sql: BTreeMap<String, String> = BTreeMap::new();
    let mut table_names = Vec::new();
    for r in &master {
        let (name, kind, sql) = (text(&r[0]), text(&r[1]), text(&r[2]));
        match kind.as_str() {
            "table" | "view" if sql.to_ascii_lowercase().contains("using fts5") => {
                fts.push((name, sql))
            }
            "table" | "view" => table_names.push(name),
            "index" => {
                index_sql.insert(name, sql);
            }
            _ => {}
        }
    }
    // FTS5 shadow tables are not CRM tables.
    table_names.retain(|t| {
        !fts.iter().any(|(f, _)| {
            t.strip_prefix(f.as_str()).is_some_and(|rest| {
                matches!(rest, "_data" | "_idx" | "_content" | "_docsize" | "_config")
            })
        })
    });

    let mut tables = BTreeMap::new();
    for name in table_names {
        let mut q = conn.sql();
        q.push("SELECT name, type, \"notnull\", pk FROM pragma_table_info(")
            .bind(Value::Text(name.clone()))
            .push(") ORDER BY cid");
        let cols = conn.query(&q)?;
        let mut pk: Vec<(i64, String)> = Vec::new();
        let mut columns = Vec::new();
        for c in &cols {
            let cname = text(&c[0]);
            let pkpos = c[3].as_int().unwrap_or(0);
            if pkpos > 0 {
                pk.push((pkpos, cname.clone()));
            }
            columns.push(ColumnInfo {
                name: cname,
                ty: ColumnType::from_declared(&text(&c[1])),
                nullable: c[2].as_int() != Some(1) && pkpos == 0,
                unique: false,
            });
        }
        pk.sort();
        let primary_key: Vec<String> = pk.into_iter().map(|(_, c)| c).collect();

        let mut q = conn.sql();
        q.push("SELECT il.name, il.\"unique\", ii.seqno, ii.name FROM pragma_index_list(")
            .bind(Value::Text(name.clone()))
            .push(") il JOIN pragma_index_info(il.name) ii ORDER BY il.name, ii.seqno");
        let idx_rows = conn.query(&q)?;
        let mut indexes: Vec<IndexInfo> = Vec::new();
        for r in idx_rows {
            let iname = text(&r[0]);
            let col = match &r[3] {
                Value::Null => expression_columns(index_sql.get(&iname).map(String::as_str))
                    .get(usize::try_from(r[2].as_int().unwrap_or(0)).unwrap_or(0))
                    .cloned()
                    .unwrap_or_default(),
                v => text(v),
            };
            match indexes.last_mut() {
                Some(i) if i.name == iname => i.columns.push(col),
                _ => indexes.push(IndexInfo {
                    name: iname,
                    columns: vec![col],
                    unique: r[1].as_int() == Some(1),
                }),
            }
        }
        mark_unique(&mut columns, &primary_key, &indexes);

        let mut q = conn.sql();
        q.push(
            "SELECT id, seq, \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list(",
        )
        .bind(Value::Text(name.clone()))
        .push(") ORDER BY id, seq");
        let mut foreign_keys: Vec<ForeignKey> = Vec::new();
        let mut last_id = -1;
        for r in conn.query(&q)? {
            let id = r[0].as_int().unwrap_or(0);
            if id != last_id {
                foreign_keys.push(ForeignKey {
                    columns: Vec::new(),
                    ref_table: text(&r[2]),
                    ref_columns: Vec::new(),
                    on_delete: text(&r[5]).to_ascii_lowercase().replace(' ', "_"),
                });
                last_id = id;
            }
            if let Some(fk) = foreign_keys.last_mut() {
                fk.columns.push(text(&r[3]));
                fk.ref_columns.push(text(&r[4]));
            }
        }
        tables.insert(
            name.clone(),
            TableInfo {
                name,
                columns,
                primary_key,
                indexes,
                foreign_keys,
                text_indexes: Vec::new(),
            },
        );
    }

    let mut fts_with_stat4 = Vec::new();
    if has_stat4(conn)? {
        let mut q = conn.sql();
        q.push("SELECT DISTINCT tbl FROM sqlite_stat4");
        let stat_tables: Vec<String> = conn.query(&q)?.iter().map(|r| text(&r[0])).collect();
        for (f, _) in &fts {
            if stat_tables.iter().any(|t| {
                t.strip_prefix(f.as_str())
                    .is_some_and(|r| r.starts_with('_'))
            }) {
                fts_with_stat4.push(f.clone());
            }
        }
    }
    for (fts_name, sql) in fts {
        if let Some(spec) = parse_fts5(&sql)
            && spec.trigram
            && let Some(t) = spec.content.as_ref().and_then(|c| tables.get_mut(c))
        {
            let rowid_column = spec
                .content_rowid
                .clone()
                .or_else(|| t.primary_key.first().cloned())
                .unwrap_or_else(|| "rowid".into());
            for col in &spec.columns {
                t.text_indexes.push(TextIndex::Fts5Trigram {
                    fts_table: fts_name.clone(),
                    column: col.clone(),
                    rowid_column: rowid_column.clone(),
                });
            }
        }
    }
    Ok(Catalog {
        dialect: Dialect::Sqlite,
        tables,
        fts_with_stat4,
    })
}

fn has_stat4(conn: &mut SourceConn) -> Result<bool, SourceError> {
    let mut q = conn.sql();
    q.push("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat4'");
    Ok(conn
        .query(&q)?
        .first()
        .and_then(|r| r[0].as_int())
        .unwrap_or(0)
        > 0)
}

fn mark_unique(columns: &mut [ColumnInfo], pk: &[String], indexes: &[IndexInfo]) {
    for c in columns.iter_mut() {
        c.unique = (pk.len() == 1 && pk[0] == c.name)
            || indexes
                .iter()
                .any(|i| i.unique && i.columns.len() == 1 && i.columns[0] == c.name);
    }
}

/// The key expressions of a `CREATE INDEX ... ON t (expr, ...)` statement, normalized.
fn expression_columns(sql: Option<&str>) -> Vec<String> {
    let Some(sql) = sql else { return Vec::new() };
    let Some(open) = sql.find('(') else {
        return Vec::new();
    };
    let Some(close) = sql.rfind(')') else {
        return Vec::new();
    };
    let body = &sql[open + 1..close.max(open + 1)];
    split_top_level(body)
        .into_iter()
        .map(|e| {
            let e = e.trim();
            let e = e
                .strip_suffix(" DESC")
                .or_else(|| e.strip_suffix(" ASC"))
                .unwrap_or(e);
            normalize_expr(e)
        })
        .collect()
}

/// Splits on commas outside parentheses and quotes.
fn split_top_level(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut cur = String::new();
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' | '`' => quote = Some(c),
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(std::mem::take(&mut cur));
                    continue;
                }
                _ => {}
            },
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

#[derive(Debug, Default, PartialEq)]
struct Fts5Spec {
    columns: Vec<String>,
    content: Option<String>,
    content_rowid: Option<String>,
    trigram: bool,
}

fn parse_fts5(sql: &str) -> Option<Fts5Spec> {
    let lower = sql.to_ascii_lowercase();
    let at = lower.find("fts5")?;
    let open = at + sql[at..].find('(')?;
    let close = sql.rfind(')')?;
    let mut spec = Fts5Spec::default();
    for arg in split_top_level(&sql[open + 1..close]) {
        let arg = arg.trim();
        let unquote = |v: &str| v.trim().trim_matches(['\'', '"', '`']).to_string();
        match arg.split_once('=') {
            Some((k, v)) => match k.trim().to_ascii_lowercase().as_str() {
                "content" => spec.content = Some(unquote(v)).filter(|c| !c.is_empty()),
                "content_rowid" => spec.content_rowid = Some(unquote(v)),
                "tokenize" => spec.trigram = unquote(v).to_ascii_lowercase().starts_with("trigram"),
                _ => {}
            },
            None => {
                let name = arg
                    .split_whitespace()
                    .next()
                    .map(unquote)
                    .unwrap_or_default();
                let unindexed = arg.to_ascii_lowercase().contains("unindexed");
                if !name.is_empty() && !unindexed {
                    spec.columns.push(name);
                }
            }
        }
    }
    Some(spec)
}

fn load_postgres(conn: &mut SourceConn) -> Result<Catalog, SourceError> {
    let mut tables: BTreeMap<String, TableInfo> = BTreeMap::new();
    let mut q = conn.sql();
    q.push(
        "SELECT c.table_name::text, c.column_name::text, \
           CASE WHEN c.data_type IN ('USER-DEFINED', 'ARRAY') THEN c.udt_name::text ELSE c.data_type::text END, \
           c.is_nullable::text \
         FROM information_schema.columns c \
         JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = current_schema() AND t.table_type IN ('BASE TABLE', 'VIEW') \
         ORDER BY c.table_name, c.ordinal_position",
    );
    for r in conn.query(&q)? {
        let tname = text(&r[0]);
        let t = tables.entry(tname.clone()).or_insert_with(|| TableInfo {
            name: tname,
            columns: Vec::new(),
            primary_key: Vec::new(),
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
            text_indexes: Vec::new(),
        });
        t.columns.push(ColumnInfo {
            name: text(&r[1]),
            ty: ColumnType::from_declared(&text(&r[2])),
            nullable: text(&r[3]) == "YES",
            unique: false,
        });
    }

    let mut q = conn.sql();
    q.push(
        "SELECT t.relname::text, i.relname::text, ix.indisunique, ix.indisprimary, \
           pg_get_indexdef(ix.indexrelid), \
           array_to_string(ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k, true) \
             FROM generate_series(1, ix.indnkeyatts) k ORDER BY k), '|') \
         FROM pg_index ix \
         JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() ORDER BY 1, 2",
    );
    for r in conn.query(&q)? {
        let Some(t) = tables.get_mut(&text(&r[0])) else {
            continue;
        };
        let iname = text(&r[1]);
        let def = text(&r[4]);
        let cols: Vec<String> = text(&r[5]).split('|').map(normalize_expr).collect();
        if r[3] == Value::Bool(true) {
            t.primary_key = cols.clone();
        }
        if (def.contains("gin_trgm_ops") || def.contains("gist_trgm_ops"))
            && let Some(c) = cols.first()
        {
            t.text_indexes.push(TextIndex::Trigram {
                index: iname.clone(),
                column: c.clone(),
            });
        }
        t.indexes.push(IndexInfo {
            name: iname,
            columns: cols,
            unique: r[2] == Value::Bool(true),
        });
    }

    let mut q = conn.sql();
    q.push(
        "SELECT cl.relname::text, con.conname::text, fcl.relname::text, \
           array_to_string(ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, o) \
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o), ','), \
           array_to_string(ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o) \
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o), ','), \
           con.confdeltype::text \
         FROM pg_constraint con \
         JOIN pg_class cl ON cl.oid = con.conrelid \
         JOIN pg_class fcl ON fcl.oid = con.confrelid \
         JOIN pg_namespace n ON n.oid = cl.relnamespace \
         WHERE con.contype = 'f' AND n.nspname = current_schema() ORDER BY 1, 2",
    );
    for r in conn.query(&q)? {
        let Some(t) = tables.get_mut(&text(&r[0])) else {
            continue;
        };
        let on_delete = match text(&r[5]).as_str() {
            "c" => "cascade",
            "r" => "restrict",
            "n" => "set_null",
            "d" => "set_default",
            _ => "no_action",
        };
        t.foreign_keys.push(ForeignKey {
            columns: text(&r[3]).split(',').map(str::to_string).collect(),
            ref_table: text(&r[2]),
            ref_columns: text(&r[4]).split(',').map(str::to_string).collect(),
            on_delete: on_delete.into(),
        });
    }
    for t in tables.values_mut() {
        let (pk, idx) = (t.primary_key.clone(), t.indexes.clone());
        mark_unique(&mut t.columns, &pk, &idx);
    }
    Ok(Catalog {
        dialect: Dialect::Postgres,
        tables,
        fts_with_stat4: Vec::new(),
    })
}

/// MySQL/MariaDB: `information_schema` filtered to `DATABASE()`. Declared types are
/// `COLUMN_TYPE` (`varchar(255)`, `tinyint(1)`, `decimal(12,2)`, `enum('a','b')`);
/// functional index parts (MySQL 8.0.13+, `STATISTICS.EXPRESSION`) are normalized like
/// PostgreSQL's (`lower(email)`); MariaDB has none.
#[cfg(feature = "mysql")]
fn load_mysql(conn: &mut SourceConn) -> Result<Catalog, SourceError> {
    let mut tables: BTreeMap<String, TableInfo> = BTreeMap::new();
    let mut q = conn.sql();
    q.push(
        "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE \
         FROM information_schema.COLUMNS c \
         JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
         WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE IN ('BASE TABLE', 'VIEW', 'SYSTEM VERSIONED') \
         ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION",
    );
    for r in conn.query(&q)? {
        let tname = text(&r[0]);
        let t = tables.entry(tname.clone()).or_insert_with(|| TableInfo {
            name: tname,
            columns: Vec::new(),
            primary_key: Vec::new(),
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
            text_indexes: Vec::new(),
        });
        t.columns.push(ColumnInfo {
            name: text(&r[1]),
            ty: ColumnType::from_declared(&text(&r[2])),
            nullable: text(&r[3]) == "YES",
            unique: false,
        });
    }

    // STATISTICS.EXPRESSION exists on MySQL 8.0.13+ only.
    let mut q = conn.sql();
    q.push(
        "SELECT count(*) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = 'information_schema' AND TABLE_NAME = 'STATISTICS' \
         AND COLUMN_NAME = 'EXPRESSION'",
    );
    let has_expression = conn
        .query(&q)?
        .first()
        .and_then(|r| r[0].as_int())
        .unwrap_or(0)
        > 0;
    let mut q = conn.sql();
    q.push("SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, ");
    q.push(if has_expression { "EXPRESSION" } else { "NULL" });
    q.push(
        " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
         AND INDEX_TYPE <> 'FULLTEXT' ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
    );
    for r in conn.query(&q)? {
        let Some(t) = tables.get_mut(&text(&r[0])) else {
            continue;
        };
        let iname = text(&r[1]);
        let col = match &r[3] {
            Value::Null => normalize_expr(&text(&r[4])),
            v => text(v),
        };
        match t.indexes.last_mut() {
            Some(i) if i.name == iname => i.columns.push(col),
            _ => t.indexes.push(IndexInfo {
                name: iname,
                columns: vec![col],
                unique: r[2].as_int() == Some(0),
            }),
        }
    }
    for t in tables.values_mut() {
        if let Some(pk) = t.indexes.iter().find(|i| i.name == "PRIMARY") {
            t.primary_key = pk.columns.clone();
        }
    }

    let mut q = conn.sql();
    q.push(
        "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.REFERENCED_TABLE_NAME, k.COLUMN_NAME, \
           k.REFERENCED_COLUMN_NAME, r.DELETE_RULE \
         FROM information_schema.KEY_COLUMN_USAGE k \
         JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
           ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
           AND r.TABLE_NAME = k.TABLE_NAME \
         WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_SCHEMA = DATABASE() \
         ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
    );
    let mut last: Option<(String, String)> = None;
    for r in conn.query(&q)? {
        let (tname, cname) = (text(&r[0]), text(&r[1]));
        let Some(t) = tables.get_mut(&tname) else {
            continue;
        };
        let same = last
            .as_ref()
            .is_some_and(|(lt, lc)| *lt == tname && *lc == cname);
        if !same {
            t.foreign_keys.push(ForeignKey {
                columns: Vec::new(),
                ref_table: text(&r[2]),
                ref_columns: Vec::new(),
                on_delete: text(&r[5]).to_ascii_lowercase().replace(' ', "_"),
            });
            last = Some((tname, cname));
        }
        if let Some(fk) = t.foreign_keys.last_mut() {
            fk.columns.push(text(&r[3]));
            fk.ref_columns.push(text(&r[4]));
        }
    }
    for t in tables.values_mut() {
        let (pk, idx) = (t.primary_key.clone(), t.indexes.clone());
        mark_unique(&mut t.columns, &pk, &idx);
    }
    Ok(Catalog {
        dialect: Dialect::Mysql,
        tables,
        fts_with_stat4: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_expressions_normalize() {
        assert_eq!(
            normalize_expr("lower(`requester_email`)"),
            "lower(requester_email)"
        );
    }

    #[test]
    fn fts5_definitions_parse() {
        let s = parse_fts5(
            "CREATE VIRTUAL TABLE activities_fts USING fts5(body, subject UNINDEXED, content='activities', content_rowid='id', tokenize='trigram')",
        )
        .unwrap();
        assert_eq!(s.columns, vec!["body"]);
        assert_eq!(s.content.as_deref(), Some("activities"));
        assert_eq!(s.content_rowid.as_deref(), Some("id"));
        assert!(s.trigram);
    }

    #[test]
    fn expressions_normalize() {
        assert_eq!(normalize_expr("lower((email)::text)"), "lower(email)");
        assert_eq!(normalize_expr("LOWER(\"email\")"), "lower(email)");
        assert_eq!(normalize_expr("email"), "email");
        assert_eq!(
            expression_columns(Some("CREATE INDEX x ON t (lower(email), id DESC)")),
            vec!["lower(email)", "id"]
        );
    }
}
