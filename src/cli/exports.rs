//! `lethe exports`: exports at rest (the sweep `lethe serve` runs on its own, for hosts that
//! run it from cron instead).

use super::{CliResult, open_app};
use crate::config::Config;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum ExportsCommand {
    /// Delete expired exports (their encrypted files), dead download links, and files no
    /// export refers to.
    Sweep {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config: Config, command: ExportsCommand) -> CliResult {
    let app = open_app(config)?;
    match command {
        ExportsCommand::Sweep { json } => {
            let r = crate::export::sweep::sweep(&app)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "{} expired export(s) deleted, {} dead link(s) removed, {} stray file(s) removed",
                    r.exports_deleted, r.links_deleted, r.orphan_files_removed
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
