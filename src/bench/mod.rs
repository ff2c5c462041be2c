//! Benchmarks that need a large demo CRM (`lethe bench ...`). Each prints its figures next
//! to a baseline measured in the same run, as medians (p50) and p99: the machine is shared
//! and noisy, so single runs mean little.

pub mod baseline;
mod erase;
mod export;
mod http;
mod pages;
mod retention;

use crate::app::{App, AppState};
use crate::cli::{CliError, CliResult};
use crate::config::Config;
use crate::demo::seed::{Rng, generated_email};
use crate::policy::{self, Policy};
use crate::request::Role;
use crate::source::{DbUrl, Dialect, Sources, connect};
use crate::store::{Store, tokens};
use crate::trace::{Identity, TraceOptions, TracePlan};
use clap::{Args, Subcommand};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Trace latency over random subjects: lethe's link trace next to hand-written SQL
    /// fetching the same rows, and the residual scan with and without text indexes.
    Trace(TraceArgs),
    /// A whole access request over HTTP (create, verify, run, fetch the export).
    Access(AccessArgs),
    /// Erasure end to end next to a hand-written SQL transaction (on a working copy).
    Erase(erase::EraseArgs),
    /// Certificate signing and verification per second.
    Certs(erase::CertArgs),
    /// Retention runs (anonymize, delete with linked rows) next to plain SQL.
    Retention(retention::RetentionArgs),
    /// Every web UI page over HTTP with 10,000 requests in the store, next to the JSON
    /// API's request list.
    Pages(pages::PagesArgs),
    /// An access export of one subject with 1,000,000 rows (streaming build, encryption,
    /// download) with its peak memory, next to a plain SELECT of the same rows.
    Export(export::ExportArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CrmArgs {
    /// Generated contacts in the demo CRM (created under --dir if missing).
    #[arg(long, default_value_t = 1_000_000)]
    pub contacts: u64,
    /// Use this demo CRM instead (sqlite://, postgres://, or mysql:// with the `mysql`
    /// feature; seeded if it has no tables).
    #[arg(long)]
    pub crm: Option<String>,
    /// Where benchmark CRMs and stores are kept.
    #[arg(long, default_value = "target/bench")]
    pub dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TraceArgs {
    #[command(flatten)]
    pub crm: CrmArgs,
    /// Random subjects for the link trace.
    #[arg(long, default_value_t = 500)]
    pub samples: usize,
    /// Subjects for the residual scan with a text index.
    #[arg(long, default_value_t = 100)]
    pub residual_samples: usize,
    /// Subjects for the residual scan without a text index (each scans whole columns).
    #[arg(long, default_value_t = 10)]
    pub unindexed_samples: usize,
}

#[derive(Args, Debug)]
pub struct AccessArgs {
    #[command(flatten)]
    pub crm: CrmArgs,
    /// Access requests to run.
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
}

pub fn run(_config: Config, command: BenchCommand) -> CliResult {
    match command {
        BenchCommand::Trace(a) => trace(a),
        BenchCommand::Access(a) => access(a),
        BenchCommand::Erase(a) => erase::erase(a),
        BenchCommand::Certs(a) => erase::certs(a),
        BenchCommand::Retention(a) => retention::bench(a),
        BenchCommand::Pages(a) => pages::pages(a),
        BenchCommand::Export(a) => export::bench(a),
    }
}

/// Latency summary in milliseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub n: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
}

pub fn summarize(samples: &[f64]) -> Summary {
    let mut s: Vec<f64> = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if s.is_empty() {
            return 0.0;
        }
        let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
        s[rank - 1]
    };
    Summary {
        n: s.len(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        mean_ms: if s.is_empty() {
            0.0
        } else {
            s.iter().sum::<f64>() / s.len() as f64
        },
    }
}

pub(crate) fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// The demo CRM to benchmark against, created or seeded when needed.
pub(crate) fn prepare_crm(a: &CrmArgs) -> Result<(DbUrl, u64), CliError> {
    let url = match &a.crm {
        Some(u) => DbUrl::parse(u).map_err(|e| format!("--crm: {e}"))?,
        None => DbUrl::Sqlite(a.dir.join(format!("crm-{}.sqlite3", a.contacts))),
    };
    match &url {
        DbUrl::Sqlite(p) => {
            if !p.exists() {
                eprintln!(
                    "creating a demo CRM with {} contacts at {} (once) ...",
                    a.contacts,
                    p.display()
                );
                std::fs::create_dir_all(&a.dir)?;
                let t = Instant::now();
                crate::demo::ensure_crm(p, a.contacts, crate::demo::DEFAULT_SEED, |_| {})?;
                eprintln!("  done in {:.0}s", t.elapsed().as_secs_f64());
            }
        }
        _ => {
            let mut conn = connect(&url, false)?;
            let cat = crate::source::Catalog::load(&mut conn)?;
            if cat.table("contacts").is_none() {
                eprintln!(
                    "seeding the {} demo CRM with {} contacts (once) ...",
                    url.backend_name(),
                    a.contacts
                );
                let t = Instant::now();
                crate::demo::seed(&mut conn, a.contacts, crate::demo::DEFAULT_SEED, |_| {})?;
                eprintln!("  done in {:.0}s", t.elapsed().as_secs_f64());
            }
        }
    }
    let mut conn = connect(&url, false)?;
    let mut q = conn.sql();
    q.push("SELECT count(*) FROM contacts");
    let n = conn
        .query(&q)?
        .first()
        .and_then(|r| r[0].as_int())
        .unwrap_or(0);
    // Four showcase contacts come first; the rest are generated.
    let generated = u64::try_from(n - 4).map_err(|_| "the CRM is not a lethe demo CRM")?;
    Ok((url, generated))
}

fn demo_policy() -> Result<Policy, CliError> {
    Ok(policy::load_texts(&[(
        "policies/datamap.toml".to_string(),
        crate::demo::DEMO_DATAMAP.to_string(),
    )])?)
}

fn sources_for(pol: &Policy, url: &DbUrl) -> Result<Sources, CliError> {
    let overrides = BTreeMap::from([("crm".to_string(), url.to_config_string())]);
    Ok(Sources::open(
        &pol.datamap,
        &BTreeMap::new(),
        &overrides,
        4,
    )?)
}

pub(crate) fn subjects(n: usize, generated: u64, salt: u64) -> Vec<String> {
    let mut rng = Rng::new(0xBE4C_u64 ^ salt);
    (0..n)
        .map(|_| generated_email(crate::demo::DEFAULT_SEED, rng.below(generated), 5))
        .collect()
}

fn trace(a: TraceArgs) -> CliResult {
    let (url, generated) = prepare_crm(&a.crm)?;
    let pol = demo_policy()?;
    let sources = sources_for(&pol, &url)?;
    let handle = sources.get("crm")?;
    let catalogs = BTreeMap::from([("crm".to_string(), handle.catalog()?)]);
    let plan = TracePlan::compile(&pol.datamap, &catalogs)?;
    let map = &pol.datamap;
    let dialect = handle.dialect();
    let mut base_conn = handle.pool.get()?;
    let link = TraceOptions {
        residual: false,
        use_text_index: true,
    };
    let ident = |e: &str| {
        vec![Identity {
            kind: "email".into(),
            value: e.to_string(),
        }]
    };

    // Warm-up: page cache and prepared statements.
    for e in subjects(50, generated, 99) {
        crate::trace::trace(map, &plan, &sources, &ident(&e), &link)?;
        baseline::contact_rows(&mut base_conn, &e)?;
    }

    let mut lethe_ms = Vec::new();
    let mut sql_ms = Vec::new();
    let mut rows = 0usize;
    for (i, e) in subjects(a.samples, generated, 1).iter().enumerate() {
        // Alternate the order so neither side always runs on a warmer cache.
        let mut run_lethe = || -> Result<(), CliError> {
            let t = Instant::now();
            let fp = crate::trace::trace(map, &plan, &sources, &ident(e), &link)?;
            lethe_ms.push(ms(t));
            rows += fp.row_count();
            Ok(())
        };
        if i % 2 == 0 {
            run_lethe()?;
            let t = Instant::now();
            baseline::contact_rows(&mut base_conn, e)?;
            sql_ms.push(ms(t));
        } else {
            let t = Instant::now();
            let expected = baseline::contact_rows(&mut base_conn, e)?;
            sql_ms.push(ms(t));
            run_lethe()?;
            let _ = expected;
        }
    }
    // Correctness check on the measured subjects: same rows as the hand-written SQL.
    for e in subjects(a.samples.min(50), generated, 1) {
        let fp = crate::trace::trace(map, &plan, &sources, &ident(&e), &link)?;
        let expected: usize = baseline::contact_rows(&mut base_conn, &e)?
            .values()
            .map(|s| s.len())
            .sum();
        if fp.row_count() != expected {
            return Err(format!(
                "trace of {} found {} rows, hand-written SQL {}",
                crate::policy::Normalizer::Email.mask(&e),
                fp.row_count(),
                expected
            )
            .into());
        }
    }
    drop(base_conn);

    // The text index the residual scan uses, if the backend has one (MySQL has no index for
    // LIKE '%...%': its scan is always the unindexed one).
    let text_index = match dialect {
        Dialect::Sqlite => Some("FTS5 trigram"),
        Dialect::Postgres => Some("pg_trgm GIN"),
        #[cfg(feature = "mysql")]
        Dialect::Mysql => None,
    };
    let residual_indexed = match text_index {
        Some(_) => Some(residual_run(
            map,
            &plan,
            &sources,
            &subjects(a.residual_samples, generated, 2),
            true,
        )?),
        None => None,
    };
    let residual_plain = if a.unindexed_samples > 0 {
        let drop_and_restore = dialect == Dialect::Postgres;
        if drop_and_restore {
            eprintln!("dropping the pg_trgm indexes for the unindexed run ...");
            let mut c = handle.pool.get()?;
            for s in crate::demo::schema::drop_text_index_ddl(dialect) {
                c.batch(&s)?;
            }
        }
        let r = residual_run(
            map,
            &plan,
            &sources,
            &subjects(a.unindexed_samples, generated, 3),
            false,
        );
        if drop_and_restore {
            eprintln!("restoring the pg_trgm indexes ...");
            let mut c = handle.pool.get()?;
            for s in crate::demo::schema::text_index_ddl(dialect) {
                c.batch(&s)?;
            }
        }
        Some(r?)
    } else {
        None
    };

    let l = summarize(&lethe_ms);
    let s = summarize(&sql_ms);
    let ratio = l.p50_ms / s.p50_ms.max(1e-9);
    let rows_per = rows as f64 / a.samples.max(1) as f64;
    if a.crm.json {
        println!(
            "{}",
            json!({
                "crm": url.to_string(), "backend": url.backend_name(), "contacts": generated + 4,
                "link_trace": l, "hand_written_sql": s, "ratio_p50": ratio, "rows_per_subject": rows_per,
                "residual_indexed": residual_indexed, "residual_unindexed": residual_plain, "text_index": text_index,
            })
        );
    } else {
        println!(
            "lethe bench trace: {} ({}, {} contacts), {} random subjects",
            url,
            url.backend_name(),
            generated + 4,
            a.samples
        );
        println!("  {:<44} {:>9} {:>9} {:>9}", "", "p50", "p99", "mean");
        let line = |name: &str, x: &Summary| {
            println!(
                "  {:<44} {:>6.2} ms {:>6.2} ms {:>6.2} ms",
                name, x.p50_ms, x.p99_ms, x.mean_ms
            )
        };
        line("link trace (lethe, data map driven)", &l);
        line("hand-written SQL, same rows (baseline)", &s);
        println!(
            "  ratio lethe / hand-written at p50: {ratio:.2}x (target <= 2x); {rows_per:.1} rows per subject"
        );
        match (&residual_indexed, text_index) {
            (Some(r), Some(index)) => line(&format!("residual scan, {index} index (n={})", r.n), r),
            _ => println!("  residual scan: no substring index on this backend (LIKE scan only)"),
        }
        if let Some(p) = &residual_plain {
            line(&format!("residual scan, no text index (n={})", p.n), p);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Residual-scan time alone (the scan's own timer inside full traces).
fn residual_run(
    map: &crate::policy::DataMap,
    plan: &TracePlan,
    sources: &Sources,
    emails: &[String],
    index: bool,
) -> Result<Summary, CliError> {
    let opts = TraceOptions {
        residual: true,
        use_text_index: index,
    };
    let mut out = Vec::new();
    for e in emails {
        let fp = crate::trace::trace(
            map,
            plan,
            sources,
            &[Identity {
                kind: "email".into(),
                value: e.clone(),
            }],
            &opts,
        )?;
        out.push(fp.stats.residual_micros as f64 / 1000.0);
        if std::env::var("LETHE_BENCH_DEBUG").is_ok() {
            eprintln!(
                "residual: {} queries, {} candidates, {} mentions, {:.1} ms",
                fp.stats.residual_queries,
                fp.stats.residual_candidates,
                fp.mentions.len(),
                fp.stats.residual_micros as f64 / 1000.0
            );
        }
    }
    Ok(summarize(&out))
}

fn bench_app(a: &CrmArgs, url: &DbUrl) -> Result<(AppState, String), CliError> {
    let dir = a.dir.join(format!("access-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let pol_dir = dir.join("policies");
    std::fs::create_dir_all(&pol_dir)?;
    std::fs::write(pol_dir.join("datamap.toml"), crate::demo::DEMO_DATAMAP)?;
    std::fs::write(pol_dir.join("retention.toml"), crate::demo::DEMO_RETENTION)?;
    let mut config = Config::for_data_dir(&dir, &pol_dir);
    config.listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.master_key = Some(crate::crypto::MasterKey::generate().to_base64());
    config.source_urls.insert(
        "crm".into(),
        match url {
            DbUrl::Sqlite(p) => format!(
                "sqlite://{}",
                std::fs::canonicalize(p).unwrap_or(p.clone()).display()
            ),
            other => other.to_config_string(),
        },
    );
    let store = Store::open(&DbUrl::parse(&config.store_url)?)?;
    store.migrate()?;
    let (_, token) = store.write(|c| tokens::create(c, Role::Officer, "bench", None))?;
    Ok((
        Arc::new(App::open(config).map_err(crate::cli::start_error)?),
        token,
    ))
}

fn access(a: AccessArgs) -> CliResult {
    let (url, generated) = prepare_crm(&a.crm)?;
    let (app, token) = bench_app(&a.crm, &url)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let router = crate::http::router(app.clone());
    rt.spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let client = http::Client::new(addr, &token);
    let mut totals = Vec::new();
    let mut steps: [Vec<f64>; 4] = Default::default();
    let mut base_conn = app.sources.get("crm")?.pool.get()?;
    let mut sql_ms = Vec::new();
    let emails = subjects(a.samples + 20, generated, 7);
    for (i, e) in emails.iter().enumerate() {
        let t0 = Instant::now();
        let body =
            json!({"kind": "access", "regime": "gdpr", "identities": {"email": e}}).to_string();
        let created = client.request("POST", "/api/v1/requests", Some(&body), 201)?;
        let t1 = Instant::now();
        let v: serde_json::Value = serde_json::from_slice(&created)?;
        let id = v["id"].as_str().ok_or("no id in the response")?.to_string();
        client.request(
            "POST",
            &format!("/api/v1/requests/{id}/verify"),
            Some(r#"{"method":"email_confirmation"}"#),
            200,
        )?;
        let t2 = Instant::now();
        client.request(
            "POST",
            &format!("/api/v1/requests/{id}/run"),
            Some("{}"),
            200,
        )?;
        let t3 = Instant::now();
        let export = client.request("GET", &format!("/api/v1/requests/{id}/export"), None, 200)?;
        let t4 = Instant::now();
        if export.len() < 100 {
            return Err("export unexpectedly small".into());
        }
        let t = Instant::now();
        baseline::contact_rows(&mut base_conn, e)?;
        let base = ms(t);
        if i >= 20 {
            // The first 20 warm caches up.
            totals.push((t4 - t0).as_secs_f64() * 1000.0);
            steps[0].push((t1 - t0).as_secs_f64() * 1000.0);
            steps[1].push((t2 - t1).as_secs_f64() * 1000.0);
            steps[2].push((t3 - t2).as_secs_f64() * 1000.0);
            steps[3].push((t4 - t3).as_secs_f64() * 1000.0);
            sql_ms.push(base);
        }
    }
    let total = summarize(&totals);
    let names = [
        "create",
        "verify",
        "run (trace + residual scan + sealed export)",
        "fetch export",
    ];
    let sql = summarize(&sql_ms);
    if a.crm.json {
        let st: Vec<_> = names
            .iter()
            .zip(&steps)
            .map(|(n, s)| json!({"step": n, "latency": summarize(s)}))
            .collect();
        println!(
            "{}",
            json!({"crm": url.to_string(), "backend": url.backend_name(), "store": "sqlite", "access_request": total, "steps": st, "hand_written_sql_trace": sql})
        );
    } else {
        println!(
            "lethe bench access: {} requests over HTTP against {} ({} contacts), engine store on SQLite",
            total.n,
            url,
            generated + 4
        );
        println!("  {:<46} {:>9} {:>9} {:>9}", "", "p50", "p99", "mean");
        let line = |name: &str, x: &Summary| {
            println!(
                "  {:<46} {:>6.2} ms {:>6.2} ms {:>6.2} ms",
                name, x.p50_ms, x.p99_ms, x.mean_ms
            )
        };
        line("whole access request (4 HTTP calls)", &total);
        for (n, s) in names.iter().zip(&steps) {
            line(&format!("  {n}"), &summarize(s));
        }
        line("baseline: hand-written SQL for the same rows", &sql);
        println!("  target: whole request p50 <= 20 ms");
    }
    let _ = std::fs::remove_dir_all(a.crm.dir.join(format!("access-{}", std::process::id())));
    let _: &Path = &a.crm.dir;
    Ok(ExitCode::SUCCESS)
}

/// A copy of a PostgreSQL database made with `CREATE DATABASE ... TEMPLATE` (named
/// `<db>_<suffix>_<pid>`); other sessions on the original are ended first, as the template
/// must be idle.
pub(crate) fn pg_template_copy(url: &str, suffix: &str) -> Result<DbUrl, CliError> {
    let db = url
        .rsplit('/')
        .next()
        .unwrap_or("")
        .split('?')
        .next()
        .unwrap_or("")
        .to_string();
    let copy = format!("{db}_{suffix}_{}", std::process::id());
    let admin = url.replacen(&format!("/{db}"), "/postgres", 1);
    let mut conn = connect(&DbUrl::parse(&admin).map_err(|e| e.to_string())?, false)?;
    conn.batch(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    ))?;
    conn.batch(&format!("CREATE DATABASE {copy} TEMPLATE {db}"))?;
    Ok(DbUrl::Postgres(url.replacen(
        &format!("/{db}"),
        &format!("/{copy}"),
        1,
    )))
}

/// A copy of a MySQL/MariaDB database (named `<db>_<suffix>_<pid>`) on the same server:
/// each table created from its `SHOW CREATE TABLE` (indexes and foreign keys included) and
/// filled with `INSERT ... SELECT`, foreign-key checks off for the copy's session only
/// (the data is the original's, already consistent), then analyzed.
#[cfg(feature = "mysql")]
pub(crate) fn mysql_copy(url: &str, suffix: &str) -> Result<DbUrl, CliError> {
    let d = Dialect::Mysql;
    let (db, _) = mysql_db(url)?;
    let copy = format!("{db}_{suffix}_{}", std::process::id());
    let copy_url = DbUrl::parse(&mysql_with_db(url, &copy)?)?;
    let mut base = connect(&DbUrl::parse(url)?, false)?;
    base.batch(&format!(
        "DROP DATABASE IF EXISTS {q}; CREATE DATABASE {q} CHARACTER SET utf8mb4",
        q = d.quote(&copy)
    ))?;
    let mut q = base.sql();
    q.push(
        "SELECT TABLE_NAME FROM information_schema.TABLES          WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    );
    let tables: Vec<String> = base
        .query(&q)?
        .iter()
        .filter_map(|r| r.first().and_then(catalog_text))
        .collect();
    let mut dest = connect(&copy_url, false)?;
    dest.batch("SET SESSION foreign_key_checks = 0")?;
    for t in &tables {
        let mut q = base.sql();
        q.push("SHOW CREATE TABLE ").ident(t);
        let ddl = base
            .query(&q)?
            .first()
            .and_then(|r| r.get(1))
            .and_then(catalog_text)
            .ok_or_else(|| format!("SHOW CREATE TABLE {t} returned nothing"))?;
        dest.batch(&ddl)?;
        dest.batch(&format!(
            "INSERT INTO {} SELECT * FROM {}.{}",
            d.quote(t),
            d.quote(&db),
            d.quote(t)
        ))?;
    }
    dest.batch("SET SESSION foreign_key_checks = 1")?;
    let list: Vec<String> = tables.iter().map(|t| d.quote(t)).collect();
    if !list.is_empty() {
        dest.batch(&format!("ANALYZE TABLE {}", list.join(", ")))?;
    }
    Ok(copy_url)
}

/// A name or DDL text from MySQL's catalog (which may flag it as a binary string).
#[cfg(feature = "mysql")]
fn catalog_text(v: &crate::source::Value) -> Option<String> {
    match v {
        crate::source::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        v => v.to_text(),
    }
}

/// The database name of a `mysql://` URL and the URL's query string, if any.
#[cfg(feature = "mysql")]
fn mysql_db(url: &str) -> Result<(String, Option<String>), CliError> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_part = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let path = host_part
        .split_once('/')
        .map(|(_, p)| p)
        .ok_or("the MySQL URL names no database")?;
    let (db, query) = path
        .split_once('?')
        .map_or((path, None), |(d, q)| (d, Some(q.to_string())));
    if db.is_empty() {
        return Err("the MySQL URL names no database".into());
    }
    Ok((db.to_string(), query))
}

/// The same `mysql://` URL with another database.
#[cfg(feature = "mysql")]
fn mysql_with_db(url: &str, db: &str) -> Result<String, CliError> {
    let (old, query) = mysql_db(url)?;
    let suffix = query.as_ref().map_or(String::new(), |q| format!("?{q}"));
    let base = url
        .strip_suffix(&format!("/{old}{suffix}"))
        .ok_or("unexpected MySQL URL shape")?;
    Ok(format!("{base}/{db}{suffix}"))
}

/// Removes a working copy made by a benchmark (SQLite file and its WAL, or the database).
pub(crate) fn drop_copy(url: &DbUrl) {
    match url {
        DbUrl::Sqlite(p) => {
            let _ = std::fs::remove_file(p);
            for ext in ["sqlite3-wal", "sqlite3-shm"] {
                let _ = std::fs::remove_file(p.with_extension(ext));
            }
        }
        DbUrl::Postgres(u) => {
            let db = u.rsplit('/').next().unwrap_or("").to_string();
            let admin = u.replacen(&format!("/{db}"), "/postgres", 1);
            if let Ok(url) = DbUrl::parse(&admin)
                && let Ok(mut c) = connect(&url, false)
            {
                let _ = c.batch(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
            }
        }
        #[cfg(feature = "mysql")]
        DbUrl::Mysql(u) => {
            if let Ok((db, _)) = mysql_db(u)
                && let Ok(mut c) = connect(url, false)
            {
                let _ = c.batch(&format!(
                    "DROP DATABASE IF EXISTS {}",
                    Dialect::Mysql.quote(&db)
                ));
            }
        }
    }
}
