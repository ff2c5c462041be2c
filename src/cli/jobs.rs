//! `lethe jobs`: the background job queue shared by every process on the engine store.

use super::{CliResult, open_app};
use crate::config::Config;
use crate::jobs::JobOutcome;
use crate::store::jobs as js;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// queued | running | done | failed
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Claim and run the due jobs once, then exit (for hosts that run no `lethe serve`;
    /// exit code 1 if a job failed).
    Run {
        /// At most this many jobs.
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
}

pub fn run(config: Config, command: JobsCommand) -> CliResult {
    let app = open_app(config)?;
    match command {
        JobsCommand::List { state, limit, json } => {
            if let Some(s) = &state
                && ![js::QUEUED, js::RUNNING, js::DONE, js::FAILED].contains(&s.as_str())
            {
                return Err(
                    format!("--state: \"{s}\" is not queued, running, done or failed").into(),
                );
            }
            let rows = app.store.read(|c| js::list(c, state.as_deref(), limit))?;
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|j| {
                        serde_json::json!({
                            "id": j.id, "kind": j.kind, "target": j.target, "state": j.state,
                            "attempts": j.attempts, "run_after": crate::audit::format_time(&j.run_after),
                            "lease_owner": j.lease_owner,
                            "lease_expires_at": j.lease_expires_at.as_ref().map(crate::audit::format_time),
                            "last_error": j.last_error,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                for j in rows {
                    println!(
                        "{}  {:<16} {:<40} {:<8} attempts={} due={} {}",
                        j.id,
                        j.kind,
                        j.target,
                        j.state,
                        j.attempts,
                        j.run_after.format("%Y-%m-%d %H:%M:%S"),
                        j.last_error.unwrap_or_default()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Run { max } => {
            let ran = crate::jobs::run_due(&app, max);
            let mut failed = false;
            for (job, outcome) in &ran {
                failed |= matches!(outcome, JobOutcome::Failed(_));
                println!("{} {} {}: {:?}", job.id, job.kind, job.target, outcome);
            }
            println!("{} job(s) run", ran.len());
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
