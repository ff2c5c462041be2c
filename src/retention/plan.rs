//! The retention plan: a dry run that touches nothing. Per rule the cutoff, the rows due
//! now, the rows held back by legal holds, and a forecast of the rows falling due in the
//! next 7, 30 and 90 days; plus the schedule and the last run.

use super::rules::parse_cron;
use super::run::{RetentionError, count_due, prepare};
use crate::app::App;
use crate::audit::format_time;
use crate::hold::identity_ref;
use crate::source::{SourceConn, Value};
use crate::store::retention as rs;
use crate::trace::Identity;
use chrono::{Duration, NaiveDateTime, TimeZone};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Forecast {
    pub next_7_days: i64,
    pub next_30_days: i64,
    pub next_90_days: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    pub id: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub deleted: i64,
    pub anonymized: i64,
    pub held: i64,
    pub certificate_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RulePlan {
    pub rule: String,
    pub table: String,
    pub anchor: String,
    pub action: crate::policy::RowAction,
    pub window: String,
    pub basis: String,
    pub cascade: Vec<String>,
    pub enabled: bool,
    pub cutoff: String,
    /// Rows due now (including those held back).
    pub due_now: i64,
    /// Due rows a legal hold keeps (the table, the row, or the person).
    pub held_back: i64,
    pub forecast: Forecast,
    pub schedule: String,
    pub next_run: Option<String>,
    pub last_run: Option<LastRun>,
}

/// Due rows that holds keep: all of them under a table hold, the listed ones under row
/// holds, and those whose identity columns name a held person.
fn held_back(
    conn: &mut SourceConn,
    app: &App,
    p: &super::run::Prepared<'_>,
    rule: &super::Rule,
    due: i64,
) -> Result<i64, RetentionError> {
    let map = &app.policy.datamap;
    let active = app.store.read(|c| crate::hold::list(c, true))?;
    if active
        .iter()
        .any(|h| h.scope == "table" && h.table_name.as_deref() == Some(&rule.table))
    {
        return Ok(due);
    }
    let t = map
        .table(&rule.table)
        .ok_or_else(|| super::run::RetentionError::UnknownRule(rule.name.clone()))?;
    let mut held_keys: Vec<Value> = Vec::new();
    for h in active
        .iter()
        .filter(|h| h.scope == "rows" && h.table_name.as_deref() == Some(&rule.table))
    {
        let keys: Vec<Vec<Value>> = h
            .row_keys
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        held_keys.extend(keys.into_iter().filter_map(|k| k.into_iter().next()));
    }
    let subject_refs: std::collections::BTreeSet<String> = active
        .iter()
        .filter(|h| h.scope == "subject")
        .flat_map(|h| {
            h.subject_refs
                .as_deref()
                .and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
                .unwrap_or_default()
        })
        .collect();
    let mut n = 0;
    if !held_keys.is_empty() && t.primary_key.len() == 1 {
        for chunk in held_keys.chunks(crate::source::dialect::MAX_IN_LIST) {
            let mut sql = conn.sql();
            sql.push("SELECT count(*) FROM ")
                .ident(&rule.table)
                .push(" WHERE ");
            super::run::due_filter(p, &mut sql);
            sql.push(" AND ")
                .ident(&t.primary_key[0])
                .push(" IN ")
                .in_list(chunk, None);
            n += conn
                .query(&sql)?
                .first()
                .and_then(|r| r[0].as_int())
                .unwrap_or(0);
        }
    }
    if !subject_refs.is_empty() && !t.identities.is_empty() {
        let mut sql = conn.sql();
        sql.push("SELECT ");
        for (i, ic) in t.identities.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.ident(&ic.column);
        }
        sql.push(" FROM ").ident(&rule.table).push(" WHERE ");
        super::run::due_filter(p, &mut sql);
        for row in conn.query(&sql)? {
            let held = t.identities.iter().zip(&row).any(|(ic, v)| {
                let (Some(norm), Some(raw)) = (map.normalizer(&ic.kind), v.to_text()) else {
                    return false;
                };
                norm.normalize(&raw).is_ok_and(|value| {
                    subject_refs.contains(&identity_ref(
                        app,
                        &Identity {
                            kind: ic.kind.clone(),
                            value,
                        },
                    ))
                })
            });
            n += i64::from(held);
        }
    }
    Ok(n.min(due))
}

/// The plan of every rule at time `at`.
pub fn plan(app: &App, at: NaiveDateTime) -> Result<Vec<RulePlan>, RetentionError> {
    plan_with(app, at, true)
}

/// The plan, with or without the forecast (which costs three more counts per rule; the
/// dashboard leaves it out and shows zeros there).
pub fn plan_with(
    app: &App,
    at: NaiveDateTime,
    with_forecast: bool,
) -> Result<Vec<RulePlan>, RetentionError> {
    let ret = &app.policy.retention;
    let mut out = Vec::new();
    for rule in &ret.rules {
        let p = prepare(app, rule, at)?;
        let source = app.sources.get(
            &app.policy.datamap.tables[app
                .policy
                .datamap
                .table_idx(&rule.table)
                .unwrap_or_default()]
            .source,
        )?;
        let mut conn = source.pool.get()?;
        let due = count_due(&mut conn, &p)?;
        let held = held_back(&mut conn, app, &p, rule, due)?;
        let mut ahead = |days: i64| -> Result<i64, RetentionError> {
            let later = prepare(app, rule, at + Duration::days(days))?;
            Ok(count_due(&mut conn, &later)? - due)
        };
        let forecast = if with_forecast {
            Forecast {
                next_7_days: ahead(7)?,
                next_30_days: ahead(30)?,
                next_90_days: ahead(90)?,
            }
        } else {
            Forecast {
                next_7_days: 0,
                next_30_days: 0,
                next_90_days: 0,
            }
        };
        let schedule = ret.schedule_of(rule).to_string();
        let tz = ret.settings.timezone;
        let next_run = parse_cron(&schedule)
            .ok()
            .and_then(|c| {
                c.find_next_occurrence(&tz.from_utc_datetime(&crate::store::now()), false)
                    .ok()
            })
            .map(|t| t.with_timezone(&chrono::Utc).naive_utc())
            .map(|t| format_time(&t));
        let last = app
            .store
            .read(|c| rs::runs(c, Some(&rule.name), 1))?
            .into_iter()
            .next()
            .map(|r| LastRun {
                id: r.id,
                status: r.status,
                started_at: format_time(&r.started_at),
                finished_at: r.finished_at.as_ref().map(format_time),
                deleted: r.rows_deleted,
                anonymized: r.rows_anonymized,
                held: r.rows_held,
                certificate_id: r.certificate_id,
            });
        out.push(RulePlan {
            rule: rule.name.clone(),
            table: rule.table.clone(),
            anchor: rule.anchor.clone(),
            action: rule.action,
            window: rule.window.describe(),
            basis: rule.basis.clone(),
            cascade: rule.cascade.clone(),
            enabled: rule.enabled,
            cutoff: format_time(&p.cutoff()),
            due_now: due,
            held_back: held,
            forecast,
            schedule,
            next_run: if rule.enabled { next_run } else { None },
            last_run: last,
        });
    }
    Ok(out)
}
