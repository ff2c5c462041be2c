//! The footprint of a data subject: per table the rows that belong to them (with the path
//! that found each row), plus mentions of their identities in other people's free text.

use crate::policy::{DataMap, Link};
use crate::source::{Key, Value};
use serde::Serialize;
use std::collections::BTreeMap;

/// How a row was reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Via {
    /// The row's identity column holds one of the subject's identities.
    Identity { kind: String, column: String },
    /// A link from a row already in the footprint (index into `DataMap::links`).
    Link { link: usize },
}

#[derive(Debug, Clone, Serialize)]
pub struct FoundRow {
    /// Values of [`TableRows::columns`], in that order.
    pub values: Vec<Value>,
    pub via: Via,
    /// The row this one was reached from (for links).
    pub parent: Option<(usize, Key)>,
    /// Number of hops from an identity (0 for identity matches).
    pub hop: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableRows {
    pub table: String,
    pub source: String,
    pub columns: Vec<String>,
    pub rows: BTreeMap<Key, FoundRow>,
}

/// An identity found in free text of a row that is not otherwise the subject's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mention {
    pub table: String,
    pub key: Key,
    pub column: String,
    pub identity_kind: String,
    /// The spelling that matched, e.g. `URL-encoded`.
    pub form: String,
    /// The column's text as read (someone else's data: used to plan its redaction, never
    /// exported or logged).
    #[serde(skip)]
    pub text: String,
}

/// Counters of one trace.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TraceStats {
    pub rounds: u32,
    pub link_queries: u32,
    pub residual_queries: u32,
    pub residual_candidates: u64,
    pub link_micros: u64,
    pub residual_micros: u64,
}

/// One normalized identity (a raw personal value: never log it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct Identity {
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Footprint {
    /// By table index in the data map.
    pub tables: BTreeMap<usize, TableRows>,
    pub mentions: Vec<Mention>,
    /// The identities traced: those of the request and those discovered in the subject's rows.
    pub identities: Vec<Identity>,
    pub stats: TraceStats,
}

/// One step of the path that found a row, for people.
#[derive(Debug, Clone, Serialize)]
pub struct PathStep {
    pub table: String,
    pub key: Key,
    pub how: String,
}

impl Footprint {
    pub fn row_count(&self) -> usize {
        self.tables.values().map(|t| t.rows.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.row_count() == 0 && self.mentions.is_empty()
    }

    pub fn table(&self, map: &DataMap, name: &str) -> Option<&TableRows> {
        map.table_idx(name).and_then(|i| self.tables.get(&i))
    }

    /// Keys of a table's rows (empty if none).
    pub fn keys(&self, map: &DataMap, name: &str) -> Vec<Key> {
        self.table(map, name)
            .map(|t| t.rows.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The chain of rows from an identity to `(table, key)`, first step first.
    pub fn path(&self, map: &DataMap, table: usize, key: &Key) -> Vec<PathStep> {
        let mut steps = Vec::new();
        let mut cur = Some((table, key.clone()));
        let mut guard = 0;
        while let Some((t, k)) = cur {
            guard += 1;
            let Some(row) = self.tables.get(&t).and_then(|tr| tr.rows.get(&k)) else {
                break;
            };
            let tname = &map.tables[t].name;
            let how = match &row.via {
                Via::Identity { kind, column } => format!("{kind} matches {tname}.{column}"),
                Via::Link { link } => describe_link(map, &map.links[*link]),
            };
            steps.push(PathStep {
                table: tname.clone(),
                key: k.clone(),
                how,
            });
            cur = row.parent.clone();
            if guard > 64 {
                break;
            }
        }
        steps.reverse();
        steps
    }

    /// The path as one line: `email matches contacts.email → deals.contact_id = contacts.id`.
    pub fn path_text(&self, map: &DataMap, table: usize, key: &Key) -> String {
        self.path(map, table, key)
            .iter()
            .map(|s| s.how.clone())
            .collect::<Vec<_>>()
            .join(" → ")
    }
}

/// `activities.parent_id = deals.id (parent_type = 'Deal')`.
pub fn describe_link(map: &DataMap, l: &Link) -> String {
    let target = &map.tables[l.target].name;
    let from = &map.tables[l.from].name;
    let mut s =
        l.on.iter()
            .map(|(t, f)| format!("{target}.{t} = {from}.{f}"))
            .collect::<Vec<_>>()
            .join(" and ");
    if let Some((c, v)) = &l.polymorphic {
        s.push_str(&format!(" ({c} = '{v}')"));
    }
    for c in &l.conditions {
        let vals: Vec<String> = c.values.iter().map(|v| v.to_string()).collect();
        s.push_str(&format!(" [{} {:?} {}]", c.column, c.op, vals.join(", ")));
    }
    s
}
