//! `lethe demo`: prepare the demo under ./lethe-data and serve it.

use super::{CliResult, open_app, serve_app};
use crate::config::Config;
use clap::Args;
use std::io::Write;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Number of generated contacts in a new demo CRM (about 11 rows per contact in all).
    #[arg(long, default_value_t = 10_000)]
    pub contacts: u64,
    /// Seed of the generated data (same seed and count, same data).
    #[arg(long, default_value_t = crate::demo::DEFAULT_SEED)]
    pub seed: u64,
    /// Address to serve on (overrides LETHE_LISTEN).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Prepare everything but do not serve.
    #[arg(long)]
    pub no_serve: bool,
}

pub fn run(mut config: Config, args: DemoArgs) -> CliResult {
    if let Some(l) = args.listen {
        config.listen = l;
    }
    let crm = config.data_dir.join("demo-crm.sqlite3");
    if !crm.exists() {
        eprintln!(
            "creating the demo CRM with {} generated contacts at {} ...",
            args.contacts,
            crm.display()
        );
    }
    let started = std::time::Instant::now();
    let total = args.contacts.max(1);
    let mut last_pct = 0;
    let setup = crate::demo::setup(&mut config, args.contacts, args.seed, |done| {
        let pct = done * 100 / total;
        if pct >= last_pct + 10 || done == total {
            last_pct = pct;
            eprint!("\r  {done} / {total} contacts ({pct}%)");
            let _ = std::io::stderr().flush();
        }
    })
    .map_err(super::start_error)?;
    if let Some(report) = &setup.crm_created {
        eprintln!();
        println!(
            "created demo CRM {} ({} contacts, {} rows in {} tables) in {:.1}s ({:.1}s loading, {:.1}s indexing)",
            setup.crm_path.display(),
            report.contacts,
            report.total_rows(),
            report.rows.len(),
            started.elapsed().as_secs_f64(),
            report.load_secs,
            report.index_secs,
        );
    } else {
        println!(
            "using the existing demo CRM {} ({} contacts)",
            setup.crm_path.display(),
            setup.crm_contacts
        );
    }
    println!(
        "engine store: {}{}",
        crate::source::url::redact_password(&setup.store_url),
        if setup.migrations.is_empty() {
            ""
        } else {
            " (migrated)"
        }
    );
    match (&setup.key_file, setup.key_created) {
        (Some(p), true) => println!(
            "master key: created {} (mode 600; keep it: it unlocks sealed exports and signing keys)",
            p.display()
        ),
        (Some(p), false) => println!("master key: {}", p.display()),
        (None, _) => println!("master key: from LETHE_MASTER_KEY"),
    }
    println!(
        "policies: {}{}",
        setup.policy_dir.display(),
        if setup.policy_written {
            " (written from the built-in demo data map)"
        } else {
            ""
        }
    );
    println!();
    println!("demo officer token (shown once; `lethe token create --role officer` makes more):");
    println!("  {}", setup.officer_token);
    let base = format!("http://{}", config.listen);
    let token = &setup.officer_token;
    println!();
    println!("web UI: {base}/ (sign in with the token above; `lethe token create --role auditor`");
    println!("        makes an auditor's token for the certificate, audit-log and report pages)");
    println!();
    println!("or the API:");
    println!("  export TOKEN={token}");
    println!("  # an access request for Jane Doe (GDPR), then verify, run and fetch the export:");
    println!(
        "  ID=$(curl -s -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\"
    );
    println!(
        "        -d '{{\"kind\":\"access\",\"regime\":\"gdpr\",\"identities\":{{\"email\":\"jane.doe@example.com\"}}}}' \\"
    );
    println!("        {base}/api/v1/requests | sed 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/')");
    println!(
        "  curl -s -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{{\"method\":\"email_confirmation\"}}' {base}/api/v1/requests/$ID/verify"
    );
    println!(
        "  curl -s -X POST -H \"Authorization: Bearer $TOKEN\" {base}/api/v1/requests/$ID/run"
    );
    println!("  # the export is fetched through an expiring download link (-L follows it):");
    println!("  curl -sL -H \"Authorization: Bearer $TOKEN\" {base}/api/v1/requests/$ID/export");
    println!();
    if args.no_serve {
        return Ok(ExitCode::SUCCESS);
    }
    println!("serving on {base} (Ctrl-C to stop)");
    let app = open_app(config)?;
    serve_app(app)
}
