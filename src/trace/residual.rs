//! The residual scan: search free-text columns marked `scan = true` for the subject's
//! identities in their common spellings. The database narrows the candidates (through an
//! FTS5 trigram table or a pg_trgm index where one exists, a LIKE scan otherwise); each
//! candidate is then confirmed in memory with word boundaries and phone-number parsing.

use super::footprint::{Footprint, Mention};
use super::plan::TracePlan;
use super::tracer::Sessions;
use super::TraceError;
use crate::policy::DataMap;
use crate::source::{Dialect, Key, Sql, TextIndex, Value, like_pattern};
use std::collections::BTreeSet;
use std::time::Instant;

/// Anchors per candidate query.
const ANCHORS_PER_QUERY: usize = 32;

pub(crate) fn scan(
    map: &DataMap,
    plan: &TracePlan,
    sessions: &mut Sessions<'_>,
    fp: &mut Footprint,
    use_text_index: bool,
) -> Result<(), TraceError> {
    let started = Instant::now();
    let ids: Vec<_> = fp
        .identities
        .iter()
        .filter_map(|id| map.normalizer(&id.kind).map(|n| (id, n)))
        .collect();
    let anchors: Vec<String> = ids
        .iter()
        .flat_map(|(id, n)| n.spellings(&id.value))
        .map(|s| s.text)
        .filter(|s| s.chars().count() >= 3)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if anchors.is_empty() {
        return Ok(());
    }
    let mut seen: BTreeSet<(usize, Key, String, String)> = BTreeSet::new();
    for (ti, t) in map.tables.iter().enumerate() {
        for col in t.columns.iter().filter(|c| c.scan) {
            let tp = plan.table(ti);
            let index = tp.text_indexes.get(&col.name).filter(|_| use_text_index);
            let mut candidates: Vec<(Key, String)> = Vec::new();
            for chunk in anchors.chunks(ANCHORS_PER_QUERY) {
                let sql = candidate_query(tp, &t.primary_key, &col.name, index, chunk);
                let rows = sessions.get(&tp.source)?.query(&sql)?;
                fp.stats.residual_queries += 1;
                for mut r in rows {
                    let text = match r.pop() {
                        Some(Value::Text(s)) => s,
                        _ => continue,
                    };
                    candidates.push((Key(r), text));
                }
            }
            fp.stats.residual_candidates += candidates.len() as u64;
            let own = fp.tables.get(&ti);
            for (key, text) in candidates {
                if own.is_some_and(|o| o.rows.contains_key(&key)) {
                    continue;
                }
                for (id, norm) in &ids {
                    if let Some(form) = norm.find(&id.value, &text) {
                        let k = (ti, key.clone(), col.name.clone(), id.kind.clone());
                        if seen.insert(k) {
                            fp.mentions.push(Mention {
                                table: t.name.clone(),
                                key: key.clone(),
                                column: col.name.clone(),
                                identity_kind: id.kind.clone(),
                                form: form.to_string(),
                            });
                        }
                    }
                }
            }
        }
    }
    fp.stats.residual_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    Ok(())
}

fn candidate_query(
    tp: &super::plan::TablePlan,
    pk: &[String],
    col: &str,
    index: Option<&TextIndex>,
    anchors: &[String],
) -> Sql {
    let d = tp.dialect;
    let mut sql = Sql::new(d);
    sql.push("SELECT ");
    for c in pk {
        sql.push(&d.select_column(c, tp.ty(c))).push(", ");
    }
    sql.ident(col).push(" FROM ").ident(&tp.name).push(" WHERE ");
    match (d, index) {
        (Dialect::Sqlite, Some(TextIndex::Fts5Trigram { fts_table, rowid_column, .. })) => {
            let expr = anchors
                .iter()
                .map(|a| format!("\"{}\"", a.replace('"', "\"\"")))
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
            sql.push("(");
            for (i, a) in anchors.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                sql.ident(col)
                    .push(d.contains_ci())
                    .bind(Value::Text(like_pattern(a)))
                    .push(" ESCAPE '\\'");
            }
            sql.push(")");
        }
    }
    sql
}
