//! The streaming export build: from a lean trace, the export document is written table by
//! table as JSON, and the same rows as a zip of CSV files, into two writers (the encrypting
//! file writers). Rows of leaf tables are read from the source in key-ordered batches of
//! [`BATCH`] and written at once, so memory does not grow with the number of rows.
//!
//! The bytes are those of [`crate::request::export::access_export`] /
//! [`crate::request::export::portability_export`] serialized compactly, and the CSV files
//! those of [`crate::request::export::to_csv_zip`] (tests compare them).

use super::ExportError;
use super::zipstream::ZipStream;
use crate::policy::{DataMap, Table};
use crate::request::export::{
    ExportContext, access_frame, csv_cell, portability_frame, readme_text, record_id, table_info,
    value_json,
};
use crate::source::{Key, Value};
use crate::trace::{Footprint, LeanTables, LeanTrace};
use chrono::NaiveDateTime;
use serde_json::{Map, Value as Json, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

/// Leaf-table rows read from the source per query.
pub const BATCH: usize = 512;

/// Records of one table in an export.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TableCount {
    pub source: String,
    pub table: String,
    pub label: String,
    pub records: u64,
}

/// What an export holds (no personal data).
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub format: &'static str,
    /// Tables and records in the document (portability: tables with provided data).
    pub tables: usize,
    pub records: u64,
    /// Mentions (access exports only).
    pub mentions: Option<usize>,
    /// Every traced table with its rows.
    pub per_table: Vec<TableCount>,
}

/// Which export to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Access,
    Portability,
}

fn write_json(w: &mut dyn Write, v: &impl serde::Serialize) -> Result<(), ExportError> {
    serde_json::to_writer(&mut *w, v)?;
    Ok(())
}

/// `"k":v,"k2":v2` (with a leading comma unless `first`).
fn write_entries(
    w: &mut dyn Write,
    entries: &Map<String, Json>,
    mut first: bool,
) -> Result<(), ExportError> {
    for (k, v) in entries {
        if !first {
            w.write_all(b",")?;
        }
        first = false;
        write_json(w, k)?;
        w.write_all(b":")?;
        write_json(w, v)?;
    }
    Ok(())
}

/// Rows of a table in key order, from the footprint or read from the source.
fn for_each_row(
    trace: &mut LeanTrace<'_>,
    ti: usize,
    mut each: impl FnMut(
        &Footprint,
        &LeanTables,
        &Key,
        &[Value],
        Option<u32>,
    ) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    if let Some(rows) = trace.footprint.tables.get(&ti) {
        for (key, row) in &rows.rows {
            each(&trace.footprint, &trace.lean, key, &row.values, None)?;
        }
        return Ok(());
    }
    let Some(rows) = trace.lean.tables.get(&ti) else {
        return Ok(());
    };
    for batch in rows.batches(BATCH) {
        for (key, values, origin) in trace.reader.fetch(ti, &batch)? {
            each(&trace.footprint, &trace.lean, &key, &values, Some(origin))?;
        }
    }
    Ok(())
}

/// The columns of a table an export shows, grouped by category in the data map's order.
struct Layout {
    /// (category, [(column, position in the selected values)])
    groups: Vec<(String, Vec<(String, usize)>)>,
}

fn layout(t: &Table, selected: &[String]) -> Layout {
    let mut groups: Vec<(String, Vec<(String, usize)>)> = Vec::new();
    for c in &t.columns {
        let Some(p) = selected.iter().position(|x| *x == c.name) else {
            continue;
        };
        match groups.iter_mut().find(|(cat, _)| *cat == c.category) {
            Some((_, cols)) => cols.push((c.name.clone(), p)),
            None => groups.push((c.category.clone(), vec![(c.name.clone(), p)])),
        }
    }
    Layout { groups }
}

/// Writes the export of a traced subject: the JSON document to `json`, the CSV zip to `csv`.
#[allow(clippy::too_many_arguments)]
pub fn write_export(
    map: &DataMap,
    plan_columns: &dyn Fn(usize) -> Vec<String>,
    ctx: &ExportContext<'_>,
    kind: ExportKind,
    trace: &mut LeanTrace<'_>,
    json: &mut dyn Write,
    csv: &mut dyn Write,
    modified: NaiveDateTime,
) -> Result<ExportSummary, ExportError> {
    let mut counts: BTreeMap<usize, u64> = BTreeMap::new();
    for (&ti, rows) in &trace.footprint.tables {
        counts.insert(ti, rows.rows.len() as u64);
    }
    for (&ti, rows) in &trace.lean.tables {
        counts.insert(ti, rows.len() as u64);
    }
    let per_table: Vec<TableCount> = counts
        .iter()
        .map(|(&ti, &n)| TableCount {
            source: map.tables[ti].source.clone(),
            table: map.tables[ti].name.clone(),
            label: map.tables[ti].label.clone(),
            records: n,
        })
        .collect();
    let mut zip = ZipStream::new(csv, modified);
    let summary = match kind {
        ExportKind::Access => write_access(map, plan_columns, ctx, trace, &counts, json, &mut zip)?,
        ExportKind::Portability => {
            write_portability(map, plan_columns, ctx, trace, &counts, json, &mut zip)?
        }
    };
    zip.finish()?;
    Ok(ExportSummary {
        per_table,
        ..summary
    })
}

fn write_access(
    map: &DataMap,
    plan_columns: &dyn Fn(usize) -> Vec<String>,
    ctx: &ExportContext<'_>,
    trace: &mut LeanTrace<'_>,
    counts: &BTreeMap<usize, u64>,
    json: &mut dyn Write,
    zip: &mut ZipStream<&mut dyn Write>,
) -> Result<ExportSummary, ExportError> {
    let mut categories: BTreeSet<String> = BTreeSet::new();
    let mut layouts: BTreeMap<usize, (Vec<String>, Layout)> = BTreeMap::new();
    for &ti in counts.keys() {
        let selected = plan_columns(ti);
        let l = layout(&map.tables[ti], &selected);
        categories.extend(l.groups.iter().map(|(c, _)| c.clone()));
        layouts.insert(ti, (selected, l));
    }
    let used: Vec<usize> = counts.keys().copied().collect();
    let records: u64 = counts.values().sum();
    let (head, tail) = access_frame(
        map,
        ctx,
        &trace.footprint.identities,
        &trace.footprint.mentions,
        &used,
        usize::try_from(records).unwrap_or(usize::MAX),
        &categories,
    );
    json.write_all(b"{")?;
    write_entries(json, &head, true)?;
    json.write_all(b",\"records\":[")?;
    let mut infos: Vec<Json> = Vec::new();
    for (i, (&ti, &count)) in counts.iter().enumerate() {
        let t = &map.tables[ti];
        let (selected, lay) = &layouts[&ti];
        let mut info = table_info(map, t);
        if let Some(o) = info.as_object_mut() {
            o.insert("record_count".into(), json!(count));
        }
        if i > 0 {
            json.write_all(b",")?;
        }
        let mut opening = serde_json::to_vec(&info)?;
        opening.pop(); // the closing brace: the records follow
        json.write_all(&opening)?;
        json.write_all(b",\"records\":[")?;
        infos.push(info);

        zip.start_file(&format!("{}.csv", t.name))?;
        let mut out = csv::Writer::from_writer(&mut *zip);
        let mut headers: Vec<String> = t
            .primary_key
            .iter()
            .map(|k| format!("record_{k}"))
            .collect();
        headers.push("found_via".into());
        for (cat, cols) in &lay.groups {
            headers.extend(cols.iter().map(|(c, _)| format!("{cat}.{c}")));
        }
        out.write_record(&headers)?;

        let mut paths: HashMap<u32, String> = HashMap::new();
        let mut first = true;
        for_each_row(trace, ti, |fp, lean, key, values, origin| {
            let path = match origin {
                None => fp.path_text(map, ti, key),
                Some(o) => paths
                    .entry(o)
                    .or_insert_with(|| lean.path_text(map, fp, ti, o))
                    .clone(),
            };
            let mut data = Map::new();
            let mut cells: Vec<String> = key.0.iter().map(|v| csv_cell(&value_json(v))).collect();
            cells.push(path.clone());
            for (cat, cols) in &lay.groups {
                let mut group = Map::new();
                for (c, p) in cols {
                    let v = value_json(&values[*p]);
                    cells.push(csv_cell(&v));
                    group.insert(c.clone(), v);
                }
                data.insert(cat.clone(), Json::Object(group));
            }
            let mut rec = Map::new();
            rec.insert("record_id".into(), record_id(t, selected, key));
            rec.insert("found_via".into(), Json::String(path));
            rec.insert("data".into(), Json::Object(data));
            if !first {
                json.write_all(b",")?;
            }
            first = false;
            write_json(json, &rec)?;
            out.write_record(&cells)?;
            Ok(())
        })?;
        out.flush()?;
        drop(out);
        json.write_all(b"]}")?;
    }
    json.write_all(b"]")?;
    write_entries(json, &tail, false)?;
    json.write_all(b"}")?;

    let mentions = &trace.footprint.mentions;
    if !mentions.is_empty() {
        zip.start_file("mentions.csv")?;
        let mut out = csv::Writer::from_writer(&mut *zip);
        let headers = ["table", "record_id", "column", "identity", "spelling"];
        out.write_record(headers)?;
        for m in mentions {
            let m = crate::request::export::mention_json(map, m);
            out.write_record(headers.iter().map(|h| csv_cell(&m[*h])))?;
        }
        out.flush()?;
    }
    // information.json: the document without its records, the tables listed with counts.
    let mut info = head.clone();
    info.extend(tail.clone());
    info.insert("tables".into(), Json::Array(infos.clone()));
    zip.start_file("information.json")?;
    serde_json::to_writer_pretty(&mut *zip, &Json::Object(info))?;
    let mut readme = head;
    readme.insert("records".into(), Json::Array(infos));
    readme.extend(tail);
    zip.start_file("README.txt")?;
    zip.write_all(readme_text(&Json::Object(readme)).as_bytes())?;
    Ok(ExportSummary {
        format: "lethe.access-export/1",
        tables: counts.len(),
        records,
        mentions: Some(mentions.len()),
        per_table: Vec::new(),
    })
}

fn write_portability(
    map: &DataMap,
    plan_columns: &dyn Fn(usize) -> Vec<String>,
    ctx: &ExportContext<'_>,
    trace: &mut LeanTrace<'_>,
    counts: &BTreeMap<usize, u64>,
    json: &mut dyn Write,
    zip: &mut ZipStream<&mut dyn Write>,
) -> Result<ExportSummary, ExportError> {
    // Tables with provided columns, and those columns' positions.
    let mut tables: Vec<(usize, Vec<(String, usize)>)> = Vec::new();
    for &ti in counts.keys() {
        let selected = plan_columns(ti);
        let provided: Vec<(String, usize)> = map.tables[ti]
            .columns
            .iter()
            .filter(|c| c.provided)
            .filter_map(|c| {
                selected
                    .iter()
                    .position(|x| *x == c.name)
                    .map(|p| (c.name.clone(), p))
            })
            .collect();
        if !provided.is_empty() {
            tables.push((ti, provided));
        }
    }
    let records: u64 = tables.iter().map(|(ti, _)| counts[ti]).sum();
    let head = portability_frame(
        map,
        ctx,
        tables.len(),
        usize::try_from(records).unwrap_or(usize::MAX),
    );
    json.write_all(b"{")?;
    write_entries(json, &head, true)?;
    json.write_all(b",\"data\":{")?;
    for (i, (ti, provided)) in tables.iter().enumerate() {
        let t = &map.tables[*ti];
        if i > 0 {
            json.write_all(b",")?;
        }
        write_json(json, &t.name)?;
        json.write_all(b":[")?;
        zip.start_file(&format!("{}.csv", t.name))?;
        let mut out = csv::Writer::from_writer(&mut *zip);
        out.write_record(provided.iter().map(|(c, _)| c))?;
        let mut first = true;
        for_each_row(trace, *ti, |_, _, _, values, _| {
            let mut o = Map::new();
            let mut cells = Vec::with_capacity(provided.len());
            for (c, p) in provided {
                let v = value_json(&values[*p]);
                cells.push(csv_cell(&v));
                o.insert(c.clone(), v);
            }
            if !first {
                json.write_all(b",")?;
            }
            first = false;
            write_json(json, &o)?;
            out.write_record(&cells)?;
            Ok(())
        })?;
        out.flush()?;
        drop(out);
        json.write_all(b"]")?;
    }
    json.write_all(b"}}")?;
    Ok(ExportSummary {
        format: "lethe.portability-export/1",
        tables: tables.len(),
        records,
        mentions: None,
        per_table: Vec::new(),
    })
}
