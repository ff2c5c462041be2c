//! The demo CRM's schema, written once as data and rendered as DDL for SQLite, PostgreSQL
//! or (with the `mysql` feature) MySQL/MariaDB: 14 tables with the hard cases real CRMs
//! have (polymorphic parents, copied identities, free text, sole traders).
//!
//! On MySQL the tables are InnoDB in utf8mb4 (the server's default collation for it, which
//! is case-insensitive, as real MySQL CRMs mostly are); text columns are `TEXT`, except
//! indexed ones, which are `VARCHAR(255)` (MySQL cannot index `TEXT` without a prefix
//! length); timestamps are `DATETIME(6)` (microseconds, no time-zone conversion, unlike
//! `TIMESTAMP`); booleans are `BOOLEAN` (`tinyint(1)`).

use crate::source::{ColumnType, Dialect};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// Primary key (explicit ids).
    Id,
    /// Integer, NOT NULL.
    Int,
    /// Integer or NULL (mostly foreign keys).
    IntNull,
    Text,
    TextNull,
    Date,
    DateNull,
    Timestamp,
    TimestampNull,
    Money,
    Bool,
}

impl Col {
    fn sql(self, d: Dialect) -> &'static str {
        match (self, d) {
            #[cfg(feature = "mysql")]
            (col, Dialect::Mysql) => col.mysql_sql(),
            (Col::Id, Dialect::Sqlite) => "INTEGER PRIMARY KEY",
            (Col::Id, Dialect::Postgres) => "BIGINT PRIMARY KEY",
            (Col::Int, Dialect::Sqlite) => "INTEGER NOT NULL",
            (Col::Int, Dialect::Postgres) => "BIGINT NOT NULL",
            (Col::IntNull, Dialect::Sqlite) => "INTEGER",
            (Col::IntNull, Dialect::Postgres) => "BIGINT",
            (Col::Text, _) => "TEXT NOT NULL",
            (Col::TextNull, _) => "TEXT",
            (Col::Date, _) => "DATE NOT NULL",
            (Col::DateNull, _) => "DATE",
            (Col::Timestamp, _) => "TIMESTAMP NOT NULL",
            (Col::TimestampNull, _) => "TIMESTAMP",
            (Col::Money, Dialect::Sqlite) => "NUMERIC NOT NULL",
            (Col::Money, Dialect::Postgres) => "NUMERIC(12,2) NOT NULL",
            (Col::Bool, Dialect::Sqlite) => "BOOLEAN NOT NULL DEFAULT 0",
            (Col::Bool, Dialect::Postgres) => "BOOLEAN NOT NULL DEFAULT false",
        }
    }

    #[cfg(feature = "mysql")]
    fn mysql_sql(self) -> &'static str {
        match self {
            Col::Id => "BIGINT NOT NULL PRIMARY KEY",
            Col::Int => "BIGINT NOT NULL",
            Col::IntNull => "BIGINT",
            Col::Text => "TEXT NOT NULL",
            Col::TextNull => "TEXT",
            Col::Date => "DATE NOT NULL",
            Col::DateNull => "DATE",
            Col::Timestamp => "DATETIME(6) NOT NULL",
            Col::TimestampNull => "DATETIME(6)",
            Col::Money => "DECIMAL(12,2) NOT NULL",
            Col::Bool => "BOOLEAN NOT NULL DEFAULT 0",
        }
    }

    /// The type used to bind values for this column.
    pub fn bind_type(self) -> Option<ColumnType> {
        match self {
            Col::Date | Col::DateNull => Some(ColumnType::from_declared("date")),
            Col::Timestamp | Col::TimestampNull => Some(ColumnType::from_declared("timestamp")),
            _ => None,
        }
    }
}

pub struct DemoTable {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Col)],
    /// (column, referenced table)
    pub foreign_keys: &'static [(&'static str, &'static str)],
    /// Plain indexes: column lists.
    pub indexes: &'static [&'static [&'static str]],
    /// Free-text columns that get a trigram text index.
    pub text_indexes: &'static [&'static str],
}

use Col::*;

/// In insertion order (parents first).
pub const TABLES: &[DemoTable] = &[
    DemoTable {
        name: "employees",
        columns: &[
            ("id", Id),
            ("first_name", Text),
            ("last_name", Text),
            ("email", Text),
            ("department", Text),
            ("hired_on", Date),
        ],
        foreign_keys: &[],
        indexes: &[&["email"]],
        text_indexes: &[],
    },
    DemoTable {
        name: "companies",
        columns: &[
            ("id", Id),
            ("name", Text),
            ("vat_id", TextNull),
            ("website", TextNull),
            ("street", TextNull),
            ("city", TextNull),
            ("postcode", TextNull),
            ("country", Text),
            ("is_sole_trader", Bool),
            ("created_at", Timestamp),
        ],
        foreign_keys: &[],
        indexes: &[],
        text_indexes: &[],
    },
    DemoTable {
        name: "contacts",
        columns: &[
            ("id", Id),
            ("customer_no", Text),
            ("first_name", Text),
            ("last_name", Text),
            ("email", Text),
            ("phone", TextNull),
            ("birth_date", DateNull),
            ("street", TextNull),
            ("city", TextNull),
            ("postcode", TextNull),
            ("country", Text),
            ("company_id", IntNull),
            ("owner_id", Int),
            ("do_not_sell", Bool),
            ("created_at", Timestamp),
            ("last_activity_at", Timestamp),
        ],
        foreign_keys: &[("company_id", "companies"), ("owner_id", "employees")],
        indexes: &[
            &["email"],
            &["phone"],
            &["company_id"],
            &["last_activity_at"],
        ],
        text_indexes: &[],
    },
    DemoTable {
        name: "leads",
        columns: &[
            ("id", Id),
            ("email", Text),
            ("first_name", TextNull),
            ("last_name", TextNull),
            ("phone", TextNull),
            ("company_name", TextNull),
            ("lead_source", Text),
            ("status", Text),
            ("converted_contact_id", IntNull),
            ("owner_id", Int),
            ("created_at", Timestamp),
        ],
        foreign_keys: &[
            ("converted_contact_id", "contacts"),
            ("owner_id", "employees"),
        ],
        indexes: &[&["email"], &["converted_contact_id"]],
        text_indexes: &[],
    },
    DemoTable {
        name: "deals",
        columns: &[
            ("id", Id),
            ("contact_id", Int),
            ("company_id", IntNull),
            ("title", Text),
            ("amount", Money),
            ("stage", Text),
            ("owner_id", Int),
            ("created_at", Timestamp),
            ("closed_at", TimestampNull),
        ],
        foreign_keys: &[
            ("contact_id", "contacts"),
            ("company_id", "companies"),
            ("owner_id", "employees"),
        ],
        indexes: &[&["contact_id"]],
        text_indexes: &[],
    },
    DemoTable {
        name: "activities",
        columns: &[
            ("id", Id),
            ("parent_type", Text),
            ("parent_id", Int),
            ("kind", Text),
            ("subject", Text),
            ("body", Text),
            ("owner_id", Int),
            ("occurred_at", Timestamp),
        ],
        foreign_keys: &[("owner_id", "employees")],
        indexes: &[&["parent_type", "parent_id"]],
        text_indexes: &["body"],
    },
    DemoTable {
        name: "notes",
        columns: &[
            ("id", Id),
            ("parent_type", Text),
            ("parent_id", Int),
            ("body", Text),
            ("author_id", Int),
            ("created_at", Timestamp),
        ],
        foreign_keys: &[("author_id", "employees")],
        indexes: &[&["parent_type", "parent_id"]],
        text_indexes: &["body"],
    },
    DemoTable {
        name: "tickets",
        columns: &[
            ("id", Id),
            ("contact_id", IntNull),
            ("requester_email", Text),
            ("requester_name", TextNull),
            ("subject", Text),
            ("status", Text),
            ("priority", Text),
            ("created_at", Timestamp),
        ],
        foreign_keys: &[("contact_id", "contacts")],
        indexes: &[&["contact_id"]],
        text_indexes: &[],
    },
    DemoTable {
        name: "ticket_messages",
        columns: &[
            ("id", Id),
            ("ticket_id", Int),
            ("author_type", Text),
            ("employee_id", IntNull),
            ("body", Text),
            ("sent_at", Timestamp),
        ],
        foreign_keys: &[("ticket_id", "tickets"), ("employee_id", "employees")],
        indexes: &[&["ticket_id"]],
        text_indexes: &["body"],
    },
    DemoTable {
        name: "invoices",
        columns: &[
            ("id", Id),
            ("invoice_no", Text),
            ("contact_id", IntNull),
            ("company_id", IntNull),
            ("customer_no", Text),
            ("billing_name", Text),
            ("billing_email", TextNull),
            ("billing_street", TextNull),
            ("billing_city", TextNull),
            ("billing_postcode", TextNull),
            ("issued_on", Date),
            ("total", Money),
            ("currency", Text),
        ],
        foreign_keys: &[("contact_id", "contacts"), ("company_id", "companies")],
        indexes: &[&["contact_id"], &["customer_no"], &["issued_on"]],
        text_indexes: &[],
    },
    DemoTable {
        name: "invoice_lines",
        columns: &[
            ("id", Id),
            ("invoice_id", Int),
            ("description", Text),
            ("quantity", Int),
            ("unit_price", Money),
            ("amount", Money),
        ],
        foreign_keys: &[("invoice_id", "invoices")],
        indexes: &[&["invoice_id"]],
        text_indexes: &[],
    },
    DemoTable {
        name: "newsletter_subscriptions",
        columns: &[
            ("id", Id),
            ("email", Text),
            ("list_name", Text),
            ("consent_text", Text),
            ("ip_address", TextNull),
            ("subscribed_at", Timestamp),
            ("confirmed_at", TimestampNull),
            ("unsubscribed_at", TimestampNull),
        ],
        foreign_keys: &[],
        indexes: &[&["email"]],
        text_indexes: &[],
    },
    DemoTable {
        name: "consents",
        columns: &[
            ("id", Id),
            ("contact_id", Int),
            ("purpose", Text),
            ("status", Text),
            ("channel", Text),
            ("ip_address", TextNull),
            ("recorded_at", Timestamp),
        ],
        foreign_keys: &[("contact_id", "contacts")],
        indexes: &[&["contact_id"]],
        text_indexes: &[],
    },
    DemoTable {
        name: "web_sessions",
        columns: &[
            ("id", Id),
            ("contact_id", IntNull),
            ("visitor_id", Text),
            ("ip_address", Text),
            ("user_agent", Text),
            ("landing_page", Text),
            ("started_at", Timestamp),
        ],
        foreign_keys: &[("contact_id", "contacts")],
        indexes: &[&["contact_id"], &["started_at"]],
        text_indexes: &[],
    },
];

pub fn table(name: &str) -> Option<&'static DemoTable> {
    TABLES.iter().find(|t| t.name == name)
}

/// Single-column unique indexes: (index name, table, column).
const UNIQUE: &[(&str, &str, &str)] = &[
    ("contacts_customer_no_key", "contacts", "customer_no"),
    ("invoices_invoice_no_key", "invoices", "invoice_no"),
];

/// Whether a column is a key column of some index (MySQL renders it as `VARCHAR`).
#[cfg(feature = "mysql")]
fn is_indexed(t: &DemoTable, col: &str) -> bool {
    t.indexes.iter().any(|cols| cols.contains(&col))
        || UNIQUE.iter().any(|(_, ut, uc)| *ut == t.name && *uc == col)
        || (t.name == "tickets" && col == "requester_email")
}

/// The type of one demo column as rendered for a dialect.
fn column_sql(d: Dialect, t: &DemoTable, name: &str, c: Col) -> &'static str {
    #[cfg(feature = "mysql")]
    if d == Dialect::Mysql && is_indexed(t, name) {
        match c {
            Col::Text => return "VARCHAR(255) NOT NULL",
            Col::TextNull => return "VARCHAR(255)",
            _ => {}
        }
    }
    let _ = (t, name);
    c.sql(d)
}

/// CREATE TABLE statements (SQLite declares foreign keys inline; PostgreSQL and MySQL add
/// them after the bulk load, see [`post_load_ddl`]).
pub fn create_ddl(d: Dialect) -> Vec<String> {
    TABLES
        .iter()
        .map(|t| {
            let mut cols: Vec<String> = t
                .columns
                .iter()
                .map(|(n, c)| format!("{} {}", d.quote(n), column_sql(d, t, n, *c)))
                .collect();
            if d == Dialect::Sqlite {
                for (c, r) in t.foreign_keys {
                    cols.push(format!(
                        "FOREIGN KEY ({}) REFERENCES {} (id)",
                        d.quote(c),
                        d.quote(r)
                    ));
                }
            }
            let options = match d {
                #[cfg(feature = "mysql")]
                Dialect::Mysql => " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
                _ => "",
            };
            format!(
                "CREATE TABLE {} (\n  {}\n){options}",
                d.quote(t.name),
                cols.join(",\n  ")
            )
        })
        .collect()
}

/// The foreign keys of the demo schema: (table, column, referenced table), each referencing
/// `id`.
pub fn foreign_keys() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    TABLES
        .iter()
        .flat_map(|t| t.foreign_keys.iter().map(move |(c, r)| (t.name, *c, *r)))
}

/// Indexes, unique constraints, foreign keys (PostgreSQL, MySQL) and text indexes, created
/// after the bulk load because that is much faster. On MySQL the foreign keys are added
/// with `foreign_key_checks = 0` (in place, without a table copy) and checked by the seeder
/// afterwards; the expression index on `lower(requester_email)` needs MySQL 8.0.13+ (see
/// [`mysql8_expression_index_ddl`]; MariaDB has no expression indexes).
pub fn post_load_ddl(d: Dialect) -> Vec<String> {
    let mut out = Vec::new();
    for t in TABLES {
        for cols in t.indexes {
            out.push(format!(
                "CREATE INDEX {}_{}_idx ON {} ({})",
                t.name,
                cols.join("_"),
                d.quote(t.name),
                cols.iter()
                    .map(|c| d.quote(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if d != Dialect::Sqlite {
            for (c, r) in t.foreign_keys {
                out.push(format!(
                    "ALTER TABLE {} ADD CONSTRAINT {}_{}_fk FOREIGN KEY ({}) REFERENCES {} (id)",
                    d.quote(t.name),
                    t.name,
                    c,
                    d.quote(c),
                    d.quote(r)
                ));
            }
        }
    }
    for (name, t, c) in UNIQUE {
        out.push(format!(
            "CREATE UNIQUE INDEX {name} ON {} ({})",
            d.quote(t),
            d.quote(c)
        ));
    }
    match d {
        Dialect::Sqlite | Dialect::Postgres => out.push(
            "CREATE INDEX tickets_requester_email_lower_idx ON tickets (lower(requester_email))"
                .into(),
        ),
        #[cfg(feature = "mysql")]
        Dialect::Mysql => {}
    }
    out.extend(text_index_ddl(d));
    out
}

/// MySQL 8.0.13+: the expression index on `lower(requester_email)` (MariaDB cannot).
#[cfg(feature = "mysql")]
pub fn mysql8_expression_index_ddl() -> &'static str {
    "CREATE INDEX tickets_requester_email_lower_idx ON `tickets` ((lower(`requester_email`)))"
}

/// The text indexes for the residual scan: FTS5 trigram tables kept in sync by triggers on
/// SQLite, pg_trgm GIN indexes on PostgreSQL, none on MySQL (no MySQL index serves
/// `LIKE '%...%'`).
pub fn text_index_ddl(d: Dialect) -> Vec<String> {
    let mut out = Vec::new();
    if d == Dialect::Postgres {
        out.push("CREATE EXTENSION IF NOT EXISTS pg_trgm".into());
    }
    for t in TABLES {
        for col in t.text_indexes {
            let name = t.name;
            match d {
                Dialect::Postgres => out.push(format!(
                    "CREATE INDEX {name}_{col}_trgm ON {name} USING gin ({col} gin_trgm_ops)"
                )),
                #[cfg(feature = "mysql")]
                Dialect::Mysql => {}
                Dialect::Sqlite => {
                    let fts = format!("{name}_{col}_fts");
                    out.push(format!(
                        "CREATE VIRTUAL TABLE {fts} USING fts5({col}, content='{name}', content_rowid='id', tokenize='trigram')"
                    ));
                    out.push(format!("INSERT INTO {fts}({fts}) VALUES ('rebuild')"));
                    out.push(format!(
                        "CREATE TRIGGER {fts}_ai AFTER INSERT ON {name} BEGIN \
                         INSERT INTO {fts}(rowid, {col}) VALUES (new.id, new.{col}); END"
                    ));
                    out.push(format!(
                        "CREATE TRIGGER {fts}_ad AFTER DELETE ON {name} BEGIN \
                         INSERT INTO {fts}({fts}, rowid, {col}) VALUES ('delete', old.id, old.{col}); END"
                    ));
                    out.push(format!(
                        "CREATE TRIGGER {fts}_au AFTER UPDATE OF {col} ON {name} BEGIN \
                         INSERT INTO {fts}({fts}, rowid, {col}) VALUES ('delete', old.id, old.{col}); \
                         INSERT INTO {fts}(rowid, {col}) VALUES (new.id, new.{col}); END"
                    ));
                }
            }
        }
    }
    out
}

/// Drops the text indexes (benchmarks compare the residual scan with and without them).
pub fn drop_text_index_ddl(d: Dialect) -> Vec<String> {
    let mut out = Vec::new();
    for t in TABLES {
        for col in t.text_indexes {
            let name = t.name;
            match d {
                Dialect::Postgres => out.push(format!("DROP INDEX IF EXISTS {name}_{col}_trgm")),
                #[cfg(feature = "mysql")]
                Dialect::Mysql => {}
                Dialect::Sqlite => {
                    let fts = format!("{name}_{col}_fts");
                    for trig in ["ai", "ad", "au"] {
                        out.push(format!("DROP TRIGGER IF EXISTS {fts}_{trig}"));
                    }
                    out.push(format!("DROP TABLE IF EXISTS {fts}"));
                }
            }
        }
    }
    out
}
