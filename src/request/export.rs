//! Access and portability exports, built from a footprint and the data map.
//!
//! The access export holds the data itself grouped by table and category, and what GDPR
//! Art. 15(1) requires: purposes, categories, recipients, retention period or criteria, the
//! source of data not collected from the person, and the rights notice. The portability
//! export (Art. 20) holds only the data the person provided, machine-readable.
//!
//! These functions build a document in memory from a full footprint. Requests are exported
//! by [`crate::export::build`], which writes the same bytes as a stream from a lean trace
//! (and is tested against these functions); the pieces both share live here.

use crate::policy::{DataMap, Table};
use crate::source::{Key, Value};
use crate::trace::{Footprint, Identity, Mention};
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeSet;
use std::io::Write;

/// What the export is about.
pub struct ExportContext<'a> {
    pub request_id: &'a str,
    pub kind: &'a str,
    pub regime: &'a str,
    pub received_at: String,
    pub due_at: String,
    pub generated_at: String,
    pub policy_digest: &'a str,
}

pub(crate) fn value_json(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

pub(crate) fn record_id(t: &Table, columns: &[String], key: &Key) -> Json {
    let mut m = Map::new();
    for (c, v) in t.primary_key.iter().zip(&key.0) {
        let _ = columns;
        m.insert(c.clone(), value_json(v));
    }
    Json::Object(m)
}

pub(crate) fn identities_json(map: &DataMap, ids: &[Identity]) -> Json {
    Json::Array(
        ids.iter()
            .map(|i| {
                json!({
                    "kind": i.kind,
                    "label": map.identity_kinds.get(&i.kind).map_or(i.kind.as_str(), |k| k.label.as_str()),
                    "value": i.value,
                })
            })
            .collect(),
    )
}

pub(crate) fn table_info(map: &DataMap, t: &Table) -> Json {
    let purposes: Vec<Json> = t
        .purposes
        .iter()
        .filter_map(|p| map.purposes.get(p))
        .map(|p| json!({"name": p.name, "description": p.description, "legal_basis": p.legal_basis.describe()}))
        .collect();
    let recipients: Vec<Json> = t
        .recipients
        .iter()
        .filter_map(|r| map.recipients.get(r))
        .map(|r| json!({"name": r.display_name, "kind": r.kind, "country": r.country, "purpose": r.purpose, "safeguards": r.safeguards}))
        .collect();
    let mut cats: Map<String, Json> = Map::new();
    for c in &t.columns {
        let label = map
            .categories
            .get(&c.category)
            .map_or(c.category.as_str(), |x| x.label.as_str());
        let entry = cats
            .entry(c.category.clone())
            .or_insert_with(|| json!({"label": label, "columns": []}));
        if let Some(cols) = entry.get_mut("columns").and_then(Json::as_array_mut) {
            cols.push(Json::String(c.name.clone()));
        }
    }
    json!({
        "table": t.name,
        "label": t.label,
        "source": t.source,
        "purposes": purposes,
        "legal_basis": t.legal_basis.describe(),
        "recipients": recipients,
        "retention": t.retention,
        "origin": t.origin.clone().unwrap_or_else(|| "Collected from you".to_string()),
        "categories": Json::Object(cats),
    })
}

/// The access export (GDPR Art. 15, CCPA right to know).
pub fn access_export(map: &DataMap, ctx: &ExportContext<'_>, fp: &Footprint) -> Json {
    let mut records = Vec::new();
    let mut all_categories: BTreeSet<String> = BTreeSet::new();
    for (&ti, rows) in &fp.tables {
        let t = &map.tables[ti];
        let mut info = table_info(map, t);
        let mut out_rows = Vec::new();
        for (key, row) in &rows.rows {
            let mut by_cat: Map<String, Json> = Map::new();
            for c in &t.columns {
                let Some(p) = rows.columns.iter().position(|x| *x == c.name) else {
                    continue;
                };
                all_categories.insert(c.category.clone());
                let group = by_cat
                    .entry(c.category.clone())
                    .or_insert_with(|| Json::Object(Map::new()));
                if let Some(obj) = group.as_object_mut() {
                    obj.insert(c.name.clone(), value_json(&row.values[p]));
                }
            }
            out_rows.push(json!({
                "record_id": record_id(t, &rows.columns, key),
                "found_via": fp.path_text(map, ti, key),
                "data": Json::Object(by_cat),
            }));
        }
        if let Some(obj) = info.as_object_mut() {
            obj.insert("record_count".into(), json!(out_rows.len()));
            obj.insert("records".into(), Json::Array(out_rows));
        }
        records.push(info);
    }
    let used: Vec<usize> = fp.tables.keys().copied().collect();
    let (mut doc, tail) = access_frame(
        map,
        ctx,
        &fp.identities,
        &fp.mentions,
        &used,
        fp.row_count(),
        &all_categories,
    );
    doc.insert("records".into(), Json::Array(records));
    doc.extend(tail);
    Json::Object(doc)
}

/// One mention in an access export.
pub(crate) fn mention_json(map: &DataMap, m: &Mention) -> Json {
    let (label, t) = map
        .table(&m.table)
        .map_or((m.table.clone(), None), |t| (t.label.clone(), Some(t)));
    json!({
        "table": m.table,
        "label": label,
        "record_id": t.map_or(Json::Null, |t| record_id(t, &[], &m.key)),
        "column": m.column,
        "identity": m.identity_kind,
        "spelling": m.form,
        "note": "Your identifier appears in this free-text field of a record about someone else or about our business; the rest of that record is not your personal data.",
    })
}

/// The fields of an access export before its `records` (format ... summary) and after them
/// (mentions ... policy digest). `used` are the tables with records.
pub(crate) fn access_frame(
    map: &DataMap,
    ctx: &ExportContext<'_>,
    identities: &[Identity],
    mentions: &[Mention],
    used: &[usize],
    records: usize,
    categories: &BTreeSet<String>,
) -> (Map<String, Json>, Map<String, Json>) {
    let used_tables: Vec<&Table> = used.iter().map(|&i| &map.tables[i]).collect();
    let purposes: BTreeSet<&str> = used_tables
        .iter()
        .flat_map(|t| t.purposes.iter().map(String::as_str))
        .collect();
    let recipients: BTreeSet<&str> = used_tables
        .iter()
        .flat_map(|t| t.recipients.iter().map(String::as_str))
        .collect();
    let c = &map.controller;
    let head = json!({
        "format": "lethe.access-export/1",
        "kind": ctx.kind,
        "generated_at": ctx.generated_at,
        "request": {
            "id": ctx.request_id,
            "regime": ctx.regime,
            "received_at": ctx.received_at,
            "due_at": ctx.due_at,
        },
        "controller": {
            "name": c.name,
            "contact": c.contact,
            "dpo": c.dpo,
            "supervisory_authority": c.supervisory_authority,
        },
        "subject": { "identities": identities_json(map, identities) },
        "summary": {
            "tables": used.len(),
            "records": records,
            "mentions": mentions.len(),
            "categories": categories.iter().map(|c| json!({
                "name": c,
                "label": map.categories.get(c).map_or(c.as_str(), |x| x.label.as_str()),
            })).collect::<Vec<_>>(),
        },
    });
    let tail = json!({
        "mentions": mentions.iter().map(|m| mention_json(map, m)).collect::<Vec<_>>(),
        "processing": {
            "purposes": purposes.iter().filter_map(|p| map.purposes.get(*p)).map(|p| json!({
                "name": p.name, "description": p.description, "legal_basis": p.legal_basis.describe(),
            })).collect::<Vec<_>>(),
            "recipients": recipients.iter().filter_map(|r| map.recipients.get(*r)).map(|r| json!({
                "name": r.display_name, "kind": r.kind, "country": r.country, "purpose": r.purpose, "safeguards": r.safeguards,
            })).collect::<Vec<_>>(),
            "automated_decision_making": "None",
        },
        "rights": c.rights_notice,
        "policy_digest": ctx.policy_digest,
    });
    let object = |v: Json| match v {
        Json::Object(m) => m,
        _ => Map::new(),
    };
    (object(head), object(tail))
}

/// The fields of a portability export before its `data`.
pub(crate) fn portability_frame(
    map: &DataMap,
    ctx: &ExportContext<'_>,
    tables: usize,
    records: usize,
) -> Map<String, Json> {
    match json!({
        "format": "lethe.portability-export/1",
        "kind": ctx.kind,
        "generated_at": ctx.generated_at,
        "request": { "id": ctx.request_id, "regime": ctx.regime },
        "controller": { "name": map.controller.name, "contact": map.controller.contact },
        "summary": { "tables": tables, "records": records },
    }) {
        Json::Object(m) => m,
        _ => Map::new(),
    }
}

/// The portability export (GDPR Art. 20): only data the person provided.
pub fn portability_export(map: &DataMap, ctx: &ExportContext<'_>, fp: &Footprint) -> Json {
    let mut data: Map<String, Json> = Map::new();
    let mut total = 0usize;
    for (&ti, rows) in &fp.tables {
        let t = &map.tables[ti];
        let provided: Vec<(usize, &str)> = t
            .columns
            .iter()
            .filter(|c| c.provided)
            .filter_map(|c| {
                rows.columns
                    .iter()
                    .position(|x| *x == c.name)
                    .map(|p| (p, c.name.as_str()))
            })
            .collect();
        if provided.is_empty() {
            continue;
        }
        let items: Vec<Json> = rows
            .rows
            .values()
            .map(|r| {
                let mut o = Map::new();
                for (p, name) in &provided {
                    o.insert((*name).to_string(), value_json(&r.values[*p]));
                }
                Json::Object(o)
            })
            .collect();
        total += items.len();
        data.insert(t.name.clone(), Json::Array(items));
    }
    let mut doc = portability_frame(map, ctx, data.len(), total);
    doc.insert("data".into(), Json::Object(data));
    Json::Object(doc)
}

/// Number of tables and records in an export document.
pub fn counts(doc: &Json) -> (i32, i64) {
    let s = &doc["summary"];
    (
        s["tables"]
            .as_i64()
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(0),
        s["records"].as_i64().unwrap_or(0),
    )
}

pub(crate) fn csv_cell(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn write_csv(headers: &[String], rows: &[Vec<String>]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(headers)?;
    for r in rows {
        w.write_record(r)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// A zip with one CSV per table (and the explanatory information as text and JSON).
pub fn to_csv_zip(doc: &Json) -> Result<Vec<u8>, String> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut add = |name: &str, bytes: &[u8]| -> Result<(), String> {
        zip.start_file(name, opts).map_err(|e| e.to_string())?;
        zip.write_all(bytes).map_err(|e| e.to_string())
    };
    if doc["format"] == "lethe.portability-export/1" {
        if let Some(data) = doc["data"].as_object() {
            for (table, items) in data {
                let items = items.as_array().cloned().unwrap_or_default();
                let headers: Vec<String> = items
                    .first()
                    .and_then(Json::as_object)
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                let rows: Vec<Vec<String>> = items
                    .iter()
                    .map(|i| headers.iter().map(|h| csv_cell(&i[h])).collect())
                    .collect();
                add(
                    &format!("{table}.csv"),
                    &write_csv(&headers, &rows).map_err(|e| e.to_string())?,
                )?;
            }
        }
    } else {
        for rec in doc["records"].as_array().cloned().unwrap_or_default() {
            let table = rec["table"].as_str().unwrap_or("table").to_string();
            let records = rec["records"].as_array().cloned().unwrap_or_default();
            let mut headers: Vec<String> = Vec::new();
            if let Some(first) = records.first() {
                if let Some(id) = first["record_id"].as_object() {
                    headers.extend(id.keys().map(|k| format!("record_{k}")));
                }
                headers.push("found_via".into());
                if let Some(cats) = first["data"].as_object() {
                    for (cat, cols) in cats {
                        if let Some(cols) = cols.as_object() {
                            headers.extend(cols.keys().map(|c| format!("{cat}.{c}")));
                        }
                    }
                }
            }
            let rows: Vec<Vec<String>> = records
                .iter()
                .map(|r| {
                    headers
                        .iter()
                        .map(|h| {
                            if let Some(k) = h.strip_prefix("record_") {
                                csv_cell(&r["record_id"][k])
                            } else if h == "found_via" {
                                csv_cell(&r["found_via"])
                            } else {
                                let (cat, col) = h.split_once('.').unwrap_or(("", h));
                                csv_cell(&r["data"][cat][col])
                            }
                        })
                        .collect()
                })
                .collect();
            add(
                &format!("{table}.csv"),
                &write_csv(&headers, &rows).map_err(|e| e.to_string())?,
            )?;
        }
        let mentions = doc["mentions"].as_array().cloned().unwrap_or_default();
        if !mentions.is_empty() {
            let headers: Vec<String> = ["table", "record_id", "column", "identity", "spelling"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let rows: Vec<Vec<String>> = mentions
                .iter()
                .map(|m| headers.iter().map(|h| csv_cell(&m[h.as_str()])).collect())
                .collect();
            add(
                "mentions.csv",
                &write_csv(&headers, &rows).map_err(|e| e.to_string())?,
            )?;
        }
        // The document without its records (in order), the tables listed with counts.
        let mut info = Json::Object(
            doc.as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(k, _)| *k != "records")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        );
        if let Some(o) = info.as_object_mut() {
            if let Some(recs) = doc["records"].as_array() {
                let tables: Vec<Json> = recs
                    .iter()
                    .map(|r| {
                        let mut r = r.clone();
                        if let Some(o) = r.as_object_mut() {
                            o.remove("records");
                        }
                        r
                    })
                    .collect();
                o.insert("tables".into(), Json::Array(tables));
            }
        }
        let pretty = serde_json::to_vec_pretty(&info).map_err(|e| e.to_string())?;
        add("information.json", &pretty)?;
        add("README.txt", readme_text(doc).as_bytes())?;
    }
    let cursor = zip.finish().map_err(|e| e.to_string())?;
    Ok(cursor.into_inner())
}

pub(crate) fn readme_text(doc: &Json) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Copy of your personal data held by {}\nRequest {} ({}), generated {}\n\n",
        doc["controller"]["name"].as_str().unwrap_or(""),
        doc["request"]["id"].as_str().unwrap_or(""),
        doc["request"]["regime"].as_str().unwrap_or(""),
        doc["generated_at"].as_str().unwrap_or(""),
    ));
    s.push_str("Each CSV file holds the records of one table; information.json lists, per table, why we process the data (purposes and legal basis), who receives it, how long we keep it and where it came from.\n\n");
    for r in doc["records"].as_array().cloned().unwrap_or_default() {
        s.push_str(&format!(
            "{} ({} records)\n  Retention: {}\n  Legal basis: {}\n",
            r["label"].as_str().unwrap_or(""),
            r["record_count"],
            r["retention"].as_str().unwrap_or(""),
            r["legal_basis"].as_str().unwrap_or(""),
        ));
    }
    s.push_str(&format!(
        "\nYour rights\n{}\n",
        doc["rights"].as_str().unwrap_or("")
    ));
    s
}
