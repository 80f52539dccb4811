//! `harness`: drives open-loop load at a traced system and verifies what its tracing and metrics
//! report. Also hosts the bundled services (`harness engine`, `harness gateway`), so that the
//! managed system needs no build beyond this binary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use engine::core_engine::EngineArgs;
use engine::gateway::GatewayArgs;
use harness::exit::RunError;
use harness::report::ReportError;
use harness::report::page::PageError;
use harness::result::RunResult;
use harness::run::RunOptions;
use harness::signoff::record::ScenarioOutcome;
use harness::signoff::{SignoffError, SignoffOptions};
use hyper::Uri;
use tokio_util::sync::CancellationToken;

/// mimalloc rather than glibc's malloc: glibc returns the top of its heap to the kernel whenever
/// enough of it is free and takes it back on the next large request, which cost the engine about 17
/// page faults per request at 200 requests/s, more or fewer with every small change to what a
/// request allocates (docs/overhead.md, "Page faults").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load-generating trace verification harness: how fast a traced system is under load, what its
/// tracing costs, and whether every sampled trace arrives complete and linked.
#[derive(Parser)]
#[command(
    version,
    after_help = "Examples:
  harness run scenarios/baseline.yaml
  harness run scenarios/smoke.yaml --set load.phases.0.constant.rate=500 --out /tmp/reports
  harness run scenarios/baseline.yaml --gateway http://127.0.0.1:8080
  harness run scenarios/baseline.yaml --jaeger http://127.0.0.1:16686 --prometheus http://127.0.0.1:9090
  harness validate scenarios/*.yaml
  harness signoff scenarios/release.yaml --junit reports/junit.xml
  harness compare baseline/result.json reports/baseline/result.json --max-regression 10%
  harness report reports/baseline/result.json

Exit codes:
  0  every threshold and check passed (and an overhead claim held)
  1  a threshold or check failed (or an overhead claim failed or could not be decided)
  2  bad input (scenario, flags)
  3  the run could not be completed (a service would not start or crashed, the target or a
     trace or metrics source was unreachable, the run was interrupted)
  For compare: 1 means a regression beyond the noise, 3 too few requests to judge anything"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario: load the system, measure, evaluate thresholds, write result.json
    Run(Box<RunArgs>),
    /// Run a suite of scenarios one after another and sign a release off: signoff.html and
    /// signoff.json over all of them
    Signoff(SignoffArgs),
    /// Check scenario files (and sign-off suites, with their scenarios) without running them
    Validate {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Compare a result with a stored baseline's: exit 1 when a latency percentile or error rate
    /// of a request kind regressed beyond the noise
    Compare(CompareArgs),
    /// Merge the results of a fleet's shards (`run --shard I/N`) into one: histograms added
    /// exactly, timelines by wall-clock second, thresholds judged on the fleet; exits as a run
    /// would (2 for shards that are not one whole fleet, 3 when a shard did not complete)
    Merge(MergeArgs),
    /// Render the HTML report of a stored result.json again
    Report {
        /// The result.json a run wrote
        result: PathBuf,
        /// Where to write the report [default: report.html beside the result]
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Run the bundled core engine (gRPC) in the foreground, as the `core-engine` binary does
    Engine(EngineArgs),
    /// Run the bundled API gateway (HTTP) in the foreground, as the `api-gateway` binary does
    Gateway(GatewayArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The scenario file
    scenario: PathBuf,
    /// Directory for results; each run writes into OUT/<scenario name>/
    #[arg(long, default_value = "reports")]
    out: PathBuf,
    /// Override a scalar of the scenario, e.g. --set load.phases.0.constant.rate=500
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Load the system at this URL (http(s)://host:port[/prefix]) instead of launching the
    /// bundled services; relative request URLs go below it
    #[arg(long, value_name = "URL")]
    target: Option<Uri>,
    /// Load an external gateway at this URL instead of launching the bundled services
    #[arg(long)]
    gateway: Option<Uri>,
    /// Load an external engine at this URL (protocol grpc) instead of launching the bundled services
    #[arg(long)]
    engine: Option<Uri>,
    /// Look sampled traces up in this Jaeger query service (e.g. http://127.0.0.1:16686) instead
    /// of the embedded OTLP receiver; switches trace checks on
    #[arg(long, value_name = "URL")]
    jaeger: Option<String>,
    /// Which Jaeger query API to use (of --jaeger, or of the scenario's verify.traces.jaeger)
    #[arg(long, value_name = "API", value_parser = ["auto", "v3", "v1"])]
    jaeger_api: Option<String>,
    /// Reconcile the services' span counts with the spans this Jaeger v2 accepted, read from its
    /// own metrics endpoint (e.g. http://127.0.0.1:8888/metrics)
    #[arg(long, value_name = "URL")]
    jaeger_metrics: Option<String>,
    /// The Jaeger v2 binary a scenario with system.managed.jaeger launches [default:
    /// $HARNESS_JAEGER_BIN, else `jaeger` on PATH, else the one scripts/jaeger builds]
    #[arg(long, value_name = "PATH")]
    jaeger_bin: Option<PathBuf>,
    /// Reconcile metrics through this Prometheus server's HTTP API too (e.g.
    /// http://127.0.0.1:9090); switches metrics checks on
    #[arg(long, value_name = "URL")]
    prometheus: Option<String>,
    /// Also write the outcome as JUnit XML to this file, for CI test reports
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Also write a machine-readable summary (JSON; README, "Read the result") to this file;
    /// `-` writes it to stdout and the human summary to stderr
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// No progress lines
    #[arg(long)]
    quiet: bool,
    /// Run shard I of N (1 <= I <= N): every N-th request of the schedule and its share of the
    /// traced sample, into OUT/<scenario>/shard-I/; `harness merge` judges the fleet. Exits 0
    /// when the shard completed, whatever its own thresholds say
    #[arg(long, value_name = "I/N")]
    shard: Option<harness::run::shard::Shard>,
    /// With --shard: the fleet's common start, RFC 3339 (2026-12-06T10:00:00Z) or Unix seconds
    /// [default: the first shard to start writes one, 3 s ahead, to OUT/<scenario>/start-at]
    #[arg(long, value_name = "TIME")]
    start_at: Option<harness::run::shard::StartAt>,
}

#[derive(clap::Args)]
struct MergeArgs {
    /// The shards' result.json files, one per shard
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// Directory for the merged result; it is written into OUT/<scenario name>/
    #[arg(long, default_value = "reports")]
    out: PathBuf,
    /// Also write the outcome as JUnit XML to this file
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Also write the JSON summary to this file (`-`: stdout)
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// Reconcile the services' metrics for the whole fleet from this Prometheus, which scraped
    /// them while the shards ran (over the scenario's verify.metrics.prometheus.url)
    #[arg(long, value_name = "URL")]
    prometheus: Option<String>,
}

#[derive(clap::Args)]
struct SignoffArgs {
    /// The suite file: a name and a list of scenario paths (relative to it), each expected to
    /// pass or to fail
    suite: PathBuf,
    /// Directory for results; a sign-off writes into OUT/<suite name>/, each scenario into
    /// OUT/<suite name>/<scenario name>/
    #[arg(long, default_value = "reports")]
    out: PathBuf,
    /// Also write the outcome as JUnit XML to this file, one testsuite per scenario
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// No progress lines
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct CompareArgs {
    /// The baseline's result.json
    base: PathBuf,
    /// The result.json to judge against it
    new: PathBuf,
    /// The largest slowdown tolerated: 5% or 0.05
    #[arg(long, value_name = "SHARE", default_value = "5%")]
    max_regression: harness::compare::Tolerance,
    /// The HTML report [default: comparison.html beside NEW]
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Also write the comparison as JSON
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

use harness::exit::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INCOMPLETE};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("harness: starting the async runtime: {error}");
            return ExitCode::from(EXIT_INCOMPLETE);
        }
    };
    match cli.command {
        Command::Run(args) => runtime.block_on(run(*args)),
        Command::Signoff(args) => runtime.block_on(signoff(args)),
        Command::Validate { scenarios } => validate(&scenarios),
        Command::Compare(args) => compare(args),
        Command::Merge(args) => merge(args),
        Command::Report { result, out } => report(&result, out),
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

async fn run(args: RunArgs) -> ExitCode {
    let options = RunOptions {
        out_dir: args.out,
        overrides: args.overrides,
        target: args.target,
        gateway: args.gateway,
        engine: args.engine,
        quiet: args.quiet,
        apis: harness::verify::QueryApis {
            jaeger: args.jaeger,
            jaeger_api: args.jaeger_api,
            prometheus: args.prometheus,
            jaeger_metrics: args.jaeger_metrics,
        },
        junit: args.junit,
        summary_json: args.summary_json,
        jaeger_bin: args.jaeger_bin,
        shard: args.shard,
        start_at: args.start_at.map(|at| at.0),
    };
    match harness::run::run(&args.scenario, &options, stop_on_signals()).await {
        Ok(finished) => {
            let mut human = harness::summary::render(&finished.result);
            if let Some(shard) = &finished.result.shard {
                human.push_str(&format!(
                    "shard {}/{}: its thresholds are its own share's; `harness merge` judges the \
                     fleet\n",
                    shard.index, shard.count
                ));
            }
            human.push_str(&format!("result: {}\n", finished.result_path.display()));
            if let Some(junit) = &options.junit {
                human.push_str(&format!("junit: {}\n", junit.display()));
            }
            // With the JSON summary on stdout, stdout holds nothing else.
            match options.summary_json.as_deref() {
                Some(path) if path == Path::new("-") => eprint!("{human}"),
                Some(path) => println!("{human}summary: {}", path.display()),
                None => print!("{human}"),
            }
            ExitCode::from(finished.result.exit_code())
        }
        Err(error) => {
            match &error {
                RunError::BadInput(message) => eprintln!("harness: {message}"),
                RunError::Incomplete(_) => {
                    eprintln!("harness: the run could not be completed: {error}");
                }
            }
            ExitCode::from(error.exit_code())
        }
    }
}

/// Cancelled on the first SIGINT or SIGTERM, so that the load stops and results are written; a
/// second one exits at once.
fn stop_on_signals() -> CancellationToken {
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if let Ok(mut signals) = engine::shutdown::Signals::install() {
            let signal = signals.recv().await;
            eprintln!("harness: {signal}: stopping the load; results so far will be written");
            on_signal.cancel();
            // A second one means now: exiting ends the services too (they die with the harness).
            let signal = signals.recv().await;
            eprintln!("harness: {signal} again: exiting without waiting");
            std::process::exit(i32::from(EXIT_INCOMPLETE));
        }
    });
    stop
}

async fn signoff(args: SignoffArgs) -> ExitCode {
    let options = SignoffOptions {
        out_dir: args.out,
        junit: args.junit,
        quiet: args.quiet,
    };
    let print_each = |outcome: &ScenarioOutcome, result: Option<&RunResult>| {
        if let Some(result) = result {
            print!("{}", harness::summary::render(result));
        }
        let note = outcome
            .note
            .as_deref()
            .map_or_else(String::new, |note| format!(": {note}"));
        println!(
            "sign-off: {} {}{note}\n",
            outcome.name,
            outcome.verdict.label()
        );
    };
    match harness::signoff::run(&args.suite, &options, stop_on_signals(), print_each).await {
        Ok(signed) => {
            print!("{}", harness::signoff::page::text(&signed.record));
            println!("sign-off page: {}", signed.html.display());
            println!("record: {}", signed.json.display());
            if let Some(junit) = &options.junit {
                println!("junit: {}", junit.display());
            }
            ExitCode::from(signed.record.exit_code)
        }
        Err(SignoffError::BadInput(message)) => {
            eprintln!("harness: {message}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(error) => {
            eprintln!("harness: the sign-off could not be completed: {error}");
            ExitCode::from(EXIT_INCOMPLETE)
        }
    }
}

fn validate(paths: &[PathBuf]) -> ExitCode {
    let mut bad = false;
    for path in paths {
        // A sign-off suite may sit beside the scenarios it runs: it is checked with them.
        let checked = if harness::signoff::suite::is_suite_file(path) {
            harness::signoff::check(path)
                .map(|(suite, names)| format!("suite {}: {}", suite.name, names.join(", ")))
                .map_err(|e| e.to_string())
        } else {
            harness::run::check(path)
                .map(|scenario| {
                    let reflected: Vec<String> = scenario
                        .reflected_methods()
                        .iter()
                        .map(|name| name.value.clone())
                        .collect();
                    if reflected.is_empty() {
                        scenario.name
                    } else {
                        format!(
                            "{}; {} to be described by the server's reflection when the run \
                             starts",
                            scenario.name,
                            reflected.join(", ")
                        )
                    }
                })
                .map_err(|e| e.to_string())
        };
        match checked {
            Ok(what) => println!("{}: ok ({what})", path.display()),
            Err(error) => {
                bad = true;
                eprintln!("{error}");
            }
        }
    }
    if bad {
        ExitCode::from(EXIT_BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    }
}

/// `harness compare`: exit 1 on a regression, 3 when nothing could be judged; every input or
/// output problem is exit 2.
fn compare(args: CompareArgs) -> ExitCode {
    use harness::compare::Conclusion;

    match compare_runs(args) {
        Ok(Conclusion::NoRegression) => ExitCode::SUCCESS,
        Ok(Conclusion::Regression) => ExitCode::from(EXIT_FAILED),
        Ok(Conclusion::CouldNotJudge { .. }) => ExitCode::from(EXIT_INCOMPLETE),
        // Not `{error:#}`: each error's message already ends with its cause.
        Err(error) => {
            eprintln!("harness: {error}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// `harness merge`: the fleet's outcome, with a run's exit codes.
fn merge(args: MergeArgs) -> ExitCode {
    let options = harness::merge::MergeOptions {
        out_dir: args.out,
        junit: args.junit,
        summary_json: args.summary_json,
        prometheus: args.prometheus,
    };
    match harness::merge::merge(&args.results, &options) {
        Ok(finished) => {
            let mut human = harness::summary::render(&finished.result);
            human.push_str(&format!("result: {}\n", finished.result_path.display()));
            match options.summary_json.as_deref() {
                Some(path) if path == Path::new("-") => eprint!("{human}"),
                _ => print!("{human}"),
            }
            ExitCode::from(finished.result.exit_code())
        }
        Err(error) => {
            match &error {
                RunError::BadInput(message) => eprintln!("harness: {message}"),
                RunError::Incomplete(_) => eprintln!("harness: the merge failed: {error}"),
            }
            ExitCode::from(error.exit_code())
        }
    }
}

/// Prints the comparison and writes its reports.
fn compare_runs(args: CompareArgs) -> anyhow::Result<harness::compare::Conclusion> {
    use harness::compare;

    let base = compare::load(&args.base)?;
    let new = compare::load(&args.new)?;
    let comparison = compare::compare(&base, &new, args.max_regression)?;
    print!("{}", compare::text(&comparison));
    let html = args
        .html
        .unwrap_or_else(|| compare::default_html_path(&args.new));
    harness::report::write(&html, &compare::html(&comparison)?)?;
    println!("report: {}", html.display());
    if let Some(path) = args.json {
        let json = serde_json::to_string_pretty(&comparison)
            .map_err(|error| anyhow::anyhow!("serializing the comparison: {error}"))?;
        harness::report::write(&path, &json)?;
        println!("json: {}", path.display());
    }
    Ok(comparison.conclusion)
}
/// `harness report`: the HTML report of a stored result, again. Exit 2 when the result cannot be
/// read (the message names the file, and the line and column or field), 3 when the report cannot
/// be written.
fn report(result_path: &Path, out: Option<PathBuf>) -> ExitCode {
    let result = match harness::result::read(result_path) {
        Ok(result) => result,
        Err(error) => {
            eprintln!("harness: {error}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let out = out.unwrap_or_else(|| result_path.with_file_name(harness::report::page::FILE_NAME));
    match harness::report::page::write(&result, &result_path.display().to_string(), &out) {
        Ok(()) => {
            println!("report: {}", out.display());
            ExitCode::SUCCESS
        }
        Err(error @ PageError::Histogram { .. }) => {
            eprintln!("harness: {}: {error}", result_path.display());
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(error @ PageError::Report(ReportError::Write { .. })) => {
            eprintln!("harness: {error}");
            ExitCode::from(EXIT_INCOMPLETE)
        }
        Err(error) => {
            eprintln!("harness: {}: {error}", result_path.display());
            ExitCode::from(EXIT_INCOMPLETE)
        }
    }
}
