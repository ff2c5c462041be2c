//! `lethe bench erase` and `lethe bench certs`.
//!
//! Erasure: lethe's end to end (approve, execute with its pre-check, verify by re-trace and
//! residual scan, sign the certificate) next to a hand-written SQL transaction doing the
//! same deletes and updates (the same tables, rows and new values) for another random
//! subject of the same data set, alternating, in the same run.
//!
//! Certificates: signing and verifying lethe certificates (canonical JSON + JWS) per second,
//! next to raw Ed25519 over the same bytes.

use super::{CrmArgs, Summary, ms, prepare_crm, subjects, summarize};
use crate::app::{Actor, App, AppState};
use crate::cert::jws;
use crate::cli::{CliError, CliResult};
use crate::config::Config;
use crate::erase::plan::{ErasurePlan, StepKind};
use crate::erase::run;
use crate::request::service::{self, NewRequest};
use crate::request::{Channel, Regime, RequestKind};
use crate::source::dialect::MAX_IN_LIST;
use crate::source::{DbUrl, SourceConn, Sql, Value, connect};
use crate::store::{Store, tokens};
use clap::Args;
use ed25519_dalek::{Signer, SigningKey, Verifier};
use serde_json::json;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct EraseArgs {
    #[command(flatten)]
    pub crm: CrmArgs,
    /// Erasures by lethe (and as many by the hand-written baseline).
    #[arg(long, default_value_t = 40)]
    pub samples: usize,
}

#[derive(Args, Debug)]
pub struct CertArgs {
    /// Certificates to sign and verify.
    #[arg(long, default_value_t = 5000)]
    pub samples: usize,
    #[arg(long)]
    pub json: bool,
}

/// A private working copy of the benchmark CRM (erasures change it).
fn working_copy(a: &CrmArgs) -> Result<(DbUrl, u64), CliError> {
    let (url, generated) = prepare_crm(a)?;
    match &url {
        DbUrl::Sqlite(p) => {
            let work = a
                .dir
                .join(format!("erase-work-{}.sqlite3", std::process::id()));
            eprintln!("copying {} to a working copy ...", p.display());
            let mut conn = connect(&url, false)?;
            let _ = std::fs::remove_file(&work);
            // VACUUM INTO makes a consistent copy even while WAL files exist.
            conn.batch(&format!(
                "VACUUM INTO '{}'",
                work.display().to_string().replace('\'', "''")
            ))?;
            Ok((DbUrl::Sqlite(work), generated))
        }
        DbUrl::Postgres(u) => {
            eprintln!("copying the PostgreSQL database to a working copy ...");
            let copy = super::pg_template_copy(u, "erase")?;
            Ok((copy, generated))
        }
        #[cfg(feature = "mysql")]
        DbUrl::Mysql(u) => {
            eprintln!("copying the MySQL database to a working copy ...");
            let copy = super::mysql_copy(u, "erase")?;
            Ok((copy, generated))
        }
    }
}

fn bench_app(a: &CrmArgs, url: &DbUrl) -> Result<AppState, CliError> {
    let dir = a.dir.join(format!("erase-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("policies"))?;
    std::fs::write(dir.join("policies/datamap.toml"), crate::demo::DEMO_DATAMAP)?;
    let mut config = Config::for_data_dir(&dir, &dir.join("policies"));
    config.master_key = Some(crate::crypto::MasterKey::generate().to_base64());
    config
        .source_urls
        .insert("crm".into(), url.to_config_string());
    let store = Store::open(&DbUrl::parse(&config.store_url)?)?;
    store.migrate()?;
    store.write(|c| tokens::create(c, crate::request::Role::Officer, "bench", None))?;
    Ok(Arc::new(
        App::open(config).map_err(crate::cli::start_error)?,
    ))
}

fn new_erasure(app: &App, email: &str) -> Result<String, CliError> {
    let actor = Actor::cli();
    let r = service::create(
        app,
        &actor,
        NewRequest {
            kind: RequestKind::Erasure,
            regime: Regime::Gdpr,
            identities: vec![("email".into(), email.to_string())],
            channel: Channel::Email,
            received_at: None,
            note: None,
            changes: Vec::new(),
        },
    )?;
    service::verify(app, &actor, &r.id, "document_check", None)?;
    Ok(r.id)
}

/// The hand-written transaction: the plan's deletes and updates as plain statements
/// (DELETE ... WHERE id IN (...), UPDATE ... SET col = value WHERE id = ...), children first.
fn hand_written(conn: &mut SourceConn, plan: &ErasurePlan) -> Result<u64, CliError> {
    let d = conn.dialect();
    conn.transaction(true, |conn| -> Result<u64, CliError> {
        let mut n = 0u64;
        for sp in &plan.sources {
            for st in &sp.steps {
                match st.kind {
                    StepKind::Delete => {
                        let keys: Vec<Value> = st.rows.iter().map(|r| r.key.0[0].clone()).collect();
                        for chunk in keys.chunks(MAX_IN_LIST) {
                            let mut q = Sql::new(d);
                            q.push("DELETE FROM ")
                                .ident(&st.table)
                                .push(" WHERE id IN ")
                                .in_list(chunk, None);
                            n += conn.execute(&q)? as u64;
                        }
                    }
                    _ => {
                        for r in &st.rows {
                            let mut q = Sql::new(d);
                            q.push("UPDATE ").ident(&st.table).push(" SET ");
                            for (j, c) in st.changes.iter().enumerate() {
                                if j > 0 {
                                    q.push(", ");
                                }
                                let v = r.after.as_ref().map_or(Value::Null, |a| a[j].clone());
                                let ty = crate::source::ColumnType::from_declared(
                                    if c.column.ends_with("_at") {
                                        "timestamp"
                                    } else {
                                        "text"
                                    },
                                );
                                q.ident(&c.column).push(" = ").bind_as(v, Some(&ty));
                            }
                            q.push(" WHERE id = ").bind(r.key.0[0].clone());
                            n += conn.execute(&q)? as u64;
                        }
                    }
                }
            }
        }
        Ok(n)
    })
}

pub fn erase(a: EraseArgs) -> CliResult {
    let (url, generated) = working_copy(&a.crm)?;
    let result = (|| -> CliResult {
        let app = bench_app(&a.crm, &url)?;
        let actor = Actor::cli();
        let emails = subjects(2 * a.samples + 10, generated, 11);
        let mut base_conn = app.sources.get("crm")?.pool.get()?;
        let mut plan_ms = Vec::new();
        let mut lethe_ms = Vec::new();
        let mut sql_ms = Vec::new();
        let mut rows = 0usize;
        let mut tables = 0usize;
        for (i, pair) in emails.chunks(2).enumerate() {
            let [ea, eb] = pair else { continue };
            let warm = i < 5;
            // lethe, end to end from approval.
            let id = new_erasure(&app, ea)?;
            let t = Instant::now();
            run::plan(&app, &actor, &id)?;
            let p = ms(t);
            let t = Instant::now();
            run::approve(&app, &actor, &id, None)?;
            let row = run::execute(&app, &actor, &id)?;
            let e2e = ms(t);
            if !row.state.ends_with("completed") {
                return Err(
                    format!("erasure ended in {}: {:?}", row.state, row.state_reason).into(),
                );
            }
            let (_, plan) = run::load_plan(&app, &id)?;
            // The baseline: the same kind of transaction for the next subject.
            let idb = new_erasure(&app, eb)?;
            run::plan(&app, &actor, &idb)?;
            let (_, planb) = run::load_plan(&app, &idb)?;
            let t = Instant::now();
            let n = hand_written(&mut base_conn, &planb)?;
            let base = ms(t);
            if n as usize != planb.actionable_rows() {
                return Err(format!(
                    "baseline touched {n} rows, planned {}",
                    planb.actionable_rows()
                )
                .into());
            }
            if !warm {
                plan_ms.push(p);
                lethe_ms.push(e2e);
                sql_ms.push(base);
                rows += plan.actionable_rows();
                tables += plan.sources.iter().map(|s| s.steps.len()).sum::<usize>();
            }
        }
        let l = summarize(&lethe_ms);
        let s = summarize(&sql_ms);
        let p = summarize(&plan_ms);
        let ratio = l.p50_ms / s.p50_ms.max(1e-9);
        let n = lethe_ms.len().max(1);
        if a.crm.json {
            println!(
                "{}",
                json!({"crm": url.to_string(), "backend": url.backend_name(), "erasure_end_to_end": l, "plan": p, "hand_written_sql": s, "ratio_p50": ratio, "rows_per_erasure": rows as f64 / n as f64})
            );
        } else {
            println!(
                "lethe bench erase: {} erasures on {} ({}, {} contacts); {:.1} rows in {:.1} steps per erasure",
                n,
                url,
                url.backend_name(),
                generated + 4,
                rows as f64 / n as f64,
                tables as f64 / n as f64
            );
            println!("  {:<58} {:>9} {:>9} {:>9}", "", "p50", "p99", "mean");
            let line = |name: &str, x: &Summary| {
                println!(
                    "  {:<58} {:>6.2} ms {:>6.2} ms {:>6.2} ms",
                    name, x.p50_ms, x.p99_ms, x.mean_ms
                )
            };
            line("lethe: approve, execute, verify, certificate", &l);
            line("hand-written SQL transaction, same deletes/updates", &s);
            line("(lethe: planning, for reference)", &p);
            println!("  ratio lethe / hand-written at p50: {ratio:.2}x (target <= 2x)");
        }
        Ok(ExitCode::SUCCESS)
    })();
    super::drop_copy(&url);
    let _ = std::fs::remove_dir_all(a.crm.dir.join(format!("erase-{}", std::process::id())));
    result
}

pub fn certs(a: CertArgs) -> CliResult {
    let sk = SigningKey::generate(&mut rand::rngs::OsRng);
    let set = jws::Jwks {
        keys: vec![jws::jwk(&sk.verifying_key())],
    };
    let payload = |i: usize| {
        json!({
            "certificate_id": format!("cert-{i}"), "kind": "erasure", "format": "lethe.certificate/1",
            "subject_ref": "hmac-sha256:0e9f1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6",
            "results": (0..12).map(|t| json!({"table": format!("table_{t}"), "rows_matched": t, "deleted": t, "anonymized": 0, "columns": []})).collect::<Vec<_>>(),
            "verification": {"passed": true, "rows_remaining_outside_exemptions": 0},
            "audit": {"seq": i, "hash": "ab".repeat(32)},
        })
    };
    let n = a.samples.max(1);
    let t = Instant::now();
    let signed: Vec<String> = (0..n)
        .map(|i| jws::sign(&payload(i), "lethe-certificate+jws", &sk).map(|j| j.to_json()))
        .collect::<Result<_, _>>()?;
    let sign_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for s in &signed {
        jws::verify(s, &set).map_err(|e| e.0)?;
    }
    let verify_s = t.elapsed().as_secs_f64();
    // Baseline: raw Ed25519 over the same signing inputs.
    let inputs: Vec<Vec<u8>> = signed
        .iter()
        .map(|s| {
            let j: jws::Jws = serde_json::from_str(s).unwrap_or(jws::Jws {
                protected: String::new(),
                payload: String::new(),
                signature: String::new(),
            });
            format!("{}.{}", j.protected, j.payload).into_bytes()
        })
        .collect();
    let t = Instant::now();
    let sigs: Vec<_> = inputs.iter().map(|m| sk.sign(m)).collect();
    let raw_sign_s = t.elapsed().as_secs_f64();
    let vk = sk.verifying_key();
    let t = Instant::now();
    for (m, s) in inputs.iter().zip(&sigs) {
        vk.verify(m, s).map_err(|e| e.to_string())?;
    }
    let raw_verify_s = t.elapsed().as_secs_f64();
    let per = |secs: f64| n as f64 / secs.max(1e-9);
    let size = signed.first().map_or(0, String::len);
    if a.json {
        println!(
            "{}",
            json!({"certificates": n, "bytes": size, "sign_per_s": per(sign_s), "verify_per_s": per(verify_s), "raw_ed25519_sign_per_s": per(raw_sign_s), "raw_ed25519_verify_per_s": per(raw_verify_s)})
        );
    } else {
        println!("lethe bench certs: {n} certificates of {size} bytes (12 tables)");
        println!(
            "  sign (canonical JSON + JWS + Ed25519):   {:>9.0}/s   raw Ed25519 sign of the same input:   {:>9.0}/s ({:.2}x)",
            per(sign_s),
            per(raw_sign_s),
            per(raw_sign_s) / per(sign_s)
        );
        println!(
            "  verify (parse + JWS + Ed25519 + JCS):     {:>9.0}/s   raw Ed25519 verify of the same input: {:>9.0}/s ({:.2}x)",
            per(verify_s),
            per(raw_verify_s),
            per(raw_verify_s) / per(verify_s)
        );
    }
    Ok(ExitCode::SUCCESS)
}
