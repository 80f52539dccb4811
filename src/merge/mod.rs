//! `harness merge`: the shards of a fleet (`harness run --shard I/N`) as one run. Their
//! HdrHistograms are added, so that the fleet's percentiles are those of every request any shard
//! sent, exactly; their timelines are added by wall-clock second; their trace verification is
//! added up; the thresholds every shard judged alone are judged again on the whole fleet; and the
//! outputs are written as a run writes them, with the exit code a run would give.
//!
//! Refused (exit 2, naming them): a file that is not a shard's result, shards of different
//! scenarios or fleet sizes, a shard given twice, a shard missing. A shard that did not complete
//! makes the fleet incomplete (exit 3), with what the others measured merged all the same.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::exit::RunError;
use crate::result::{self, RunResult, RunStatus, ShardResult};
use crate::run::Finished;

mod combine;
mod metrics;
#[cfg(test)]
mod tests;

/// The flags of `harness merge` besides the results.
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// `--out`: the merged outputs go to `OUT/<scenario name>/`, as a run's do.
    pub out_dir: PathBuf,
    /// `--junit FILE`.
    pub junit: Option<PathBuf>,
    /// `--summary-json FILE` (`-`: standard output).
    pub summary_json: Option<PathBuf>,
    /// `--prometheus URL`: the Prometheus that scraped the services while the fleet ran, over
    /// the scenario's `verify.metrics.prometheus.url`; the fleet's metrics are read from it.
    pub prometheus: Option<String>,
}

/// A shard's result with the file it came from.
pub(crate) struct Shard {
    pub(crate) path: PathBuf,
    pub(crate) result: RunResult,
    pub(crate) identity: ShardResult,
}

/// Reads, checks and merges the shards at `paths`, and writes the fleet's outputs.
pub fn merge(paths: &[PathBuf], options: &MergeOptions) -> Result<Finished, RunError> {
    let shards = read_all(paths)?;
    check_fleet(&shards)?;
    let mut combined = combine::combined(&shards)?;
    metrics::reconcile(&shards, &mut combined, options.prometheus.as_deref())?;
    write(&combined.judge(), options)
}

/// Every result, each a shard's; every problem with the files at once.
fn read_all(paths: &[PathBuf]) -> Result<Vec<Shard>, RunError> {
    let mut shards = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        match result::read(path) {
            Ok(result) => match result.shard.clone() {
                Some(identity) => shards.push(Shard {
                    path: path.clone(),
                    result,
                    identity,
                }),
                None => problems.push(format!(
                    "{}: not a shard's result (written by `harness run` without --shard I/N)",
                    path.display()
                )),
            },
            Err(error) => problems.push(error.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(shards)
    } else {
        Err(RunError::BadInput(problems.join("\n")))
    }
}

/// One fleet: one scenario, one size, each shard once.
fn check_fleet(shards: &[Shard]) -> Result<(), RunError> {
    let Some(first) = shards.first() else {
        return Err(RunError::BadInput("no shard results given".to_owned()));
    };
    let mut problems = Vec::new();
    // A result whose hash does not match its own scenario was edited or is not what it says.
    for shard in shards {
        let echo = &shard.result.scenario;
        if result::scenario_hash(&echo.source, &echo.overrides) != shard.identity.scenario_sha256 {
            problems.push(format!(
                "{}: its scenario_sha256 is not the hash of the scenario it holds",
                shard.path.display()
            ));
        }
    }
    for shard in shards {
        let ShardResult { index, count, .. } = shard.identity;
        if index == 0 || index > count {
            problems.push(format!(
                "{}: shard {index}/{count} is not a shard of a fleet (1 <= I <= N)",
                shard.path.display()
            ));
        }
    }
    if !problems.is_empty() {
        return Err(RunError::BadInput(problems.join("\n")));
    }
    let mut scenarios: BTreeMap<(&str, u64), Vec<String>> = BTreeMap::new();
    for shard in shards {
        scenarios
            .entry((&shard.identity.scenario_sha256, shard.identity.count))
            .or_default()
            .push(format!(
                "{} (scenario {}, shard {}/{})",
                shard.path.display(),
                shard.result.scenario.name,
                shard.identity.index,
                shard.identity.count
            ));
    }
    if scenarios.len() > 1 {
        let groups: Vec<String> = scenarios
            .iter()
            .map(|((hash, count), files)| {
                format!(
                    "  scenario sha256 {} of {count} shards: {}",
                    hash.chars().take(12).collect::<String>(),
                    files.join(", ")
                )
            })
            .collect();
        problems.push(format!(
            "the shards are not of one fleet (one scenario, as read with its --set overrides, and \
             one N):\n{}",
            groups.join("\n")
        ));
        return Err(RunError::BadInput(problems.join("\n")));
    }
    let count = first.identity.count;
    let mut by_index: BTreeMap<u64, Vec<&Path>> = BTreeMap::new();
    for shard in shards {
        by_index
            .entry(shard.identity.index)
            .or_default()
            .push(&shard.path);
    }
    for (index, files) in &by_index {
        if files.len() > 1 {
            let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            problems.push(format!(
                "shard {index}/{count} given more than once: {}",
                files.join(", ")
            ));
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|i| !by_index.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "shard{} {} missing: a fleet is merged whole",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RunError::BadInput(problems.join("\n")))
    }
}

/// Writes the merged result as a run writes its own: `result.json` first, then JUnit, the HTML
/// report and the JSON summary.
fn write(result: &RunResult, options: &MergeOptions) -> Result<Finished, RunError> {
    let dir = options.out_dir.join(&result.scenario.name);
    let incomplete = |e: anyhow::Error| RunError::Incomplete(e);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the output directory {}", dir.display()))
        .map_err(incomplete)?;
    let path = dir.join(result::FILE_NAME);
    result::write(&path, result).map_err(|e| incomplete(e.into()))?;
    if let Some(junit) = &options.junit {
        crate::report::junit::write(junit, &crate::report::junit::render(result))
            .map_err(|e| incomplete(e.into()))?;
    }
    crate::report::page::write(
        result,
        result::FILE_NAME,
        &dir.join(crate::report::page::FILE_NAME),
    )
    .context("the HTML report")
    .map_err(incomplete)?;
    if let Some(summary) = &options.summary_json {
        crate::summary_json::write(summary, result).map_err(|e| incomplete(e.into()))?;
    }
    Ok(Finished {
        result: result.clone(),
        result_path: path,
    })
}

/// How a shard's run ended, as the fleet lists it.
fn state(status: &RunStatus) -> (&'static str, Option<String>) {
    match status {
        RunStatus::Completed => ("completed", None),
        RunStatus::Interrupted { reason } => ("interrupted", Some(reason.clone())),
        RunStatus::Failed { reason } => ("failed", Some(reason.clone())),
    }
}
