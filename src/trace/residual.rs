//! The residual scan: search free-text columns marked `scan = true` for the subject's
//! identities in their common spellings. The database narrows the candidates (through an
//! FTS5 trigram table or a pg_trgm index where one exists, a LIKE scan otherwise, which is
//! always so on MySQL/MariaDB); each candidate is then confirmed in memory with word
//! boundaries and phone-number parsing.

use super::TraceError;
use super::footprint::{Footprint, Identity, Mention};
use super::plan::TracePlan;
use super::tracer::Sessions;
use crate::policy::{DataMap, SearchTerm};
use crate::source::{Dialect, Key, Sql, TextIndex, Value};
use std::collections::BTreeSet;
use std::time::Instant;

/// Substrings per candidate query.
const STRINGS_PER_QUERY: usize = 32;

/// Residual-scan hits before own rows are set aside.
pub(crate) struct Hits {
    pub mentions: Vec<Mention>,
    pub queries: u32,
    pub candidates: u64,
}

/// Searches every scanned column for the identities.
pub(crate) fn search(
    map: &DataMap,
    plan: &TracePlan,
    sessions: &mut Sessions<'_>,
    identities: &[Identity],
    use_text_index: bool,
) -> Result<Hits, TraceError> {
    let ids: Vec<_> = identities
        .iter()
        .filter_map(|id| map.normalizer(&id.kind).map(|n| (id, n)))
        .collect();
    let terms: Vec<SearchTerm> = ids
        .iter()
        .flat_map(|(id, n)| n.search_terms(&id.value))
        .filter(|t| !t.0.is_empty() && t.0.iter().all(|g| !g.is_empty()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut hits = Hits {
        mentions: Vec::new(),
        queries: 0,
        candidates: 0,
    };
    if terms.is_empty() {
        return Ok(hits);
    }
    // Group terms so no query carries too many substrings.
    let mut chunks: Vec<Vec<SearchTerm>> = Vec::new();
    let mut size = 0;
    for t in terms {
        let n: usize = t.0.iter().map(Vec::len).sum();
        if chunks.is_empty() || size + n > STRINGS_PER_QUERY {
            chunks.push(Vec::new());
            size = 0;
        }
        size += n;
        if let Some(last) = chunks.last_mut() {
            last.push(t);
        }
    }
    let mut seen: BTreeSet<(usize, Key, String, String)> = BTreeSet::new();
    for (ti, t) in map.tables.iter().enumerate() {
        for col in t.columns.iter().filter(|c| c.scan) {
            let tp = plan.table(ti);
            let index = tp.text_indexes.get(&col.name).filter(|_| use_text_index);
            for chunk in &chunks {
                let sql = candidate_query(tp, &t.primary_key, &col.name, index, chunk);
                let q_started = Instant::now();
                let rows = sessions.get(&tp.source)?.query(&sql)?;
                tracing::trace!(table = %tp.name, micros = q_started.elapsed().as_micros() as u64, rows = rows.len(), "residual candidate query");
                hits.queries += 1;
                for mut r in rows {
                    let Some(Value::Text(text)) = r.pop() else {
                        continue;
                    };
                    hits.candidates += 1;
                    let key = Key(r);
                    for (id, norm) in &ids {
                        if let Some(form) = norm.find(&id.value, &text)
                            && seen.insert((ti, key.clone(), col.name.clone(), id.kind.clone()))
                        {
                            hits.mentions.push(Mention {
                                table: t.name.clone(),
                                key: key.clone(),
                                column: col.name.clone(),
                                identity_kind: id.kind.clone(),
                                form: form.to_string(),
                                text: text.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(hits)
}

/// Adds the residual scan's mentions to a footprint (rows that are the subject's own are
/// not mentions).
pub(crate) fn scan(
    map: &DataMap,
    plan: &TracePlan,
    sessions: &mut Sessions<'_>,
    fp: &mut Footprint,
    use_text_index: bool,
) -> Result<(), TraceError> {
    let started = Instant::now();
    let hits = search(map, plan, sessions, &fp.identities, use_text_index)?;
    merge(map, fp, hits);
    fp.stats.residual_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    Ok(())
}

pub(crate) fn merge(map: &DataMap, fp: &mut Footprint, hits: Hits) {
    merge_with(map, fp, hits, &|_, _| false);
}

/// [`merge`], where `also_own` names the subject's rows kept outside the footprint (the
/// lean trace's leaf-table keys).
pub(crate) fn merge_with(
    map: &DataMap,
    fp: &mut Footprint,
    hits: Hits,
    also_own: &dyn Fn(usize, &Key) -> bool,
) {
    fp.stats.residual_queries += hits.queries;
    fp.stats.residual_candidates += hits.candidates;
    for m in hits.mentions {
        let own = map.table_idx(&m.table).is_some_and(|ti| {
            fp.tables
                .get(&ti)
                .is_some_and(|o| o.rows.contains_key(&m.key))
                || also_own(ti, &m.key)
        });
        if !own {
            fp.mentions.push(m);
        }
    }
}

fn candidate_query(
    tp: &super::plan::TablePlan,
    pk: &[String],
    col: &str,
    index: Option<&TextIndex>,
    terms: &[SearchTerm],
) -> Sql {
    let d = tp.dialect;
    let mut sql = Sql::new(d);
    sql.push("SELECT ");
    for c in pk {
        sql.push(&d.select_column(c, tp.ty(c))).push(", ");
    }
    sql.push(&d.select_column(col, tp.ty(col)))
        .push(" FROM ")
        .ident(&tp.name)
        .push(" WHERE ");
    match (d, index) {
        (
            Dialect::Sqlite,
            Some(TextIndex::Fts5Trigram {
                fts_table,
                rowid_column,
                ..
            }),
        ) => {
            // FTS5 query: ((a OR b) AND c) OR (d); phrases quoted, quotes doubled.
            let phrase = |a: &String| format!("\"{}\"", a.replace('"', "\"\""));
            let expr = terms
                .iter()
                .map(|t| {
                    let groups: Vec<String> =
                        t.0.iter()
                            .map(|g| {
                                format!(
                                    "({})",
                                    g.iter().map(phrase).collect::<Vec<_>>().join(" OR ")
                                )
                            })
                            .collect();
                    format!("({})", groups.join(" AND "))
                })
                .collect::<Vec<_>>()
                .join(" OR ");
            sql.ident(rowid_column)
                .push(" IN (SELECT rowid FROM ")
                .ident(fts_table)
                .push(" WHERE ")
                .ident(fts_table)
                .push(" MATCH ")
                .bind(Value::Text(expr))
                .push(")");
        }
        _ => {
            // ((col LIKE a OR col LIKE b) AND col LIKE c) OR (...), case-insensitive (ILIKE
            // on PostgreSQL, a case-insensitive collation on MySQL).
            sql.push("(");
            for (i, t) in terms.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                sql.push("(");
                for (j, g) in t.0.iter().enumerate() {
                    if j > 0 {
                        sql.push(" AND ");
                    }
                    sql.push("(");
                    for (k, a) in g.iter().enumerate() {
                        if k > 0 {
                            sql.push(" OR ");
                        }
                        d.push_contains_ci(&mut sql, col, a);
                    }
                    sql.push(")");
                }
                sql.push(")");
            }
            sql.push(")");
        }
    }
    sql
}
