//! The API gateway as a standalone service. `--help` lists every flag and its environment variable.

use std::process::ExitCode;

use clap::Parser;
use engine::gateway::{self, GatewayArgs};

/// mimalloc rather than glibc's malloc: glibc returns the top of its heap to the kernel whenever
/// enough of it is free and takes it back on the next large request, which cost the engine about 17
/// page faults per request at 200 requests/s, more or fewer with every small change to what a
/// request allocates (docs/overhead.md, "Page faults").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Market Intel Brain API gateway: JSON over HTTP in front of the core engine's gRPC, traced with
/// OpenTelemetry (OTEL_* environment variables; OTEL_SDK_DISABLED=true turns tracing off).
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    gateway: GatewayArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = engine::telemetry::init_logging() {
        eprintln!("api-gateway: RUST_LOG: {error}");
        return ExitCode::from(2);
    }
    match gateway::run(cli.gateway).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "api gateway failed");
            ExitCode::FAILURE
        }
    }
}
