//! Retention rules (`policies/retention.toml`): parsing, validation against the data map
//! (errors with file, line and key), cutoff arithmetic, and the lint against live catalogs.
//! Pure: no I/O except reading the file.

use crate::policy::diagnostic::{Diagnostic, Origin, suggest};
use crate::policy::validate::{Ctx, build_condition, is_identifier};
use crate::policy::{Condition, DataMap, RowAction, spec::ConditionSpec};
use crate::source::{Catalog, TypeKind};
use chrono::{Datelike, Duration, Months, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use toml::Spanned;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetentionFile {
    settings: Option<Spanned<SettingsSpec>>,
    #[serde(default)]
    rules: Vec<Spanned<RuleSpec>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SettingsSpec {
    schedule: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    batch_size: Option<Spanned<u32>>,
    batch_target: Option<Spanned<String>>,
    max_batch_size: Option<Spanned<u32>>,
    time_budget: Option<Spanned<String>>,
    sqlite_cache_mb: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: Spanned<String>,
    table: Spanned<String>,
    anchor: Spanned<String>,
    window: Option<Spanned<String>>,
    /// "N years after the end of the calendar year of the anchor".
    years_after_year_end: Option<Spanned<u32>>,
    #[serde(default)]
    conditions: Vec<Spanned<ConditionSpec>>,
    action: Spanned<String>,
    basis: Spanned<String>,
    schedule: Option<Spanned<String>>,
    /// Child tables (reached by links from `table`) whose rows go with each parent row.
    #[serde(default)]
    cascade: Vec<Spanned<String>>,
    #[serde(default)]
    enabled: Option<bool>,
}

/// How long rows are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Window {
    Days {
        n: u32,
    },
    Months {
        n: u32,
    },
    Years {
        n: u32,
    },
    /// Kept until the end of the calendar year of the anchor plus `n` years (HGB 257, AO 147).
    YearsAfterYearEnd {
        n: u32,
    },
}

impl Window {
    pub fn parse(s: &str) -> Option<Window> {
        let mut parts = s.split_whitespace();
        let n: u32 = parts.next()?.parse().ok().filter(|n| *n > 0)?;
        let unit = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        Some(match unit {
            "day" | "days" => Window::Days { n },
            "month" | "months" => Window::Months { n },
            "year" | "years" => Window::Years { n },
            _ => return None,
        })
    }

    /// The cutoff at time `at`: a row is due when its anchor is strictly before it (a row
    /// whose anchor equals the cutoff is kept).
    pub fn cutoff(self, at: NaiveDateTime) -> NaiveDateTime {
        match self {
            Window::Days { n } => at - Duration::days(i64::from(n)),
            Window::Months { n } => at
                .checked_sub_months(Months::new(n))
                .unwrap_or(NaiveDateTime::MIN),
            Window::Years { n } => at
                .checked_sub_months(Months::new(n.saturating_mul(12)))
                .unwrap_or(NaiveDateTime::MIN),
            Window::YearsAfterYearEnd { n } => {
                // Anchors in year Y are kept through December 31 of Y + n: due from January 1
                // of Y + n + 1, i.e. due when the anchor is before January 1 of (year(at) - n).
                let y = at.year() - i32::try_from(n).unwrap_or(i32::MAX);
                NaiveDate::from_ymd_opt(y, 1, 1)
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .unwrap_or(NaiveDateTime::MIN)
            }
        }
    }

    pub fn describe(self) -> String {
        match self {
            Window::Days { n } => format!("{n} days after the anchor"),
            Window::Months { n } => format!("{n} months after the anchor"),
            Window::Years { n } => format!("{n} years after the anchor"),
            Window::YearsAfterYearEnd { n } => {
                format!("{n} years after the end of the calendar year of the anchor")
            }
        }
    }
}

/// A duration like `30m`, `2h`, `90s`, `150ms`.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok().filter(|n| *n > 0)?;
    Some(match unit.trim() {
        "ms" => std::time::Duration::from_millis(n),
        "s" | "sec" | "secs" | "seconds" => std::time::Duration::from_secs(n),
        "m" | "min" | "mins" | "minutes" => std::time::Duration::from_secs(n.checked_mul(60)?),
        "h" | "hour" | "hours" => std::time::Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    })
}

/// One validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub table: String,
    pub anchor: String,
    pub window: Window,
    pub conditions: Vec<Condition>,
    pub action: RowAction,
    pub basis: String,
    pub schedule: Option<String>,
    pub cascade: Vec<String>,
    pub enabled: bool,
    pub at: Origin,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Cron expression (5 or 6 fields), in `timezone`.
    pub schedule: String,
    pub timezone: chrono_tz::Tz,
    /// Rows of the rule's table in the first batch (in every batch without a target).
    pub batch_size: u32,
    /// Later batches are sized so each transaction takes about this long (None: fixed).
    pub batch_target: Option<std::time::Duration>,
    /// The most rows of the rule's table in one batch when sizing towards the target.
    pub max_batch_size: u32,
    pub time_budget: std::time::Duration,
    /// Page cache of the connection a run writes an SQLite source through, in MB.
    pub sqlite_cache_mb: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            schedule: "0 2 * * *".into(),
            timezone: chrono_tz::UTC,
            batch_size: DEFAULT_BATCH_SIZE,
            batch_target: Some(DEFAULT_BATCH_TARGET),
            max_batch_size: DEFAULT_MAX_BATCH_SIZE,
            time_budget: std::time::Duration::from_secs(3600),
            sqlite_cache_mb: DEFAULT_SQLITE_CACHE_MB,
        }
    }
}

/// The default first batch (and fixed batch size when the target is off); see
/// `DEFAULT_BATCH_TARGET`.
pub const DEFAULT_BATCH_SIZE: u32 = 1000;

/// The default duration of one batch transaction, chosen with `lethe bench retention` on
/// the 1,000,000-contact demo CRM: at 150 ms the p99 batch stayed under 250 ms on SQLite
/// (anonymize) and PostgreSQL (both); a 100 ms target did not shorten the rare stalls (the
/// longest batch) and cost throughput.
pub const DEFAULT_BATCH_TARGET: std::time::Duration = std::time::Duration::from_millis(150);

/// The default upper bound of a batch (bounds the memory of one batch).
pub const DEFAULT_MAX_BATCH_SIZE: u32 = 20_000;

/// The default page cache of a run's SQLite connection (`lethe bench retention
/// --sqlite-cache-mb`): a run peaked at 119-121 MB resident with 32 MB and at about 160 MB
/// with 64 MB, at similar throughput.
pub const DEFAULT_SQLITE_CACHE_MB: u32 = 32;

#[derive(Debug, Clone, Default)]
pub struct Retention {
    pub settings: Settings,
    pub rules: Vec<Rule>,
}

impl Retention {
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    pub fn schedule_of<'a>(&'a self, r: &'a Rule) -> &'a str {
        r.schedule.as_deref().unwrap_or(&self.settings.schedule)
    }
}

/// Parses a cron expression (5 fields, or 6 with seconds).
pub fn parse_cron(s: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
        .parse(s)
        .map_err(|e| e.to_string())
}

/// Parses and validates `retention.toml` against the data map.
pub fn load(
    file: &Arc<str>,
    src: &str,
    map: &DataMap,
) -> Result<(Retention, Vec<Diagnostic>), Vec<Diagnostic>> {
    let spec: RetentionFile =
        toml::from_str(src).map_err(|e| vec![crate::policy::toml_error(file, src, &e)])?;
    let ctx = Ctx { file, src };
    let mut diags = Vec::new();
    let mut settings = Settings::default();
    if let Some(s) = &spec.settings {
        let s = s.get_ref();
        if let Some(c) = &s.schedule {
            match parse_cron(c.get_ref()) {
                Ok(_) => settings.schedule = c.get_ref().clone(),
                Err(e) => diags.push(Diagnostic::error(
                    &ctx.at(c),
                    "settings.schedule",
                    format!("not a cron expression: {e}"),
                )),
            }
        }
        if let Some(tz) = &s.timezone {
            match tz.get_ref().parse::<chrono_tz::Tz>() {
                Ok(t) => settings.timezone = t,
                Err(_) => diags.push(Diagnostic::error(
                    &ctx.at(tz),
                    "settings.timezone",
                    format!(
                        "unknown time zone \"{}\" (an IANA name like Europe/Berlin)",
                        tz.get_ref()
                    ),
                )),
            }
        }
        if let Some(b) = &s.batch_size {
            if !(1..=100_000).contains(b.get_ref()) {
                diags.push(Diagnostic::error(
                    &ctx.at(b),
                    "settings.batch_size",
                    "must be between 1 and 100000",
                ));
            } else {
                settings.batch_size = *b.get_ref();
            }
        }
        if let Some(b) = &s.max_batch_size {
            if !(1..=100_000).contains(b.get_ref()) {
                diags.push(Diagnostic::error(
                    &ctx.at(b),
                    "settings.max_batch_size",
                    "must be between 1 and 100000",
                ));
            } else {
                settings.max_batch_size = *b.get_ref();
            }
        }
        if let Some(t) = &s.batch_target {
            match t.get_ref().trim() {
                "off" => settings.batch_target = None,
                v => match parse_duration(v) {
                    Some(d) if d >= std::time::Duration::from_millis(10) => {
                        settings.batch_target = Some(d)
                    }
                    _ => diags.push(Diagnostic::error(
                        &ctx.at(t),
                        "settings.batch_target",
                        "expected a duration of at least 10ms like 150ms or 1s, or \"off\"",
                    )),
                },
            }
        }
        if let Some(c) = &s.sqlite_cache_mb {
            if !(1..=4096).contains(c.get_ref()) {
                diags.push(Diagnostic::error(
                    &ctx.at(c),
                    "settings.sqlite_cache_mb",
                    "must be between 1 and 4096",
                ));
            } else {
                settings.sqlite_cache_mb = *c.get_ref();
            }
        }
        if let Some(t) = &s.time_budget {
            match parse_duration(t.get_ref()) {
                Some(d) => settings.time_budget = d,
                None => diags.push(Diagnostic::error(
                    &ctx.at(t),
                    "settings.time_budget",
                    "expected a duration like 30m, 2h or 90s",
                )),
            }
        }
    }
    let mut rules: Vec<Rule> = Vec::new();
    for (i, rs) in spec.rules.iter().enumerate() {
        let r = rs.get_ref();
        let key = format!("rules[{i}]");
        let at = ctx.at(rs);
        let name = r.name.get_ref().clone();
        if !is_identifier(&name) {
            diags.push(Diagnostic::error(
                &ctx.at(&r.name),
                format!("{key}.name"),
                "rule names are identifiers (letters, digits, underscore)",
            ));
        }
        if let Some(prev) = rules.iter().find(|p| p.name == name) {
            diags.push(Diagnostic::error(
                &ctx.at(&r.name),
                format!("{key}.name"),
                format!("rule \"{name}\" is defined twice (first at {})", prev.at),
            ));
        }
        let Some(table) = map.table(r.table.get_ref()) else {
            diags.push(Diagnostic::error(
                &ctx.at(&r.table),
                format!("{key}.table"),
                format!(
                    "unknown table \"{}\" (not in the data map){}",
                    r.table.get_ref(),
                    suggest(
                        r.table.get_ref(),
                        map.tables.iter().map(|t| t.name.as_str())
                    )
                ),
            ));
            continue;
        };
        let ti = map.table_idx(&table.name).unwrap_or_default();
        let allowed = map.allowed_columns(ti);
        let mapped = |c: &str| allowed.iter().any(|a| a == c);
        if !mapped(r.anchor.get_ref()) {
            diags.push(Diagnostic::error(
                &ctx.at(&r.anchor),
                format!("{key}.anchor"),
                format!(
                    "column \"{}\" of {} is not in the data map{}",
                    r.anchor.get_ref(),
                    table.name,
                    suggest(r.anchor.get_ref(), allowed.iter().map(String::as_str))
                ),
            ));
        }
        let window = match (&r.window, &r.years_after_year_end) {
            (Some(w), None) => Window::parse(w.get_ref()).or_else(|| {
                diags.push(Diagnostic::error(
                    &ctx.at(w),
                    format!("{key}.window"),
                    format!(
                        "\"{}\" is not a window; expected N days, N months or N years",
                        w.get_ref()
                    ),
                ));
                None
            }),
            (None, Some(n)) if *n.get_ref() > 0 => {
                Some(Window::YearsAfterYearEnd { n: *n.get_ref() })
            }
            (None, Some(n)) => {
                diags.push(Diagnostic::error(
                    &ctx.at(n),
                    format!("{key}.years_after_year_end"),
                    "must be at least 1",
                ));
                None
            }
            (Some(w), Some(_)) => {
                diags.push(Diagnostic::error(
                    &ctx.at(w),
                    format!("{key}.window"),
                    "give either window or years_after_year_end, not both",
                ));
                None
            }
            (None, None) => {
                diags.push(Diagnostic::error(
                    &at,
                    format!("{key}.window"),
                    "needs window = \"N days|months|years\" or years_after_year_end = N",
                ));
                None
            }
        };
        let conditions: Vec<Condition> = r
            .conditions
            .iter()
            .enumerate()
            .filter_map(|(j, c)| {
                let cond = build_condition(&ctx, &format!("{key}.conditions[{j}]"), c, &mut diags)?;
                if !mapped(&cond.column) {
                    diags.push(Diagnostic::error(
                        &ctx.at(&c.get_ref().column),
                        format!("{key}.conditions[{j}].column"),
                        format!(
                            "conditions may only use columns the data map names; {}.{} is not one",
                            table.name, cond.column
                        ),
                    ));
                    return None;
                }
                Some(cond)
            })
            .collect();
        let action = match r.action.get_ref().as_str() {
            "delete" => RowAction::Delete,
            "anonymize" => RowAction::Anonymize,
            other => {
                diags.push(Diagnostic::error(
                    &ctx.at(&r.action),
                    format!("{key}.action"),
                    format!("unknown action \"{other}\"; expected delete or anonymize"),
                ));
                RowAction::Delete
            }
        };
        if action == RowAction::Anonymize && !table.columns.iter().any(|c| c.strategy.is_some()) {
            diags.push(Diagnostic::error(
                &ctx.at(&r.action),
                format!("{key}.action"),
                format!(
                    "{} has no erasure strategies in the data map to anonymize with",
                    table.name
                ),
            ));
        }
        if r.basis.get_ref().trim().is_empty() {
            diags.push(Diagnostic::error(
                &ctx.at(&r.basis),
                format!("{key}.basis"),
                "name the statutory or policy basis",
            ));
        }
        let schedule = r
            .schedule
            .as_ref()
            .and_then(|s| match parse_cron(s.get_ref()) {
                Ok(_) => Some(s.get_ref().clone()),
                Err(e) => {
                    diags.push(Diagnostic::error(
                        &ctx.at(s),
                        format!("{key}.schedule"),
                        format!("not a cron expression: {e}"),
                    ));
                    None
                }
            });
        let mut cascade = Vec::new();
        for c in &r.cascade {
            match descends(map, ti, c.get_ref()) {
                true => cascade.push(c.get_ref().clone()),
                false => diags.push(Diagnostic::error(
                    &ctx.at(c),
                    format!("{key}.cascade"),
                    format!(
                        "{} is not a child of {} through the data map's links",
                        c.get_ref(),
                        table.name
                    ),
                )),
            }
        }
        if let Some(window) = window {
            rules.push(Rule {
                name,
                table: table.name.clone(),
                anchor: r.anchor.get_ref().clone(),
                window,
                conditions,
                action,
                basis: r.basis.get_ref().clone(),
                schedule,
                cascade,
                enabled: r.enabled.unwrap_or(true),
                at,
            });
        }
    }
    // Rules on the same table that would act differently on the same rows.
    let mut warnings = Vec::new();
    for (i, a) in rules.iter().enumerate() {
        for b in rules.iter().skip(i + 1) {
            if a.table == b.table && (a.action != b.action || a.anchor != b.anchor) {
                warnings.push(Diagnostic::warning(
                    &b.at,
                    format!("rules.{}", b.name),
                    format!(
                        "conflicts with rule {} ({}) on table {}: rows matching both are {}d by one and {}d by the other",
                        a.name,
                        a.at,
                        a.table,
                        action_word(a.action),
                        action_word(b.action)
                    ),
                ));
            }
        }
    }
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    diags.extend(warnings);
    Ok((Retention { settings, rules }, diags))
}

fn action_word(a: RowAction) -> &'static str {
    match a {
        RowAction::Delete => "delete",
        RowAction::Anonymize => "anonymize",
        RowAction::Keep => "keep",
    }
}

/// Child links of a table: links into another table whose `on` pairs end on this table's
/// primary key (the other table's rows belong to this one).
pub fn child_links(map: &DataMap, parent: usize) -> Vec<usize> {
    let pk = &map.tables[parent].primary_key;
    map.links
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            l.from == parent
                && l.target != parent
                && l.on.iter().all(|(_, f)| pk.contains(f))
                && l.on.len() == pk.len()
        })
        .map(|(i, _)| i)
        .collect()
}

/// Whether `child` is reached from `parent` through child links.
fn descends(map: &DataMap, parent: usize, child: &str) -> bool {
    let mut seen = vec![false; map.tables.len()];
    let mut stack = vec![parent];
    while let Some(t) = stack.pop() {
        for li in child_links(map, t) {
            let c = map.links[li].target;
            if map.tables[c].name == child {
                return true;
            }
            if !seen[c] {
                seen[c] = true;
                stack.push(c);
            }
        }
    }
    false
}

/// Checks rules against the live catalogs: the anchor must be a date or timestamp, values
/// must fit their columns, and anonymizing with hashing or encryption is pseudonymization.
pub fn lint(
    ret: &Retention,
    map: &DataMap,
    catalogs: &BTreeMap<String, Result<&Catalog, String>>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for r in &ret.rules {
        let Some(t) = map.table(&r.table) else {
            continue;
        };
        if r.action == RowAction::Anonymize {
            if let Some(c) = t
                .columns
                .iter()
                .find(|c| c.strategy == Some(crate::policy::Strategy::Encrypt))
            {
                out.push(Diagnostic::error(
                    &r.at,
                    format!("rules.{}.action", r.name),
                    format!("{}.{} uses encrypt, which needs a per-subject key; retention anonymizes without one: use another strategy", t.name, c.name),
                ));
            }
            for c in t
                .columns
                .iter()
                .filter(|c| c.strategy.as_ref().is_some_and(|s| s.is_pseudonymization()))
            {
                out.push(Diagnostic::warning(
                    &r.at,
                    format!("rules.{}", r.name),
                    format!(
                        "claims to anonymize but {}.{} uses {}: that is pseudonymization (GDPR Recital 26), the rows stay personal data",
                        t.name,
                        c.name,
                        c.strategy.as_ref().map_or("", |s| s.name())
                    ),
                ));
            }
        }
        let Some(Ok(cat)) = catalogs.get(&t.source) else {
            continue;
        };
        let Some(info) = cat.table(&t.name) else {
            continue;
        };
        match info.column(&r.anchor) {
            Some(c)
                if c.ty.kind.is_temporal()
                    || (cat.dialect == crate::source::Dialect::Sqlite
                        && c.ty.kind == TypeKind::Other) => {}
            Some(c) => out.push(Diagnostic::error(
                &r.at,
                format!("rules.{}.anchor", r.name),
                format!(
                    "anchor {}.{} is {}, not a date or timestamp",
                    t.name, r.anchor, c.ty.declared
                ),
            )),
            None => out.push(Diagnostic::error(
                &r.at,
                format!("rules.{}.anchor", r.name),
                format!("column {}.{} does not exist", t.name, r.anchor),
            )),
        }
        for c in &r.conditions {
            if let Some(ci) = info.column(&c.column) {
                for v in &c.values {
                    if !crate::policy::lint::literal_fits(v, ci.ty.kind) {
                        out.push(Diagnostic::error(
                            &c.at,
                            format!("rules.{}.conditions", r.name),
                            format!(
                                "value {v} does not fit {}.{} of type {}",
                                t.name, c.column, ci.ty.declared
                            ),
                        ));
                    }
                }
            }
        }
        if r.action == RowAction::Delete {
            // Rows of other mapped tables that reference this one and are not cascaded
            // would block the delete.
            for other in map.tables.iter().filter(|o| {
                o.source == t.source && o.name != t.name && !r.cascade.contains(&o.name)
            }) {
                if let Some(oi) = cat.table(&other.name)
                    && oi
                        .foreign_keys
                        .iter()
                        .any(|fk| fk.ref_table == t.name && fk.on_delete != "cascade")
                {
                    out.push(Diagnostic::warning(
                        &r.at,
                        format!("rules.{}.cascade", r.name),
                        format!("{} references {} by a foreign key but is not cascaded: deleting rows it references will fail", other.name, t.name),
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn windows_parse() {
        assert_eq!(Window::parse("24 months"), Some(Window::Months { n: 24 }));
        assert_eq!(Window::parse("1 year"), Some(Window::Years { n: 1 }));
        assert_eq!(Window::parse("13 days"), Some(Window::Days { n: 13 }));
        for bad in [
            "",
            "24",
            "months",
            "0 days",
            "-3 days",
            "2 fortnights",
            "3 days extra",
            "1.5 years",
        ] {
            assert_eq!(Window::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn cutoffs() {
        let at = dt("2026-11-23 02:00:00");
        assert_eq!(Window::Days { n: 30 }.cutoff(at), dt("2026-10-24 02:00:00"));
        assert_eq!(
            Window::Months { n: 24 }.cutoff(at),
            dt("2024-11-23 02:00:00")
        );
        // Month ends clamp.
        assert_eq!(
            Window::Months { n: 1 }.cutoff(dt("2026-03-31 00:00:00")),
            dt("2026-02-28 00:00:00")
        );
        assert_eq!(
            Window::Years { n: 1 }.cutoff(dt("2028-02-29 00:00:00")),
            dt("2027-02-28 00:00:00")
        );
    }

    #[test]
    fn end_of_year_statutory_rule() {
        let w = Window::YearsAfterYearEnd { n: 10 };
        // At any time in 2026, invoices issued in 2015 or earlier are due; 2016 ones are
        // kept through December 31, 2026.
        for at in [
            "2026-01-01 00:00:00",
            "2026-06-15 12:00:00",
            "2026-12-31 23:59:59",
        ] {
            assert_eq!(w.cutoff(dt(at)), dt("2016-01-01 00:00:00"), "{at}");
        }
        assert_eq!(
            w.cutoff(dt("2027-01-01 00:00:00")),
            dt("2017-01-01 00:00:00")
        );
        // Leap years do not matter: a 2016-02-29 invoice is due on 2027-01-01, not before.
        let anchor = dt("2016-02-29 00:00:00");
        assert!(anchor >= w.cutoff(dt("2026-12-31 23:59:59")));
        assert!(anchor < w.cutoff(dt("2027-01-01 00:00:00")));
        let w6 = Window::YearsAfterYearEnd { n: 6 };
        assert_eq!(
            w6.cutoff(dt("2024-02-29 10:00:00")),
            dt("2018-01-01 00:00:00")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("30m"),
            Some(std::time::Duration::from_secs(1800))
        );
        assert_eq!(
            parse_duration("2h"),
            Some(std::time::Duration::from_secs(7200))
        );
        assert_eq!(
            parse_duration("90s"),
            Some(std::time::Duration::from_secs(90))
        );
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("0m"), None);
    }
}
