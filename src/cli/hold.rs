//! `lethe hold create|list|release`.

use super::{CliResult, open_app};
use crate::app::Actor;
use crate::config::Config;
use crate::hold::{self, HoldScope, NewHold};
use crate::policy::ExemptionGround;
use crate::source::Value;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum HoldCommand {
    /// Place a legal hold on a person (--identity), a table (--table) or rows (--table --key).
    Create {
        /// kind=value (repeatable): hold everything of this person.
        #[arg(long = "identity", value_name = "KIND=VALUE")]
        identities: Vec<String>,
        #[arg(long)]
        table: Option<String>,
        /// A row's primary key (repeatable; comma-separated for composite keys).
        #[arg(long = "key")]
        keys: Vec<String>,
        #[arg(long)]
        matter: String,
        #[arg(long)]
        reason: String,
        /// legal_claims | legal_obligation | public_interest | freedom_of_expression | public_health
        #[arg(long, default_value = "legal_claims")]
        ground: String,
    },
    /// List holds (in force, or all with --all).
    List {
        #[arg(long)]
        all: bool,
    },
    /// Release a hold.
    Release {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

pub fn run(config: Config, command: HoldCommand) -> CliResult {
    let app = open_app(config)?;
    let actor = Actor::cli();
    match command {
        HoldCommand::Create {
            identities,
            table,
            keys,
            matter,
            reason,
            ground,
        } => {
            let ground = ExemptionGround::parse(&ground)
                .ok_or_else(|| format!("--ground: unknown ground \"{ground}\""))?;
            let scope = match (identities.is_empty(), table, keys.is_empty()) {
                (false, None, true) => HoldScope::Subject(
                    identities
                        .iter()
                        .map(|i| i.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| "--identity: expected KIND=VALUE".to_string()))
                        .collect::<Result<_, _>>()?,
                ),
                (true, Some(t), true) => HoldScope::Table(t),
                (true, Some(t), false) => HoldScope::Rows {
                    table: t,
                    keys: keys
                        .iter()
                        .map(|k| k.split(',').map(|p| p.trim().parse::<i64>().map_or(Value::Text(p.trim().to_string()), Value::Int)).collect())
                        .collect(),
                },
                _ => return Err("give --identity (a person), or --table (a table), or --table with --key (rows)".into()),
            };
            let h = hold::create(
                &app,
                &actor,
                NewHold {
                    scope,
                    matter,
                    reason,
                    ground,
                    expires_at: None,
                },
            )?;
            println!("created hold {} ({})", h.id, h.scope);
        }
        HoldCommand::List { all } => {
            for h in app.store.read(|c| hold::list(c, !all))? {
                println!(
                    "{}  {:7} {:24} {}  {}",
                    h.id,
                    h.scope,
                    h.table_name
                        .as_deref()
                        .or(h.identity_summary.as_deref())
                        .unwrap_or(""),
                    h.matter,
                    if h.released_at.is_some() {
                        "released"
                    } else {
                        "active"
                    }
                );
            }
        }
        HoldCommand::Release { id, reason } => {
            hold::release(&app, &actor, &id, &reason)?;
            println!("released {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
