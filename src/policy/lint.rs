//! Lints a validated data map against the live catalogs of its sources: missing tables and
//! columns, missing primary keys, link type mismatches, unindexed lookups, strategies that
//! would break a column's type or constraints, residual-scan columns without a text index,
//! and personal-looking columns the map does not cover.
//!
//! Pure: the caller reads the catalogs ([`crate::source::Catalog::load`]).

use super::diagnostic::{Diagnostic, Origin, suggest};
use super::model::*;
use crate::source::{Catalog, ColumnInfo, Dialect, TableInfo, TypeKind, Value};
use std::collections::{BTreeMap, BTreeSet};

/// What a source's catalog read produced.
pub type CatalogResult<'a> = Result<&'a Catalog, String>;

pub fn lint(map: &DataMap, catalogs: &BTreeMap<String, CatalogResult<'_>>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, src) in &map.sources {
        if let Some(Err(e)) = catalogs.get(name) {
            out.push(Diagnostic::error(
                &src.at,
                format!("sources.{name}"),
                format!("cannot read the database: {e}"),
            ));
        }
    }
    for (ti, t) in map.tables.iter().enumerate() {
        let Some(Ok(cat)) = catalogs.get(&t.source) else {
            continue;
        };
        lint_table(map, ti, t, cat, &mut out);
    }
    for (name, cat) in catalogs {
        if let Ok(cat) = cat {
            lint_coverage(map, name, cat, &mut out);
        }
    }
    out.sort_by(|a, b| {
        (a.severity, &a.at.file, a.at.line).cmp(&(b.severity, &b.at.file, b.at.line))
    });
    out
}

fn lint_table(map: &DataMap, ti: usize, t: &Table, cat: &Catalog, out: &mut Vec<Diagnostic>) {
    let key = format!("tables.{}", t.name);
    let Some(info) = cat.table(&t.name) else {
        out.push(Diagnostic::error(
            &t.at,
            key,
            format!(
                "table \"{}\" does not exist in source \"{}\"{}",
                t.name,
                t.source,
                suggest(&t.name, cat.tables.keys().map(String::as_str))
            ),
        ));
        return;
    };

    // Every column the map names must exist.
    let mut missing = BTreeSet::new();
    for col in map.allowed_columns(ti) {
        if info.column(&col).is_none() {
            missing.insert(col.clone());
            let at = column_origin(map, ti, &col).unwrap_or_else(|| t.at.clone());
            out.push(Diagnostic::error(
                &at,
                format!("{key}.{col}"),
                format!(
                    "column \"{col}\" does not exist in table {}{}",
                    t.name,
                    suggest(&col, info.columns.iter().map(|c| c.name.as_str()))
                ),
            ));
        }
    }

    for (col, _) in &t.ignored {
        if info.column(col).is_none() {
            out.push(Diagnostic::error(
                &t.at,
                format!("{key}.ignore.{col}"),
                format!("column \"{col}\" does not exist in table {}", t.name),
            ));
        }
    }

    // Primary key.
    if info.primary_key.is_empty()
        && !info
            .indexes
            .iter()
            .any(|i| i.unique && same_set(&i.columns, &t.primary_key))
    {
        out.push(Diagnostic::error(
            &t.at,
            format!("{key}.primary_key"),
            format!(
                "table {} has no primary key (or unique index on {}) in the database; erasures need stable row keys",
                t.name,
                t.primary_key.join(", ")
            ),
        ));
    } else if !info.primary_key.is_empty() && !same_set(&info.primary_key, &t.primary_key) {
        out.push(Diagnostic::warning(
            &t.at,
            format!("{key}.primary_key"),
            format!(
                "the map says ({}) but the database's primary key is ({})",
                t.primary_key.join(", "),
                info.primary_key.join(", ")
            ),
        ));
    }

    // Identity columns: indexed lookups.
    for ic in &t.identities {
        if missing.contains(&ic.column) {
            continue;
        }
        let indexed = match ic.compare {
            Compare::Exact => info.has_index_on(&[&ic.column]),
            Compare::Lower => info.has_lower_index(&ic.column),
        };
        if !indexed {
            let (expr, idx) = match ic.compare {
                Compare::Exact => (ic.column.clone(), format!("({})", ic.column)),
                Compare::Lower => (
                    format!("lower({})", ic.column),
                    format!("(lower({}))", ic.column),
                ),
            };
            out.push(Diagnostic::warning(
                &ic.at,
                format!("{key}.identities"),
                format!(
                    "no index on {}.{expr}: every request scans the table; create one: CREATE INDEX {}_{}_idx ON {} {idx}",
                    t.name, t.name, ic.column, t.name
                ),
            ));
        }
        if let Some(c) = info.column(&ic.column)
            && !c.ty.kind.accepts_text()
            && ic.compare == Compare::Lower
        {
            out.push(Diagnostic::error(
                &ic.at,
                format!("{key}.identities"),
                format!(
                    "compare = \"lower\" needs a text column; {} is {}",
                    ic.column, c.ty.declared
                ),
            ));
        }
    }

    // Links into this table.
    for l in map.links_into(ti) {
        let from = &map.tables[l.from];
        // Links never cross sources (the validator ensures it): one catalog serves both ends.
        let from_info = cat.table(&from.name);
        let lkey = format!("{key}.links");
        for (tc, fc) in &l.on {
            let (Some(a), Some(b)) = (info.column(tc), from_info.and_then(|f| f.column(fc))) else {
                continue;
            };
            if a.ty.kind.family() != b.ty.kind.family() {
                out.push(Diagnostic::error(
                    &l.at,
                    lkey.clone(),
                    format!(
                        "type mismatch: {}.{tc} is {} but {}.{fc} is {}",
                        t.name, a.ty.declared, from.name, b.ty.declared
                    ),
                ));
            }
        }
        let mut cols: Vec<&str> = l.on.iter().map(|(c, _)| c.as_str()).collect();
        let indexed = match &l.polymorphic {
            Some((tc, _)) => {
                let mut with_type = vec![tc.as_str()];
                with_type.extend(&cols);
                info.has_index_on(&with_type) || info.has_index_on(&cols)
            }
            None => info.has_index_on(&cols),
        };
        if !indexed && cols.iter().all(|c| info.column(c).is_some()) {
            if let Some((tc, _)) = &l.polymorphic {
                cols.insert(0, tc);
            }
            out.push(Diagnostic::warning(
                &l.at,
                lkey.clone(),
                format!(
                    "no index on {}({}): following this link scans the table; create one: CREATE INDEX {}_{}_idx ON {} ({})",
                    t.name,
                    cols.join(", "),
                    t.name,
                    cols.join("_"),
                    t.name,
                    cols.join(", ")
                ),
            ));
        }
        if let Some((tc, _)) = &l.polymorphic
            && let Some(c) = info.column(tc)
            && c.ty.kind.family() != "text"
        {
            out.push(Diagnostic::error(
                &l.at,
                format!("{lkey}.type_column"),
                format!(
                    "polymorphic type column {tc} must be text, is {}",
                    c.ty.declared
                ),
            ));
        }
        for cond in &l.conditions {
            if let Some(c) = info.column(&cond.column) {
                check_literals(&cond.values, c, &cond.at, &format!("{lkey}.where"), out);
            }
        }
    }

    // Columns: strategies against types and constraints, residual-scan indexes.
    for c in &t.columns {
        let Some(ci) = info.column(&c.name) else {
            continue;
        };
        let ckey = format!("{key}.columns.{}", c.name);
        if let Some(s) = &c.strategy {
            lint_strategy(t, c, s, ci, &ckey, out);
        }
        if let Some(v) = &c.opt_out {
            check_literals(
                std::slice::from_ref(v),
                ci,
                &c.at,
                &format!("{ckey}.opt_out"),
                out,
            );
        }
        if c.scan {
            lint_scan(t, c, ci, info, cat.dialect, &ckey, out);
        }
    }

    // Foreign keys between mapped tables that no link follows.
    for fk in &info.foreign_keys {
        let Some(parent) = map.table_idx(&fk.ref_table) else {
            continue;
        };
        if map.tables[parent].source != t.source || fk.columns.iter().all(|c| t.is_ignored(c)) {
            continue;
        }
        let followed = map.links.iter().any(|l| {
            (l.target == ti
                && l.from == parent
                && same_set_pairs(&l.on, &fk.columns, &fk.ref_columns))
                || (l.target == parent
                    && l.from == ti
                    && same_set_pairs(&l.on, &fk.ref_columns, &fk.columns))
        });
        if !followed {
            out.push(Diagnostic::warning(
                &t.at,
                key.clone(),
                format!(
                    "foreign key {}({}) -> {}({}) is not followed by any link; rows may be missed",
                    t.name,
                    fk.columns.join(", "),
                    fk.ref_table,
                    fk.ref_columns.join(", ")
                ),
            ));
        }
    }
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

fn same_set_pairs(on: &[(String, String)], this: &[String], other: &[String]) -> bool {
    on.len() == this.len()
        && this
            .iter()
            .zip(other)
            .all(|(t, o)| on.iter().any(|(a, b)| a == t && b == o))
}

fn column_origin(map: &DataMap, ti: usize, col: &str) -> Option<Origin> {
    let t = &map.tables[ti];
    if let Some(c) = t.column(col) {
        return Some(c.at.clone());
    }
    if let Some(i) = t.identities.iter().find(|i| i.column == col) {
        return Some(i.at.clone());
    }
    map.links
        .iter()
        .find(|l| {
            (l.target == ti
                && (l.on.iter().any(|(c, _)| c == col)
                    || l.polymorphic.as_ref().is_some_and(|(c, _)| c == col)
                    || l.conditions.iter().any(|c| c.column == col)))
                || (l.from == ti && l.on.iter().any(|(_, c)| c == col))
        })
        .map(|l| l.at.clone())
}

/// Whether a literal may be written into a column of this kind.
pub fn literal_fits(v: &Value, kind: TypeKind) -> bool {
    match v {
        Value::Null => true,
        Value::Int(_) => kind.is_numeric() || kind == TypeKind::Bool || kind == TypeKind::Other,
        Value::Float(_) => matches!(kind, TypeKind::Float | TypeKind::Decimal | TypeKind::Other),
        Value::Bool(_) => matches!(kind, TypeKind::Bool | TypeKind::Integer | TypeKind::Other),
        Value::Text(s) => match kind {
            TypeKind::Date => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
            TypeKind::Timestamp => {
                chrono::NaiveDate::parse_from_str(s.get(..10).unwrap_or(""), "%Y-%m-%d").is_ok()
            }
            TypeKind::Uuid => s.len() == 36,
            k => k.accepts_text(),
        },
        Value::Bytes(_) => kind == TypeKind::Bytes,
    }
}

fn check_literals(
    values: &[Value],
    col: &ColumnInfo,
    at: &Origin,
    key: &str,
    out: &mut Vec<Diagnostic>,
) {
    for v in values {
        if !literal_fits(v, col.ty.kind) {
            out.push(Diagnostic::error(
                at,
                key,
                format!(
                    "value {v} does not fit column {} of type {}",
                    col.name, col.ty.declared
                ),
            ));
        }
    }
}

fn lint_strategy(
    t: &Table,
    c: &Column,
    s: &Strategy,
    ci: &ColumnInfo,
    key: &str,
    out: &mut Vec<Diagnostic>,
) {
    let kind = ci.ty.kind;
    let ty = &ci.ty.declared;
    let err = |msg: String, out: &mut Vec<Diagnostic>| {
        out.push(Diagnostic::error(&c.at, format!("{key}.erase"), msg));
    };
    match s {
        Strategy::Null if !ci.nullable => err(
            format!(
                "{} is NOT NULL: erase = \"null\" would fail; use constant, mask or generalize",
                c.name
            ),
            out,
        ),
        Strategy::Constant(v) => {
            if !literal_fits(v, kind) {
                err(
                    format!("constant {v} does not fit column {} of type {ty}", c.name),
                    out,
                );
            }
            if ci.unique {
                err(
                    format!(
                        "{} is unique: one constant for every erased row would violate it; use null or hmac",
                        c.name
                    ),
                    out,
                );
            }
        }
        Strategy::Mask | Strategy::Redact if !kind.accepts_text() => err(
            format!("{} only applies to text; {} is {ty}", s.name(), c.name),
            out,
        ),
        Strategy::Mask if ci.unique => err(
            format!(
                "{} is unique: masked values may collide; use null or hmac",
                c.name
            ),
            out,
        ),
        Strategy::Hmac if !kind.accepts_text() => {
            err(format!("hmac writes a hex digest; {} is {ty}", c.name), out)
        }
        Strategy::Encrypt if !kind.accepts_text() && kind != TypeKind::Bytes => err(
            format!("encrypt writes ciphertext; {} is {ty}", c.name),
            out,
        ),
        Strategy::Generalize(g) => {
            let ok = match g {
                Generalization::Year | Generalization::Month => {
                    kind.is_temporal() || kind == TypeKind::Other
                }
                Generalization::Range(_) => kind.is_numeric(),
                Generalization::Prefix(_) => kind.accepts_text(),
            };
            if !ok {
                err(
                    format!(
                        "generalize to {g:?} does not apply to {} of type {ty}",
                        c.name
                    ),
                    out,
                );
            }
            if ci.unique {
                err(
                    format!("{} is unique: generalized values collide", c.name),
                    out,
                );
            }
        }
        _ => {}
    }
    if s.is_pseudonymization() && t.on_erasure == RowAction::Anonymize {
        out.push(Diagnostic::warning(
            &c.at,
            format!("{key}.erase"),
            format!(
                "{} is pseudonymization, not anonymization (GDPR Recital 26): the row stays personal data",
                s.name()
            ),
        ));
    }
}

fn lint_scan(
    t: &Table,
    c: &Column,
    ci: &ColumnInfo,
    info: &TableInfo,
    dialect: Dialect,
    key: &str,
    out: &mut Vec<Diagnostic>,
) {
    if !ci.ty.kind.accepts_text() {
        out.push(Diagnostic::error(
            &c.at,
            format!("{key}.scan"),
            format!(
                "only text columns can be scanned; {} is {}",
                c.name, ci.ty.declared
            ),
        ));
        return;
    }
    if info.text_index(&c.name).is_some() {
        return;
    }
    let suggestion = match dialect {
        Dialect::Sqlite => {
            let rowid = info.primary_key.first().map_or("rowid", String::as_str);
            format!(
                "CREATE VIRTUAL TABLE {t}_{col}_fts USING fts5({col}, content='{t}', content_rowid='{rowid}', tokenize='trigram') plus insert/update/delete triggers, then INSERT INTO {t}_{col}_fts({t}_{col}_fts) VALUES ('rebuild')",
                t = t.name,
                col = c.name
            )
        }
        Dialect::Postgres => format!(
            "CREATE EXTENSION IF NOT EXISTS pg_trgm; CREATE INDEX {t}_{col}_trgm ON {t} USING gin ({col} gin_trgm_ops)",
            t = t.name,
            col = c.name
        ),
        // No MySQL/MariaDB index serves LIKE '%...%' with the same answers (FULLTEXT
        // matches words, not substrings): the scan reads the column whatever the schema, so
        // there is nothing to suggest and no warning.
        #[cfg(feature = "mysql")]
        Dialect::Mysql => return,
    };
    out.push(Diagnostic::warning(
        &c.at,
        format!("{key}.scan"),
        format!(
            "no text index on {}.{}: the residual scan reads the whole column; {suggestion}",
            t.name, c.name
        ),
    ));
}

/// Name tokens that suggest personal data.
const PERSONAL_TOKENS: [(&str, &str); 24] = [
    ("email", "e-mail"),
    ("mail", "e-mail"),
    ("phone", "phone"),
    ("mobile", "phone"),
    ("fax", "phone"),
    ("tel", "phone"),
    ("firstname", "name"),
    ("lastname", "name"),
    ("surname", "name"),
    ("fullname", "name"),
    ("name", "name"),
    ("address", "address"),
    ("street", "address"),
    ("zip", "address"),
    ("postcode", "address"),
    ("postal", "address"),
    ("ip", "IP address"),
    ("birth", "birth date"),
    ("birthday", "birth date"),
    ("dob", "birth date"),
    ("ssn", "national id"),
    ("passport", "national id"),
    ("iban", "bank account"),
    ("useragent", "device"),
];

/// Whether a column name looks like personal data, and of which kind.
pub fn personal_looking(column: &str) -> Option<&'static str> {
    let lower = column.to_ascii_lowercase();
    let tokens: Vec<&str> = lower.split('_').filter(|s| !s.is_empty()).collect();
    let joined = tokens.concat();
    for (tok, what) in PERSONAL_TOKENS {
        if tokens.contains(&tok) || (tok.len() >= 6 && joined.contains(tok)) {
            // Names of things that are not people.
            if what == "name"
                && tokens.iter().any(|t| {
                    matches!(
                        *t,
                        "product"
                            | "file"
                            | "table"
                            | "event"
                            | "campaign"
                            | "stage"
                            | "type"
                            | "pipeline"
                            | "plan"
                            | "host"
                    )
                })
            {
                continue;
            }
            return Some(what);
        }
    }
    None
}

fn lint_coverage(map: &DataMap, source: &str, cat: &Catalog, out: &mut Vec<Diagnostic>) {
    let Some(src) = map.sources.get(source) else {
        return;
    };
    for f in &cat.fts_with_stat4 {
        out.push(Diagnostic::warning(
            &src.at,
            format!("sources.{source}"),
            format!(
                "sqlite_stat4 holds statistics for the shadow tables of {f}; FTS5 then re-prepares its statements on every query (residual scans about 2x slower): DELETE FROM sqlite_stat4 WHERE tbl LIKE '{f}\\_%' ESCAPE '\\' and ANALYZE only the content tables"
            ),
        ));
    }
    for (tname, info) in &cat.tables {
        match map
            .table_idx(tname)
            .filter(|&i| map.tables[i].source == source)
        {
            Some(ti) => {
                let allowed = map.allowed_columns(ti);
                for c in &info.columns {
                    if allowed.contains(&c.name) || map.tables[ti].is_ignored(&c.name) {
                        continue;
                    }
                    if let Some(what) = personal_looking(&c.name) {
                        out.push(Diagnostic::warning(
                            &map.tables[ti].at,
                            format!("tables.{tname}.columns"),
                            format!(
                                "column {tname}.{} looks like {what} data but the map does not describe it (access exports and erasures will miss it)",
                                c.name
                            ),
                        ));
                    }
                }
            }
            None => {
                let personal: Vec<String> = info
                    .columns
                    .iter()
                    .filter_map(|c| personal_looking(&c.name).map(|_| c.name.clone()))
                    .collect();
                if !personal.is_empty() {
                    out.push(Diagnostic::warning(
                        &src.at,
                        format!("sources.{source}"),
                        format!(
                            "table {tname} is not in the data map but has personal-looking columns: {}",
                            personal.join(", ")
                        ),
                    ));
                }
            }
        }
    }
}

/// The shortest webhook secret that passes without a warning, in bytes (256 bits of hex
/// or base64 text is longer; shorter secrets are guessable offline from one signed notice).
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 32;

/// Checks that every recipient webhook's `env:VAR` secret is set and long enough, with
/// `lookup` reading a variable (the caller passes the environment: this stays pure). A
/// notice that cannot be signed is never sent, so an unset variable is a warning at check
/// time rather than a silent failure after an erasure. Secrets are never repeated.
pub fn lint_webhook_secrets(
    map: &DataMap,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, r) in &map.recipients {
        let Some(w) = &r.webhook else {
            continue;
        };
        let key = format!("recipients.{name}.webhook.secret");
        let value = lookup(&w.secret_env).unwrap_or_default();
        let secrets: Vec<&str> = value.split_whitespace().collect();
        if secrets.is_empty() {
            out.push(Diagnostic::warning(
                &w.at,
                key,
                format!(
                    "environment variable {} is not set: notices to {} cannot be signed and \
                     will fail until it is",
                    w.secret_env, r.display_name
                ),
            ));
        } else if secrets.iter().any(|s| s.len() < MIN_WEBHOOK_SECRET_BYTES) {
            out.push(Diagnostic::warning(
                &w.at,
                key,
                format!(
                    "a secret in {} is shorter than {MIN_WEBHOOK_SECRET_BYTES} characters; \
                     use a long random value (e.g. `openssl rand -hex 32`)",
                    w.secret_env
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_secrets_are_checked_without_repeating_them() {
        let text = r#"
[controller]
name = "Test Ltd"
contact = "privacy@test.example"
[sources.crm]
url = "sqlite://unused.db"
[identities.email]
normalizer = "email"
[categories.contact]
label = "Contact"
[purposes.crm]
description = "CRM"
legal_basis = "contract"
[recipients.mailer]
name = "SendFast Ltd"
kind = "processor"
webhook = { url = "https://hooks.sendfast.example/", secret = "env:MAILER_SECRET" }
[recipients.host]
name = "Host B.V."
kind = "processor"
[tables.people]
source = "crm"
primary_key = ["id"]
purposes = ["crm"]
recipients = ["mailer", "host"]
retention = "1 year"
on_erasure = "delete"
identities = [{ kind = "email", column = "email" }]
[tables.people.columns]
email = { category = "contact" }
"#;
        let policy = crate::policy::load_texts(&[("policies/t.toml".into(), text.into())])
            .expect("valid map");
        let map = &policy.datamap;
        let unset = lint_webhook_secrets(map, |_| None);
        assert_eq!(unset.len(), 1, "{unset:?}");
        assert_eq!(unset[0].key, "recipients.mailer.webhook.secret");
        assert!(unset[0].message.contains("MAILER_SECRET is not set"));

        let short = lint_webhook_secrets(map, |_| Some("tiny-secret".into()));
        assert_eq!(short.len(), 1, "{short:?}");
        assert!(!short[0].to_string().contains("tiny-secret"));

        let long = "f".repeat(64);
        assert!(lint_webhook_secrets(map, |_| Some(format!("{long} {long}"))).is_empty());
        let rotating_short = format!("{long} short");
        assert_eq!(
            lint_webhook_secrets(map, |_| Some(rotating_short.clone())).len(),
            1
        );
    }

    #[test]
    fn personal_columns_are_recognized() {
        for c in [
            "email",
            "work_email",
            "phone",
            "mobile_phone",
            "first_name",
            "lastName",
            "ip_address",
            "birth_date",
            "street",
            "user_agent",
        ] {
            assert!(personal_looking(c).is_some(), "{c}");
        }
        for c in [
            "id",
            "amount",
            "created_at",
            "product_name",
            "stage",
            "status",
            "description",
        ] {
            assert!(personal_looking(c).is_none(), "{c}");
        }
    }
}
