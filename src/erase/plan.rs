//! The erasure planner: from a footprint, the data map, the live catalogs and the holds in
//! force to an [`ErasurePlan`]: per source, ordered steps on pinned primary keys with the
//! new values already computed, plus the exemptions (rows kept and why).
//!
//! The plan is what gets reviewed and approved; the executor only checks that every pinned
//! row still has the digest it had when planned and then writes exactly the planned values.

use super::strategy::{self, Cell, StrategyContext};
use crate::cert::canonical::{es_number, write_string};
use crate::hold::HoldCoverage;
use crate::policy::{DataMap, ExemptionGround, Normalizer, RowAction, Strategy};
use crate::source::{Catalog, Key, Value};
use crate::trace::{Footprint, Identity, TracePlan};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What a plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    Erasure,
    Rectification,
    OptOut,
}

/// A correction asked for in a rectification request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub table: String,
    pub column: String,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Delete,
    Anonymize,
    /// Replace the subject's identities inside someone else's free text.
    Redact,
    Rectify,
    OptOut,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnChange {
    pub column: String,
    /// The strategy name, or `rectify` / `opt_out`.
    pub how: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRow {
    pub key: Key,
    /// SHA-256 of the row's digest columns as planned.
    pub before: String,
    /// New values of the step's `changes`, in order (updates only).
    pub after: Option<Vec<Value>>,
    /// SHA-256 of the digest columns once updated (updates only).
    pub after_digest: Option<String>,
    /// Before values of the changed columns (rectification: recorded before/after).
    pub previous: Option<Vec<Value>>,
    pub found_via: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub table: String,
    pub kind: StepKind,
    /// The columns whose values the digests cover (what the executor re-reads).
    pub digest_columns: Vec<String>,
    pub changes: Vec<ColumnChange>,
    pub rows: Vec<PlannedRow>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcePlan {
    pub source: String,
    pub steps: Vec<Step>,
}

/// Rows kept (or only anonymized) despite the erasure, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exemption {
    pub table: String,
    pub keys: Vec<Key>,
    pub ground: ExemptionGround,
    pub citation: String,
    pub basis: String,
    pub hold_id: Option<String>,
    /// `kept` or `anonymized`.
    pub treatment: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErasurePlan {
    pub request_id: String,
    pub kind: PlanKind,
    pub created_at: String,
    pub policy_digest: String,
    /// Every identity traced (request and discovered): the verifier re-traces them all.
    pub identities: Vec<Identity>,
    pub sources: Vec<SourcePlan>,
    pub exemptions: Vec<Exemption>,
    pub footprint_rows: usize,
    pub mentions: usize,
    pub uses_subject_key: bool,
    pub holds: Vec<String>,
    pub warnings: Vec<String>,
}

impl ErasurePlan {
    /// Rows the plan changes (deletes, anonymizes, redacts or updates).
    pub fn actionable_rows(&self) -> usize {
        self.sources
            .iter()
            .flat_map(|s| &s.steps)
            .map(|s| s.rows.len())
            .sum()
    }

    pub fn is_exempt(&self, table: &str, key: &Key) -> bool {
        self.exemptions
            .iter()
            .any(|e| e.table == table && e.keys.contains(key))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Strategy(String),
}

/// SHA-256 over the canonical JSON of values, each first brought to the form a database
/// hands back (see [`storage_form`]), so a planned value and the same value read back after
/// the write have the same digest.
pub fn digest(values: &[Value]) -> String {
    let mut d = ValueDigest::default();
    for v in values {
        d.push(v);
    }
    d.finish()
}

/// Builds the digest of [`digest`] value by value, without copying the values: the
/// canonical JSON array of their storage forms.
#[derive(Default)]
pub struct ValueDigest {
    json: String,
}

impl ValueDigest {
    fn separate(&mut self) {
        self.json.push(if self.json.is_empty() { '[' } else { ',' });
    }

    /// Appends a value (in its storage form).
    pub fn push(&mut self, v: &Value) {
        self.separate();
        match v {
            Value::Null => self.json.push_str("null"),
            Value::Text(t) if !is_plain_number(t) => write_string(t, &mut self.json),
            Value::Int(i) => self.json.push_str(&i.to_string()),
            other => match storage_form(other) {
                Value::Int(i) => self.json.push_str(&i.to_string()),
                Value::Float(f) => self.json.push_str(&es_number(f)),
                Value::Text(t) => write_string(&t, &mut self.json),
                Value::Bytes(b) => write_string(
                    &format!(
                        "base64:{}",
                        base64::engine::general_purpose::STANDARD.encode(b)
                    ),
                    &mut self.json,
                ),
                Value::Null | Value::Bool(_) => self.json.push_str("null"),
            },
        }
    }

    /// Appends a text value.
    pub fn push_text(&mut self, t: &str) {
        if is_plain_number(t) {
            self.push(&Value::Text(t.to_string()));
        } else {
            self.separate();
            write_string(t, &mut self.json);
        }
    }

    pub fn finish(mut self) -> String {
        if self.json.is_empty() {
            self.json.push('[');
        }
        self.json.push(']');
        hex::encode(Sha256::digest(self.json.as_bytes()))
    }
}

/// Whether two values are the same once stored (see [`storage_form`]).
pub fn same_stored(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Text(x), Value::Text(y)) if x == y => true,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Null, _) | (_, Value::Null) => false,
        _ => storage_form(a) == storage_form(b),
    }
}

/// Values as databases store them: booleans as 0/1 (SQLite), integral floats and plain
/// decimal text (`45000.00`, PostgreSQL numeric) as integers or floats. Text with leading
/// zeros (`00123`) stays text.
pub fn storage_form(v: &Value) -> Value {
    match v {
        Value::Bool(b) => Value::Int(i64::from(*b)),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::Int(*f as i64),
        Value::Text(s) if is_plain_number(s) => match s.parse::<f64>() {
            Ok(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::Int(f as i64),
            Ok(f) => Value::Float(f),
            Err(_) => v.clone(),
        },
        other => other.clone(),
    }
}

fn is_plain_number(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    !int.is_empty()
        && int.chars().all(|c| c.is_ascii_digit())
        && (int == "0" || !int.starts_with('0'))
        && frac.chars().all(|c| c.is_ascii_digit())
        && !(body.contains('.') && frac.is_empty())
}

/// Everything the planner reads.
pub struct PlanInput<'a> {
    pub map: &'a DataMap,
    pub trace_plan: &'a TracePlan,
    pub catalogs: &'a BTreeMap<String, Arc<Catalog>>,
    pub footprint: &'a Footprint,
    pub holds: &'a HoldCoverage,
    pub request_id: &'a str,
    pub created_at: String,
    pub policy_digest: &'a str,
    pub hmac_key: [u8; 32],
    pub subject_key: Option<[u8; 32]>,
}

struct Draft {
    /// (table index, key) -> what happens
    actions: BTreeMap<(usize, Key), RowAction>,
    reasons: BTreeMap<(usize, Key), String>,
}

/// Builds the plan for an erasure.
pub fn plan_erasure(input: &PlanInput<'_>) -> Result<ErasurePlan, PlanError> {
    let map = input.map;
    let fp = input.footprint;
    let mut exemptions: BTreeMap<(String, String, Option<String>, String), Exemption> =
        BTreeMap::new();
    let mut exempt = |table: &str,
                      key: &Key,
                      ground: ExemptionGround,
                      basis: &str,
                      hold: Option<&str>,
                      treatment: &str| {
        let e = exemptions
            .entry((
                table.to_string(),
                format!("{ground:?}"),
                hold.map(str::to_string),
                treatment.to_string(),
            ))
            .or_insert_with(|| Exemption {
                table: table.to_string(),
                keys: Vec::new(),
                ground,
                citation: ground.citation().to_string(),
                basis: basis.to_string(),
                hold_id: hold.map(str::to_string),
                treatment: treatment.to_string(),
            });
        e.keys.push(key.clone());
    };

    let mut draft = Draft {
        actions: BTreeMap::new(),
        reasons: BTreeMap::new(),
    };
    for (&ti, rows) in &fp.tables {
        let t = &map.tables[ti];
        for key in rows.rows.keys() {
            if let Some((hold, ground)) = input.holds.own_row(&t.name, key) {
                exempt(
                    &t.name,
                    key,
                    *ground,
                    &format!("legal hold {hold}"),
                    Some(hold),
                    "kept",
                );
                continue;
            }
            match (t.on_erasure, &t.exemption) {
                (RowAction::Keep, ex) => {
                    let (g, b) = ex.as_ref().map_or(
                        (
                            ExemptionGround::LegalObligation,
                            "kept by policy".to_string(),
                        ),
                        |e| (e.ground, e.basis.clone()),
                    );
                    exempt(&t.name, key, g, &b, None, "kept");
                }
                (RowAction::Anonymize, ex) => {
                    if let Some(e) = ex {
                        exempt(&t.name, key, e.ground, &e.basis, None, "anonymized");
                    }
                    draft
                        .actions
                        .insert((ti, key.clone()), RowAction::Anonymize);
                }
                (RowAction::Delete, _) => {
                    draft.actions.insert((ti, key.clone()), RowAction::Delete);
                }
            }
        }
    }
    resolve_foreign_keys(input, &mut draft)?;

    // Steps per table.
    let ctx_ids: Vec<(Normalizer, String)> = fp
        .identities
        .iter()
        .filter_map(|i| {
            map.normalizer(&i.kind)
                .map(|n| (n.clone(), i.value.clone()))
        })
        .collect();
    let ctx = StrategyContext {
        hmac_key: input.hmac_key,
        subject_key: input.subject_key,
        nonce_salt: input.request_id,
        identities: &ctx_ids,
    };
    let mut steps: BTreeMap<String, Vec<Step>> = BTreeMap::new();
    let mut uses_subject_key = false;
    for (&ti, rows) in &fp.tables {
        let t = &map.tables[ti];
        let tp = input.trace_plan.table(ti);
        let mut deletes = Vec::new();
        let mut updates = Vec::new();
        let anon_cols: Vec<(&str, &Strategy)> = t
            .columns
            .iter()
            .filter_map(|c| {
                c.strategy
                    .as_ref()
                    .filter(|s| **s != Strategy::Keep)
                    .map(|s| (c.name.as_str(), s))
            })
            .collect();
        for (key, row) in &rows.rows {
            let found_via = fp.path_text(map, ti, key);
            match draft.actions.get(&(ti, key.clone())) {
                Some(RowAction::Delete) => deletes.push(PlannedRow {
                    key: key.clone(),
                    before: digest(&row.values),
                    after: None,
                    after_digest: None,
                    previous: None,
                    found_via,
                }),
                Some(RowAction::Anonymize) => {
                    let mut new_row = row.values.clone();
                    let mut after = Vec::with_capacity(anon_cols.len());
                    for (col, s) in &anon_cols {
                        let p = tp.pos(col).ok_or_else(|| {
                            PlanError::Strategy(format!("{}.{col} is not selected", t.name))
                        })?;
                        let cell = Cell {
                            table: &t.name,
                            column: col,
                            key: &key.to_string(),
                        };
                        let v = strategy::apply(s, &row.values[p], tp.ty(col), &cell, &ctx)
                            .map_err(|e| PlanError::Strategy(e.0))?;
                        uses_subject_key |= **s == Strategy::Encrypt;
                        new_row[p] = v.clone();
                        after.push(v);
                    }
                    updates.push(PlannedRow {
                        key: key.clone(),
                        before: digest(&row.values),
                        after_digest: Some(digest(&new_row)),
                        after: Some(after),
                        previous: None,
                        found_via,
                    });
                }
                _ => {}
            }
        }
        let entry = steps.entry(t.source.clone()).or_default();
        if !updates.is_empty() {
            entry.push(Step {
                table: t.name.clone(),
                kind: StepKind::Anonymize,
                digest_columns: tp.columns.clone(),
                changes: anon_cols
                    .iter()
                    .map(|(c, s)| ColumnChange {
                        column: c.to_string(),
                        how: s.name().to_string(),
                    })
                    .collect(),
                rows: updates,
                reason: draft
                    .reasons
                    .iter()
                    .find(|((i, _), _)| *i == ti)
                    .map(|(_, r)| r.clone())
                    .or_else(|| Some("the data map anonymizes rows of this table".into())),
            });
        }
        if !deletes.is_empty() {
            entry.push(Step {
                table: t.name.clone(),
                kind: StepKind::Delete,
                digest_columns: tp.columns.clone(),
                changes: Vec::new(),
                rows: deletes,
                reason: None,
            });
        }
    }

    // Mentions: redact the subject's identities in other people's free text.
    let mut redactions: BTreeMap<(usize, String), Vec<PlannedRow>> = BTreeMap::new();
    let mut seen: BTreeSet<(usize, Key, String)> = BTreeSet::new();
    for m in &fp.mentions {
        let Some(ti) = map.table_idx(&m.table) else {
            continue;
        };
        if !seen.insert((ti, m.key.clone(), m.column.clone())) {
            continue;
        }
        if let Some((hold, ground)) = input.holds.other_row(&m.table, &m.key) {
            exempt(
                &m.table,
                &m.key,
                *ground,
                &format!("legal hold {hold}"),
                Some(hold),
                "kept",
            );
            continue;
        }
        let before = vec![Value::Text(m.text.clone())];
        let redacted = Value::Text(strategy::redact(&m.text, &ctx_ids));
        let after = vec![redacted];
        redactions
            .entry((ti, m.column.clone()))
            .or_default()
            .push(PlannedRow {
                key: m.key.clone(),
                before: digest(&before),
                after_digest: Some(digest(&after)),
                after: Some(after),
                previous: None,
                found_via: format!(
                    "residual scan: {} in {}.{} ({})",
                    m.identity_kind, m.table, m.column, m.form
                ),
            });
    }
    for ((ti, col), rows) in redactions {
        let t = &map.tables[ti];
        steps.entry(t.source.clone()).or_default().push(Step {
            table: t.name.clone(),
            kind: StepKind::Redact,
            digest_columns: vec![col.clone()],
            changes: vec![ColumnChange {
                column: col,
                how: "redact".into(),
            }],
            rows,
            reason: Some(
                "the subject's identifiers appear in this free text of someone else's record"
                    .into(),
            ),
        });
    }

    let sources = order_steps(map, input.catalogs, steps);
    let mut warnings = Vec::new();
    if let Some((hold, _)) = &input.holds.subject {
        warnings.push(format!(
            "the subject is under legal hold {hold}: every row is kept"
        ));
    }
    Ok(ErasurePlan {
        request_id: input.request_id.to_string(),
        kind: PlanKind::Erasure,
        created_at: input.created_at.clone(),
        policy_digest: input.policy_digest.to_string(),
        identities: fp.identities.clone(),
        sources,
        exemptions: exemptions.into_values().collect(),
        footprint_rows: fp.row_count(),
        mentions: fp.mentions.len(),
        uses_subject_key,
        holds: input.holds.hold_ids().into_iter().collect(),
        warnings,
    })
}

/// A row that is kept or only anonymized may reference (by a foreign key the catalog
/// declares) a row planned for deletion; deleting that row would break the reference, so
/// it is anonymized instead, where its table has strategies for every column.
fn resolve_foreign_keys(input: &PlanInput<'_>, draft: &mut Draft) -> Result<(), PlanError> {
    let map = input.map;
    let fp = input.footprint;
    loop {
        let mut switch: Vec<((usize, Key), String)> = Vec::new();
        for (&ci, child_rows) in &fp.tables {
            let child = &map.tables[ci];
            let Some(cat) = input.catalogs.get(&child.source) else {
                continue;
            };
            let Some(info) = cat.table(&child.name) else {
                continue;
            };
            let cp = input.trace_plan.table(ci);
            for fk in &info.foreign_keys {
                let Some(pi) = map.table_idx(&fk.ref_table) else {
                    continue;
                };
                let Some(parent_rows) = fp.tables.get(&pi) else {
                    continue;
                };
                let pp = input.trace_plan.table(pi);
                // The referenced columns must be the parent's key for a lookup by key.
                if fk.ref_columns != map.tables[pi].primary_key {
                    continue;
                }
                let Some(positions) = fk
                    .columns
                    .iter()
                    .map(|c| cp.pos(c))
                    .collect::<Option<Vec<usize>>>()
                else {
                    continue;
                };
                for (ckey, crow) in &child_rows.rows {
                    let deleted = matches!(
                        draft.actions.get(&(ci, ckey.clone())),
                        Some(RowAction::Delete)
                    );
                    if deleted {
                        continue;
                    }
                    let parent_key =
                        Key(positions.iter().map(|&p| crow.values[p].clone()).collect());
                    let parent_key = Key(parent_key
                        .0
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| pp.coerce(&map.tables[pi].primary_key[i], &v))
                        .collect());
                    if parent_rows.rows.contains_key(&parent_key)
                        && matches!(
                            draft.actions.get(&(pi, parent_key.clone())),
                            Some(RowAction::Delete)
                        )
                    {
                        switch.push(((pi, parent_key), format!("kept rows of {} reference it ({}), so it is anonymized instead of deleted", child.name, fk.columns.join(", "))));
                    }
                }
            }
        }
        if switch.is_empty() {
            return Ok(());
        }
        for ((pi, key), reason) in switch {
            let p = &map.tables[pi];
            let complete = !p.columns.is_empty() && p.columns.iter().all(|c| c.strategy.is_some());
            if !complete {
                return Err(PlanError::Conflict(format!(
                    "row {key} of {} cannot be deleted: {reason}; give every column of {} an erasure strategy so it can be anonymized",
                    p.name, p.name
                )));
            }
            draft
                .actions
                .insert((pi, key.clone()), RowAction::Anonymize);
            draft.reasons.insert((pi, key), reason);
        }
    }
}

/// Orders each source's steps: updates first, then deletes children before parents (from
/// the catalog's foreign keys, with the map's `erase_before` overrides).
fn order_steps(
    map: &DataMap,
    catalogs: &BTreeMap<String, Arc<Catalog>>,
    steps: BTreeMap<String, Vec<Step>>,
) -> Vec<SourcePlan> {
    let mut out = Vec::new();
    for (source, mut list) in steps {
        let (mut deletes, mut updates): (Vec<Step>, Vec<Step>) =
            list.drain(..).partition(|s| s.kind == StepKind::Delete);
        updates.sort_by(|a, b| {
            a.table
                .cmp(&b.table)
                .then(format!("{:?}", a.kind).cmp(&format!("{:?}", b.kind)))
        });
        let tables: Vec<String> = deletes.iter().map(|s| s.table.clone()).collect();
        let order = delete_order(map, catalogs.get(&source).map(Arc::as_ref), &tables);
        deletes.sort_by_key(|s| {
            order
                .iter()
                .position(|t| *t == s.table)
                .unwrap_or(usize::MAX)
        });
        updates.extend(deletes);
        out.push(SourcePlan {
            source,
            steps: updates,
        });
    }
    out
}

/// Tables in the order their rows can be deleted: a table before every table it
/// references. Ties and cycles fall back to name order.
pub fn delete_order(map: &DataMap, catalog: Option<&Catalog>, tables: &[String]) -> Vec<String> {
    let set: BTreeSet<&String> = tables.iter().collect();
    // edges: child -> parents (child must come first)
    let mut must_precede: BTreeMap<&String, BTreeSet<String>> = BTreeMap::new();
    for t in &set {
        let mut before = BTreeSet::new();
        if let Some(info) = catalog.and_then(|c| c.table(t)) {
            for fk in &info.foreign_keys {
                if set.contains(&fk.ref_table) && fk.ref_table != **t {
                    before.insert(fk.ref_table.clone());
                }
            }
        }
        if let Some(mt) = map.table(t) {
            for b in &mt.erase_before {
                if set.contains(b) {
                    before.insert(b.clone());
                }
            }
        }
        must_precede.insert(t, before);
    }
    // Kahn's algorithm on "t must be deleted before each of must_precede[t]".
    let mut order = Vec::new();
    let mut remaining: BTreeSet<String> = set.iter().map(|s| (*s).clone()).collect();
    while !remaining.is_empty() {
        let ready: Option<String> = remaining
            .iter()
            .find(|t| {
                // t is ready when no remaining table must be deleted before it.
                !remaining
                    .iter()
                    .any(|o| o != *t && must_precede.get(o).is_some_and(|ps| ps.contains(*t)))
            })
            .cloned();
        let next = ready.unwrap_or_else(|| remaining.iter().next().cloned().unwrap_or_default());
        remaining.remove(&next);
        order.push(next);
    }
    order
}

/// Builds the plan for a rectification: set the given columns to the given values on the
/// subject's rows of those tables.
pub fn plan_updates(
    input: &PlanInput<'_>,
    kind: PlanKind,
    changes: &[Change],
) -> Result<ErasurePlan, PlanError> {
    let map = input.map;
    let fp = input.footprint;
    let mut steps: BTreeMap<String, Vec<Step>> = BTreeMap::new();
    let mut exemptions = Vec::new();
    let mut by_table: BTreeMap<usize, Vec<&Change>> = BTreeMap::new();
    for c in changes {
        if let Some(ti) = map.table_idx(&c.table) {
            by_table.entry(ti).or_default().push(c);
        }
    }
    for (ti, cs) in by_table {
        let Some(rows) = fp.tables.get(&ti) else {
            continue;
        };
        let t = &map.tables[ti];
        let tp = input.trace_plan.table(ti);
        let mut planned = Vec::new();
        let mut held = Vec::new();
        for (key, row) in &rows.rows {
            if let Some((hold, _)) = input.holds.own_row(&t.name, key) {
                held.push((key.clone(), hold.clone()));
                continue;
            }
            let mut new_row = row.values.clone();
            let mut after = Vec::new();
            let mut previous = Vec::new();
            for c in &cs {
                let p = tp.pos(&c.column).ok_or_else(|| PlanError::Invalid {
                    field: "changes".into(),
                    message: format!("{}.{} is not mapped", c.table, c.column),
                })?;
                previous.push(row.values[p].clone());
                new_row[p] = c.value.clone();
                after.push(c.value.clone());
            }
            if new_row == row.values {
                continue; // already as asked
            }
            planned.push(PlannedRow {
                key: key.clone(),
                before: digest(&row.values),
                after_digest: Some(digest(&new_row)),
                after: Some(after),
                previous: Some(previous),
                found_via: fp.path_text(map, ti, key),
            });
        }
        for (key, hold) in held {
            exemptions.push(Exemption {
                table: t.name.clone(),
                keys: vec![key],
                ground: ExemptionGround::LegalClaims,
                citation: ExemptionGround::LegalClaims.citation().into(),
                basis: format!("legal hold {hold}"),
                hold_id: Some(hold),
                treatment: "kept".into(),
            });
        }
        if !planned.is_empty() {
            steps.entry(t.source.clone()).or_default().push(Step {
                table: t.name.clone(),
                kind: if kind == PlanKind::OptOut {
                    StepKind::OptOut
                } else {
                    StepKind::Rectify
                },
                digest_columns: tp.columns.clone(),
                changes: cs
                    .iter()
                    .map(|c| ColumnChange {
                        column: c.column.clone(),
                        how: if kind == PlanKind::OptOut {
                            "opt_out".into()
                        } else {
                            "rectify".into()
                        },
                    })
                    .collect(),
                rows: planned,
                reason: None,
            });
        }
    }
    Ok(ErasurePlan {
        request_id: input.request_id.to_string(),
        kind,
        created_at: input.created_at.clone(),
        policy_digest: input.policy_digest.to_string(),
        identities: fp.identities.clone(),
        sources: order_steps(map, input.catalogs, steps),
        exemptions,
        footprint_rows: fp.row_count(),
        mentions: fp.mentions.len(),
        uses_subject_key: false,
        holds: input.holds.hold_ids().into_iter().collect(),
        warnings: Vec::new(),
    })
}

/// The opt-out changes: every column the map names for opting out of sale/sharing, on
/// every table of the footprint that has one.
pub fn opt_out_changes(map: &DataMap, fp: &Footprint) -> Vec<Change> {
    let mut out = Vec::new();
    for &ti in fp.tables.keys() {
        let t = &map.tables[ti];
        for c in &t.columns {
            if let Some(v) = &c.opt_out {
                out.push(Change {
                    table: t.name.clone(),
                    column: c.name.clone(),
                    value: v.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_forms_compare_as_the_database_returns_them() {
        assert_eq!(digest(&[Value::Bool(true)]), digest(&[Value::Int(1)]));
        assert_eq!(
            digest(&[Value::Text("45000.00".into())]),
            digest(&[Value::Float(45000.0)])
        );
        assert_eq!(
            digest(&[Value::Text("12.50".into())]),
            digest(&[Value::Float(12.5)])
        );
        assert_ne!(
            digest(&[Value::Text("00123".into())]),
            digest(&[Value::Int(123)])
        );
        assert_ne!(
            digest(&[Value::Text("1985-01-01".into())]),
            digest(&[Value::Int(1985)])
        );
        assert_ne!(digest(&[Value::Null]), digest(&[Value::Int(0)]));
    }

    #[test]
    fn the_streamed_digest_is_sha256_of_canonical_json_of_storage_forms() {
        let values = vec![
            Value::Null,
            Value::Bool(false),
            Value::Int(-42),
            Value::Float(2.5),
            Value::Float(1e21),
            Value::Float(3.0),
            Value::Text("45000.00".into()),
            Value::Text("0.5".into()),
            Value::Text("00123".into()),
            Value::Text("quote \" and \\ and \u{1}\n".into()),
            Value::Text("Jürgen 😀".into()),
            Value::Bytes(vec![0, 1, 255]),
        ];
        let canon: Vec<Value> = values.iter().map(storage_form).collect();
        let json = crate::cert::canonical::canonical(&canon).unwrap();
        assert_eq!(
            digest(&values),
            hex::encode(Sha256::digest(json.as_bytes()))
        );
        assert_eq!(
            digest(&[]),
            hex::encode(Sha256::digest(b"[]")),
            "an empty list"
        );
        let mut d = ValueDigest::default();
        d.push_text("7");
        d.push_text("k:1");
        assert_eq!(
            d.finish(),
            digest(&[Value::Text("7".into()), Value::Text("k:1".into())])
        );
        for (a, b) in [
            (Value::Bool(true), Value::Int(1)),
            (Value::Text("12.50".into()), Value::Float(12.5)),
            (Value::Text("x".into()), Value::Text("x".into())),
        ] {
            assert!(same_stored(&a, &b), "{a:?} {b:?}");
        }
        for (a, b) in [
            (Value::Null, Value::Text(String::new())),
            (Value::Text("00123".into()), Value::Int(123)),
            (Value::Text("x".into()), Value::Text("y".into())),
        ] {
            assert!(!same_stored(&a, &b), "{a:?} {b:?}");
        }
    }
}
