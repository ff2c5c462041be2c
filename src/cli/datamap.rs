//! `lethe datamap check`: validate the policy files and lint them against the live sources.

use super::{CliError, CliResult};
use crate::config::Config;
use crate::policy::lint::{self, CatalogResult};
use crate::policy::{self, Diagnostic, Severity};
use crate::source::{Catalog, Sources};
use clap::Subcommand;
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum DatamapCommand {
    /// Validate the data map (file, line and key for every problem) and lint it against the
    /// live databases. Exits 1 when there are errors.
    Check {
        /// Only validate the files; do not connect to the sources.
        #[arg(long)]
        offline: bool,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn print(diags: &[Diagnostic], json: bool, summary: &str) {
    if json {
        let v: Vec<_> = diags
            .iter()
            .map(|d| serde_json::json!({"severity": d.severity, "file": &*d.at.file, "line": d.at.line, "key": d.key, "message": d.message}))
            .collect();
        println!("{}", serde_json::json!({"summary": summary, "findings": v}));
    } else {
        for d in diags {
            println!("{d}");
        }
        println!("{summary}");
    }
}

pub fn run(config: &Config, command: DatamapCommand) -> CliResult {
    let DatamapCommand::Check { offline, json } = command;
    let pol = match policy::load_dir(&config.policy_dir) {
        Ok(p) => p,
        Err(e) => {
            let n = e.0.iter().filter(|d| d.is_error()).count();
            print(
                &e.0,
                json,
                &format!("{n} error(s): the data map is invalid"),
            );
            return Ok(ExitCode::from(1));
        }
    };
    let mut diags = pol.warnings.clone();
    if !offline {
        let sources = Sources::open(&pol.datamap, &config.env, &config.source_urls, 2);
        let mut loaded: BTreeMap<String, Result<Catalog, String>> = BTreeMap::new();
        match &sources {
            Ok(s) => {
                for h in s.iter() {
                    let r = h
                        .pool
                        .get()
                        .and_then(|mut c| Catalog::load(&mut c))
                        .map_err(|e| e.to_string());
                    loaded.insert(h.name.clone(), r);
                }
            }
            Err(e) => {
                for name in pol.datamap.sources.keys() {
                    loaded.insert(name.clone(), Err(e.to_string()));
                }
            }
        }
        let catalogs: BTreeMap<String, CatalogResult<'_>> = loaded
            .iter()
            .map(|(k, v)| (k.clone(), v.as_ref().map_err(Clone::clone)))
            .collect();
        diags.extend(lint::lint(&pol.datamap, &catalogs));
        diags.extend(lint::lint_webhook_secrets(&pol.datamap, |var| {
            config.env.get(var).cloned()
        }));
        diags.extend(crate::retention::rules::lint(
            &pol.retention,
            &pol.datamap,
            &catalogs,
        ));
    }
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    let m = &pol.datamap;
    let summary = format!(
        "{} table(s), {} link(s), {} identity kind(s), {} retention rule(s) in {} file(s) ({}); {errors} error(s), {warnings} warning(s){}",
        m.tables.len(),
        m.links.len(),
        m.identity_kinds.len(),
        pol.retention.rules.len(),
        pol.files.len(),
        pol.digest,
        if offline {
            " (offline: not checked against the databases)"
        } else {
            ""
        }
    );
    print(&diags, json, &summary);
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

impl From<CliError> for String {
    fn from(e: CliError) -> Self {
        e.message
    }
}
