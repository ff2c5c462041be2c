//! The retention executor: keyset-paginated batches on the rule table's primary key, each
//! batch one short write transaction in the source that deletes or anonymizes the due rows
//! and the cascaded child rows (children first), skipping held rows.
//!
//! Crash safety: before a batch commits in the source, its intent (pinned keys, the digest
//! of the values it writes, its counts) is recorded on the run; after the commit the counts
//! are added and the intent cleared. A restart that finds an intent checks the source: if
//! the batch is in place it adds the counts once, otherwise nothing had been committed.

use super::rules::{Rule, child_links};
use super::sizing::BatchSizer;
use crate::app::App;
use crate::audit;
use crate::cert::issue::{self, Issuer};
use crate::erase::execute::update_rows;
use crate::erase::plan::{ValueDigest, same_stored};
use crate::erase::strategy::{self, Cell, StrategyContext};
use crate::hold::{self, identity_ref};
use crate::policy::{DataMap, Normalizer, RowAction, Strategy};
use crate::source::dialect::MAX_IN_LIST;
use crate::source::{
    Catalog, Dialect, Key, SourceConn, SourceError, Sql, TypeKind, Value, connect,
};
use crate::store::models::RunRow;
use crate::store::{StoreError, now, retention as rs};
use crate::trace::{Identity, TablePlan, TraceError, TracePlan, push_condition};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("unknown retention rule \"{0}\"")]
    UnknownRule(String),
    #[error("rule {0} is disabled")]
    Disabled(String),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("{0}")]
    Failed(String),
}

impl RetentionError {
    /// Whether a source could not be reached: the run pauses (status `waiting`) and
    /// resumes from its last batch, rather than failing.
    pub fn is_source_unavailable(&self) -> bool {
        matches!(
            self,
            RetentionError::Source(SourceError::Unavailable(_))
                | RetentionError::Trace(TraceError::Source(SourceError::Unavailable(_)))
        )
    }
}

/// How a run was started (also a retention job's arguments).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRequest {
    pub rule: String,
    /// The run's "now" (cutoff = now - window); default the current time.
    pub at: Option<NaiveDateTime>,
    pub dry_run: bool,
    pub batch_size: Option<u32>,
    pub budget: Option<Duration>,
    /// schedule | cli | api
    pub trigger: String,
    /// Skip when a run of this rule already started at or after this time (the scheduler's
    /// occurrence; prevents a second replica from repeating it).
    pub not_before: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Completed,
    /// The time budget ran out; the next run continues.
    Partial,
    Failed,
    /// Another process holds the rule's lease.
    Busy,
    /// A run of this occurrence already happened (another replica).
    AlreadyRan,
    DryRun,
    /// A source was unavailable: the run waits (status `waiting`, with the reason) and
    /// resumes from its last committed batch at `retry_at`.
    Waiting,
}

/// Per-table counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub deleted: i64,
    pub anonymized: i64,
    pub held: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub rule: String,
    pub run_id: Option<String>,
    pub cutoff: String,
    pub batches: i64,
    pub per_table: BTreeMap<String, Counts>,
    pub deleted: i64,
    pub anonymized: i64,
    pub held: i64,
    pub longest_batch_ms: i64,
    pub elapsed_ms: i64,
    pub certificate_id: Option<String>,
    pub message: Option<String>,
    /// When a waiting run is tried again (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<NaiveDateTime>,
}

/// Progress after each batch.
#[derive(Debug, Clone)]
pub struct Progress {
    pub parents_done: u64,
    pub deleted: i64,
    pub anonymized: i64,
    pub held: i64,
    pub batches: i64,
}

/// One step of a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IntentStep {
    table: String,
    kind: RowAction,
    keys: Vec<Key>,
    columns: Vec<String>,
    /// Digest of (key, new values) for anonymization, to recognize the batch in place.
    digest: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Intent {
    batch: i64,
    last_key: Key,
    steps: Vec<IntentStep>,
    counts: BTreeMap<String, Counts>,
}

/// Everything a rule's batches need, resolved once.
pub(crate) struct Prepared<'a> {
    map: &'a DataMap,
    rule: &'a Rule,
    ti: usize,
    trace_plan: Arc<TracePlan>,
    catalog: Arc<Catalog>,
    cutoff: NaiveDateTime,
    /// Cascade links in breadth-first order with their depth.
    cascade: Vec<(usize, usize)>,
    held_tables: BTreeMap<String, String>,
    held_rows: BTreeSet<(String, Key)>,
    subject_refs: BTreeSet<String>,
    hmac_key: [u8; 32],
}

impl Prepared<'_> {
    fn tp(&self, ti: usize) -> &TablePlan {
        self.trace_plan.table(ti)
    }

    pub(crate) fn cutoff(&self) -> NaiveDateTime {
        self.cutoff
    }
}

pub(crate) fn prepare<'a>(
    app: &'a App,
    rule: &'a Rule,
    at: NaiveDateTime,
) -> Result<Prepared<'a>, RetentionError> {
    let map = &app.policy.datamap;
    let ti = map
        .table_idx(&rule.table)
        .ok_or_else(|| RetentionError::UnknownRule(rule.name.clone()))?;
    let trace_plan = app.trace_plan()?;
    let catalog = app.sources.get(&map.tables[ti].source)?.catalog()?;
    // Cascade: breadth-first over child links into the named tables.
    let mut cascade = Vec::new();
    let mut frontier = vec![(ti, 0usize)];
    let mut seen = BTreeSet::from([ti]);
    while let Some((t, depth)) = frontier.pop() {
        for li in child_links(map, t) {
            let c = map.links[li].target;
            if rule.cascade.contains(&map.tables[c].name) {
                cascade.push((li, depth + 1));
                if seen.insert(c) {
                    frontier.push((c, depth + 1));
                }
            }
        }
    }
    let active = app.store.read(|c| hold::list(c, true))?;
    let mut held_tables = BTreeMap::new();
    let mut held_rows = BTreeSet::new();
    let mut subject_refs = BTreeSet::new();
    for h in &active {
        match h.scope.as_str() {
            "table" => {
                if let Some(t) = &h.table_name {
                    held_tables.insert(t.clone(), h.id.clone());
                }
            }
            "rows" => {
                let keys: Vec<Vec<Value>> = h
                    .row_keys
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or_default();
                if let Some(t) = &h.table_name {
                    for k in keys {
                        let k = Key(k
                            .into_iter()
                            .map(|v| match &v {
                                Value::Text(s) => s.parse::<i64>().map_or(v.clone(), Value::Int),
                                _ => v,
                            })
                            .collect());
                        held_rows.insert((t.clone(), k));
                    }
                }
            }
            "subject" => {
                let refs: Vec<String> = h
                    .subject_refs
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or_default();
                subject_refs.extend(refs);
            }
            _ => {}
        }
    }
    Ok(Prepared {
        map,
        rule,
        ti,
        trace_plan,
        catalog,
        cutoff: rule.window.cutoff(at),
        cascade,
        held_tables,
        held_rows,
        subject_refs,
        hmac_key: app.key.derive("column-hmac"),
    })
}

/// The cutoff as a bound value for the anchor column (a date for DATE anchors).
fn cutoff_value(p: &Prepared<'_>) -> Value {
    let ty = p.tp(p.ti).ty(&p.rule.anchor);
    if ty.is_some_and(|t| t.kind == TypeKind::Date) {
        Value::Text(p.cutoff.format("%Y-%m-%d").to_string())
    } else {
        Value::Text(p.cutoff.format("%Y-%m-%d %H:%M:%S").to_string())
    }
}

/// Columns whose anonymized value is fixed (null or a constant): a row where one of them
/// still differs has not been anonymized yet.
fn fixed_strategy_columns(map: &DataMap, ti: usize) -> Vec<(&str, Value)> {
    map.tables[ti]
        .columns
        .iter()
        .filter_map(|c| match &c.strategy {
            Some(Strategy::Null) => Some((c.name.as_str(), Value::Null)),
            Some(Strategy::Constant(v)) => Some((c.name.as_str(), v.clone())),
            _ => None,
        })
        .collect()
}

/// `WHERE anchor < cutoff AND conditions [AND not yet anonymized]` (without WHERE).
pub(crate) fn due_filter(p: &Prepared<'_>, sql: &mut Sql) {
    let tp = p.tp(p.ti);
    sql.ident(&p.rule.anchor)
        .push(" < ")
        .bind_as(cutoff_value(p), tp.ty(&p.rule.anchor));
    for c in &p.rule.conditions {
        sql.push(" AND ");
        push_condition(sql, c, tp.ty(&c.column));
    }
    if p.rule.action == RowAction::Anonymize {
        let fixed = fixed_strategy_columns(p.map, p.ti);
        if !fixed.is_empty() {
            sql.push(" AND (");
            for (i, (col, v)) in fixed.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                // `col IS DISTINCT FROM v`, spelled per dialect.
                Dialect::push_distinct(sql.dialect, sql, col, v.clone(), tp.ty(col));
            }
            sql.push(")");
        }
    }
}

/// The number of rows of a rule due at `at`.
pub fn due_count(app: &App, rule: &Rule, at: NaiveDateTime) -> Result<i64, RetentionError> {
    let p = prepare(app, rule, at)?;
    let mut conn = app.sources.get(&p.map.tables[p.ti].source)?.pool.get()?;
    Ok(count_due(&mut conn, &p)?)
}

/// Counts the rows due (for plans, forecasts and progress bars).
pub(crate) fn count_due(conn: &mut SourceConn, p: &Prepared<'_>) -> Result<i64, SourceError> {
    let mut sql = conn.sql();
    sql.push("SELECT count(*) FROM ")
        .ident(&p.rule.table)
        .push(" WHERE ");
    due_filter(p, &mut sql);
    Ok(conn
        .query(&sql)?
        .first()
        .and_then(|r| r[0].as_int())
        .unwrap_or(0))
}

fn select_batch(
    conn: &mut SourceConn,
    p: &Prepared<'_>,
    after: Option<&Key>,
    limit: u32,
    lock: bool,
) -> Result<Vec<Vec<Value>>, SourceError> {
    let tp = p.tp(p.ti);
    let pk = &p.map.tables[p.ti].primary_key;
    let mut sql = conn.sql();
    sql.push(&tp.select).push(" WHERE ");
    due_filter(p, &mut sql);
    if let Some(k) = after {
        sql.push(" AND ");
        if pk.len() == 1 {
            sql.ident(&pk[0])
                .push(" > ")
                .bind_as(k.0[0].clone(), tp.ty(&pk[0]));
        } else {
            sql.push("(");
            for (i, c) in pk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.ident(c);
            }
            sql.push(") > (");
            for (i, c) in pk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind_as(k.0[i].clone(), tp.ty(c));
            }
            sql.push(")");
        }
    }
    sql.push(" ORDER BY ");
    for (i, c) in pk.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.ident(c);
    }
    sql.push(&format!(" LIMIT {limit}"));
    if lock && Dialect::locks_rows(conn.dialect()) {
        sql.push(" FOR UPDATE");
    }
    conn.query(&sql)
}

fn key_of(tp: &TablePlan, row: &[Value]) -> Key {
    Key(tp.pk_positions.iter().map(|&i| row[i].clone()).collect())
}

/// The hold (if any) that covers a row: its table, the row, or the person its identity
/// columns name.
fn held_by(p: &Prepared<'_>, app: &App, ti: usize, row: &[Value]) -> Option<String> {
    let t = &p.map.tables[ti];
    if let Some(h) = p.held_tables.get(&t.name) {
        return Some(h.clone());
    }
    let tp = p.tp(ti);
    if p.held_rows.contains(&(t.name.clone(), key_of(tp, row))) {
        return Some("row hold".into());
    }
    if !p.subject_refs.is_empty() {
        for ic in &t.identities {
            let Some(norm) = p.map.normalizer(&ic.kind) else {
                continue;
            };
            let Some(raw) = tp.pos(&ic.column).and_then(|i| row[i].to_text()) else {
                continue;
            };
            if let Ok(v) = norm.normalize(&raw)
                && p.subject_refs.contains(&identity_ref(
                    app,
                    &Identity {
                        kind: ic.kind.clone(),
                        value: v,
                    },
                ))
            {
                return Some("subject hold".into());
            }
        }
    }
    None
}

/// Changed columns and their new values.
type Anonymized = (Vec<String>, Vec<Value>);

/// Rows with their new values.
type KeyedValues = Vec<(Key, Vec<Value>)>;

/// The anonymized values of a row (None when it is already anonymized).
fn anonymized(
    p: &Prepared<'_>,
    ti: usize,
    row: &[Value],
) -> Result<Option<Anonymized>, RetentionError> {
    let t = &p.map.tables[ti];
    let tp = p.tp(ti);
    // The row's own identities, for redacting them from its free text.
    let redacts = t
        .columns
        .iter()
        .any(|c| c.strategy == Some(Strategy::Redact));
    let ids: Vec<(Normalizer, String)> = t
        .identities
        .iter()
        .filter(|_| redacts)
        .filter_map(|ic| {
            let n = p.map.normalizer(&ic.kind)?;
            let raw = tp.pos(&ic.column).and_then(|i| row[i].to_text())?;
            n.normalize(&raw).ok().map(|v| (n.clone(), v))
        })
        .collect();
    let ctx = StrategyContext {
        hmac_key: p.hmac_key,
        subject_key: None,
        nonce_salt: &p.rule.name,
        identities: &ids,
    };
    let key = key_of(tp, row).to_string();
    let mut cols = Vec::new();
    let mut values = Vec::new();
    let mut changed = false;
    for c in &t.columns {
        let Some(s) = c.strategy.as_ref().filter(|s| **s != Strategy::Keep) else {
            continue;
        };
        let Some(pos) = tp.pos(&c.name) else { continue };
        let cell = Cell {
            table: &t.name,
            column: &c.name,
            key: &key,
        };
        let v = strategy::apply(s, &row[pos], tp.ty(&c.name), &cell, &ctx)
            .map_err(|e| RetentionError::Failed(e.0))?;
        changed |= !same_stored(&v, &row[pos]);
        cols.push(c.name.clone());
        values.push(v);
    }
    Ok(changed.then_some((cols, values)))
}

fn anon_digest(rows: &[(Key, Vec<Value>)]) -> String {
    let mut d = ValueDigest::default();
    for (k, values) in rows {
        d.push_text(&k.to_string());
        for v in values {
            d.push(v);
        }
    }
    d.finish()
}

/// The planned work of one batch (not yet applied).
struct BatchWork {
    last_key: Option<Key>,
    parents: u64,
    /// (table index, depth, keys to delete)
    deletes: Vec<(usize, usize, Vec<Key>)>,
    /// (table index, columns, rows with new values)
    updates: Vec<(usize, Vec<String>, KeyedValues)>,
    counts: BTreeMap<String, Counts>,
}

/// Selects one batch and works out what to do with it (inside the caller's transaction).
fn build_batch(
    conn: &mut SourceConn,
    app: &App,
    p: &Prepared<'_>,
    after: Option<&Key>,
    limit: u32,
    lock: bool,
) -> Result<BatchWork, RetentionError> {
    let rows = select_batch(conn, p, after, limit, lock)?;
    let tp = p.tp(p.ti);
    let mut work = BatchWork {
        last_key: rows.last().map(|r| key_of(tp, r)),
        parents: rows.len() as u64,
        deletes: Vec::new(),
        updates: Vec::new(),
        counts: BTreeMap::new(),
    };
    // Due parents that are not held.
    let mut parents: Vec<Vec<Value>> = Vec::new();
    for r in rows {
        if held_by(p, app, p.ti, &r).is_some() {
            work.counts.entry(p.rule.table.clone()).or_default().held += 1;
        } else {
            parents.push(r);
        }
    }
    // Cascade: children of the remaining parents, level by level; a held child keeps its
    // whole chain of parents.
    let mut found: BTreeMap<usize, Vec<(Vec<Value>, usize)>> = BTreeMap::new(); // table -> (row, depth)
    let cascading = !p.cascade.is_empty();
    let mut level: BTreeMap<usize, Vec<Key>> = BTreeMap::new();
    let mut blocked: BTreeSet<Key> = BTreeSet::new(); // parent keys held back by a held descendant
    let mut owner: BTreeMap<(usize, Key), Key> = BTreeMap::new(); // descendant -> top parent
    if cascading {
        level.insert(p.ti, parents.iter().map(|r| key_of(tp, r)).collect());
        for r in &parents {
            let k = key_of(tp, r);
            owner.insert((p.ti, k.clone()), k);
        }
    }
    for &(li, depth) in &p.cascade {
        let link = &p.map.links[li];
        let Some(from_keys) = level.get(&link.from).cloned() else {
            continue;
        };
        if from_keys.is_empty() {
            continue;
        }
        let ctp = p.tp(link.target);
        for chunk in from_keys.chunks(MAX_IN_LIST) {
            let sql = crate::trace::tracer::link_query(ctp, link, chunk);
            for row in conn.query(&sql)? {
                let ck = key_of(ctp, &row);
                let from_key = Key(link
                    .on
                    .iter()
                    .map(|(tc, _)| ctp.pos(tc).map_or(Value::Null, |i| row[i].clone()))
                    .collect());
                let from_key = Key(from_key
                    .0
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        p.tp(link.from)
                            .coerce(&p.map.tables[link.from].primary_key[i], &v)
                    })
                    .collect());
                let top = owner.get(&(link.from, from_key)).cloned();
                let Some(top) = top else { continue };
                if held_by(p, app, link.target, &row).is_some() {
                    blocked.insert(top.clone());
                }
                owner.insert((link.target, ck.clone()), top);
                level.entry(link.target).or_default().push(ck);
                found.entry(link.target).or_default().push((row, depth));
            }
        }
    }
    // Drop everything under a blocked parent; count the parent as held.
    let keep = |ti: usize, k: &Key| {
        blocked.is_empty()
            || owner
                .get(&(ti, k.clone()))
                .is_some_and(|top| !blocked.contains(top))
    };
    let parents: Vec<Vec<Value>> = if blocked.is_empty() {
        parents
    } else {
        work.counts.entry(p.rule.table.clone()).or_default().held += blocked.len() as i64;
        parents
            .into_iter()
            .filter(|r| keep(p.ti, &key_of(tp, r)))
            .collect()
    };
    match p.rule.action {
        RowAction::Delete => {
            for (&cti, rows) in &found {
                let ctp = p.tp(cti);
                let mut by_depth: BTreeMap<usize, Vec<Key>> = BTreeMap::new();
                for (r, d) in rows {
                    let k = key_of(ctp, r);
                    if keep(cti, &k) {
                        by_depth.entry(*d).or_default().push(k);
                    }
                }
                for (d, mut keys) in by_depth {
                    keys.sort();
                    keys.dedup();
                    work.counts
                        .entry(p.map.tables[cti].name.clone())
                        .or_default()
                        .deleted += keys.len() as i64;
                    work.deletes.push((cti, d, keys));
                }
            }
            let keys: Vec<Key> = parents.iter().map(|r| key_of(tp, r)).collect();
            if !keys.is_empty() {
                work.counts.entry(p.rule.table.clone()).or_default().deleted += keys.len() as i64;
                work.deletes.push((p.ti, 0, keys));
            }
            // Children first: deepest level first.
            work.deletes.sort_by_key(|d| std::cmp::Reverse(d.1));
        }
        _ => {
            let push_updates = |ti: usize,
                                rows: Vec<&Vec<Value>>,
                                work: &mut BatchWork|
             -> Result<(), RetentionError> {
                let ctp = p.tp(ti);
                let mut cols: Option<Vec<String>> = None;
                let mut out: Vec<(Key, Vec<Value>)> = Vec::new();
                let mut seen = BTreeSet::new();
                for r in rows {
                    let k = key_of(ctp, r);
                    if !seen.insert(k.clone()) {
                        continue;
                    }
                    if let Some((c, v)) = anonymized(p, ti, r)? {
                        cols.get_or_insert(c);
                        out.push((k, v));
                    }
                }
                if let Some(c) = cols
                    && !out.is_empty()
                {
                    work.counts
                        .entry(p.map.tables[ti].name.clone())
                        .or_default()
                        .anonymized += out.len() as i64;
                    work.updates.push((ti, c, out));
                }
                Ok(())
            };
            for (&cti, rows) in &found {
                let ctp = p.tp(cti);
                let rows: Vec<&Vec<Value>> = rows
                    .iter()
                    .filter(|(r, _)| keep(cti, &key_of(ctp, r)))
                    .map(|(r, _)| r)
                    .collect();
                push_updates(cti, rows, &mut work)?;
            }
            push_updates(p.ti, parents.iter().collect(), &mut work)?;
        }
    }
    Ok(work)
}

fn apply_batch(
    conn: &mut SourceConn,
    p: &Prepared<'_>,
    work: &BatchWork,
) -> Result<(), RetentionError> {
    for (ti, cols, rows) in &work.updates {
        let t = &p.map.tables[*ti];
        let n = update_rows(conn, &p.catalog, &t.name, &t.primary_key, cols, rows)?;
        if n != rows.len() as u64 {
            return Err(RetentionError::Failed(format!(
                "{}: {n} row(s) anonymized, {} expected; rolled back",
                t.name,
                rows.len()
            )));
        }
    }
    for (ti, _, keys) in &work.deletes {
        let t = &p.map.tables[*ti];
        let mut n = 0u64;
        for chunk in keys.chunks(MAX_IN_LIST) {
            let mut sql = conn.sql();
            sql.push("DELETE FROM ").ident(&t.name).push(" WHERE ");
            let tp = p.tp(*ti);
            if t.primary_key.len() == 1 {
                let vals: Vec<Value> = chunk.iter().map(|k| k.0[0].clone()).collect();
                sql.ident(&t.primary_key[0])
                    .push(" IN ")
                    .in_list(&vals, tp.ty(&t.primary_key[0]));
            } else {
                sql.push("(");
                for (i, c) in t.primary_key.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.ident(c);
                }
                sql.push(") IN ");
                let types: Vec<_> = t.primary_key.iter().map(|c| tp.ty(c)).collect();
                let tuples: Vec<Vec<Value>> = chunk.iter().map(|k| k.0.clone()).collect();
                sql.tuple_in_list(&tuples, &types);
            }
            n += conn.execute(&sql)? as u64;
        }
        if n != keys.len() as u64 {
            return Err(RetentionError::Failed(format!(
                "{}: {n} row(s) deleted, {} expected; rolled back",
                t.name,
                keys.len()
            )));
        }
    }
    Ok(())
}

fn intent_of(p: &Prepared<'_>, batch: i64, work: &BatchWork) -> Intent {
    let mut steps = Vec::new();
    for (ti, cols, rows) in &work.updates {
        steps.push(IntentStep {
            table: p.map.tables[*ti].name.clone(),
            kind: RowAction::Anonymize,
            keys: rows.iter().map(|r| r.0.clone()).collect(),
            columns: cols.clone(),
            digest: Some(anon_digest(rows)),
        });
    }
    for (ti, _, keys) in &work.deletes {
        steps.push(IntentStep {
            table: p.map.tables[*ti].name.clone(),
            kind: RowAction::Delete,
            keys: keys.clone(),
            columns: Vec::new(),
            digest: None,
        });
    }
    Intent {
        batch,
        last_key: work.last_key.clone().unwrap_or(Key(Vec::new())),
        steps,
        counts: work.counts.clone(),
    }
}

/// Whether an intent's changes are in the source (the batch committed before a crash):
/// deleted rows are gone, anonymized rows hold exactly the values the batch wrote.
fn intent_applied(
    conn: &mut SourceConn,
    p: &Prepared<'_>,
    intent: &Intent,
) -> Result<bool, RetentionError> {
    for st in &intent.steps {
        let Some(ti) = p.map.table_idx(&st.table) else {
            return Ok(false);
        };
        let t = &p.map.tables[ti];
        let tp = p.tp(ti);
        if t.primary_key.len() != 1 {
            return Ok(false);
        }
        let mut rows: Vec<(Key, Vec<Value>)> = Vec::new();
        for chunk in st.keys.chunks(MAX_IN_LIST) {
            let mut sql = conn.sql();
            sql.push("SELECT ");
            let cols: Vec<&String> = t.primary_key.iter().chain(st.columns.iter()).collect();
            for (i, c) in cols.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                let expr = sql.dialect.select_column(c, tp.ty(c));
                sql.push(&expr);
            }
            sql.push(" FROM ").ident(&t.name).push(" WHERE ");
            let vals: Vec<Value> = chunk.iter().map(|k| k.0[0].clone()).collect();
            sql.ident(&t.primary_key[0])
                .push(" IN ")
                .in_list(&vals, tp.ty(&t.primary_key[0]));
            for r in conn.query(&sql)? {
                let (k, v) = r.split_at(t.primary_key.len());
                rows.push((Key(k.to_vec()), v.to_vec()));
            }
        }
        let in_place = match st.kind {
            RowAction::Delete => rows.is_empty(),
            _ => {
                let order: BTreeMap<Key, usize> = st
                    .keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (k.clone(), i))
                    .collect();
                rows.sort_by_key(|(k, _)| order.get(k).copied().unwrap_or(usize::MAX));
                rows.len() == st.keys.len() && Some(anon_digest(&rows)) == st.digest
            }
        };
        if !in_place {
            return Ok(false);
        }
    }
    Ok(true)
}

fn add_counts(run: &mut RunRow, counts: &BTreeMap<String, Counts>) {
    let mut per: BTreeMap<String, Counts> =
        serde_json::from_str(&run.per_table).unwrap_or_default();
    for (t, c) in counts {
        let e = per.entry(t.clone()).or_default();
        e.deleted += c.deleted;
        e.anonymized += c.anonymized;
        e.held += c.held;
        run.rows_deleted += c.deleted;
        run.rows_anonymized += c.anonymized;
        run.rows_held += c.held;
    }
    run.per_table = serde_json::to_string(&per).unwrap_or_default();
}

/// Batches between two checkpoints of an SQLite source's write-ahead log.
const CHECKPOINT_EVERY: u32 = 4;

/// Runs (or resumes) a rule. `progress` sees every batch.
pub fn run(
    app: &App,
    req: &RunRequest,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RunOutcome, RetentionError> {
    let rule = app
        .policy
        .retention
        .rule(&req.rule)
        .ok_or_else(|| RetentionError::UnknownRule(req.rule.clone()))?;
    if !rule.enabled && req.trigger == "schedule" {
        return Err(RetentionError::Disabled(rule.name.clone()));
    }
    let settings = &app.policy.retention.settings;
    let batch_size = req.batch_size.unwrap_or(settings.batch_size).max(1);
    // An explicit batch size (CLI, API) means exactly that many rows per batch.
    let sizer = match (req.batch_size, settings.batch_target) {
        (None, Some(target)) => BatchSizer::adaptive(batch_size, settings.max_batch_size, target),
        _ => BatchSizer::fixed(batch_size),
    };
    let budget = req.budget.unwrap_or(settings.time_budget);
    let started = Instant::now();
    if req.dry_run {
        return dry_run(app, rule, req.at.unwrap_or_else(now), batch_size, progress);
    }
    let owner = crate::jobs::owner_id(app);
    // Lease and run row: resume an unfinished run of this rule, or start one.
    let begun = app.store.write(|conn| -> Result<Result<RunRow, RunStatus>, RetentionError> {
        // An unfinished run (interrupted, or waiting for a source) is resumed from its last
        // batch, whatever started this one. A resume job never starts a new run, and a
        // scheduled occurrence that a run already covered does not start another.
        let unfinished = rs::running(conn, &rule.name)?;
        if unfinished.is_none() {
            if req.trigger == "resume" {
                return Ok(Err(RunStatus::AlreadyRan));
            }
            if let Some(nb) = req.not_before
                && rs::last_start(conn, &rule.name)?.is_some_and(|s| s >= nb)
            {
                return Ok(Err(RunStatus::AlreadyRan));
            }
        }
        let mut got = rs::acquire_lease(conn, &rule.name, &owner, None, app.config.jobs.lease.num_seconds().max(1))?;
        if !got {
            // A lease of a process of this host that died is stale at once.
            let lease_owner: Option<String> = {
                use crate::store::schema::retention_leases::dsl as l;
                use diesel::prelude::*;
                l::retention_leases.filter(l::rule.eq(&rule.name)).select(l::owner).first(conn).optional().map_err(StoreError::from)?
            };
            if lease_owner.as_deref().is_some_and(|o| crate::jobs::owner_is_dead(app, o)) {
                rs::release_lease(conn, &rule.name, lease_owner.as_deref().unwrap_or_default())?;
                got = rs::acquire_lease(conn, &rule.name, &owner, None, app.config.jobs.lease.num_seconds().max(1))?;
            }
        }
        if !got {
            return Ok(Err(RunStatus::Busy));
        }
        if let Some(mut r) = unfinished {
            let was = std::mem::replace(&mut r.status, "running".into());
            r.owner = owner.clone();
            r.heartbeat_at = now();
            r.error = None;
            rs::save_run(conn, &r)?;
            audit::append(conn, "system", "retention.run.resumed", &format!("run:{}", r.id), json!({"rule": r.rule, "batches": r.batches, "was": was}))?;
            return Ok(Ok(r));
        }
        let at = req.at.unwrap_or_else(now);
        let row = RunRow {
            id: format!("run-{}", uuid::Uuid::now_v7()),
            rule: rule.name.clone(),
            status: "running".into(),
            trigger_kind: req.trigger.clone(),
            at_time: at,
            cutoff: rule.window.cutoff(at),
            policy_digest: app.policy.digest.clone(),
            started_at: now(),
            finished_at: None,
            heartbeat_at: now(),
            owner: owner.clone(),
            last_key: None,
            pending: None,
            batches: 0,
            rows_deleted: 0,
            rows_anonymized: 0,
            rows_held: 0,
            per_table: "{}".into(),
            longest_batch_ms: 0,
            error: None,
            certificate_id: None,
        };
        rs::insert_run(conn, &row)?;
        audit::append(
            conn,
            &format!("retention:{}", req.trigger),
            "retention.run.started",
            &format!("run:{}", row.id),
            json!({"rule": row.rule, "table": rule.table, "cutoff": audit::format_time(&row.cutoff), "action": rule.action}),
        )?;
        Ok(Ok(row))
    })?;
    let mut run = match begun {
        Ok(r) => r,
        Err(status) => {
            return Ok(RunOutcome {
                status,
                rule: rule.name.clone(),
                run_id: None,
                cutoff: String::new(),
                batches: 0,
                per_table: BTreeMap::new(),
                deleted: 0,
                anonymized: 0,
                held: 0,
                longest_batch_ms: 0,
                elapsed_ms: 0,
                certificate_id: None,
                retry_at: None,
                message: Some(match status {
                    RunStatus::Busy => {
                        format!("another lethe process is running rule {}", rule.name)
                    }
                    _ => format!("rule {} already ran for this occurrence", rule.name),
                }),
            });
        }
    };
    let result = execute_run(app, rule, &mut run, sizer, budget, started, progress);
    if let Err(e) = &result
        && e.is_source_unavailable()
    {
        return pause(app, rule, &run.id, &owner, &e.to_string(), started);
    }
    let status = match &result {
        Ok(true) => RunStatus::Completed,
        Ok(false) => RunStatus::Partial,
        Err(_) => RunStatus::Failed,
    };
    let error = result.as_ref().err().map(|e| e.to_string());
    if let Some(e) = &error {
        tracing::warn!(run = %run.id, rule = %rule.name, error = %e, "retention run failed");
    }
    // Finish: status, certificate (completed or partial), audit, lease.
    let controller = &app.policy.datamap.controller;
    let finished = app.store.write(|conn| -> Result<RunRow, RetentionError> {
        let mut cur = rs::get_run(conn, &run.id)?;
        cur.status = match status {
            RunStatus::Completed => "completed",
            RunStatus::Partial => "partial",
            _ => "failed",
        }
        .into();
        cur.finished_at = Some(now());
        cur.error = error.clone();
        if matches!(status, RunStatus::Completed | RunStatus::Partial) {
            let body = certificate_body(rule, &cur);
            let cert = issue::issue(conn, &app.key, &Issuer { controller: &controller.name, contact: &controller.contact }, "retention", None, Some(&cur.id), body)?;
            // Crash tests: the certificate is written but its transaction not committed.
            app.fault("retention.certificate_issued");
            cur.certificate_id = Some(cert.id);
        }
        rs::save_run(conn, &cur)?;
        audit::append(
            conn,
            "system",
            "retention.run.finished",
            &format!("run:{}", cur.id),
            json!({"rule": cur.rule, "status": cur.status, "deleted": cur.rows_deleted, "anonymized": cur.rows_anonymized, "held": cur.rows_held, "batches": cur.batches, "error": cur.error}),
        )?;
        rs::release_lease(conn, &rule.name, &owner)?;
        Ok(cur)
    })?;
    Ok(outcome(status, &finished, started, error))
}

/// Pauses a run whose source is unavailable: status `waiting` with the reason and the time
/// of the next try, an audit entry, the rule's lease released, and a resume job due then
/// (the job that runs it is queued again instead when there is one). Its checkpoint (last
/// key, counts, a pending batch intent) stays as it is for the resume.
fn pause(
    app: &App,
    rule: &Rule,
    run_id: &str,
    owner: &str,
    reason: &str,
    started: Instant,
) -> Result<RunOutcome, RetentionError> {
    let (paused, retry_at) = app.store.write(|conn| -> Result<_, RetentionError> {
        let attempts =
            crate::store::jobs::live(conn, crate::jobs::JobKind::RetentionRun.as_str(), &rule.name)?
                .map_or(1, |j| j.attempts);
        let retry_at = crate::jobs::retry_at(app, attempts);
        let mut cur = rs::get_run(conn, run_id)?;
        cur.status = "waiting".into();
        cur.heartbeat_at = now();
        cur.error = Some(format!(
            "waiting for a retry at {} UTC: {reason}",
            retry_at.format("%Y-%m-%d %H:%M:%S")
        ));
        rs::save_run(conn, &cur)?;
        audit::append(
            conn,
            "system",
            "retention.run.waiting",
            &format!("run:{}", cur.id),
            json!({"rule": cur.rule, "reason": reason, "retry_at": audit::format_time(&retry_at), "batches": cur.batches}),
        )?;
        crate::jobs::enqueue_retention_resume(conn, &rule.name, retry_at)?;
        rs::release_lease(conn, &rule.name, owner)?;
        Ok((cur, retry_at))
    })?;
    tracing::warn!(run = %paused.id, rule = %rule.name, retry_at = %retry_at, reason, "a source is unavailable; the retention run waits and resumes from its last batch");
    let mut o = outcome(RunStatus::Waiting, &paused, started, paused.error.clone());
    o.retry_at = Some(retry_at);
    Ok(o)
}

fn outcome(status: RunStatus, r: &RunRow, started: Instant, message: Option<String>) -> RunOutcome {
    RunOutcome {
        status,
        rule: r.rule.clone(),
        run_id: Some(r.id.clone()),
        cutoff: audit::format_time(&r.cutoff),
        batches: i64::from(r.batches),
        per_table: serde_json::from_str(&r.per_table).unwrap_or_default(),
        deleted: r.rows_deleted,
        anonymized: r.rows_anonymized,
        held: r.rows_held,
        longest_batch_ms: r.longest_batch_ms,
        elapsed_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        certificate_id: r.certificate_id.clone(),
        message,
        retry_at: None,
    }
}

/// The batch loop. Returns true when every due row was handled, false when the budget ran
/// out first.
fn execute_run(
    app: &App,
    rule: &Rule,
    run: &mut RunRow,
    mut sizer: BatchSizer,
    budget: Duration,
    started: Instant,
    progress: &mut dyn FnMut(&Progress),
) -> Result<bool, RetentionError> {
    let p = prepare(app, rule, run.at_time)?;
    // Settle a batch left half way by a crash.
    if let Some(pending) = run.pending.clone() {
        let intent: Intent = serde_json::from_str(&pending)
            .map_err(|e| RetentionError::Failed(format!("unreadable batch intent: {e}")))?;
        let mut conn = app.sources.get(&p.map.tables[p.ti].source)?.pool.get()?;
        let applied = intent_applied(&mut conn, &p, &intent)?;
        app.store.write(|conn| -> Result<(), RetentionError> {
            let mut cur = rs::get_run(conn, &run.id)?;
            if applied {
                add_counts(&mut cur, &intent.counts);
                cur.batches += 1;
                if !intent.last_key.0.is_empty() {
                    cur.last_key =
                        Some(serde_json::to_string(&intent.last_key).unwrap_or_default());
                }
            }
            cur.pending = None;
            rs::save_run(conn, &cur)?;
            audit::append(
                conn,
                "system",
                "retention.batch.recovered",
                &format!("run:{}", cur.id),
                json!({"batch": intent.batch, "applied": applied}),
            )?;
            *run = cur;
            Ok(())
        })?;
    }
    let source = app.sources.get(&p.map.tables[p.ti].source)?;
    // A dedicated connection for the whole run, closed at its end (its settings never reach
    // the pool).
    let mut conn = connect(&source.url, false)?;
    conn.prepare_for_batches(app.policy.retention.settings.sqlite_cache_mb)?;
    let mut since_checkpoint = 0u32;
    let mut parents_done: u64 = 0;
    // A committed batch is recorded in the store together with the next batch's intent (one
    // store write per batch). Until then the store holds its intent, which a crash recovery
    // settles as applied, so nothing is lost or counted twice.
    let mut unsettled = false;
    // The intent of a batch whose transaction failed after the intent was stored: whether it
    // committed is checked against the source below.
    let mut in_doubt: Option<Intent> = None;
    let result = (|| -> Result<bool, RetentionError> {
        loop {
            if started.elapsed() >= budget {
                return Ok(false);
            }
            let after: Option<Key> = run
                .last_key
                .as_deref()
                .and_then(|k| serde_json::from_str(k).ok());
            let batch_started = Instant::now();
            let batch_no = i64::from(run.batches) + 1;
            let batch_size = sizer.size();
            let mut phases = [0u128; 3];
            let outcome =
                conn.transaction(true, |conn| -> Result<Option<BatchWork>, RetentionError> {
                    let work = build_batch(conn, app, &p, after.as_ref(), batch_size, true)?;
                    phases[0] = batch_started.elapsed().as_micros();
                    if work.parents == 0 {
                        return Ok(None);
                    }
                    let intent = intent_of(&p, batch_no, &work);
                    let intent_json = serde_json::to_string(&intent)
                        .map_err(|e| RetentionError::Failed(e.to_string()))?;
                    in_doubt = Some(intent);
                    app.store.write(|sc| -> Result<(), RetentionError> {
                        let mut cur = run.clone();
                        cur.pending = Some(intent_json);
                        cur.heartbeat_at = now();
                        rs::save_run(sc, &cur)?;
                        if !rs::acquire_lease(
                            sc,
                            &rule.name,
                            &cur.owner,
                            Some(&cur.id),
                            app.config.jobs.lease.num_seconds().max(1),
                        )? {
                            return Err(RetentionError::Failed(
                                "lost the rule's lease to another process".into(),
                            ));
                        }
                        Ok(())
                    })?;
                    phases[1] = batch_started.elapsed().as_micros();
                    apply_batch(conn, &p, &work)?;
                    phases[2] = batch_started.elapsed().as_micros();
                    app.fault("retention.before_batch_commit");
                    Ok(Some(work))
                });
            let outcome = outcome?;
            in_doubt = None;
            let total_us = batch_started.elapsed().as_micros();
            let ms = i64::try_from(total_us / 1000).unwrap_or(i64::MAX);
            since_checkpoint += 1;
            if outcome.is_none() || since_checkpoint >= CHECKPOINT_EVERY {
                // The batch is committed either way; a checkpoint that fails is retried
                // later (and the CRM's own connections checkpoint too).
                if let Err(e) = conn.checkpoint() {
                    tracing::warn!(run = %run.id, error = %e, "checkpoint after a batch failed");
                }
                since_checkpoint = 0;
            }
            let Some(work) = outcome else {
                return Ok(true);
            };
            sizer.observe(
                work.parents,
                Duration::from_micros(u64::try_from(total_us).unwrap_or(u64::MAX)),
            );
            app.fault("retention.after_batch_commit");
            tracing::debug!(
                run = %run.id,
                batch = batch_no,
                rows = work.parents,
                next_rows = sizer.size(),
                build_us = phases[0],
                intent_us = phases[1] - phases[0],
                apply_us = phases[2] - phases[1],
                commit_us = total_us.saturating_sub(phases[2]),
                "retention batch committed"
            );
            add_counts(run, &work.counts);
            run.pending = None;
            run.batches += 1;
            run.last_key = work
                .last_key
                .as_ref()
                .map(|k| serde_json::to_string(k).unwrap_or_default());
            run.longest_batch_ms = run.longest_batch_ms.max(ms);
            unsettled = true;
            parents_done += work.parents;
            progress(&Progress {
                parents_done,
                deleted: run.rows_deleted,
                anonymized: run.rows_anonymized,
                held: run.rows_held,
                batches: i64::from(run.batches),
            });
        }
    })();
    if let Some(intent) = in_doubt.filter(|_| result.is_err()) {
        // A failed batch whose intent may be in the store: count it only if the source
        // shows it (a commit whose reply was lost); keep it pending if that cannot be told.
        match source
            .pool
            .get()
            .map_err(RetentionError::from)
            .and_then(|mut c| intent_applied(&mut c, &p, &intent))
        {
            Ok(true) => {
                add_counts(run, &intent.counts);
                run.batches += 1;
                if !intent.last_key.0.is_empty() {
                    run.last_key =
                        Some(serde_json::to_string(&intent.last_key).unwrap_or_default());
                }
                run.pending = None;
            }
            Ok(false) => run.pending = None,
            Err(_) => run.pending = serde_json::to_string(&intent).ok(),
        }
        unsettled = true;
    }
    if unsettled {
        // Record the last committed batch. If this write fails the store keeps the intent
        // and the next resume settles it.
        app.store.write(|sc| -> Result<(), RetentionError> {
            let mut cur = run.clone();
            cur.heartbeat_at = now();
            rs::save_run(sc, &cur)?;
            Ok(())
        })?;
    }
    result
}

/// A dry run: the same batches, nothing written.
fn dry_run(
    app: &App,
    rule: &Rule,
    at: NaiveDateTime,
    batch_size: u32,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RunOutcome, RetentionError> {
    let started = Instant::now();
    let p = prepare(app, rule, at)?;
    let source = app.sources.get(&p.map.tables[p.ti].source)?;
    let mut conn = source.pool.get()?;
    let mut totals: BTreeMap<String, Counts> = BTreeMap::new();
    let mut after: Option<Key> = None;
    let mut batches = 0;
    let mut parents_done = 0;
    conn.transaction(false, |conn| -> Result<(), RetentionError> {
        loop {
            let work = build_batch(conn, app, &p, after.as_ref(), batch_size, false)?;
            if work.parents == 0 {
                return Ok(());
            }
            batches += 1;
            parents_done += work.parents;
            for (t, c) in &work.counts {
                let e = totals.entry(t.clone()).or_default();
                e.deleted += c.deleted;
                e.anonymized += c.anonymized;
                e.held += c.held;
            }
            after = work.last_key.clone();
            let sum = |f: fn(&Counts) -> i64| totals.values().map(f).sum::<i64>();
            progress(&Progress {
                parents_done,
                deleted: sum(|c| c.deleted),
                anonymized: sum(|c| c.anonymized),
                held: sum(|c| c.held),
                batches,
            });
        }
    })?;
    let sum = |f: fn(&Counts) -> i64| totals.values().map(f).sum::<i64>();
    Ok(RunOutcome {
        status: RunStatus::DryRun,
        rule: rule.name.clone(),
        run_id: None,
        cutoff: audit::format_time(&p.cutoff),
        batches,
        deleted: sum(|c| c.deleted),
        anonymized: sum(|c| c.anonymized),
        held: sum(|c| c.held),
        per_table: totals,
        longest_batch_ms: 0,
        elapsed_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        certificate_id: None,
        message: Some("dry run: nothing was changed".into()),
        retry_at: None,
    })
}

fn certificate_body(rule: &Rule, r: &RunRow) -> serde_json::Value {
    let per: BTreeMap<String, Counts> = serde_json::from_str(&r.per_table).unwrap_or_default();
    json!({
        "rule": {
            "name": rule.name,
            "table": rule.table,
            "anchor": rule.anchor,
            "window": rule.window,
            "window_text": rule.window.describe(),
            "conditions": rule.conditions.iter().map(|c| json!({"column": c.column, "op": c.op, "values": c.values})).collect::<Vec<_>>(),
            "action": rule.action,
            "cascade": rule.cascade,
            "basis": rule.basis,
        },
        "cutoff": audit::format_time(&r.cutoff),
        "policy_digest": r.policy_digest,
        "run": {
            "id": r.id,
            "trigger": r.trigger_kind,
            "status": if r.finished_at.is_some() && r.status == "running" { "completed" } else { r.status.as_str() },
            "started_at": audit::format_time(&r.started_at),
            "finished_at": r.finished_at.as_ref().map(audit::format_time),
            "batches": r.batches,
            "longest_batch_ms": r.longest_batch_ms,
        },
        "results": per.iter().map(|(t, c)| json!({"table": t, "deleted": c.deleted, "anonymized": c.anonymized, "skipped_held": c.held})).collect::<Vec<_>>(),
        "totals": {"deleted": r.rows_deleted, "anonymized": r.rows_anonymized, "skipped_held": r.rows_held},
    })
}
