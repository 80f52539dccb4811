//! `harness`: drives open-loop load at a traced system and verifies what its tracing and metrics
//! report. Also hosts the bundled services (`harness engine`, `harness gateway`), so that the
//! managed system needs no build beyond this binary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use engine::core_engine::EngineArgs;
use engine::gateway::GatewayArgs;

/// Load-generating trace verification harness: how fast a traced system is under load, what its
/// tracing costs, and whether every sampled trace arrives complete and linked.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bundled core engine (gRPC) in the foreground, as the `core-engine` binary does
    Engine(EngineArgs),
    /// Run the bundled API gateway (HTTP) in the foreground, as the `api-gateway` binary does
    Gateway(GatewayArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("harness: starting the async runtime: {error}");
            return ExitCode::from(3);
        }
    };
    match cli.command {
        Command::Engine(args) => serve(
            "core engine",
            runtime.block_on(async {
                engine::telemetry::init_logging()?;
                engine::core_engine::run(args).await
            }),
        ),
        Command::Gateway(args) => serve(
            "api gateway",
            runtime.block_on(async {
                engine::telemetry::init_logging()?;
                engine::gateway::run(args).await
            }),
        ),
    }
}

/// A service's exit: its error goes to its JSON log, and the code says it failed.
fn serve(service: &str, outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "{service} failed");
            eprintln!("harness: {service}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
