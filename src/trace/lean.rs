//! The lean trace behind streaming exports: the same fixpoint as [`super::trace`], but rows
//! of *leaf* tables (no links out of them, no identities discovered in them, so the trace
//! never needs their values) are collected as primary keys plus a small id of the path that
//! found them, in keyset-paginated queries. A subject with a million rows in one leaf table
//! then costs a few bytes per row while tracing; the export reads the rows' values afterwards
//! in key-ordered batches ([`LeanTrace::fetch`]) in the same read transactions, so what is
//! exported is exactly the snapshot that was traced.
//!
//! Erasure keeps using the full trace: this module only serves exports.

use super::TraceError;
use super::footprint::{Footprint, Identity, Via, describe_link};
use super::plan::TracePlan;
use super::residual;
use super::tracer::{Sessions, TraceOptions, trace_in_with};
use crate::policy::DataMap;
use crate::source::{Key, Sources, Sql, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// How a lean row was reached: an identity column of its table, or a link from a row of the
/// (full) footprint.
#[derive(Debug, Clone)]
pub struct Origin {
    pub via: Via,
    pub parent: Option<(usize, Key)>,
}

/// The keys of one leaf table's rows with the origin of each, in key order once finished.
#[derive(Debug, Default)]
pub struct LeanRows {
    /// Single integer keys (the common case) take 16 bytes a row.
    ints: Vec<(i64, u32)>,
    others: Vec<(Key, u32)>,
}

impl LeanRows {
    fn push(&mut self, key: Key, origin: u32) {
        match key.0.as_slice() {
            [Value::Int(i)] => self.ints.push((*i, origin)),
            _ => self.others.push((key, origin)),
        }
    }

    /// Sorts by key and keeps the first origin of each key (as the full trace keeps the
    /// first path that reached a row).
    fn finish(&mut self) {
        self.ints.sort_by_key(|(k, _)| *k);
        self.ints.dedup_by_key(|(k, _)| *k);
        self.ints.shrink_to_fit();
        self.others.sort_by(|a, b| a.0.cmp(&b.0));
        self.others.dedup_by(|a, b| a.0 == b.0);
        self.others.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.ints.len() + self.others.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, key: &Key) -> bool {
        match key.0.as_slice() {
            [Value::Int(i)] => self.ints.binary_search_by_key(i, |(k, _)| *k).is_ok(),
            _ => self.others.binary_search_by(|(k, _)| k.cmp(key)).is_ok(),
        }
    }

    /// The rows in key order, `n` at a time.
    pub fn batches(&self, n: usize) -> impl Iterator<Item = Vec<(Key, u32)>> + '_ {
        let mut ints = self.ints.iter().peekable();
        let mut others = self.others.iter().peekable();
        let n = n.max(1);
        std::iter::from_fn(move || {
            let mut out = Vec::with_capacity(n);
            while out.len() < n {
                let take_int = match (ints.peek(), others.peek()) {
                    (Some((i, _)), Some((k, _))) => Key(vec![Value::Int(*i)]) <= *k,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => break,
                };
                if take_int {
                    if let Some((i, o)) = ints.next() {
                        out.push((Key(vec![Value::Int(*i)]), *o));
                    }
                } else if let Some((k, o)) = others.next() {
                    out.push((k.clone(), *o));
                }
            }
            (!out.is_empty()).then_some(out)
        })
    }
}

/// The leaf tables' rows of one trace.
#[derive(Debug, Default)]
pub struct LeanTables {
    leaf: BTreeSet<usize>,
    pub tables: BTreeMap<usize, LeanRows>,
    pub origins: Vec<Origin>,
    origin_ids: BTreeMap<(String, Option<(usize, Key)>), u32>,
}

impl LeanTables {
    /// Leaf tables of `map`: none of its links starts there and none of its identity
    /// columns discovers identities.
    pub fn new(map: &DataMap) -> LeanTables {
        let leaf = (0..map.tables.len())
            .filter(|&ti| {
                map.links_from(ti).next().is_none()
                    && map.tables[ti].identities.iter().all(|i| !i.discover)
            })
            .collect();
        LeanTables {
            leaf,
            ..LeanTables::default()
        }
    }

    pub fn is_lean(&self, table: usize) -> bool {
        self.leaf.contains(&table)
    }

    pub(crate) fn origin(&mut self, via: Via, parent: Option<(usize, Key)>) -> u32 {
        let name = match &via {
            Via::Identity { kind, column } => format!("i:{kind}\u{0}{column}"),
            Via::Link { link } => format!("l:{link}"),
        };
        let next = u32::try_from(self.origins.len()).unwrap_or(u32::MAX);
        let origins = &mut self.origins;
        *self
            .origin_ids
            .entry((name, parent.clone()))
            .or_insert_with(|| {
                origins.push(Origin { via, parent });
                next
            })
    }

    pub(crate) fn push(&mut self, table: usize, key: Key, origin: u32) {
        self.tables.entry(table).or_default().push(key, origin);
    }

    fn finish(&mut self) {
        for rows in self.tables.values_mut() {
            rows.finish();
        }
        self.tables.retain(|_, r| !r.is_empty());
        self.origin_ids = BTreeMap::new();
    }

    pub fn contains(&self, table: usize, key: &Key) -> bool {
        self.tables.get(&table).is_some_and(|r| r.contains(key))
    }

    pub fn row_count(&self) -> usize {
        self.tables.values().map(LeanRows::len).sum()
    }

    /// The path that found a row of `table` with this origin, as
    /// [`Footprint::path_text`] writes it.
    pub fn path_text(&self, map: &DataMap, fp: &Footprint, table: usize, origin: u32) -> String {
        let Some(o) = self.origins.get(origin as usize) else {
            return String::new();
        };
        let how = match &o.via {
            Via::Identity { kind, column } => {
                format!("{kind} matches {}.{column}", map.tables[table].name)
            }
            Via::Link { link } => describe_link(map, &map.links[*link]),
        };
        match &o.parent {
            Some((pt, pk)) => {
                let before = fp.path_text(map, *pt, pk);
                if before.is_empty() {
                    how
                } else {
                    format!("{before} → {how}")
                }
            }
            None => how,
        }
    }
}

/// Keys per `pk IN (...)` query when reading rows back. SQLite's planner turns a rowid IN
/// list of 512 bound values on a table without statistics into a full scan (measured: 0.15 s
/// a query on a million rows, against 1 ms for 128 lookups), so lists stay well below that.
const FETCH_IN_LIST: usize = 128;

/// A finished lean trace, holding its read transactions open for [`RowReader::fetch`].
pub struct LeanTrace<'a> {
    /// The rows of the other tables (full), mentions, identities and counters.
    pub footprint: Footprint,
    pub lean: LeanTables,
    pub reader: RowReader<'a>,
}

/// Reads leaf-table rows by key in the trace's read transactions.
pub struct RowReader<'a> {
    plan: &'a TracePlan,
    sessions: Sessions<'a>,
}

/// Traces a subject for an export (see the module documentation).
pub fn trace_lean<'a>(
    map: &DataMap,
    plan: &'a TracePlan,
    sources: &'a Sources,
    identities: &[Identity],
    opts: &TraceOptions,
) -> Result<LeanTrace<'a>, TraceError> {
    let mut sessions = Sessions::new(sources);
    let mut lean = LeanTables::new(map);
    let mut fp = trace_in_with(map, plan, &mut sessions, identities, Some(&mut lean))?;
    lean.finish();
    if opts.residual {
        let started = Instant::now();
        let hits = residual::search(
            map,
            plan,
            &mut sessions,
            &fp.identities,
            opts.use_text_index,
        )?;
        residual::merge_with(map, &mut fp, hits, &|ti, k| lean.contains(ti, k));
        fp.stats.residual_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    }
    Ok(LeanTrace {
        footprint: fp,
        lean,
        reader: RowReader { plan, sessions },
    })
}

impl LeanTrace<'_> {
    /// Ends the read transactions.
    pub fn finish(self) -> Result<(), TraceError> {
        self.reader.sessions.finish()
    }
}

impl RowReader<'_> {
    /// The values of a batch of a leaf table's rows (its plan's columns), in the batch's
    /// order, with each row's key and origin (read [`FETCH_IN_LIST`] keys per query).
    pub fn fetch(
        &mut self,
        table: usize,
        batch: &[(Key, u32)],
    ) -> Result<Vec<(Key, Vec<Value>, u32)>, TraceError> {
        let tp = self.plan.table(table);
        let mut found: BTreeMap<Key, Vec<Value>> = BTreeMap::new();
        for chunk in batch.chunks(FETCH_IN_LIST) {
            let mut sql = Sql::new(tp.dialect);
            sql.push(&tp.select).push(" WHERE ");
            let pk: Vec<&String> = tp.pk_positions.iter().map(|&p| &tp.columns[p]).collect();
            if pk.len() == 1 {
                let vals: Vec<Value> = chunk.iter().map(|(k, _)| k.0[0].clone()).collect();
                sql.ident(pk[0]).push(" IN ").in_list(&vals, tp.ty(pk[0]));
            } else {
                sql.push("(");
                for (i, c) in pk.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.ident(c);
                }
                sql.push(") IN ");
                let types: Vec<_> = pk.iter().map(|c| tp.ty(c)).collect();
                let tuples: Vec<Vec<Value>> = chunk.iter().map(|(k, _)| k.0.clone()).collect();
                sql.tuple_in_list(&tuples, &types);
            }
            for row in self.sessions.get(&tp.source)?.query(&sql)? {
                let key = Key(tp.pk_positions.iter().map(|&p| row[p].clone()).collect());
                found.insert(key, row);
            }
        }
        Ok(batch
            .iter()
            .filter_map(|(k, o)| found.remove_entry(k).map(|(k, row)| (k, row, *o)))
            .collect())
    }
}
