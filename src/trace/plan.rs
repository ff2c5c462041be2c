//! The trace plan: the data map compiled against the live catalogs once (select lists,
//! column positions and types, text indexes), so each trace only binds values.

use crate::policy::{DataMap, Table};
use crate::source::{Catalog, ColumnType, Dialect, TextIndex, TypeKind, Value};
use std::collections::{BTreeMap, HashMap};

/// Why a plan could not be compiled (the data map does not match the database).
#[derive(Debug, thiserror::Error)]
#[error(
    "the data map does not match source \"{source_name}\": {message} (run `lethe datamap check`)"
)]
pub struct PlanError {
    pub source_name: String,
    pub message: String,
}

/// One table, ready to query.
#[derive(Debug, Clone)]
pub struct TablePlan {
    pub index: usize,
    pub name: String,
    pub source: String,
    pub dialect: Dialect,
    /// Selected columns: the map's allowed columns, primary key first.
    pub columns: Vec<String>,
    pub types: Vec<Option<ColumnType>>,
    /// `SELECT <cols> FROM <table>` with dialect-specific casts.
    pub select: String,
    pub pk_positions: Vec<usize>,
    pub positions: HashMap<String, usize>,
    pub text_indexes: HashMap<String, TextIndex>,
}

impl TablePlan {
    pub fn pos(&self, col: &str) -> Option<usize> {
        self.positions.get(col).copied()
    }

    pub fn ty(&self, col: &str) -> Option<&ColumnType> {
        self.pos(col).and_then(|p| self.types[p].as_ref())
    }

    /// Converts an identity or link value to the column's type for binding (an integer
    /// column compares with an integer).
    pub fn coerce(&self, col: &str, v: &Value) -> Value {
        match (self.ty(col).map(|t| t.kind), v) {
            (Some(TypeKind::Integer), Value::Text(s)) => s
                .trim()
                .parse::<i64>()
                .map_or_else(|_| v.clone(), Value::Int),
            (Some(TypeKind::Text), Value::Int(i)) => Value::Text(i.to_string()),
            _ => v.clone(),
        }
    }
}

/// The compiled plan for every table of a data map.
#[derive(Debug, Clone)]
pub struct TracePlan {
    pub tables: Vec<TablePlan>,
}

impl TracePlan {
    pub fn compile(
        map: &DataMap,
        catalogs: &BTreeMap<String, std::sync::Arc<Catalog>>,
    ) -> Result<TracePlan, PlanError> {
        let mut tables = Vec::with_capacity(map.tables.len());
        for (i, t) in map.tables.iter().enumerate() {
            let cat = catalogs.get(&t.source).ok_or_else(|| PlanError {
                source_name: t.source.clone(),
                message: "no catalog".into(),
            })?;
            tables.push(compile_table(map, i, t, cat)?);
        }
        Ok(TracePlan { tables })
    }

    pub fn table(&self, idx: usize) -> &TablePlan {
        &self.tables[idx]
    }
}

fn compile_table(
    map: &DataMap,
    index: usize,
    t: &Table,
    cat: &Catalog,
) -> Result<TablePlan, PlanError> {
    let err = |message: String| PlanError {
        source_name: t.source.clone(),
        message,
    };
    let info = cat
        .table(&t.name)
        .ok_or_else(|| err(format!("table {} does not exist", t.name)))?;
    let columns = map.allowed_columns(index);
    let mut types = Vec::with_capacity(columns.len());
    let mut select = String::from("SELECT ");
    for (j, c) in columns.iter().enumerate() {
        let ci = info
            .column(c)
            .ok_or_else(|| err(format!("column {}.{c} does not exist", t.name)))?;
        if j > 0 {
            select.push_str(", ");
        }
        select.push_str(&cat.dialect.select_column(c, Some(&ci.ty)));
        types.push(Some(ci.ty.clone()));
    }
    select.push_str(" FROM ");
    select.push_str(&cat.dialect.quote(&t.name));
    let positions: HashMap<String, usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), i))
        .collect();
    let pk_positions = t
        .primary_key
        .iter()
        .map(|c| positions[c.as_str()])
        .collect();
    let text_indexes = info
        .text_indexes
        .iter()
        .map(|ti| (ti.column().to_string(), ti.clone()))
        .collect();
    Ok(TablePlan {
        index,
        name: t.name.clone(),
        source: t.source.clone(),
        dialect: cat.dialect,
        columns,
        types,
        select,
        pk_positions,
        positions,
        text_indexes,
    })
}
