//! `lethe request ...`: the request workflow from the command line (acting as `cli`).

use super::{CliResult, open_app};
use crate::app::{Actor, App};
use crate::config::Config;
use crate::request::service::{self, NewRequest};
use crate::request::view::{identity_views, request_view};
use crate::request::{Channel, Regime, RequestKind, RequestState};
use crate::store::{now, requests as rq};
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum RequestCommand {
    /// Record a new request.
    Create {
        /// access | portability | erasure | rectification | opt_out
        #[arg(long)]
        kind: String,
        /// gdpr | uk_gdpr | ccpa | lgpd | pipeda | vcdpa | cpa
        #[arg(long)]
        regime: String,
        /// An identity as kind=value (repeatable), e.g. --identity email=jane@example.com
        #[arg(long = "identity", value_name = "KIND=VALUE")]
        identities: Vec<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        /// email | web_form | phone | letter | in_person | api
        #[arg(long, default_value = "email")]
        channel: String,
        /// When the request was received (RFC 3339 or YYYY-MM-DD; default now).
        #[arg(long)]
        received_at: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one request with its events.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// List requests, newest first.
    List {
        /// Filter by state (e.g. received, verified, completed).
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Record how the requester's identity was verified.
    Verify {
        id: String,
        #[arg(long)]
        method: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Trace the subject and build the export (access, portability) or apply an opt-out.
    Run { id: String },
    /// Build the erasure/rectification plan for review.
    Plan {
        id: String,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve the plan.
    Approve {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Execute the approved plan, verify, and complete (certificate for erasures).
    Execute { id: String },
    /// Continue a request left in executing or verifying (after a crash or an outage).
    Resume { id: String },
    /// Deny with the reason and the notice of the person's remedies.
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        notice: String,
    },
}

fn print_row(
    app: &App,
    row: &crate::store::models::RequestRow,
    json: bool,
    detail: bool,
) -> Result<(), super::CliError> {
    let actor = Actor::cli();
    let ids = if detail {
        Some(identity_views(
            &app.policy.datamap,
            &service::identities(app, row)?,
            actor.role,
        ))
    } else {
        None
    };
    let events = if detail {
        Some(app.store.read(|c| rq::events(c, &row.id))?)
    } else {
        None
    };
    let export = if detail {
        app.store.read(|c| rq::get_export(c, &row.id)).ok()
    } else {
        None
    };
    let v = request_view(row, actor.role, ids, events, export.as_ref(), now());
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{}  {:12} {:7} {:18} due {} ({} days){}  {}",
        v.id,
        v.kind,
        v.regime,
        v.state,
        &v.deadline.effective_due_at[..10],
        v.deadline.days_left,
        if v.deadline.overdue { " OVERDUE" } else { "" },
        v.identity_summary
    );
    if let Some(evs) = &v.events {
        for e in evs {
            println!(
                "    {} {:<18} {} -> {}  by {}{}",
                &e.at[..19],
                e.action,
                e.from_state.as_deref().unwrap_or("-"),
                e.to_state,
                e.actor,
                e.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(x) = &v.export {
        println!(
            "    export: {} tables, {} records, {}",
            x.tables, x.records, x.digest
        );
    }
    Ok(())
}

pub fn run(config: Config, command: RequestCommand) -> CliResult {
    let app = open_app(config)?;
    let actor = Actor::cli();
    match command {
        RequestCommand::Create {
            kind,
            regime,
            identities,
            email,
            phone,
            channel,
            received_at,
            note,
            json,
        } => {
            let kind = RequestKind::parse(&kind).ok_or_else(|| {
                format!(
                    "--kind: unknown kind \"{kind}\" ({})",
                    RequestKind::names().join(", ")
                )
            })?;
            let regime = Regime::parse(&regime).ok_or_else(|| {
                format!(
                    "--regime: unknown regime \"{regime}\" ({})",
                    Regime::names().join(", ")
                )
            })?;
            let channel = Channel::parse(&channel).ok_or_else(|| {
                format!(
                    "--channel: unknown channel \"{channel}\" ({})",
                    Channel::names().join(", ")
                )
            })?;
            let mut ids: Vec<(String, String)> = Vec::new();
            for i in identities {
                let (k, v) = i.split_once('=').ok_or_else(|| {
                    format!(
                        "--identity \"{}\": expected KIND=VALUE",
                        i.split('=').next().unwrap_or("")
                    )
                })?;
                ids.push((k.to_string(), v.to_string()));
            }
            if let Some(e) = email {
                ids.push(("email".into(), e));
            }
            if let Some(p) = phone {
                ids.push(("phone".into(), p));
            }
            let received_at = match received_at {
                Some(s) => {
                    Some(crate::http::api::requests::parse_received(&s).map_err(|e| e.message)?)
                }
                None => None,
            };
            let row = service::create(
                &app,
                &actor,
                NewRequest {
                    changes: Vec::new(),
                    kind,
                    regime,
                    identities: ids,
                    channel,
                    received_at,
                    note,
                },
            )?;
            print_row(&app, &row, json, true)?;
        }
        RequestCommand::Show { id, json } => {
            let row = service::get(&app, &id)?;
            print_row(&app, &row, json, true)?;
        }
        RequestCommand::List { state, limit, json } => {
            let mut f = rq::RequestFilter {
                limit,
                ..Default::default()
            };
            if let Some(s) = state {
                let st = RequestState::parse(&s)
                    .ok_or_else(|| format!("--state: unknown state \"{s}\""))?;
                f.states.push(st.as_str().into());
            }
            let rows = app.store.read(|c| rq::list(c, &f))?;
            for r in &rows {
                print_row(&app, r, json, false)?;
            }
            if !json {
                eprintln!("{} request(s)", rows.len());
            }
        }
        RequestCommand::Verify { id, method, note } => {
            let row = service::verify(&app, &actor, &id, &method, note.as_deref())?;
            print_row(&app, &row, false, true)?;
        }
        RequestCommand::Run { id } => {
            let row = service::run(&app, &actor, &id)?;
            print_row(&app, &row, false, true)?;
        }
        RequestCommand::Plan { id, json } => {
            let row = crate::erase::run::plan(&app, &actor, &id)?;
            let (plan_row, plan) = crate::erase::run::load_plan(&app, &id)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&crate::erase::run::review(
                        &plan,
                        &plan_row.digest
                    ))?
                );
            } else {
                print_row(&app, &row, false, true)?;
                let s = crate::erase::run::summary(&plan);
                for st in s["steps"].as_array().cloned().unwrap_or_default() {
                    println!(
                        "    {:10} {:24} {} row(s)",
                        st["action"].as_str().unwrap_or(""),
                        st["table"].as_str().unwrap_or(""),
                        st["rows"]
                    );
                }
                for e in s["exemptions"].as_array().cloned().unwrap_or_default() {
                    println!(
                        "    kept       {:24} {} row(s): {} ({})",
                        e["table"].as_str().unwrap_or(""),
                        e["rows"],
                        e["basis"].as_str().unwrap_or(""),
                        e["citation"].as_str().unwrap_or("")
                    );
                }
            }
        }
        RequestCommand::Approve { id, note } => {
            let row = crate::erase::run::approve(&app, &actor, &id, note.as_deref())?;
            print_row(&app, &row, false, true)?;
        }
        RequestCommand::Execute { id } => {
            let row = crate::erase::run::execute(&app, &actor, &id)?;
            print_row(&app, &row, false, true)?;
        }
        RequestCommand::Resume { id } => {
            let row = crate::erase::run::run_execution_job(&app, &id)?;
            print_row(&app, &row, false, true)?;
        }
        RequestCommand::Deny { id, reason, notice } => {
            let row = service::deny(&app, &actor, &id, Some(&reason), Some(&notice))?;
            print_row(&app, &row, false, true)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
