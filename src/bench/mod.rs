//! Benchmarks that need a large demo CRM (`lethe bench ...`). Each prints its figures next
//! to a baseline measured in the same run, with medians.

pub mod baseline;

use crate::cli::CliResult;
use crate::config::Config;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {}

pub fn run(_config: Config, command: BenchCommand) -> CliResult {
    match command {}
}
