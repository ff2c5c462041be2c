//! The verifier: after execution, re-trace every identity the plan traced and re-run the
//! residual scan; anything found outside the recorded exemptions fails the request. Every
//! pinned row is also re-read and must be in its planned end state.

use super::execute::{RowState, read_digests, row_states};
use super::plan::{ErasurePlan, PlanKind};
use crate::app::App;
use crate::trace::{TraceError, TraceOptions};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub passed: bool,
    pub identities_traced: usize,
    /// Rows of the subject still found outside the exemptions: `table#key`.
    pub rows_remaining: Vec<String>,
    /// Mentions still found outside the exemptions: `table#key.column`.
    pub mentions_remaining: Vec<String>,
    /// Pinned rows not in their planned end state.
    pub not_applied: Vec<String>,
    pub exempt_rows: usize,
}

impl Verification {
    pub fn reason(&self) -> String {
        let mut parts = Vec::new();
        if !self.rows_remaining.is_empty() {
            parts.push(format!(
                "{} row(s) of the subject remain outside the exemptions ({})",
                self.rows_remaining.len(),
                first(&self.rows_remaining)
            ));
        }
        if !self.mentions_remaining.is_empty() {
            parts.push(format!(
                "{} mention(s) remain ({})",
                self.mentions_remaining.len(),
                first(&self.mentions_remaining)
            ));
        }
        if !self.not_applied.is_empty() {
            parts.push(format!(
                "{} planned change(s) are not in place ({})",
                self.not_applied.len(),
                first(&self.not_applied)
            ));
        }
        parts.join("; ")
    }
}

fn first(v: &[String]) -> String {
    v.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
}

pub fn verify(app: &App, plan: &ErasurePlan) -> Result<Verification, TraceError> {
    let map = &app.policy.datamap;
    let mut rows_remaining = Vec::new();
    let mut mentions_remaining = Vec::new();
    if plan.kind == PlanKind::Erasure {
        let fp = app.trace(&plan.identities, &TraceOptions::default())?;
        for (&ti, rows) in &fp.tables {
            let t = &map.tables[ti].name;
            for key in rows.rows.keys() {
                if !plan.is_exempt(t, key) {
                    rows_remaining.push(format!("{t}#{key}"));
                }
            }
        }
        for m in &fp.mentions {
            if !plan.is_exempt(&m.table, &m.key) {
                mentions_remaining.push(format!("{}#{}.{}", m.table, m.key, m.column));
            }
        }
    }
    let mut not_applied = Vec::new();
    for sp in &plan.sources {
        let handle = app.sources.get(&sp.source)?;
        let catalog = handle.catalog()?;
        let mut conn = handle.pool.get()?;
        for step in &sp.steps {
            let pk = map
                .table(&step.table)
                .map(|t| t.primary_key.clone())
                .unwrap_or_default();
            let digests = read_digests(&mut conn, &catalog, &pk, step, false)?;
            for (r, st) in step.rows.iter().zip(row_states(step, &digests)) {
                if st != RowState::Done {
                    not_applied.push(format!("{}#{}", step.table, r.key));
                }
            }
        }
    }
    let exempt_rows = plan.exemptions.iter().map(|e| e.keys.len()).sum();
    Ok(Verification {
        passed: rows_remaining.is_empty()
            && mentions_remaining.is_empty()
            && not_applied.is_empty(),
        identities_traced: plan.identities.len(),
        rows_remaining,
        mentions_remaining,
        not_applied,
        exempt_rows,
    })
}
