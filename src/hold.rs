//! Legal holds: a person (by identity), a whole table, or listed rows, kept under a matter
//! and reason until released or expired. Held rows are never erased (nor, later, touched by
//! retention); plans report them as exemptions with the hold's legal ground.
//!
//! A person is matched by per-identity keyed hashes, so holds can be checked against a
//! footprint without decrypting every hold.

use crate::app::{Actor, App};
use crate::audit;
use crate::policy::ExemptionGround;
use crate::request::service::{RequestError, normalize_identities};
use crate::source::{Key, Value};
use crate::store::models::HoldRow;
use crate::store::schema::holds;
use crate::store::{StoreConn, StoreError, now};
use crate::trace::{Footprint, Identity};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// What a new hold covers.
#[derive(Debug, Clone)]
pub enum HoldScope {
    /// Everything that belongs to a person, identified by (kind, value) pairs.
    Subject(Vec<(String, String)>),
    Table(String),
    Rows {
        table: String,
        keys: Vec<Vec<Value>>,
    },
}

#[derive(Debug, Clone)]
pub struct NewHold {
    pub scope: HoldScope,
    pub matter: String,
    pub reason: String,
    pub ground: ExemptionGround,
    pub expires_at: Option<NaiveDateTime>,
}

fn invalid(field: &str, msg: impl Into<String>) -> RequestError {
    RequestError::Invalid {
        field: field.into(),
        message: msg.into(),
    }
}

/// The keyed hash of one identity, as stored on subject holds.
pub fn identity_ref(app: &App, id: &Identity) -> String {
    app.key.keyed_hash(
        "hold-identity",
        format!("{}={}", id.kind, id.value).as_bytes(),
    )
}

pub fn create(app: &App, actor: &Actor, new: NewHold) -> Result<HoldRow, RequestError> {
    for (field, v, max) in [("matter", &new.matter, 200), ("reason", &new.reason, 2000)] {
        if v.trim().is_empty() {
            return Err(invalid(field, "is required"));
        }
        if v.len() > max {
            return Err(invalid(field, format!("at most {max} characters")));
        }
    }
    if let Some(e) = new.expires_at
        && e <= now()
    {
        return Err(invalid("expires_at", "is in the past"));
    }
    let id = format!("hold-{}", uuid::Uuid::now_v7());
    let map = &app.policy.datamap;
    let mut row = HoldRow {
        id: id.clone(),
        scope: String::new(),
        subject_refs: None,
        identities_enc: None,
        identity_summary: None,
        table_name: None,
        row_keys: None,
        matter: new.matter.trim().to_string(),
        reason: new.reason.trim().to_string(),
        ground: serde_json::to_value(new.ground)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        issued_by: actor.id.clone(),
        created_at: now(),
        expires_at: new.expires_at,
        released_at: None,
        released_by: None,
        release_reason: None,
    };
    match &new.scope {
        HoldScope::Subject(raw) => {
            let ids = normalize_identities(app, raw)?;
            let refs: Vec<String> = ids.iter().map(|i| identity_ref(app, i)).collect();
            row.scope = "subject".into();
            row.subject_refs = Some(serde_json::to_string(&refs).unwrap_or_default());
            row.identities_enc = Some(app.key.seal(
                "hold-identities",
                &id,
                &serde_json::to_vec(&ids).unwrap_or_default(),
            )?);
            row.identity_summary = Some(
                ids.iter()
                    .map(|i| {
                        format!(
                            "{} {}",
                            i.kind,
                            map.normalizer(&i.kind)
                                .map_or("***".into(), |n| n.mask(&i.value))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        HoldScope::Table(t) => {
            map.table(t).ok_or_else(|| {
                invalid(
                    "table",
                    format!("unknown table \"{t}\" (not in the data map)"),
                )
            })?;
            row.scope = "table".into();
            row.table_name = Some(t.clone());
        }
        HoldScope::Rows { table, keys } => {
            let t = map.table(table).ok_or_else(|| {
                invalid(
                    "table",
                    format!("unknown table \"{table}\" (not in the data map)"),
                )
            })?;
            if keys.is_empty() {
                return Err(invalid("keys", "list at least one row key"));
            }
            for (i, k) in keys.iter().enumerate() {
                if k.len() != t.primary_key.len() {
                    return Err(invalid(
                        &format!("keys[{i}]"),
                        format!(
                            "{} has a primary key of {} column(s)",
                            table,
                            t.primary_key.len()
                        ),
                    ));
                }
            }
            row.scope = "rows".into();
            row.table_name = Some(table.clone());
            row.row_keys = Some(serde_json::to_string(keys).unwrap_or_default());
        }
    }
    app.store.write(|conn| -> Result<(), RequestError> {
        diesel::insert_into(holds::table).values(&row).execute(conn).map_err(StoreError::from)?;
        audit::append(
            conn,
            &actor.id,
            "hold.created",
            &format!("hold:{id}"),
            json!({"scope": row.scope, "table": row.table_name, "matter": row.matter, "ground": row.ground, "expires_at": row.expires_at.as_ref().map(audit::format_time)}),
        )?;
        Ok(())
    })?;
    Ok(row)
}

pub fn release(app: &App, actor: &Actor, id: &str, reason: &str) -> Result<HoldRow, RequestError> {
    if reason.trim().is_empty() {
        return Err(invalid("reason", "is required"));
    }
    app.store.write(|conn| -> Result<HoldRow, RequestError> {
        let mut row: HoldRow = holds::table.find(id).first(conn).map_err(|e| match e {
            diesel::result::Error::NotFound => RequestError::NotFound(id.to_string()),
            other => StoreError::from(other).into(),
        })?;
        if row.released_at.is_some() {
            return Err(RequestError::Conflict(format!(
                "hold {id} was already released"
            )));
        }
        let at = now();
        diesel::update(holds::table.find(id))
            .set((
                holds::released_at.eq(Some(at)),
                holds::released_by.eq(Some(&actor.id)),
                holds::release_reason.eq(Some(reason)),
            ))
            .execute(conn)
            .map_err(StoreError::from)?;
        audit::append(
            conn,
            &actor.id,
            "hold.released",
            &format!("hold:{id}"),
            json!({"reason": reason}),
        )?;
        row.released_at = Some(at);
        row.released_by = Some(actor.id.clone());
        row.release_reason = Some(reason.to_string());
        Ok(row)
    })
}

pub fn get(conn: &mut StoreConn, id: &str) -> Result<HoldRow, StoreError> {
    Ok(holds::table.find(id).first(conn)?)
}

/// Holds in force now (not released, not expired), or all of them.
pub fn list(conn: &mut StoreConn, active_only: bool) -> Result<Vec<HoldRow>, StoreError> {
    let rows: Vec<HoldRow> = holds::table.order(holds::created_at.desc()).load(conn)?;
    let at = now();
    Ok(rows
        .into_iter()
        .filter(|h| !active_only || is_active(h, at))
        .collect())
}

pub fn is_active(h: &HoldRow, at: NaiveDateTime) -> bool {
    h.released_at.is_none() && h.expires_at.is_none_or(|e| e > at)
}

/// Which rows of a footprint are held, and by which hold.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HoldCoverage {
    /// A subject hold covers the whole person.
    pub subject: Option<(String, ExemptionGround)>,
    /// Table holds: table name -> (hold id, ground).
    pub tables: BTreeMap<String, (String, ExemptionGround)>,
    /// Row holds: (table, key) -> (hold id, ground).
    pub rows: BTreeMap<(String, Key), (String, ExemptionGround)>,
}

impl HoldCoverage {
    /// The hold (if any) that covers a row of the subject's own footprint.
    pub fn own_row(&self, table: &str, key: &Key) -> Option<&(String, ExemptionGround)> {
        self.subject.as_ref().or_else(|| self.other_row(table, key))
    }

    /// The hold (if any) that covers a row that is not the subject's (a mention).
    pub fn other_row(&self, table: &str, key: &Key) -> Option<&(String, ExemptionGround)> {
        self.tables
            .get(table)
            .or_else(|| self.rows.get(&(table.to_string(), key.clone())))
    }

    pub fn hold_ids(&self) -> BTreeSet<String> {
        let mut ids: BTreeSet<String> = self.tables.values().map(|h| h.0.clone()).collect();
        ids.extend(self.rows.values().map(|h| h.0.clone()));
        if let Some(s) = &self.subject {
            ids.insert(s.0.clone());
        }
        ids
    }
}

fn ground_of(h: &HoldRow) -> ExemptionGround {
    ExemptionGround::parse(&h.ground).unwrap_or(ExemptionGround::LegalClaims)
}

/// Matches the active holds against a subject's identities.
pub fn coverage(app: &App, active: &[HoldRow], identities: &[Identity]) -> HoldCoverage {
    let refs: BTreeSet<String> = identities.iter().map(|i| identity_ref(app, i)).collect();
    let mut c = HoldCoverage::default();
    for h in active {
        match h.scope.as_str() {
            "subject" => {
                let held: Vec<String> = h
                    .subject_refs
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or_default();
                if c.subject.is_none() && held.iter().any(|r| refs.contains(r)) {
                    c.subject = Some((h.id.clone(), ground_of(h)));
                }
            }
            "table" => {
                if let Some(t) = &h.table_name {
                    c.tables
                        .entry(t.clone())
                        .or_insert((h.id.clone(), ground_of(h)));
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
                        c.rows
                            .entry((t.clone(), normalize_key(k)))
                            .or_insert((h.id.clone(), ground_of(h)));
                    }
                }
            }
            _ => {}
        }
    }
    c
}

/// Keys typed into a hold as JSON (`[42]`, `["42"]`) compare with keys read from the source.
fn normalize_key(k: Vec<Value>) -> Key {
    Key(k
        .into_iter()
        .map(|v| match &v {
            Value::Text(s) => s.parse::<i64>().map_or(v.clone(), Value::Int),
            Value::Float(f) if f.fract() == 0.0 => Value::Int(*f as i64),
            _ => v,
        })
        .collect())
}

/// Rows of a footprint covered by holds, for display.
pub fn held_rows(c: &HoldCoverage, fp: &Footprint) -> usize {
    fp.tables
        .values()
        .map(|t| {
            t.rows
                .keys()
                .filter(|k| c.own_row(&t.table, k).is_some())
                .count()
        })
        .sum()
}
