//! The `lethe` binary: see `lethe --help`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    lethe::cli::run(lethe::cli::Cli::parse())
}
