//! The SQL dialect layer: identifier quoting, placeholders, type-aware binds and the few
//! constructs that differ between backends (SQLite, PostgreSQL and, with the `mysql`
//! feature, MySQL/MariaDB). All per-backend CRM SQL lives here.
//!
//! Architecture invariant: identifiers are quoted here and come only from the validated
//! policy or the live catalog; every value is a bound parameter (NULL is the only literal).

use super::value::Value;
use serde::Serialize;

/// The SQL dialect of a CRM source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Sqlite,
    Postgres,
    /// MySQL 8 or MariaDB 10.5+ (InnoDB). Only with the `mysql` cargo feature.
    #[cfg(feature = "mysql")]
    Mysql,
}

/// The broad type of a column, derived from its declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeKind {
    Integer,
    Float,
    Decimal,
    Text,
    Bool,
    Date,
    Timestamp,
    Bytes,
    Uuid,
    Json,
    Other,
}

impl TypeKind {
    pub fn is_temporal(self) -> bool {
        matches!(self, TypeKind::Date | TypeKind::Timestamp)
    }

    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            TypeKind::Integer | TypeKind::Float | TypeKind::Decimal
        )
    }

    /// Whether a text value may be written into a column of this kind.
    pub fn accepts_text(self) -> bool {
        matches!(self, TypeKind::Text | TypeKind::Json | TypeKind::Other)
    }

    /// Integer, text and UUID columns can be joined with each other only within the
    /// same family.
    pub fn family(self) -> &'static str {
        match self {
            TypeKind::Integer | TypeKind::Decimal | TypeKind::Float => "number",
            TypeKind::Text | TypeKind::Json | TypeKind::Other => "text",
            TypeKind::Uuid => "uuid",
            TypeKind::Bool => "boolean",
            TypeKind::Date | TypeKind::Timestamp => "time",
            TypeKind::Bytes => "bytes",
        }
    }
}

/// A column's declared type as the catalog reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnType {
    /// Declared type, lower case (`integer`, `varchar(200)`, `timestamp`).
    pub declared: String,
    pub kind: TypeKind,
}

impl ColumnType {
    /// Classifies a declared type the way SQLite's affinity rules and PostgreSQL's and
    /// MySQL's type names suggest. MySQL's `BOOLEAN` is `tinyint(1)`: a boolean (its values
    /// read as 0/1 integers, as on SQLite); `enum(...)` and `set(...)` are text (their
    /// value lists are not searched for type names).
    pub fn from_declared(declared: &str) -> ColumnType {
        let d = declared.trim().to_ascii_lowercase();
        let kind = if d.starts_with("enum(") || d.starts_with("set(") {
            TypeKind::Text
        } else if d.starts_with("interval") || d == "point" || d.starts_with("int4range") {
            TypeKind::Other
        } else if d.contains("bool") || d.starts_with("tinyint(1)") {
            TypeKind::Bool
        } else if d.contains("int") || d == "serial" || d == "bigserial" || d == "smallserial" {
            TypeKind::Integer
        } else if d.contains("timestamp") || d.contains("datetime") {
            TypeKind::Timestamp
        } else if d == "date" {
            TypeKind::Date
        } else if d.contains("char")
            || d.contains("text")
            || d.contains("clob")
            || d == "citext"
            || d == "name"
        {
            TypeKind::Text
        } else if d.contains("real") || d.contains("floa") || d.contains("doub") {
            TypeKind::Float
        } else if d.contains("numeric") || d.contains("decimal") || d == "money" {
            TypeKind::Decimal
        } else if d.contains("blob") || d == "bytea" || d.contains("binary") {
            TypeKind::Bytes
        } else if d == "uuid" {
            TypeKind::Uuid
        } else if d == "json" || d == "jsonb" {
            TypeKind::Json
        } else {
            // Includes SQLite columns without a declared type, which hold anything.
            TypeKind::Other
        };
        ColumnType { declared: d, kind }
    }

    /// The PostgreSQL type name usable in a CAST, if it is a plain name.
    fn cast_name(&self) -> Option<&str> {
        let ok = !self.declared.is_empty()
            && self
                .declared
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '(' | ')' | ','));
        ok.then_some(self.declared.as_str())
    }
}

impl Dialect {
    /// Quotes an identifier: `"name"` (quotes doubled), or `` `name` `` on MySQL (backticks
    /// doubled; MySQL reads `"` as a string quote unless `ANSI_QUOTES` is set).
    pub fn quote(self, ident: &str) -> String {
        match self {
            #[cfg(feature = "mysql")]
            Dialect::Mysql => format!("`{}`", ident.replace('`', "``")),
            _ => format!("\"{}\"", ident.replace('"', "\"\"")),
        }
    }

    /// The expression that selects a column so that its value decodes natively: on
    /// PostgreSQL every type without a native [`Value`] variant is selected as text. On
    /// MySQL, text columns are converted to utf8mb4 (`CONVERT(col USING utf8mb4)`): the
    /// server flags a column with a binary collation (`utf8mb4_bin`, MariaDB's JSON) as a
    /// binary string, which would read as bytes; `TIME` is cast to text (a signed duration
    /// the client library cannot decode when negative). Decimals, enums and sets arrive as
    /// text, and dates and date-times are rendered as text by the row decoder
    /// (`source::conn`).
    pub fn select_column(self, col: &str, ty: Option<&ColumnType>) -> String {
        let q = self.quote(col);
        #[cfg(feature = "mysql")]
        if self == Dialect::Mysql {
            return match ty {
                Some(t) if matches!(t.kind, TypeKind::Text | TypeKind::Json) => {
                    format!("CONVERT({q} USING utf8mb4)")
                }
                Some(t) if t.kind == TypeKind::Other && t.declared.starts_with("time") => {
                    format!("CAST({q} AS CHAR)")
                }
                _ => q,
            };
        }
        match (self, ty.map(|t| t.kind)) {
            (
                Dialect::Postgres,
                Some(
                    TypeKind::Date
                    | TypeKind::Timestamp
                    | TypeKind::Decimal
                    | TypeKind::Uuid
                    | TypeKind::Json
                    | TypeKind::Other,
                ),
            ) => format!("{q}::text"),
            _ => q,
        }
    }

    /// Case-insensitive "contains" on a text expression; the bound pattern comes from
    /// [`like_pattern`]. Pushes `col LIKE ? ESCAPE '\'` (ILIKE on PostgreSQL). On MySQL the
    /// pattern takes a case-insensitive collation, so a case-sensitive (`_bin`) column still
    /// matches in any case, and the escape character is written `CHAR(92)`: a `'\'` literal
    /// means different things with and without the `NO_BACKSLASH_ESCAPES` SQL mode.
    pub fn push_contains_ci(self, sql: &mut Sql, col: &str, needle: &str) {
        let pattern = Value::Text(like_pattern(needle));
        match self {
            Dialect::Sqlite => {
                sql.ident(col)
                    .push(" LIKE ")
                    .bind(pattern)
                    .push(" ESCAPE '\\'");
            }
            Dialect::Postgres => {
                sql.ident(col)
                    .push(" ILIKE ")
                    .bind(pattern)
                    .push(" ESCAPE '\\'");
            }
            #[cfg(feature = "mysql")]
            Dialect::Mysql => {
                sql.ident(col)
                    .push(" LIKE ")
                    .bind(pattern)
                    .push(" COLLATE utf8mb4_general_ci ESCAPE CHAR(92)");
            }
        }
    }

    /// The operator that is true when two values differ, NULL counting as a value
    /// (`a IS DISTINCT FROM b`). MySQL has no such operator: use [`Self::push_distinct`].
    pub fn push_distinct(self, sql: &mut Sql, col: &str, v: Value, ty: Option<&ColumnType>) {
        match self {
            Dialect::Sqlite => {
                sql.ident(col).push(" IS NOT ").bind_as(v, ty);
            }
            Dialect::Postgres => {
                sql.ident(col).push(" IS DISTINCT FROM ").bind_as(v, ty);
            }
            #[cfg(feature = "mysql")]
            Dialect::Mysql => {
                sql.push("NOT (")
                    .ident(col)
                    .push(" <=> ")
                    .bind_as(v, ty)
                    .push(")");
            }
        }
    }

    /// Whether `SELECT ... FOR UPDATE` locks the rows read in a write transaction (SQLite
    /// locks the whole database with `BEGIN IMMEDIATE` instead).
    pub fn locks_rows(self) -> bool {
        match self {
            Dialect::Sqlite => false,
            Dialect::Postgres => true,
            #[cfg(feature = "mysql")]
            Dialect::Mysql => true,
        }
    }

    /// Whether `UPDATE t SET ... FROM (VALUES ...) AS v WHERE ...` works (SQLite and
    /// PostgreSQL); MySQL joins a derived table instead (`UPDATE t JOIN (...) AS v ON ...`).
    pub fn update_from_values(self) -> bool {
        match self {
            Dialect::Sqlite | Dialect::Postgres => true,
            #[cfg(feature = "mysql")]
            Dialect::Mysql => false,
        }
    }
}

/// `%value%` with LIKE wildcards escaped (escape character `\`).
pub fn like_pattern(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('%');
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// One piece of a statement: SQL text or a bound parameter (with an optional cast).
#[derive(Debug, Clone)]
pub(crate) enum Frag {
    Text(String),
    Bind { index: usize, cast: Option<String> },
}

/// A statement under construction: text fragments and bound values. Rendering the
/// placeholders is left to diesel, so the same statement runs on every backend.
#[derive(Debug, Clone)]
pub struct Sql {
    pub dialect: Dialect,
    pub(crate) frags: Vec<Frag>,
    pub(crate) binds: Vec<Value>,
}

/// The largest IN list one statement carries; longer lists are split by the caller.
pub const MAX_IN_LIST: usize = 512;

impl Sql {
    pub fn new(dialect: Dialect) -> Self {
        Sql {
            dialect,
            frags: Vec::new(),
            binds: Vec::new(),
        }
    }

    pub fn push(&mut self, s: &str) -> &mut Self {
        match self.frags.last_mut() {
            Some(Frag::Text(t)) => t.push_str(s),
            _ => self.frags.push(Frag::Text(s.to_string())),
        }
        self
    }

    pub fn ident(&mut self, name: &str) -> &mut Self {
        let q = self.dialect.quote(name);
        self.push(&q)
    }

    /// A qualified column `"table"."column"`.
    pub fn column(&mut self, table: &str, col: &str) -> &mut Self {
        let q = format!("{}.{}", self.dialect.quote(table), self.dialect.quote(col));
        self.push(&q)
    }

    /// Binds a value. NULL is written as the literal `NULL` (an untyped NULL parameter
    /// would be typed as text by PostgreSQL).
    pub fn bind(&mut self, v: Value) -> &mut Self {
        self.bind_as(v, None)
    }

    /// Binds a value for a column of the given type, casting on PostgreSQL where the value
    /// travels as text (dates, decimals, UUIDs, ...).
    pub fn bind_as(&mut self, v: Value, ty: Option<&ColumnType>) -> &mut Self {
        if v.is_null() {
            return self.push("NULL");
        }
        let cast = match (self.dialect, ty, &v) {
            (Dialect::Postgres, Some(t), Value::Text(_)) if !matches!(t.kind, TypeKind::Text) => {
                t.cast_name().map(str::to_string)
            }
            _ => None,
        };
        self.binds.push(v);
        self.frags.push(Frag::Bind {
            index: self.binds.len() - 1,
            cast,
        });
        self
    }

    /// `(v1, v2, ...)` for an IN list. The list is padded (repeating its last value) to a
    /// power of two so prepared statements are reused across list lengths.
    pub fn in_list(&mut self, values: &[Value], ty: Option<&ColumnType>) -> &mut Self {
        self.push("(");
        let padded = values.len().next_power_of_two();
        for i in 0..padded {
            if i > 0 {
                self.push(", ");
            }
            let v = values
                .get(i)
                .or(values.last())
                .cloned()
                .unwrap_or(Value::Null);
            self.bind_as(v, ty);
        }
        self.push(")")
    }

    /// `((a1, b1), (a2, b2))` for a tuple IN list.
    pub fn tuple_in_list(
        &mut self,
        tuples: &[Vec<Value>],
        types: &[Option<&ColumnType>],
    ) -> &mut Self {
        self.push("(");
        let padded = tuples.len().next_power_of_two();
        for i in 0..padded {
            if i > 0 {
                self.push(", ");
            }
            let tuple = tuples.get(i).or(tuples.last()).cloned().unwrap_or_default();
            self.push("(");
            for (j, v) in tuple.into_iter().enumerate() {
                if j > 0 {
                    self.push(", ");
                }
                self.bind_as(v, types.get(j).copied().flatten());
            }
            self.push(")");
        }
        self.push(")")
    }

    /// The statement with `?`/`$n` placeholders, for logs and tests (never the values).
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut n = 0;
        for f in &self.frags {
            match f {
                Frag::Text(t) => out.push_str(t),
                Frag::Bind { cast, .. } => {
                    n += 1;
                    let p = match self.dialect {
                        Dialect::Postgres => format!("${n}"),
                        _ => "?".to_string(),
                    };
                    match cast {
                        Some(c) => out.push_str(&format!("CAST({p} AS {c})")),
                        None => out.push_str(&p),
                    }
                }
            }
        }
        out
    }

    pub fn binds(&self) -> &[Value] {
        &self.binds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(Dialect::Sqlite.quote("a\"b"), "\"a\"\"b\"");
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn mysql_quotes_with_backticks_and_binds_with_question_marks() {
        let d = Dialect::Mysql;
        assert_eq!(d.quote("a`b"), "`a``b`");
        assert_eq!(d.quote("order"), "`order`");
        let mut s = Sql::new(d);
        s.push("SELECT 1 FROM ")
            .ident("t")
            .push(" WHERE x IN ")
            .in_list(&[Value::Int(1), Value::Int(2), Value::Int(3)], None);
        assert_eq!(s.text(), "SELECT 1 FROM `t` WHERE x IN (?, ?, ?, ?)");
        // Text travels uncast: MySQL converts it to dates and decimals itself.
        let ty = ColumnType::from_declared("datetime(6)");
        let mut s = Sql::new(d);
        s.push("d < ")
            .bind_as(Value::Text("2024-01-01 00:00:00".into()), Some(&ty));
        assert_eq!(s.text(), "d < ?");
        let mut s = Sql::new(d);
        d.push_contains_ci(&mut s, "body", "a_b");
        assert_eq!(
            s.text(),
            "`body` LIKE ? COLLATE utf8mb4_general_ci ESCAPE CHAR(92)"
        );
        assert_eq!(s.binds()[0], Value::Text("%a\\_b%".into()));
        let mut s = Sql::new(d);
        d.push_distinct(&mut s, "email", Value::Text("x".into()), None);
        assert_eq!(s.text(), "NOT (`email` <=> ?)");
        let t = |decl: &str| ColumnType::from_declared(decl);
        assert_eq!(
            d.select_column("email", Some(&t("varchar(255)"))),
            "CONVERT(`email` USING utf8mb4)"
        );
        assert_eq!(d.select_column("t", Some(&t("time"))), "CAST(`t` AS CHAR)");
        assert_eq!(d.select_column("id", Some(&t("bigint(20)"))), "`id`");
        assert_eq!(d.select_column("at", Some(&t("datetime(6)"))), "`at`");
    }

    #[test]
    fn mysql_types_classify() {
        let k = |d: &str| ColumnType::from_declared(d).kind;
        assert_eq!(k("tinyint(1)"), TypeKind::Bool);
        assert_eq!(k("tinyint(4)"), TypeKind::Integer);
        assert_eq!(k("bigint(20) unsigned"), TypeKind::Integer);
        assert_eq!(k("int(11)"), TypeKind::Integer);
        assert_eq!(k("datetime"), TypeKind::Timestamp);
        assert_eq!(k("datetime(6)"), TypeKind::Timestamp);
        assert_eq!(k("timestamp"), TypeKind::Timestamp);
        assert_eq!(k("date"), TypeKind::Date);
        assert_eq!(k("longtext"), TypeKind::Text);
        assert_eq!(k("mediumtext"), TypeKind::Text);
        assert_eq!(k("varchar(255)"), TypeKind::Text);
        assert_eq!(k("char(36)"), TypeKind::Text);
        assert_eq!(k("decimal(12,2)"), TypeKind::Decimal);
        assert_eq!(k("double"), TypeKind::Float);
        assert_eq!(k("json"), TypeKind::Json);
        assert_eq!(k("blob"), TypeKind::Bytes);
        assert_eq!(k("longblob"), TypeKind::Bytes);
        assert_eq!(k("varbinary(16)"), TypeKind::Bytes);
        assert_eq!(k("enum('print','mint')"), TypeKind::Text);
        assert_eq!(k("set('a','boolean')"), TypeKind::Text);
    }

    #[test]
    fn in_lists_are_padded_to_powers_of_two() {
        let mut s = Sql::new(Dialect::Postgres);
        s.push("SELECT 1 WHERE x IN ")
            .in_list(&[Value::Int(1), Value::Int(2), Value::Int(3)], None);
        assert_eq!(s.text(), "SELECT 1 WHERE x IN ($1, $2, $3, $4)");
        assert_eq!(s.binds().len(), 4);
        assert_eq!(s.binds()[3], Value::Int(3));
    }

    #[test]
    fn postgres_casts_text_for_typed_columns() {
        let mut s = Sql::new(Dialect::Postgres);
        let ty = ColumnType::from_declared("date");
        s.push("d = ")
            .bind_as(Value::Text("2024-01-01".into()), Some(&ty));
        assert_eq!(s.text(), "d = CAST($1 AS date)");
        let mut s = Sql::new(Dialect::Sqlite);
        s.push("d = ")
            .bind_as(Value::Text("2024-01-01".into()), Some(&ty));
        assert_eq!(s.text(), "d = ?");
    }

    #[test]
    fn null_is_a_literal() {
        let mut s = Sql::new(Dialect::Postgres);
        s.push("x = ").bind(Value::Null);
        assert_eq!(s.text(), "x = NULL");
        assert!(s.binds().is_empty());
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
    }

    #[test]
    fn declared_types_classify() {
        assert_eq!(ColumnType::from_declared("INTEGER").kind, TypeKind::Integer);
        assert_eq!(
            ColumnType::from_declared("character varying(200)").kind,
            TypeKind::Text
        );
        assert_eq!(
            ColumnType::from_declared("timestamp without time zone").kind,
            TypeKind::Timestamp
        );
        assert_eq!(ColumnType::from_declared("DATE").kind, TypeKind::Date);
        assert_eq!(
            ColumnType::from_declared("numeric(12,2)").kind,
            TypeKind::Decimal
        );
        assert_eq!(ColumnType::from_declared("boolean").kind, TypeKind::Bool);
    }
}
