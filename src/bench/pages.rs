//! `lethe bench pages`: server-side page rendering with a large request store. Seeds the
//! engine store with N requests (10,000 by default) through the real workflow service, then
//! times every UI page over HTTP on 127.0.0.1 next to the JSON API's request list on the
//! same data (the same-run baseline), and reports p50/p99 against the 50 ms target.

use super::{CrmArgs, bench_app, http, ms, prepare_crm, summarize};
use crate::app::{Actor, App};
use crate::cli::{CliError, CliResult};
use crate::request::service::{self, NewRequest};
use crate::request::{Channel, Regime, RequestKind};
use crate::store::schema::requests;
use crate::store::{now, sessions, tokens};
use clap::Args;
use diesel::prelude::*;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct PagesArgs {
    /// Requests to seed into the engine store.
    #[arg(long, default_value_t = 10_000)]
    pub requests: usize,
    /// Timed fetches per page.
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
    /// Contacts in the demo CRM.
    #[arg(long, default_value_t = 10_000)]
    pub contacts: u64,
    /// Use this demo CRM instead (sqlite:// or postgres://).
    #[arg(long)]
    pub crm: Option<String>,
    #[arg(long, default_value = "target/bench")]
    pub dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// p50 target per page, in milliseconds.
    #[arg(long, default_value_t = 50.0)]
    pub target_ms: f64,
}

const KINDS: [RequestKind; 5] = [
    RequestKind::Access,
    RequestKind::Erasure,
    RequestKind::Portability,
    RequestKind::OptOut,
    RequestKind::Access,
];
const REGIMES: [Regime; 4] = [Regime::Gdpr, Regime::Ccpa, Regime::UkGdpr, Regime::Gdpr];

/// Seeds `n` requests through the workflow service (identities encrypted, events and audit
/// entries written), received over the last 400 days; then closes most of the older ones
/// (completed, denied, withdrawn) directly in the store so the dashboard and the yearly
/// report see a realistic mix. Returns one completed access request with an export.
fn seed(app: &App, n: usize, contacts: u64) -> Result<String, CliError> {
    let actor = Actor::cli();
    let start = now() - chrono::Duration::days(400);
    let mut ids = Vec::with_capacity(n);
    let emails = super::subjects(n + 1, contacts, 11);
    let t0 = Instant::now();
    for i in 0..n {
        let received = start + chrono::Duration::minutes((i as i64 * 400 * 24 * 60) / n as i64);
        let row = service::create(
            app,
            &actor,
            NewRequest {
                kind: KINDS[i % KINDS.len()],
                regime: REGIMES[i % REGIMES.len()],
                identities: vec![("email".into(), emails[i].clone())],
                channel: Channel::WebForm,
                received_at: Some(received),
                note: None,
                changes: Vec::new(),
            },
        )?;
        ids.push((row.id, received));
        if (i + 1) % 2000 == 0 {
            eprintln!(
                "  seeded {} requests ({:.0} s)",
                i + 1,
                t0.elapsed().as_secs_f64()
            );
        }
    }
    // Close the older 80%: mostly completed after 3 to 40 days, some denied or withdrawn.
    app.store.write(|c| {
        for (i, (id, received)) in ids.iter().enumerate() {
            if i >= n * 8 / 10 {
                break;
            }
            let state = match i % 10 {
                0 => "denied",
                1 => "withdrawn",
                _ => "completed",
            };
            let done = *received + chrono::Duration::days(3 + (i as i64 % 38));
            diesel::update(requests::table.find(id))
                .set((
                    requests::state.eq(state),
                    requests::completed_at.eq(Some(done)),
                ))
                .execute(c)?;
        }
        Ok::<_, crate::store::StoreError>(())
    })?;
    // One real access request, run end to end (export, certificate).
    let row = service::create(
        app,
        &actor,
        NewRequest {
            kind: RequestKind::Access,
            regime: Regime::Gdpr,
            identities: vec![("email".into(), emails[n].clone())],
            channel: Channel::Email,
            received_at: None,
            note: None,
            changes: Vec::new(),
        },
    )?;
    service::verify(app, &actor, &row.id, "email_confirmation", None)?;
    service::run(app, &actor, &row.id)?;
    Ok(row.id)
}

pub fn pages(a: PagesArgs) -> CliResult {
    let crm = CrmArgs {
        contacts: a.contacts,
        crm: a.crm.clone(),
        dir: a.dir.clone(),
        json: a.json,
    };
    let (url, contacts) = prepare_crm(&crm)?;
    let (app, token) = bench_app(&crm, &url)?;
    eprintln!("seeding {} requests into the engine store ...", a.requests);
    let t0 = Instant::now();
    let sample_id = seed(&app, a.requests, contacts)?;
    eprintln!("seeded in {:.1} s", t0.elapsed().as_secs_f64());
    let secret = app.store.write(|c| {
        let tok = tokens::authenticate(c, &token)?.ok_or(crate::store::StoreError::NotFound)?;
        sessions::open(c, &tok, now() + chrono::Duration::hours(2)).map(|(_, s)| s)
    })?;
    let cert_id = app
        .store
        .read(|c| crate::cert::issue::for_request(c, &sample_id))?
        .first()
        .map(|c| c.id.clone())
        .ok_or("the sample access request has no certificate")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let router = crate::http::router(app.clone());
    rt.spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let web = http::Client::with_cookie(addr, &format!("lethe_session={secret}"));
    let api = http::Client::new(addr, &token);
    let pages: Vec<(&str, String)> = vec![
        ("dashboard", "/dashboard".into()),
        ("requests (open)", "/requests".into()),
        ("requests (all)", "/requests?state=all".into()),
        ("request page", format!("/requests/{sample_id}")),
        ("intake form", "/requests/new".into()),
        ("legal holds", "/holds".into()),
        ("retention", "/retention".into()),
        ("certificates", "/certificates".into()),
        ("certificate", format!("/certificates/{cert_id}")),
        ("verify form", "/verify".into()),
        ("audit log", "/audit".into()),
        ("audit, full pass", "/audit?verify=full".into()),
        ("reports", "/reports".into()),
        ("reports CSV", "/reports/requests.csv".into()),
        ("data map", "/data-map".into()),
    ];
    // Baseline: the JSON API listing 50 requests (same store, same server, same client).
    let mut base = Vec::with_capacity(a.samples);
    for _ in 0..5 {
        api.request("GET", "/api/v1/requests?limit=50", None, 200)?;
    }
    for _ in 0..a.samples {
        let t = Instant::now();
        api.request("GET", "/api/v1/requests?limit=50", None, 200)?;
        base.push(ms(t));
    }
    let base = summarize(&base);
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for (name, path) in &pages {
        // The full re-hash is an on-demand action, reported but not held to the page target.
        let on_demand = path.contains("verify=full");
        for _ in 0..3 {
            web.request("GET", path, None, 200)?;
        }
        let mut s = Vec::with_capacity(a.samples);
        let mut bytes = 0;
        for _ in 0..a.samples {
            let t = Instant::now();
            bytes = web.request("GET", path, None, 200)?.len();
            s.push(ms(t));
        }
        let sum = summarize(&s);
        if sum.p50_ms > a.target_ms && !on_demand {
            failed.push(*name);
        }
        rows.push(json!({
            "page": name, "path": path, "bytes": bytes, "p50_ms": sum.p50_ms, "p99_ms": sum.p99_ms,
            "ratio_to_api_list_p50": sum.p50_ms / base.p50_ms.max(1e-9),
        }));
    }
    let store_requests = app.store.read(crate::store::requests::count)?;
    if a.json {
        println!(
            "{}",
            json!({"requests_in_store": store_requests, "samples": a.samples, "baseline_api_list": base, "pages": rows, "target_p50_ms": a.target_ms})
        );
    } else {
        println!(
            "pages over HTTP on 127.0.0.1, {store_requests} requests in the store, {} fetches each",
            a.samples
        );
        println!(
            "baseline GET /api/v1/requests?limit=50: p50 {:.2} ms, p99 {:.2} ms",
            base.p50_ms, base.p99_ms
        );
        println!(
            "{:<18} {:>9} {:>9} {:>8} {:>9}",
            "page", "p50 ms", "p99 ms", "x base", "KiB"
        );
        for r in &rows {
            println!(
                "{:<18} {:>9.2} {:>9.2} {:>8.2} {:>9.1}",
                r["page"].as_str().unwrap_or(""),
                r["p50_ms"].as_f64().unwrap_or(0.0),
                r["p99_ms"].as_f64().unwrap_or(0.0),
                r["ratio_to_api_list_p50"].as_f64().unwrap_or(0.0),
                r["bytes"].as_f64().unwrap_or(0.0) / 1024.0
            );
        }
        println!(
            "target: every page p50 <= {} ms: {}",
            a.target_ms,
            if failed.is_empty() {
                "met".to_string()
            } else {
                format!("NOT met by {}", failed.join(", "))
            }
        );
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
