//! `lethe retention plan|run`: the dry-run plan with forecast, and runs with a progress bar
//! on a terminal and a JSON summary for cron and monitoring.
//!
//! Exit codes of `run`: 0 every rule completed (or a dry run), 3 a time budget ran out (the
//! next run continues), 4 a source was unavailable (the run waits; `lethe serve` or the
//! next `lethe retention run` resumes it), 1 a rule failed or another process holds its
//! lease.

use super::{CliError, CliResult, open_app};
use crate::config::Config;
use crate::retention::plan;
use crate::retention::run::{RunOutcome, RunRequest, RunStatus, due_count, run};
use clap::Subcommand;
use std::process::ExitCode;

/// Exit code when a run stopped at its time budget.
pub const EXIT_PARTIAL: u8 = 3;

/// Exit code when a run waits for a source that is unavailable.
pub const EXIT_WAITING: u8 = 4;

#[derive(Subcommand, Debug)]
pub enum RetentionCommand {
    /// Show, per rule, the cutoff, the rows due now, those held back, and a forecast.
    Plan {
        /// Plan as of this date or time (RFC 3339 or YYYY-MM-DD; default now).
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run rules now (all enabled rules, or one).
    Run {
        #[arg(long)]
        rule: Option<String>,
        /// Work out what would happen without changing anything.
        #[arg(long)]
        dry_run: bool,
        /// Exactly this many rows per batch transaction (default: sized by
        /// retention.toml's batch_target).
        #[arg(long)]
        batch_size: Option<u32>,
        /// Stop cleanly after this long (e.g. 30m); the next run continues.
        #[arg(long)]
        budget: Option<String>,
        /// Run as of this date or time (tests and catch-up; default now).
        #[arg(long)]
        at: Option<String>,
        /// Print a JSON summary instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn parse_at(s: Option<&str>) -> Result<Option<chrono::NaiveDateTime>, CliError> {
    s.map(|s| {
        crate::http::api::requests::parse_received(s)
            .map_err(|e| CliError::from(format!("--at: {}", e.message)))
    })
    .transpose()
}

pub fn run_cmd(config: Config, command: RetentionCommand) -> CliResult {
    let app = open_app(config)?;
    match command {
        RetentionCommand::Plan { at, json } => {
            let at = parse_at(at.as_deref())?.unwrap_or_else(crate::store::now);
            let plans = plan::plan(&app, at)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plans)?);
            } else {
                println!(
                    "retention plan as of {} ({} rule(s)); nothing is changed",
                    crate::audit::format_time(&at),
                    plans.len()
                );
                for p in plans {
                    println!(
                        "  {:<22} {:<10} {:<24} cutoff {}  due {:>7}  held {:>5}  +7d {:>6}  +30d {:>6}  +90d {:>6}{}",
                        p.rule,
                        format!("{:?}", p.action).to_lowercase(),
                        p.table,
                        &p.cutoff[..10],
                        p.due_now,
                        p.held_back,
                        p.forecast.next_7_days,
                        p.forecast.next_30_days,
                        p.forecast.next_90_days,
                        if p.enabled {
                            String::new()
                        } else {
                            "  (disabled)".into()
                        }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RetentionCommand::Run {
            rule,
            dry_run,
            batch_size,
            budget,
            at,
            json,
        } => {
            let at = parse_at(at.as_deref())?;
            let budget = budget
                .as_deref()
                .map(|b| {
                    crate::retention::rules::parse_duration(b).ok_or_else(|| {
                        CliError::from(format!("--budget: \"{b}\" is not a duration like 30m"))
                    })
                })
                .transpose()?;
            let rules: Vec<String> = match rule {
                Some(r) => {
                    if app.policy.retention.rule(&r).is_none() {
                        let known: Vec<&str> = app
                            .policy
                            .retention
                            .rules
                            .iter()
                            .map(|r| r.name.as_str())
                            .collect();
                        return Err(format!(
                            "--rule: unknown rule \"{r}\"; rules: {}",
                            known.join(", ")
                        )
                        .into());
                    }
                    vec![r]
                }
                None => app
                    .policy
                    .retention
                    .rules
                    .iter()
                    .filter(|r| r.enabled)
                    .map(|r| r.name.clone())
                    .collect(),
            };
            let mut outcomes: Vec<RunOutcome> = Vec::new();
            let mut code = 0u8;
            for name in rules {
                let rule = app.policy.retention.rule(&name).ok_or("rule vanished")?;
                let total =
                    due_count(&app, rule, at.unwrap_or_else(crate::store::now)).unwrap_or(0);
                let bar = indicatif::ProgressBar::new(u64::try_from(total).unwrap_or(0));
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix:>22} [{bar:30}] {pos}/{len} rows {msg} ({elapsed})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(name.clone());
                if json {
                    bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
                }
                let req = RunRequest {
                    rule: name.clone(),
                    at,
                    dry_run,
                    batch_size,
                    budget,
                    trigger: "cli".into(),
                    not_before: None,
                };
                let outcome = run(&app, &req, &mut |p| {
                    bar.set_position(p.parents_done);
                    bar.set_message(format!(
                        "{} deleted, {} anonymized, {} held",
                        p.deleted, p.anonymized, p.held
                    ));
                })?;
                bar.finish_and_clear();
                code = code.max(match outcome.status {
                    RunStatus::Completed | RunStatus::DryRun | RunStatus::AlreadyRan => 0,
                    RunStatus::Partial => EXIT_PARTIAL,
                    RunStatus::Waiting => EXIT_WAITING,
                    RunStatus::Failed | RunStatus::Busy => 1,
                });
                if !json {
                    print_outcome(&outcome);
                }
                outcomes.push(outcome);
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({"runs": outcomes}))?
                );
            }
            // Failure outranks a partial run.
            let code = if outcomes
                .iter()
                .any(|o| matches!(o.status, RunStatus::Failed | RunStatus::Busy))
            {
                1
            } else {
                code
            };
            Ok(ExitCode::from(code))
        }
    }
}

fn print_outcome(o: &RunOutcome) {
    let status = format!("{:?}", o.status).to_lowercase();
    println!(
        "{}: {} (cutoff {}): {} deleted, {} anonymized, {} held back, {} batch(es), longest {} ms, {:.1}s{}",
        o.rule,
        status,
        o.cutoff.get(..19).unwrap_or(&o.cutoff),
        o.deleted,
        o.anonymized,
        o.held,
        o.batches,
        o.longest_batch_ms,
        o.elapsed_ms as f64 / 1000.0,
        o.certificate_id
            .as_deref()
            .map(|c| format!("; certificate {c}"))
            .unwrap_or_default()
    );
    for (t, c) in &o.per_table {
        println!(
            "    {t:<26} {:>8} deleted {:>8} anonymized {:>6} held",
            c.deleted, c.anonymized, c.held
        );
    }
    if let Some(m) = &o.message {
        println!("    {m}");
    }
}
