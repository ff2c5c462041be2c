//! Link traversal: from the subject's identities, follow identity columns and links to a
//! fixpoint. One query per (identity column or link) and round, with IN lists of all new
//! values: never one round trip per row.

use super::TraceError;
use super::footprint::{Footprint, FoundRow, Identity, TableRows, TraceStats, Via};
use super::lean::LeanTables;
use super::plan::{TablePlan, TracePlan};
use super::residual;
use crate::policy::{Compare, Condition, DataMap, Op};
use crate::source::{Key, SourceConn, Sources, Sql, Value, dialect::MAX_IN_LIST};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct TraceOptions {
    /// Run the residual scan of free-text columns.
    pub residual: bool,
    /// Use text indexes (FTS5 / pg_trgm) for the residual scan where they exist.
    pub use_text_index: bool,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            residual: true,
            use_text_index: true,
        }
    }
}

/// Read sessions on the sources a trace touches: one connection each, in a read
/// transaction, rolled back if the trace fails.
pub(crate) struct Sessions<'a> {
    sources: &'a Sources,
    open: BTreeMap<String, SourceConn>,
}

impl<'a> Sessions<'a> {
    pub(crate) fn new(sources: &'a Sources) -> Self {
        Sessions {
            sources,
            open: BTreeMap::new(),
        }
    }

    pub(crate) fn get(&mut self, source: &str) -> Result<&mut SourceConn, TraceError> {
        if !self.open.contains_key(source) {
            let mut conn = self.sources.get(source)?.pool.get()?;
            conn.begin(false)?;
            self.open.insert(source.to_string(), conn);
        }
        self.open
            .get_mut(source)
            .ok_or_else(|| TraceError::Internal("session vanished".into()))
    }

    pub(crate) fn finish(mut self) -> Result<(), TraceError> {
        let open = std::mem::take(&mut self.open);
        for (_, mut c) in open {
            c.commit()?;
        }
        Ok(())
    }
}

impl Drop for Sessions<'_> {
    fn drop(&mut self) {
        for c in self.open.values_mut() {
            let _ = c.rollback();
        }
    }
}

/// Traces a subject through every source of the data map.
pub fn trace(
    map: &DataMap,
    plan: &TracePlan,
    sources: &Sources,
    identities: &[Identity],
    opts: &TraceOptions,
) -> Result<Footprint, TraceError> {
    let mut sessions = Sessions::new(sources);
    let mut fp = trace_in(map, plan, &mut sessions, identities)?;
    if opts.residual {
        residual::scan(map, plan, &mut sessions, &mut fp, opts.use_text_index)?;
    }
    sessions.finish()?;
    Ok(fp)
}

pub(crate) fn trace_in(
    map: &DataMap,
    plan: &TracePlan,
    sessions: &mut Sessions<'_>,
    identities: &[Identity],
) -> Result<Footprint, TraceError> {
    trace_in_with(map, plan, sessions, identities, None)
}

/// The fixpoint. With `lean`, rows of the tables it names are collected as keys (and the
/// path that found them) in keyset-paginated queries instead of whole rows in the footprint:
/// such tables have no links out and discover no identities, so their values are not needed
/// to trace (see [`super::lean`]).
pub(crate) fn trace_in_with(
    map: &DataMap,
    plan: &TracePlan,
    sessions: &mut Sessions<'_>,
    identities: &[Identity],
    mut lean: Option<&mut LeanTables>,
) -> Result<Footprint, TraceError> {
    let started = Instant::now();
    let mut stats = TraceStats::default();
    let mut known: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut pending: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in identities {
        if !map.identity_kinds.contains_key(&id.kind) {
            return Err(TraceError::UnknownIdentityKind(id.kind.clone()));
        }
        if id.value.contains('\0') {
            return Err(TraceError::InvalidIdentityValue(id.kind.clone()));
        }
        if known
            .entry(id.kind.clone())
            .or_default()
            .insert(id.value.clone())
        {
            pending
                .entry(id.kind.clone())
                .or_default()
                .push(id.value.clone());
        }
    }
    let mut tables: BTreeMap<usize, TableRows> = BTreeMap::new();
    let mut frontier: Vec<(usize, Key)> = Vec::new();

    while !pending.is_empty() || !frontier.is_empty() {
        stats.rounds += 1;
        let mut found: Vec<(usize, Key)> = Vec::new();

        // 1. Identity columns, for identity values not looked up yet.
        for (ti, t) in map.tables.iter().enumerate() {
            for ic in &t.identities {
                let Some(values) = pending.get(&ic.kind) else {
                    continue;
                };
                let tp = plan.table(ti);
                let vals: Vec<Value> = values
                    .iter()
                    .map(|v| tp.coerce(&ic.column, &Value::Text(v.clone())))
                    .collect();
                if let Some(l) = lean.as_deref_mut().filter(|l| l.is_lean(ti)) {
                    let via = Via::Identity {
                        kind: ic.kind.clone(),
                        column: ic.column.clone(),
                    };
                    let origin = l.origin(via, None);
                    for chunk in vals.chunks(MAX_IN_LIST) {
                        let push_where = |sql: &mut Sql| {
                            match ic.compare {
                                Compare::Exact => sql.ident(&ic.column),
                                Compare::Lower => sql.push("lower(").ident(&ic.column).push(")"),
                            };
                            sql.push(" IN ").in_list(chunk, tp.ty(&ic.column));
                        };
                        let pk_len = tp.pk_positions.len();
                        lean_pages(sessions, tp, &[], &push_where, &mut stats, |row| {
                            l.push(ti, Key(row[..pk_len].to_vec()), origin);
                        })?;
                    }
                    continue;
                }
                for chunk in vals.chunks(MAX_IN_LIST) {
                    let mut sql = Sql::new(tp.dialect);
                    sql.push(&tp.select).push(" WHERE ");
                    match ic.compare {
                        Compare::Exact => sql.ident(&ic.column),
                        Compare::Lower => sql.push("lower(").ident(&ic.column).push(")"),
                    };
                    sql.push(" IN ").in_list(chunk, tp.ty(&ic.column));
                    let rows = sessions.get(&tp.source)?.query(&sql)?;
                    stats.link_queries += 1;
                    for values in rows {
                        let via = Via::Identity {
                            kind: ic.kind.clone(),
                            column: ic.column.clone(),
                        };
                        if let Some(k) = add_row(&mut tables, tp, values, via, None, 0) {
                            found.push((ti, k));
                        }
                    }
                }
            }
        }
        pending.clear();

        // 2. Links out of the rows found in the previous round.
        let mut by_table: BTreeMap<usize, Vec<&Key>> = BTreeMap::new();
        for (t, k) in &frontier {
            by_table.entry(*t).or_default().push(k);
        }
        for (&from, keys) in &by_table {
            for (li, link) in map.links_from(from) {
                let fp = plan.table(from);
                let tp = plan.table(link.target);
                let Some(from_rows) = tables.get(&from) else {
                    continue;
                };
                // Distinct tuples of the from-columns, skipping NULLs.
                let mut tuples: BTreeSet<Key> = BTreeSet::new();
                let mut parents: BTreeMap<Key, (Key, u32)> = BTreeMap::new();
                for k in keys {
                    let Some(row) = from_rows.rows.get(*k) else {
                        continue;
                    };
                    let mut tuple = Vec::with_capacity(link.on.len());
                    for (tc, fc) in &link.on {
                        let v = fp.pos(fc).map_or(Value::Null, |p| row.values[p].clone());
                        let v = match (&v, link.compare) {
                            (Value::Text(s), Compare::Lower) => Value::Text(s.to_lowercase()),
                            _ => tp.coerce(tc, &v),
                        };
                        tuple.push(v);
                    }
                    if tuple.iter().any(Value::is_null) {
                        continue;
                    }
                    let tuple = Key(tuple);
                    parents
                        .entry(tuple.clone())
                        .or_insert_with(|| ((*k).clone(), row.hop + 1));
                    tuples.insert(tuple);
                }
                if tuples.is_empty() {
                    continue;
                }
                let tuples: Vec<Key> = tuples.into_iter().collect();
                if let Some(l) = lean.as_deref_mut().filter(|l| l.is_lean(link.target)) {
                    let on: Vec<String> = link.on.iter().map(|(tc, _)| tc.clone()).collect();
                    let pk_len = tp.pk_positions.len();
                    for chunk in tuples.chunks(MAX_IN_LIST) {
                        let push_where = |sql: &mut Sql| push_link_where(sql, tp, link, chunk);
                        lean_pages(sessions, tp, &on, &push_where, &mut stats, |row| {
                            let tuple: Vec<Value> = row[pk_len..]
                                .iter()
                                .map(|v| match (v, link.compare) {
                                    (Value::Text(s), Compare::Lower) => {
                                        Value::Text(s.to_lowercase())
                                    }
                                    (v, _) => v.clone(),
                                })
                                .collect();
                            let parent = parents.get(&Key(tuple)).map(|(k, _)| (from, k.clone()));
                            let origin = l.origin(Via::Link { link: li }, parent);
                            let mut row = row;
                            row.truncate(pk_len);
                            l.push(link.target, Key(row), origin);
                        })?;
                    }
                    continue;
                }
                for chunk in tuples.chunks(MAX_IN_LIST) {
                    let sql = link_query(tp, link, chunk);
                    let rows = sessions.get(&tp.source)?.query(&sql)?;
                    stats.link_queries += 1;
                    for values in rows {
                        // The parent is the first from-row whose tuple matches.
                        let tuple: Vec<Value> = link
                            .on
                            .iter()
                            .map(|(tc, _)| {
                                let v = tp.pos(tc).map_or(Value::Null, |p| values[p].clone());
                                match (v, link.compare) {
                                    (Value::Text(s), Compare::Lower) => {
                                        Value::Text(s.to_lowercase())
                                    }
                                    (v, _) => v,
                                }
                            })
                            .collect();
                        let (parent, hop) = match parents.get(&Key(tuple)) {
                            Some((k, hop)) => (Some((from, k.clone())), *hop),
                            None => (None, 1),
                        };
                        if let Some(k) =
                            add_row(&mut tables, tp, values, Via::Link { link: li }, parent, hop)
                        {
                            found.push((link.target, k));
                        }
                    }
                }
            }
        }

        // 3. Identities discovered in the new rows.
        for (ti, key) in &found {
            let t = &map.tables[*ti];
            let tp = plan.table(*ti);
            let Some(row) = tables.get(ti).and_then(|tr| tr.rows.get(key)) else {
                continue;
            };
            for ic in t.identities.iter().filter(|i| i.discover) {
                let Some(raw) = tp.pos(&ic.column).and_then(|p| row.values[p].to_text()) else {
                    continue;
                };
                let Some(norm) = map.normalizer(&ic.kind) else {
                    continue;
                };
                // A value that does not normalize (a malformed phone number) is not traced.
                if let Ok(v) = norm.normalize(&raw)
                    && known.entry(ic.kind.clone()).or_default().insert(v.clone())
                {
                    pending.entry(ic.kind.clone()).or_default().push(v);
                }
            }
        }
        frontier = found;
    }
    stats.link_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);

    let identities: Vec<Identity> = known
        .into_iter()
        .flat_map(|(kind, vals)| {
            vals.into_iter().map(move |value| Identity {
                kind: kind.clone(),
                value,
            })
        })
        .collect();
    Ok(Footprint {
        tables,
        mentions: Vec::new(),
        identities,
        stats,
    })
}

fn add_row(
    tables: &mut BTreeMap<usize, TableRows>,
    tp: &TablePlan,
    values: Vec<Value>,
    via: Via,
    parent: Option<(usize, Key)>,
    hop: u32,
) -> Option<Key> {
    let key = Key(tp.pk_positions.iter().map(|&p| values[p].clone()).collect());
    let tr = tables.entry(tp.index).or_insert_with(|| TableRows {
        table: tp.name.clone(),
        source: tp.source.clone(),
        columns: tp.columns.clone(),
        rows: BTreeMap::new(),
    });
    if tr.rows.contains_key(&key) {
        return None;
    }
    tr.rows.insert(
        key.clone(),
        FoundRow {
            values,
            via,
            parent,
            hop,
        },
    );
    Some(key)
}

/// `SELECT ... FROM target WHERE (cols) IN (...) [AND type = ?] [AND conditions]`.
pub(crate) fn link_query(tp: &TablePlan, link: &crate::policy::Link, tuples: &[Key]) -> Sql {
    let mut sql = Sql::new(tp.dialect);
    sql.push(&tp.select).push(" WHERE ");
    push_link_where(&mut sql, tp, link, tuples);
    sql
}

/// The condition of [`link_query`]: `(cols) IN (...) [AND type = ?] [AND conditions]`.
fn push_link_where(sql: &mut Sql, tp: &TablePlan, link: &crate::policy::Link, tuples: &[Key]) {
    let lhs = |sql: &mut Sql, col: &str| match link.compare {
        Compare::Exact => {
            sql.ident(col);
        }
        Compare::Lower => {
            sql.push("lower(").ident(col).push(")");
        }
    };
    if link.on.len() == 1 {
        let col = &link.on[0].0;
        lhs(sql, col);
        let vals: Vec<Value> = tuples.iter().map(|k| k.0[0].clone()).collect();
        sql.push(" IN ").in_list(&vals, tp.ty(col));
    } else {
        sql.push("(");
        for (i, (col, _)) in link.on.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            lhs(sql, col);
        }
        sql.push(") IN ");
        let types: Vec<_> = link.on.iter().map(|(c, _)| tp.ty(c)).collect();
        let tuples: Vec<Vec<Value>> = tuples.iter().map(|k| k.0.clone()).collect();
        sql.tuple_in_list(&tuples, &types);
    }
    if let Some((col, value)) = &link.polymorphic {
        sql.push(" AND ")
            .ident(col)
            .push(" = ")
            .bind_as(Value::Text(value.clone()), tp.ty(col));
    }
    for c in &link.conditions {
        sql.push(" AND ");
        push_condition(sql, c, tp.ty(&c.column));
    }
}

/// Rows of a lean table per page: `SELECT <pk>, <extra> FROM t WHERE (<where>) [AND pk >
/// last] ORDER BY pk LIMIT n`, so no query returns more than [`LEAN_PAGE`] rows. `each`
/// receives the primary key values followed by the `extra` columns.
fn lean_pages(
    sessions: &mut Sessions<'_>,
    tp: &TablePlan,
    extra: &[String],
    push_where: &dyn Fn(&mut Sql),
    stats: &mut TraceStats,
    mut each: impl FnMut(Vec<Value>),
) -> Result<(), TraceError> {
    let pk: Vec<&String> = tp.pk_positions.iter().map(|&p| &tp.columns[p]).collect();
    let mut select = String::from("SELECT ");
    for (i, c) in pk.iter().copied().chain(extra).enumerate() {
        if i > 0 {
            select.push_str(", ");
        }
        select.push_str(&tp.dialect.select_column(c, tp.ty(c)));
    }
    select.push_str(" FROM ");
    select.push_str(&tp.dialect.quote(&tp.name));
    let mut after: Option<Vec<Value>> = None;
    loop {
        let mut sql = Sql::new(tp.dialect);
        sql.push(&select).push(" WHERE (");
        push_where(&mut sql);
        sql.push(")");
        if let Some(last) = &after {
            sql.push(" AND ");
            push_key_after(&mut sql, tp, &pk, last);
        }
        sql.push(" ORDER BY ");
        for (i, c) in pk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.ident(c);
        }
        sql.push(&format!(" LIMIT {LEAN_PAGE}"));
        let rows = sessions.get(&tp.source)?.query(&sql)?;
        stats.link_queries += 1;
        let full = rows.len() == LEAN_PAGE;
        after = rows.last().map(|r| r[..pk.len()].to_vec());
        for row in rows {
            each(row);
        }
        if !full {
            return Ok(());
        }
    }
}

/// Rows per page of a lean table's keyset-paginated queries.
pub(crate) const LEAN_PAGE: usize = 10_000;

/// `pk > last` (a row-value comparison for a composite key).
fn push_key_after(sql: &mut Sql, tp: &TablePlan, pk: &[&String], last: &[Value]) {
    if pk.len() == 1 {
        sql.ident(pk[0])
            .push(" > ")
            .bind_as(last[0].clone(), tp.ty(pk[0]));
        return;
    }
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
        sql.bind_as(last[i].clone(), tp.ty(c));
    }
    sql.push(")");
}

/// Renders a structured condition with bound values.
pub fn push_condition(sql: &mut Sql, c: &Condition, ty: Option<&crate::source::ColumnType>) {
    sql.ident(&c.column);
    let op = match c.op {
        Op::IsNull => {
            sql.push(" IS NULL");
            return;
        }
        Op::IsNotNull => {
            sql.push(" IS NOT NULL");
            return;
        }
        Op::In | Op::NotIn => {
            sql.push(if c.op == Op::In { " IN " } else { " NOT IN " });
            sql.in_list(&c.values, ty);
            return;
        }
        Op::Eq => " = ",
        Op::Ne => " <> ",
        Op::Lt => " < ",
        Op::Le => " <= ",
        Op::Gt => " > ",
        Op::Ge => " >= ",
    };
    sql.push(op);
    sql.bind_as(c.values.first().cloned().unwrap_or(Value::Null), ty);
}
