//! `lethe bench export`: an access export of one subject with 1,000,000 rows in one table
//! (Jane Doe's website sessions in a SQLite demo CRM), end to end: the request's run (lean
//! trace, streaming build of the JSON and the CSV zip, encryption to files, certificate),
//! then a link download decrypted and authenticated into a sink. Next to it, in the same
//! run, the baseline: the same rows read with a plain keyset-paginated `SELECT *` and
//! serialized to JSON into a sink.
//!
//! Each run is a fresh child process (the CRM is seeded once, by the parent), so the peak
//! resident memory it reports (`VmHWM`, reset after start-up) is the export's own. Figures
//! are medians over the runs.

use crate::app::{Actor, App, AppState};
use crate::cli::{CliError, CliResult};
use crate::config::Config;
use crate::request::{Channel, Regime, RequestKind, service};
use crate::source::{DbUrl, Sql, Value, connect};
use crate::store::Store;
use clap::Args;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Rows of the subject in one table (website sessions).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Runs, each in a fresh process; the figures are their medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Where the benchmark CRM and the runs' stores and export files are kept.
    #[arg(long, default_value = "target/bench")]
    pub dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Internal: run one measurement on this CRM and print its figures (the child process).
    #[arg(long, hide = true)]
    pub child_crm: Option<PathBuf>,
}

const SUBJECT: &str = "jane.doe@example.com";
const MARK: &str = "lethe-bench-export ";

/// Contacts of the benchmark CRM besides the subject (the trace and residual scan see them).
const CONTACTS: u64 = 1000;

pub fn bench(a: ExportArgs) -> CliResult {
    if let Some(crm) = &a.child_crm {
        let figures = child(&a, crm)?;
        println!("{MARK}{figures}");
        return Ok(ExitCode::SUCCESS);
    }
    if a.runs == 0 {
        return Err("--runs: at least 1".into());
    }
    let crm = prepare(&a)?;
    let exe = std::env::current_exe()?;
    let mut runs: Vec<serde_json::Value> = Vec::new();
    for i in 0..a.runs {
        eprintln!("run {}/{} ...", i + 1, a.runs);
        let out = std::process::Command::new(&exe)
            .args(["bench", "export", "--rows"])
            .arg(a.rows.to_string())
            .arg("--dir")
            .arg(&a.dir)
            .arg("--child-crm")
            .arg(&crm)
            .stderr(std::process::Stdio::inherit())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(MARK))
            .ok_or_else(|| format!("run {}: no figures (exit {})", i + 1, out.status))?;
        runs.push(serde_json::from_str(line)?);
    }
    let median = |key: &str| -> f64 {
        let mut v: Vec<f64> = runs.iter().filter_map(|r| r[key].as_f64()).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let summary = json!({
        "rows": runs.first().map_or(json!(null), |r| r["rows"].clone()),
        "runs": runs.len(),
        "median": {
            "export_secs": median("export_secs"),
            "export_rows_per_sec": median("export_rows_per_sec"),
            "download_secs": median("download_secs"),
            "download_rows_per_sec": median("download_rows_per_sec"),
            "baseline_secs": median("baseline_secs"),
            "baseline_rows_per_sec": median("baseline_rows_per_sec"),
            "export_vs_baseline": median("export_vs_baseline"),
            "peak_rss_mb": median("peak_rss_mb"),
            "json_mb": median("json_mb"),
            "csv_zip_mb": median("csv_zip_mb"),
        },
        "each_run": runs,
        "peak_rss_limit_mb": 100,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        let m = &summary["median"];
        println!(
            "access export of one subject with {} rows, median of {} runs (each a fresh process)",
            summary["rows"],
            runs.len()
        );
        println!(
            "  export (trace + streaming build + encrypt to files): {:.1} s, {:.0} rows/s",
            m["export_secs"].as_f64().unwrap_or(0.0),
            m["export_rows_per_sec"].as_f64().unwrap_or(0.0)
        );
        println!(
            "  download (decrypt + authenticate to a sink):        {:.1} s, {:.0} rows/s",
            m["download_secs"].as_f64().unwrap_or(0.0),
            m["download_rows_per_sec"].as_f64().unwrap_or(0.0)
        );
        println!(
            "  baseline (keyset SELECT * to JSON in a sink):       {:.1} s, {:.0} rows/s (export at {:.2}x of it)",
            m["baseline_secs"].as_f64().unwrap_or(0.0),
            m["baseline_rows_per_sec"].as_f64().unwrap_or(0.0),
            m["export_vs_baseline"].as_f64().unwrap_or(0.0)
        );
        println!(
            "  files: JSON {:.1} MB, CSV zip {:.1} MB",
            m["json_mb"].as_f64().unwrap_or(0.0),
            m["csv_zip_mb"].as_f64().unwrap_or(0.0)
        );
        println!(
            "  peak resident memory of the export process: {:.1} MB (limit 100 MB); runs: {}",
            m["peak_rss_mb"].as_f64().unwrap_or(0.0),
            runs.iter()
                .map(|r| format!("{:.1}", r["peak_rss_mb"].as_f64().unwrap_or(0.0)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let over = runs
        .iter()
        .any(|r| r["peak_rss_mb"].as_f64().is_none_or(|m| m > 100.0));
    Ok(if over {
        eprintln!("peak memory above 100 MB");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The benchmark CRM: a demo CRM with 1000 contacts, and `rows` website sessions for Jane
/// Doe, created once.
fn prepare(a: &ExportArgs) -> Result<PathBuf, CliError> {
    let path = a.dir.join(format!("export-crm-{}.sqlite3", a.rows));
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(&a.dir)?;
    let partial = a
        .dir
        .join(format!("export-crm-{}.building.sqlite3", a.rows));
    let _ = std::fs::remove_file(&partial);
    eprintln!(
        "creating the benchmark CRM at {} (once): {CONTACTS} contacts, {} website sessions for one of them ...",
        path.display(),
        a.rows
    );
    let t = Instant::now();
    crate::demo::ensure_crm(&partial, CONTACTS, crate::demo::DEFAULT_SEED, |_| {})?;
    let url = DbUrl::Sqlite(partial.clone());
    let mut conn = connect(&url, false)?;
    let mut q = Sql::new(conn.dialect());
    q.push("SELECT id FROM contacts WHERE email = ")
        .bind(Value::Text(SUBJECT.into()));
    let contact = conn
        .query(&q)?
        .first()
        .and_then(|r| r[0].as_int())
        .ok_or("the demo CRM has no Jane Doe")?;
    conn.batch(&format!(
        "INSERT INTO web_sessions (contact_id, visitor_id, ip_address, user_agent, landing_page, started_at) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
         SELECT {contact}, 'v-' || (i % 977), '203.0.113.' || (i % 251), \
         'Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0', \
         '/products/item-' || (i % 5003) || '?utm_source=newsletter', \
         datetime('2024-01-01 00:00:00', '+' || (i % 600000) || ' minutes') FROM n",
        rows = a.rows
    ))?;
    conn.batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    drop(conn);
    std::fs::rename(&partial, &path)?;
    eprintln!("  done in {:.0}s", t.elapsed().as_secs_f64());
    Ok(path)
}

/// Resets the peak resident memory of this process (Linux `clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory of this process (VmHWM), in MB.
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

fn app_for(work: &Path, crm: &Path) -> Result<AppState, CliError> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work.join("policies"))?;
    std::fs::write(
        work.join("policies/datamap.toml"),
        crate::demo::DEMO_DATAMAP,
    )?;
    std::fs::write(
        work.join("policies/retention.toml"),
        crate::demo::DEMO_RETENTION,
    )?;
    let mut config = Config::for_data_dir(work, &work.join("policies"));
    config.master_key = Some(crate::crypto::MasterKey::generate().to_base64());
    let crm = std::fs::canonicalize(crm).unwrap_or(crm.to_path_buf());
    config
        .source_urls
        .insert("crm".into(), format!("sqlite://{}", crm.display()));
    let store = Store::open(&DbUrl::parse(&config.store_url)?)?;
    store.migrate()?;
    Ok(Arc::new(
        App::open(config).map_err(crate::cli::start_error)?,
    ))
}

/// One measurement (in a fresh process): export, download, then the baseline.
fn child(a: &ExportArgs, crm: &Path) -> Result<serde_json::Value, CliError> {
    let work = a.dir.join(format!("export-run-{}", std::process::id()));
    let app = app_for(&work, crm)?;
    app.trace_plan()?;
    let startup_mb = peak_rss_mb();
    reset_peak_rss();

    let actor = Actor::cli();
    let t = Instant::now();
    let r = service::create(
        &app,
        &actor,
        service::NewRequest {
            kind: RequestKind::Access,
            regime: Regime::Gdpr,
            identities: vec![("email".into(), SUBJECT.into())],
            channel: Channel::Email,
            received_at: None,
            note: None,
            changes: Vec::new(),
        },
    )?;
    service::verify(&app, &actor, &r.id, "document_check", None)?;
    service::run(&app, &actor, &r.id)?;
    let export_secs = t.elapsed().as_secs_f64();
    let x = service::export_row(&app, &r.id)?;
    let rows = u64::try_from(x.row_count).unwrap_or(0);

    let t = Instant::now();
    let link = crate::export::links::create(&app, &actor, &r.id, crate::export::Format::Json)?;
    let mut dl = crate::export::links::open(&app, &link.token).map_err(|e| e.to_string())?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = dl.body.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    let download_secs = t.elapsed().as_secs_f64();
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    if digest != x.digest {
        return Err("the downloaded export does not match its recorded digest".into());
    }
    let peak = peak_rss_mb();

    // The baseline: the same rows, plain SQL, keyset pages, each row to JSON in a sink.
    let t = Instant::now();
    let baseline_rows = baseline(crm)?;
    let baseline_secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&work);
    let rate = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    Ok(json!({
        "rows": rows,
        "export_secs": export_secs,
        "export_rows_per_sec": rate(rows, export_secs),
        "download_secs": download_secs,
        "download_rows_per_sec": rate(rows, download_secs),
        "download_bytes": bytes,
        "baseline_rows": baseline_rows,
        "baseline_secs": baseline_secs,
        "baseline_rows_per_sec": rate(baseline_rows, baseline_secs),
        "export_vs_baseline": if baseline_secs > 0.0 { rate(rows, export_secs) / rate(baseline_rows, baseline_secs) } else { 0.0 },
        "peak_rss_mb": peak,
        "startup_rss_mb": startup_mb,
        "json_mb": x.json_size.unwrap_or(0) as f64 / 1e6,
        "csv_zip_mb": x.csv_size.unwrap_or(0) as f64 / 1e6,
    }))
}

/// Reads the subject's website sessions with `SELECT *` in keyset pages of 10,000 and writes
/// each row as JSON into a sink; returns the rows read.
fn baseline(crm: &Path) -> Result<u64, CliError> {
    let mut conn = connect(&DbUrl::Sqlite(crm.to_path_buf()), false)?;
    let mut sink = std::io::sink();
    let mut last = 0i64;
    let mut n = 0u64;
    loop {
        let mut q = Sql::new(conn.dialect());
        q.push(
            "SELECT id, contact_id, visitor_id, ip_address, user_agent, landing_page, started_at \
             FROM web_sessions WHERE contact_id = (SELECT id FROM contacts WHERE email = ",
        )
        .bind(Value::Text(SUBJECT.into()))
        .push(") AND id > ")
        .bind(Value::Int(last))
        .push(" ORDER BY id LIMIT 10000");
        let rows = conn.query(&q)?;
        if rows.is_empty() {
            return Ok(n);
        }
        for r in &rows {
            serde_json::to_writer(&mut sink, r)?;
            sink.write_all(b"\n")?;
        }
        n += rows.len() as u64;
        last = rows
            .last()
            .and_then(|r| r[0].as_int())
            .ok_or("web_sessions.id is not an integer")?;
    }
}
