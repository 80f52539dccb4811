//! What a run leaves behind: `result.json` first, then the JUnit file, the HTML report and the
//! JSON summary, so that a report that cannot be written loses no measurement. A run that fails
//! before it measured anything still leaves a result saying why (and a summary saying so).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context as _;

use super::{Finished, RunOptions};
use crate::exit::RunError;
use crate::load::RunReport;
use crate::plan::target_rate;
use crate::result::{self, RunResult, ScenarioEcho, ShardResult};
use crate::scenario::Scenario;

/// The run's output directory and what every result it writes shares.
pub(super) struct Outputs<'a> {
    pub(super) dir: PathBuf,
    pub(super) kind_names: Vec<String>,
    junit: Option<&'a Path>,
    summary_json: Option<&'a Path>,
    echo: ScenarioEcho,
    started: SystemTime,
    target_rate: f64,
    /// A shard's identity, in every result it writes (a failed one too, for the merge to see).
    shard: Option<ShardResult>,
}

impl<'a> Outputs<'a> {
    /// Creates the scenario's output directory under `--out`.
    pub(super) fn create(
        path: &Path,
        scenario: &Scenario,
        options: &'a RunOptions,
    ) -> Result<Self, RunError> {
        let dir = match options.shard {
            Some(shard) => options.out_dir.join(&scenario.name).join(shard.dir_name()),
            None => options.out_dir.join(&scenario.name),
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the output directory {}", dir.display()))
            .map_err(RunError::Incomplete)?;
        // Every output is known to be writable before any load: a run is not spent only to find
        // out at its end that its results cannot be kept.
        writable_dir(&dir)
            .with_context(|| format!("the output directory {} is not writable", dir.display()))
            .map_err(RunError::Incomplete)?;
        let files = [
            ("--junit", options.junit.as_deref()),
            ("--summary-json", options.summary_json.as_deref()),
        ];
        for (flag, file) in files {
            if let Some(file) = file.filter(|f| *f != Path::new("-")) {
                writable_file(file)
                    .with_context(|| format!("{flag} {} cannot be written", file.display()))
                    .map_err(RunError::Incomplete)?;
            }
        }
        let source = std::fs::read_to_string(path).unwrap_or_default();
        let shard = options.shard.map(|shard| ShardResult {
            index: shard.index,
            count: shard.count,
            scenario_sha256: result::scenario_hash(&source, &options.overrides),
            planned_start_unix_ms: None,
            load_started_at_unix_us: None,
            start_lag_ms: 0,
            send_lag_histogram: None,
            metrics_checks: false,
            warmed_up_at_unix_us: None,
            load_ended_at_unix_us: None,
        });
        // A shard is asked for its share of the rate.
        let shards = options.shard.map_or(1.0, |shard| shard.count as f64);
        Ok(Outputs {
            dir,
            kind_names: scenario.requests.iter().map(|k| k.name.clone()).collect(),
            junit: options.junit.as_deref(),
            summary_json: options.summary_json.as_deref(),
            echo: ScenarioEcho {
                name: scenario.name.clone(),
                path: path.display().to_string(),
                source,
                overrides: options.overrides.clone(),
                insecure: scenario.insecure(),
            },
            started: SystemTime::now(),
            target_rate: target_rate(&scenario.load.phases) / shards,
            shard,
        })
    }

    /// Records in a shard's identity that its scenario asks for metrics checks, which the shard
    /// leaves to the fleet.
    pub(super) fn with_fleet_metrics(mut self, asked: bool) -> Self {
        if let Some(shard) = &mut self.shard {
            shard.metrics_checks = asked;
        }
        self
    }

    /// The result of `report`, failed with `failure` when there is one.
    pub(super) fn result(&self, report: &RunReport, failure: Option<String>) -> RunResult {
        let mut result = RunResult::new(
            self.echo.clone(),
            self.started,
            self.target_rate,
            report,
            failure,
        );
        result.shard = self.shard.clone();
        result
    }

    /// Writes a result that measured nothing and says why, then hands the error back; an error
    /// writing it replaces the original.
    pub(super) fn failed(&self, error: RunError) -> RunError {
        let empty = RunReport::empty(self.kind_names.iter().cloned());
        match self.write(&self.result(&empty, Some(error.to_string()))) {
            Ok(_) => error,
            Err(write_error) => write_error,
        }
    }

    /// Writes the finished run's files.
    pub(super) fn finish(&self, result: RunResult) -> Result<Finished, RunError> {
        let result_path = self.write(&result)?;
        Ok(Finished {
            result,
            result_path,
        })
    }

    fn write(&self, result: &RunResult) -> Result<PathBuf, RunError> {
        let path = self.dir.join(result::FILE_NAME);
        result::write(&path, result).map_err(|e| RunError::Incomplete(e.into()))?;
        if let Some(junit) = self.junit {
            crate::report::junit::write(junit, &crate::report::junit::render(result))
                .map_err(|e| RunError::Incomplete(e.into()))?;
        }
        crate::report::page::write(
            result,
            result::FILE_NAME,
            &self.dir.join(crate::report::page::FILE_NAME),
        )
        .context("the HTML report")
        .map_err(RunError::Incomplete)?;
        // Last: a pipeline that finds it finds every other output written.
        if let Some(summary) = self.summary_json {
            crate::summary_json::write(summary, result)
                .map_err(|e| RunError::Incomplete(e.into()))?;
        }
        Ok(path)
    }
}

/// Creates and removes a file in `dir`, the one sure test that files can be written there.
fn writable_dir(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".harness-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// A file an output will be written to: its directory (created, as the writers do) takes new
/// files, and the file, if it is there already, is a file that opens for writing. Nothing is
/// changed.
fn writable_file(file: &Path) -> std::io::Result<()> {
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| match e.kind() {
        // What create_dir_all says when a file stands where a directory must be.
        std::io::ErrorKind::AlreadyExists => std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", parent.display()),
        ),
        _ => e,
    })?;
    writable_dir(parent)?;
    match std::fs::metadata(file) {
        Ok(meta) if meta.is_dir() => Err(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "it is a directory",
        )),
        Ok(_) => std::fs::OpenOptions::new()
            .append(true)
            .open(file)
            .map(drop),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
