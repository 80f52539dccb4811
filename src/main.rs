//! `harness`: drives open-loop load at a traced system and verifies what its tracing and metrics
//! report. The commands arrive with the load core; today the binary only describes itself.

use clap::Parser;

/// Load-generating trace verification harness: how fast a traced system is under load, what its
/// tracing costs, and whether every sampled trace arrives complete and linked.
#[derive(Parser)]
#[command(version)]
struct Cli {}

fn main() {
    let Cli {} = Cli::parse();
    println!("harness: no commands yet; see `harness --help`");
}
