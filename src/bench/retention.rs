//! `lethe bench retention`: retention runs on the 1,000,000-contact demo CRM next to the
//! equivalent plain SQL, each on its own fresh copy of the same data, in the same run:
//! - anonymizing the contacts inactive for 24 months (about 40%) vs one UPDATE statement;
//! - deleting them with their linked rows (deals, activities, notes, tickets and messages,
//!   leads, invoices and lines, consents, sessions) vs one DELETE statement per table.
//!
//! Reports rows per second, the ratio, the longest batch transaction, and the peak memory
//! of the process during lethe's runs.

use super::{CrmArgs, prepare_crm};
use crate::app::{App, AppState};
use crate::cli::{CliError, CliResult};
use crate::config::Config;
use crate::retention::run::{RunRequest, RunStatus, run};
use crate::source::{DbUrl, Dialect, SourceConn, connect};
use crate::store::Store;
use chrono::NaiveDateTime;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct RetentionArgs {
    #[command(flatten)]
    pub crm: CrmArgs,
    /// Fixed batches of this many rows of the rule's table (default: the product's
    /// time-targeted batch sizing).
    #[arg(long)]
    pub batch_size: Option<u32>,
    /// Size batches to this many milliseconds per transaction (default: the product default).
    #[arg(long)]
    pub batch_target_ms: Option<u32>,
    /// Page cache of the SQLite connections (lethe's and the baseline's), in MB.
    #[arg(long)]
    pub sqlite_cache_mb: Option<u32>,
    /// Only the anonymization scenario.
    #[arg(long)]
    pub anonymize_only: bool,
    /// Only the deletion scenario.
    #[arg(long)]
    pub delete_only: bool,
}

const CASCADE: &str = r#"["leads", "deals", "activities", "notes", "tickets", "ticket_messages", "consents", "web_sessions", "invoices", "invoice_lines"]"#;

fn rules_toml(cache_mb: u32, target_ms: u32) -> String {
    format!(
        r#"[settings]
batch_target = "{target_ms}ms"
sqlite_cache_mb = {cache_mb}
time_budget = "10h"

[[rules]]
name = "anonymize_contacts"
table = "contacts"
anchor = "last_activity_at"
window = "24 months"
action = "anonymize"
basis = "benchmark"
enabled = false

[[rules]]
name = "delete_contacts"
table = "contacts"
anchor = "last_activity_at"
window = "24 months"
action = "delete"
cascade = {CASCADE}
basis = "benchmark"
enabled = false
"#
    )
}

/// Resets the peak resident memory of this process (Linux `clear_refs`), so that the next
/// reading covers only what follows (not the CRM generation before it).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory of this process since the last reset (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A fresh copy of the base CRM.
fn copy_of(base: &DbUrl, name: &str, dir: &std::path::Path) -> Result<DbUrl, CliError> {
    match base {
        DbUrl::Sqlite(p) => {
            let mut c = connect(base, false)?;
            c.batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
            drop(c);
            let dest = dir.join(format!("{name}-{}.sqlite3", std::process::id()));
            std::fs::copy(p, &dest)?;
            // On disk before timing starts: otherwise the first checkpoint of either side
            // pays for writing back the whole freshly copied file.
            std::fs::File::open(&dest)?.sync_all()?;
            Ok(DbUrl::Sqlite(dest))
        }
        DbUrl::Postgres(u) => super::pg_template_copy(u, &name.replace('-', "_")),
        #[cfg(feature = "mysql")]
        DbUrl::Mysql(u) => super::mysql_copy(u, &name.replace('-', "_")),
    }
}

fn app_for(
    dir: &std::path::Path,
    url: &DbUrl,
    cache_mb: u32,
    target_ms: u32,
) -> Result<AppState, CliError> {
    let work = dir.join(format!("retention-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("policies"))?;
    std::fs::write(
        work.join("policies/datamap.toml"),
        crate::demo::DEMO_DATAMAP,
    )?;
    std::fs::write(
        work.join("policies/retention.toml"),
        rules_toml(cache_mb, target_ms),
    )?;
    let mut config = Config::for_data_dir(&work, &work.join("policies"));
    config.master_key = Some(crate::crypto::MasterKey::generate().to_base64());
    config
        .source_urls
        .insert("crm".into(), url.to_config_string());
    let store = Store::open(&DbUrl::parse(&config.store_url)?)?;
    store.migrate()?;
    Ok(Arc::new(
        App::open(config).map_err(crate::cli::start_error)?,
    ))
}

fn cutoff_text(at: NaiveDateTime) -> String {
    crate::retention::Window::Months { n: 24 }
        .cutoff(at)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The single UPDATE a DBA would write for the same anonymization.
fn baseline_update(conn: &mut SourceConn, cutoff: &str) -> Result<u64, CliError> {
    let sql = match conn.dialect() {
        Dialect::Sqlite => format!(
            "UPDATE contacts SET customer_no = 'hmac:' || lower(hex(randomblob(16))), first_name = '[erased]', last_name = '[erased]', \
             email = '[erased]', phone = NULL, birth_date = NULL, street = NULL, postcode = substr(postcode, 1, 2), \
             created_at = strftime('%Y-%m-01 00:00:00', created_at), last_activity_at = strftime('%Y-%m-01 00:00:00', last_activity_at) \
             WHERE last_activity_at < '{cutoff}' AND (customer_no NOT LIKE 'hmac:%' OR first_name IS NOT '[erased]' OR email IS NOT '[erased]')"
        ),
        Dialect::Postgres => format!(
            "UPDATE contacts SET customer_no = 'hmac:' || substr(md5(customer_no), 1, 32), first_name = '[erased]', last_name = '[erased]', \
             email = '[erased]', phone = NULL, birth_date = NULL, street = NULL, postcode = substr(postcode, 1, 2), \
             created_at = date_trunc('month', created_at), last_activity_at = date_trunc('month', last_activity_at) \
             WHERE last_activity_at < '{cutoff}' AND (customer_no NOT LIKE 'hmac:%' OR first_name IS DISTINCT FROM '[erased]' OR email IS DISTINCT FROM '[erased]')"
        ),
        #[cfg(feature = "mysql")]
        Dialect::Mysql => format!(
            "UPDATE contacts SET customer_no = CONCAT('hmac:', substr(md5(customer_no), 1, 32)), first_name = '[erased]', last_name = '[erased]', \
             email = '[erased]', phone = NULL, birth_date = NULL, street = NULL, postcode = substr(postcode, 1, 2), \
             created_at = DATE_FORMAT(created_at, '%Y-%m-01'), last_activity_at = DATE_FORMAT(last_activity_at, '%Y-%m-01') \
             WHERE last_activity_at < '{cutoff}' AND (customer_no NOT LIKE 'hmac:%' OR NOT (first_name <=> '[erased]') OR NOT (email <=> '[erased]'))"
        ),
    };
    let mut q = conn.sql();
    q.push(&sql);
    let n = conn.transaction(true, |c| c.execute(&q))?;
    Ok(n as u64)
}

/// The DELETE statements a DBA would write: one per table, children first.
fn baseline_delete(conn: &mut SourceConn, cutoff: &str) -> Result<u64, CliError> {
    #[cfg(feature = "mysql")]
    if conn.dialect() == Dialect::Mysql {
        return baseline_delete_mysql(conn, cutoff);
    }
    let due = format!("SELECT id FROM contacts WHERE last_activity_at < '{cutoff}'");
    let deals = format!("SELECT id FROM deals WHERE contact_id IN ({due})");
    // Activities and notes: one statement per parent type, since an OR of two IN subqueries
    // defeats PostgreSQL's semi-join (a subplan per row once the ids outgrow work_mem).
    let statements = [
        format!(
            "DELETE FROM ticket_messages WHERE ticket_id IN (SELECT id FROM tickets WHERE contact_id IN ({due}))"
        ),
        format!("DELETE FROM activities WHERE parent_type = 'Contact' AND parent_id IN ({due})"),
        format!("DELETE FROM activities WHERE parent_type = 'Deal' AND parent_id IN ({deals})"),
        format!("DELETE FROM notes WHERE parent_type = 'Contact' AND parent_id IN ({due})"),
        format!("DELETE FROM notes WHERE parent_type = 'Deal' AND parent_id IN ({deals})"),
        format!(
            "DELETE FROM invoice_lines WHERE invoice_id IN (SELECT id FROM invoices WHERE contact_id IN ({due}))"
        ),
        format!("DELETE FROM invoices WHERE contact_id IN ({due})"),
        format!("DELETE FROM deals WHERE contact_id IN ({due})"),
        format!("DELETE FROM tickets WHERE contact_id IN ({due})"),
        format!("DELETE FROM leads WHERE converted_contact_id IN ({due})"),
        format!("DELETE FROM consents WHERE contact_id IN ({due})"),
        format!("DELETE FROM web_sessions WHERE contact_id IN ({due})"),
        format!("DELETE FROM contacts WHERE last_activity_at < '{cutoff}'"),
    ];
    let n = conn.transaction(true, |c| -> Result<u64, CliError> {
        let mut n = 0;
        for s in &statements {
            let mut q = c.sql();
            q.push(s);
            n += c.execute(&q)? as u64;
        }
        Ok(n)
    })?;
    Ok(n)
}

/// The same on MySQL, the way a MySQL DBA writes it: multi-table DELETEs joining the due
/// contacts (MariaDB 10.x runs `IN (subquery)` in a single-table DELETE as a dependent
/// subquery per row).
#[cfg(feature = "mysql")]
fn baseline_delete_mysql(conn: &mut SourceConn, cutoff: &str) -> Result<u64, CliError> {
    let due = format!("c.last_activity_at < '{cutoff}'");
    let statements = [
        format!(
            "DELETE m FROM ticket_messages m JOIN tickets t ON t.id = m.ticket_id JOIN contacts c ON c.id = t.contact_id WHERE {due}"
        ),
        format!(
            "DELETE a FROM activities a JOIN contacts c ON a.parent_type = 'Contact' AND c.id = a.parent_id WHERE {due}"
        ),
        format!(
            "DELETE a FROM activities a JOIN deals d ON a.parent_type = 'Deal' AND d.id = a.parent_id JOIN contacts c ON c.id = d.contact_id WHERE {due}"
        ),
        format!(
            "DELETE n FROM notes n JOIN contacts c ON n.parent_type = 'Contact' AND c.id = n.parent_id WHERE {due}"
        ),
        format!(
            "DELETE n FROM notes n JOIN deals d ON n.parent_type = 'Deal' AND d.id = n.parent_id JOIN contacts c ON c.id = d.contact_id WHERE {due}"
        ),
        format!(
            "DELETE l FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id JOIN contacts c ON c.id = i.contact_id WHERE {due}"
        ),
        format!("DELETE i FROM invoices i JOIN contacts c ON c.id = i.contact_id WHERE {due}"),
        format!("DELETE d FROM deals d JOIN contacts c ON c.id = d.contact_id WHERE {due}"),
        format!("DELETE t FROM tickets t JOIN contacts c ON c.id = t.contact_id WHERE {due}"),
        format!(
            "DELETE l FROM leads l JOIN contacts c ON c.id = l.converted_contact_id WHERE {due}"
        ),
        format!("DELETE s FROM consents s JOIN contacts c ON c.id = s.contact_id WHERE {due}"),
        format!("DELETE w FROM web_sessions w JOIN contacts c ON c.id = w.contact_id WHERE {due}"),
        format!("DELETE FROM contacts WHERE last_activity_at < '{cutoff}'"),
    ];
    let n = conn.transaction(true, |c| -> Result<u64, CliError> {
        let mut n = 0;
        for s in &statements {
            let mut q = c.sql();
            q.push(s);
            n += c.execute(&q)? as u64;
        }
        Ok(n)
    })?;
    Ok(n)
}

struct Scenario {
    name: &'static str,
    rule: &'static str,
    lethe_rows: i64,
    lethe_secs: f64,
    longest_batch_ms: i64,
    batches: i64,
    base_rows: u64,
    base_secs: f64,
    peak_mb: f64,
}

pub fn bench(a: RetentionArgs) -> CliResult {
    let (base, generated) = prepare_crm(&a.crm)?;
    let batch = a.batch_size;
    let target_ms = a.batch_target_ms.map_or_else(
        || u32::try_from(crate::retention::rules::DEFAULT_BATCH_TARGET.as_millis()).unwrap_or(150),
        |t| t.max(10),
    );
    let sizing = match batch {
        Some(n) => format!("fixed batches of {n}"),
        None => format!(
            "batches sized to {target_ms} ms (first {}, at most {})",
            crate::retention::rules::DEFAULT_BATCH_SIZE,
            crate::retention::rules::DEFAULT_MAX_BATCH_SIZE
        ),
    };
    let cache_mb = a
        .sqlite_cache_mb
        .unwrap_or(crate::retention::rules::DEFAULT_SQLITE_CACHE_MB);
    let at = crate::store::now();
    let cutoff = cutoff_text(at);
    let dir: PathBuf = a.crm.dir.clone();
    let mut results = Vec::new();
    let scenarios: Vec<(&'static str, &'static str)> = [
        ("anonymize ~40% of contacts", "anonymize_contacts"),
        ("delete them with their linked rows", "delete_contacts"),
    ]
    .into_iter()
    .filter(|(_, r)| {
        !((a.anonymize_only && *r == "delete_contacts")
            || (a.delete_only && *r == "anonymize_contacts"))
    })
    .collect();
    for (name, rule) in scenarios {
        // lethe, on a fresh copy.
        eprintln!("{name}: copying the CRM for lethe ...");
        let copy = copy_of(&base, &format!("ret-{rule}-lethe"), &dir)?;
        let outcome = (|| -> Result<(i64, f64, i64, i64, f64), CliError> {
            let app = app_for(&dir, &copy, cache_mb, target_ms)?;
            reset_peak_rss();
            let t = Instant::now();
            let req = RunRequest {
                rule: rule.into(),
                at: Some(at),
                dry_run: false,
                batch_size: batch,
                budget: None,
                trigger: "cli".into(),
                not_before: None,
            };
            let o = run(&app, &req, &mut |_| {})?;
            let secs = t.elapsed().as_secs_f64();
            if o.status != RunStatus::Completed {
                return Err(format!("{rule}: {:?} {:?}", o.status, o.message).into());
            }
            Ok((
                o.deleted + o.anonymized,
                secs,
                o.longest_batch_ms,
                o.batches,
                peak_rss_mb(),
            ))
        })();
        super::drop_copy(&copy);
        let (lethe_rows, lethe_secs, longest, batches, peak) = outcome?;
        // The plain SQL, on another fresh copy.
        eprintln!("{name}: copying the CRM for the SQL baseline ...");
        let copy = copy_of(&base, &format!("ret-{rule}-sql"), &dir)?;
        let baseline = (|| -> Result<(u64, f64), CliError> {
            let mut conn = connect(&copy, false)?;
            if conn.dialect() == Dialect::Sqlite {
                // The same page cache as lethe's run connection.
                conn.batch(&format!(
                    "PRAGMA cache_size = -{}",
                    i64::from(cache_mb) * 1024
                ))?;
            }
            let t = Instant::now();
            let n = if rule == "anonymize_contacts" {
                baseline_update(&mut conn, &cutoff)?
            } else {
                baseline_delete(&mut conn, &cutoff)?
            };
            Ok((n, t.elapsed().as_secs_f64()))
        })();
        super::drop_copy(&copy);
        let (base_rows, base_secs) = baseline?;
        if lethe_rows as u64 != base_rows {
            eprintln!("note: lethe changed {lethe_rows} rows, the SQL {base_rows}");
        }
        results.push(Scenario {
            name,
            rule,
            lethe_rows,
            lethe_secs,
            longest_batch_ms: longest,
            batches,
            base_rows,
            base_secs,
            peak_mb: peak,
        });
    }
    let _ = std::fs::remove_dir_all(dir.join(format!("retention-{}", std::process::id())));
    if a.crm.json {
        let v: Vec<_> = results
            .iter()
            .map(|s| {
                json!({
                    "scenario": s.rule, "lethe_rows": s.lethe_rows, "lethe_rows_per_s": s.lethe_rows as f64 / s.lethe_secs,
                    "sql_rows": s.base_rows, "sql_rows_per_s": s.base_rows as f64 / s.base_secs,
                    "ratio": (s.lethe_rows as f64 / s.lethe_secs) / (s.base_rows as f64 / s.base_secs),
                    "longest_batch_ms": s.longest_batch_ms, "batches": s.batches, "peak_rss_mb": s.peak_mb,
                })
            })
            .collect();
        println!(
            "{}",
            json!({"crm": base.to_string(), "backend": base.backend_name(), "batch_size": batch, "sizing": sizing, "scenarios": v})
        );
    } else {
        println!(
            "lethe bench retention: {} ({}, {} contacts), {sizing}, cutoff {cutoff}",
            base,
            base.backend_name(),
            generated + 4
        );
        for s in &results {
            let lr = s.lethe_rows as f64 / s.lethe_secs;
            let br = s.base_rows as f64 / s.base_secs;
            println!("  {}:", s.name);
            println!(
                "    lethe:          {:>9} rows in {:>6.1}s = {:>9.0} rows/s ({} batches, longest {} ms, peak RSS {:.0} MB)",
                s.lethe_rows, s.lethe_secs, lr, s.batches, s.longest_batch_ms, s.peak_mb
            );
            println!(
                "    plain SQL:      {:>9} rows in {:>6.1}s = {:>9.0} rows/s",
                s.base_rows, s.base_secs, br
            );
            println!(
                "    ratio lethe / SQL throughput: {:.2}x (target >= 0.8x); longest batch target <= 250 ms; memory target <= 100 MB",
                lr / br
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
