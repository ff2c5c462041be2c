//! The executor: one write transaction per source. It re-reads every pinned row, and:
//! - if every row is as planned, applies the steps with set-based statements on the pinned
//!   keys (DELETE ... WHERE pk IN (...), UPDATE ... SET col = CASE pk WHEN ... END) and
//!   checks each statement touched exactly the planned rows;
//! - if every row is already in its planned end state (a crash after the commit), it
//!   reports the plan's counts without writing again;
//! - otherwise the data changed since planning: nothing is written.

use super::plan::{SourcePlan, Step, StepKind, digest};
use crate::source::dialect::MAX_IN_LIST;
use crate::source::{Catalog, Dialect, Key, SourceConn, SourceError, Sql, Value};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Pinned rows changed since the plan was made.
    #[error("the plan is stale: {0}")]
    Stale(String),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{0}")]
    Mismatch(String),
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StepResult {
    pub table: String,
    pub kind: StepKind,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SourceResult {
    pub source: String,
    pub steps: Vec<StepResult>,
    /// The changes were found already applied (a re-run after a crash).
    pub already_applied: bool,
}

/// The state of a pinned row now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    AsPlanned,
    Done,
    Changed,
}

/// Reads the digests of a step's pinned rows (locking them on PostgreSQL when `lock`).
pub fn read_digests(
    conn: &mut SourceConn,
    catalog: &Catalog,
    pk: &[String],
    step: &Step,
    lock: bool,
) -> Result<BTreeMap<Key, String>, SourceError> {
    let d = conn.dialect();
    let mut out = BTreeMap::new();
    let keys: Vec<Key> = step.rows.iter().map(|r| r.key.clone()).collect();
    for chunk in keys.chunks(MAX_IN_LIST) {
        let mut sql = Sql::new(d);
        sql.push("SELECT ");
        let cols: Vec<&String> = pk.iter().chain(step.digest_columns.iter()).collect();
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push(&d.select_column(c, catalog.column_type(&step.table, c)));
        }
        sql.push(" FROM ").ident(&step.table).push(" WHERE ");
        key_filter(&mut sql, catalog, &step.table, pk, chunk);
        if lock && d.locks_rows() {
            sql.push(" FOR UPDATE");
        }
        for row in conn.query(&sql)? {
            let (k, rest) = row.split_at(pk.len());
            let key = Key(k.to_vec());
            out.insert(key, digest(rest));
        }
    }
    Ok(out)
}

/// `pk IN (...)` or `(a, b) IN ((...), ...)` for keys.
fn key_filter(sql: &mut Sql, catalog: &Catalog, table: &str, pk: &[String], keys: &[Key]) {
    if pk.len() == 1 {
        sql.ident(&pk[0]).push(" IN ");
        let vals: Vec<Value> = keys.iter().map(|k| k.0[0].clone()).collect();
        sql.in_list(&vals, catalog.column_type(table, &pk[0]));
    } else {
        sql.push("(");
        for (i, c) in pk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.ident(c);
        }
        sql.push(") IN ");
        let types: Vec<_> = pk.iter().map(|c| catalog.column_type(table, c)).collect();
        let tuples: Vec<Vec<Value>> = keys.iter().map(|k| k.0.clone()).collect();
        sql.tuple_in_list(&tuples, &types);
    }
}

/// The state of each planned row of a step, given the digests read now.
pub fn row_states(step: &Step, now: &BTreeMap<Key, String>) -> Vec<RowState> {
    step.rows
        .iter()
        .map(|r| {
            let cur = now.get(&r.key);
            if cur == Some(&r.before) {
                RowState::AsPlanned
            } else if match step.kind {
                StepKind::Delete => cur.is_none(),
                _ => cur.is_some() && cur == r.after_digest.as_ref(),
            } {
                RowState::Done
            } else {
                RowState::Changed
            }
        })
        .collect()
}

/// Executes one source's steps in one write transaction. `pk` gives each table's primary
/// key; `before_commit` runs just before the commit (fault injection in tests).
pub fn execute_source(
    conn: &mut SourceConn,
    catalog: &Catalog,
    pk: &dyn Fn(&str) -> Vec<String>,
    plan: &SourcePlan,
    before_commit: &dyn Fn(),
) -> Result<SourceResult, ExecError> {
    conn.transaction(true, |conn| -> Result<SourceResult, ExecError> {
        let mut all_planned = true;
        let mut all_done = true;
        let mut changed = Vec::new();
        for step in &plan.steps {
            let digests = read_digests(conn, catalog, &pk(&step.table), step, true)?;
            for (r, st) in step.rows.iter().zip(row_states(step, &digests)) {
                all_planned &= st == RowState::AsPlanned;
                all_done &= st == RowState::Done;
                if st == RowState::Changed {
                    changed.push(format!("{} row {}", step.table, r.key));
                }
            }
        }
        let results = || -> Vec<StepResult> {
            plan.steps
                .iter()
                .map(|s| StepResult {
                    table: s.table.clone(),
                    kind: s.kind,
                    rows: s.rows.len() as u64,
                })
                .collect()
        };
        if !changed.is_empty() || (!all_planned && !all_done) {
            let shown: Vec<&String> = changed.iter().take(5).collect();
            return Err(ExecError::Stale(format!(
                "{} pinned row(s) changed since the plan was made (e.g. {}); re-plan",
                changed.len().max(1),
                shown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if all_done && !all_planned {
            return Ok(SourceResult {
                source: plan.source.clone(),
                steps: results(),
                already_applied: true,
            });
        }
        for step in &plan.steps {
            let n = apply_step(conn, catalog, &pk(&step.table), step)?;
            if n != step.rows.len() as u64 {
                return Err(ExecError::Mismatch(format!(
                    "{} {:?}: {} row(s) affected, {} planned; rolled back",
                    step.table,
                    step.kind,
                    n,
                    step.rows.len()
                )));
            }
        }
        before_commit();
        Ok(SourceResult {
            source: plan.source.clone(),
            steps: results(),
            already_applied: false,
        })
    })
}

fn apply_step(
    conn: &mut SourceConn,
    catalog: &Catalog,
    pk: &[String],
    step: &Step,
) -> Result<u64, SourceError> {
    let d = conn.dialect();
    let mut total = 0u64;
    match step.kind {
        StepKind::Delete => {
            let keys: Vec<Key> = step.rows.iter().map(|r| r.key.clone()).collect();
            for chunk in keys.chunks(MAX_IN_LIST) {
                let mut sql = Sql::new(d);
                sql.push("DELETE FROM ").ident(&step.table).push(" WHERE ");
                key_filter(&mut sql, catalog, &step.table, pk, chunk);
                total += conn.execute(&sql)? as u64;
            }
        }
        _ => {
            let columns: Vec<String> = step.changes.iter().map(|c| c.column.clone()).collect();
            let rows: Vec<(Key, Vec<Value>)> = step
                .rows
                .iter()
                .map(|r| {
                    (
                        r.key.clone(),
                        r.after
                            .clone()
                            .unwrap_or_else(|| vec![Value::Null; columns.len()]),
                    )
                })
                .collect();
            total += update_rows(conn, catalog, &step.table, pk, &columns, &rows)?;
        }
    }
    Ok(total)
}

/// Sets `columns` of each keyed row to its own values with set-based statements: a column
/// whose new value is the same for every row is `SET col = ?`; the others join a VALUES list
/// on the key (`UPDATE t SET c = v.column2 FROM (VALUES (k, c), ...) AS v WHERE t.pk = v.column1`;
/// on MySQL, which has no `UPDATE ... FROM`, see [`update_join`]).
pub fn update_rows(
    conn: &mut SourceConn,
    catalog: &Catalog,
    table: &str,
    pk: &[String],
    columns: &[String],
    rows: &[(Key, Vec<Value>)],
) -> Result<u64, SourceError> {
    let d = conn.dialect();
    let width = pk.len() + columns.len();
    let per_chunk = (30_000 / width.max(1)).clamp(1, 1000);
    let mut total = 0u64;
    for chunk in rows.chunks(per_chunk) {
        let uniform: Vec<bool> = (0..columns.len())
            .map(|j| chunk.windows(2).all(|w| w[0].1[j] == w[1].1[j]))
            .collect();
        let varying: Vec<usize> = (0..columns.len()).filter(|j| !uniform[*j]).collect();
        if !varying.is_empty() && !d.update_from_values() {
            let sql = update_join(d, catalog, table, pk, columns, chunk, &uniform, &varying);
            total += conn.execute(&sql)? as u64;
            continue;
        }
        let mut sql = Sql::new(d);
        sql.push("UPDATE ").ident(table).push(" SET ");
        for (j, c) in columns.iter().enumerate() {
            if j > 0 {
                sql.push(", ");
            }
            sql.ident(c).push(" = ");
            if uniform[j] {
                sql.bind_as(
                    chunk.first().map_or(Value::Null, |r| r.1[j].clone()),
                    catalog.column_type(table, c),
                );
            } else {
                let pos = pk.len() + 1 + varying.iter().position(|v| *v == j).unwrap_or(0);
                sql.push(&format!("v.column{pos}"));
            }
        }
        if varying.is_empty() {
            // Every column takes one value for the whole chunk (always so for one row).
            sql.push(" WHERE ");
            let keys: Vec<Key> = chunk.iter().map(|r| r.0.clone()).collect();
            key_filter(&mut sql, catalog, table, pk, &keys);
        } else {
            sql.push(" FROM (VALUES ");
            for (i, (key, values)) in chunk.iter().enumerate() {
                sql.push(if i == 0 { "(" } else { ", (" });
                for (k, v) in key.0.iter().enumerate() {
                    if k > 0 {
                        sql.push(", ");
                    }
                    sql.bind_as(v.clone(), catalog.column_type(table, &pk[k]));
                }
                for j in &varying {
                    sql.push(", ")
                        .bind_as(values[*j].clone(), catalog.column_type(table, &columns[*j]));
                }
                sql.push(")");
            }
            sql.push(") AS v");
            if d == Dialect::Postgres {
                let names: Vec<String> = (1..=pk.len() + varying.len())
                    .map(|i| format!("column{i}"))
                    .collect();
                sql.push(&format!("({})", names.join(", ")));
            }
            sql.push(" WHERE ");
            for (k, c) in pk.iter().enumerate() {
                if k > 0 {
                    sql.push(" AND ");
                }
                sql.column(table, c).push(&format!(" = v.column{}", k + 1));
            }
        }
        total += conn.execute(&sql)? as u64;
    }
    Ok(total)
}

/// MySQL's form of the keyed multi-row update: the rows' keys and varying values as a
/// derived table of `SELECT ... UNION ALL SELECT ...` (portable across MySQL 8 and MariaDB,
/// whose table value constructors differ), joined on the key:
/// `UPDATE t JOIN (SELECT ? AS column1, ? AS column2 UNION ALL ...) AS v ON t.pk = v.column1
/// SET t.c = v.column2, t.u = ?`. Assignments are qualified with the table, so a CRM column
/// named like a derived column is never ambiguous.
#[allow(clippy::too_many_arguments)]
fn update_join(
    d: Dialect,
    catalog: &Catalog,
    table: &str,
    pk: &[String],
    columns: &[String],
    chunk: &[(Key, Vec<Value>)],
    uniform: &[bool],
    varying: &[usize],
) -> Sql {
    let mut sql = Sql::new(d);
    sql.push("UPDATE ").ident(table).push(" JOIN (");
    for (i, (key, values)) in chunk.iter().enumerate() {
        sql.push(if i == 0 {
            "SELECT "
        } else {
            " UNION ALL SELECT "
        });
        let cells = key
            .0
            .iter()
            .zip(pk)
            .chain(varying.iter().map(|j| (&values[*j], &columns[*j])));
        for (n, (v, c)) in cells.enumerate() {
            if n > 0 {
                sql.push(", ");
            }
            sql.bind_as(v.clone(), catalog.column_type(table, c));
            if i == 0 {
                sql.push(&format!(" AS column{}", n + 1));
            }
        }
    }
    sql.push(") AS v ON ");
    for (k, c) in pk.iter().enumerate() {
        if k > 0 {
            sql.push(" AND ");
        }
        sql.column(table, c).push(&format!(" = v.column{}", k + 1));
    }
    sql.push(" SET ");
    for (j, c) in columns.iter().enumerate() {
        if j > 0 {
            sql.push(", ");
        }
        sql.column(table, c).push(" = ");
        if uniform[j] {
            sql.bind_as(
                chunk.first().map_or(Value::Null, |r| r.1[j].clone()),
                catalog.column_type(table, c),
            );
        } else {
            let pos = pk.len() + 1 + varying.iter().position(|v| *v == j).unwrap_or(0);
            sql.push(&format!("v.column{pos}"));
        }
    }
    sql
}
