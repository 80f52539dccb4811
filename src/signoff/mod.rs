//! `harness signoff SUITE.yaml`: a release's scenarios run one after another, each as `harness run`
//! would run it, then one verdict over all of them: `signoff.html` for the people who sign the
//! release off, `signoff.json` for machines, and optionally one JUnit file with a testsuite per
//! scenario.
//!
//! Every scenario is validated before the first one runs, so a typo in the last scenario fails in
//! a second rather than after the others have run. Results land in `OUT/<suite>/<scenario>/`.

pub mod page;
pub mod record;
pub mod suite;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use quick_junit::TestSuite;
use tokio_util::sync::CancellationToken;

use crate::progress::Progress;
use crate::report::{self, ReportError, junit};
use crate::result::{Environment, RunResult};
use crate::run::{self, RunOptions};
use record::{ScenarioOutcome, SignoffRecord, SuiteEcho, Verdict};
use suite::{Expect, Suite};

/// The flags of `harness signoff` besides the suite path.
#[derive(Debug, Clone, Default)]
pub struct SignoffOptions {
    /// Results go to `out_dir/<suite name>/`.
    pub out_dir: PathBuf,
    /// One JUnit file over the whole suite, a testsuite per scenario, when given.
    pub junit: Option<PathBuf>,
    /// No progress lines on stderr.
    pub quiet: bool,
}

/// A sign-off that ran (perhaps interrupted) and wrote its files.
pub struct SignedOff {
    /// What was written to `signoff.json`; its `exit_code` is the process's.
    pub record: SignoffRecord,
    /// The `signoff.html` written, for the command line to point at.
    pub html: PathBuf,
    /// The `signoff.json` written.
    pub json: PathBuf,
}

/// Why a sign-off could not run or could not write its files; the variant decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum SignoffError {
    /// Exit 2: the suite or one of its scenarios is wrong; nothing ran.
    #[error("{0}")]
    BadInput(String),
    /// Exit 3: the sign-off's own files could not be written.
    #[error(transparent)]
    Write(#[from] ReportError),
    /// Exit 3: the suite's output directory could not be created; nothing ran.
    #[error("creating the output directory {}: {source}", path.display())]
    OutputDir {
        /// `out_dir/<suite name>`.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
}

/// Runs the suite at `path`. `finished` hears of each scenario as it ends, with its result when
/// the run produced one, so that the caller can print as the sign-off goes. Cancelling `stop`
/// interrupts the scenario running and leaves the rest not run; the files are written regardless.
pub async fn run(
    path: &Path,
    options: &SignoffOptions,
    stop: CancellationToken,
    mut finished: impl FnMut(&ScenarioOutcome, Option<&RunResult>),
) -> Result<SignedOff, SignoffError> {
    let (suite, names) = check(path)?;
    let dir = options.out_dir.join(&suite.name);
    std::fs::create_dir_all(&dir).map_err(|source| SignoffError::OutputDir {
        path: dir.clone(),
        source,
    })?;
    let started = SystemTime::now();
    let clock = Instant::now();
    let progress = Progress::new(options.quiet, Vec::new());
    let mut outcomes = Vec::with_capacity(names.len());
    let mut suites = Vec::with_capacity(names.len());
    for (i, (entry, name)) in suite.scenarios.iter().zip(names).enumerate() {
        let shown_path = entry.path.display().to_string();
        if stop.is_cancelled() {
            let outcome = ScenarioOutcome::not_run(name, shown_path, entry.expect);
            suites.push(junit::not_run(
                &outcome.name,
                outcome.note.as_deref().unwrap_or("not run"),
            ));
            finished(&outcome, None);
            outcomes.push(outcome);
            continue;
        }
        progress.note(&format!(
            "sign-off {}: scenario {}/{}: {name} ({shown_path})",
            suite.name,
            i + 1,
            suite.scenarios.len()
        ));
        let run_options = RunOptions {
            out_dir: dir.clone(),
            quiet: options.quiet,
            ..RunOptions::default()
        };
        // A previous sign-off's files must not pass for this run's when it writes none.
        for file in ["result.json", "report.html"] {
            let _ = std::fs::remove_file(dir.join(&name).join(file));
        }
        let began = Instant::now();
        let ran = run::run(&entry.path, &run_options, stop.clone()).await;
        let elapsed = began.elapsed();
        let mut outcome =
            ScenarioOutcome::ran(name, shown_path, entry.expect, &ran, elapsed.as_secs_f64());
        outcome.result = written(&dir, &outcome.name, "result.json");
        outcome.report = written(&dir, &outcome.name, "report.html");
        let result = ran.as_ref().ok().map(|f| &f.result);
        suites.push(junit_suite(&outcome, result, elapsed));
        finished(&outcome, result);
        outcomes.push(outcome);
    }
    let (exit_code, verdict) = record::judge(&outcomes);
    let record = SignoffRecord {
        schema_version: record::SCHEMA_VERSION,
        suite: SuiteEcho {
            name: suite.name.clone(),
            description: suite.description.clone(),
            path: path.display().to_string(),
        },
        verdict,
        exit_code,
        started_at_unix_ms: started
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis() as u64,
        duration_s: clock.elapsed().as_secs_f64(),
        environment: Environment::detect(),
        scenarios: outcomes,
    };
    let json = dir.join("signoff.json");
    let text = serde_json::to_string_pretty(&record)
        .expect("the sign-off record has no map with non-string keys, the one thing JSON refuses");
    report::write(&json, &text)?;
    let html = dir.join("signoff.html");
    report::write(&html, &page::html(&record)?)?;
    if let Some(path) = &options.junit {
        junit::write(path, &junit::report(&suite.name, suites))?;
    }
    Ok(SignedOff { record, html, json })
}

/// What `harness validate` checks of a suite file: the suite, and each of its scenarios as a
/// scenario file is checked. Returns the suite and its scenarios' names.
pub fn check(path: &Path) -> Result<(Suite, Vec<String>), SignoffError> {
    let suite = suite::load(path).map_err(|e| SignoffError::BadInput(e.to_string()))?;
    let names = validate(&suite)?;
    Ok((suite, names))
}

/// Validates every scenario of the suite as `harness validate` does, and returns their names;
/// all problems are reported at once, each under the suite line that names the scenario.
fn validate(suite: &Suite) -> Result<Vec<String>, SignoffError> {
    let mut problems = Vec::new();
    let mut names = Vec::with_capacity(suite.scenarios.len());
    let mut first: HashMap<String, usize> = HashMap::new();
    for (i, entry) in suite.scenarios.iter().enumerate() {
        match run::check(&entry.path) {
            Ok(scenario) => {
                if let Some(earlier) = first.get(&scenario.name) {
                    problems.push(format!(
                        "{}: scenarios[{i}].path: scenario {:?} has the name of scenarios[{earlier}]; \
                         their results would overwrite each other",
                        entry.at, scenario.name
                    ));
                } else {
                    first.insert(scenario.name.clone(), i);
                }
                names.push(scenario.name);
            }
            Err(error) => problems.push(under_suite_line(entry, i, &error.to_string())),
        }
    }
    if problems.is_empty() {
        Ok(names)
    } else {
        Err(SignoffError::BadInput(problems.join("\n")))
    }
}

/// A scenario's problems, one a line, each under the suite line that names the scenario, so
/// that every line says both where the suite names it and what is wrong with it.
fn under_suite_line(entry: &suite::Entry, index: usize, problems: &str) -> String {
    let path = entry.path.display().to_string();
    let lines: Vec<String> = problems
        .lines()
        .map(|problem| {
            // Most problems start with the scenario's file:line:col; the rest get its path.
            if problem.starts_with(&path) {
                format!("{}: scenarios[{index}].path: {problem}", entry.at)
            } else {
                format!("{}: scenarios[{index}].path: {path}: {problem}", entry.at)
            }
        })
        .collect();
    lines.join("\n")
}

/// `<scenario>/<file>` relative to the sign-off's directory, when the run wrote it.
fn written(dir: &Path, scenario: &str, file: &str) -> Option<String> {
    let relative = format!("{scenario}/{file}");
    dir.join(&relative).is_file().then_some(relative)
}

/// The scenario's JUnit testsuite as the sign-off counts it: an expected failure is skipped, an
/// unexpected pass fails, and the time is the scenario's whole run.
fn junit_suite(
    outcome: &ScenarioOutcome,
    result: Option<&RunResult>,
    elapsed: Duration,
) -> TestSuite {
    let Some(result) = result else {
        return junit::broken(
            &outcome.name,
            outcome
                .note
                .as_deref()
                .unwrap_or("the run returned no result"),
            elapsed,
        );
    };
    let mut suite = junit::suite(result);
    suite.set_time(elapsed);
    match (outcome.expect, outcome.verdict) {
        (Expect::Fail, Verdict::Fail) => junit::expected_failure(&suite),
        (Expect::Fail, Verdict::Pass) => {
            junit::add_failure(
                &mut suite,
                "expected to fail",
                "expected to fail but passed",
            );
            suite
        }
        _ => suite,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::At;

    /// A scratch directory of this test process, holding `files`.
    fn scratch(test: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("harness-signoff-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("a scratch file");
        }
        dir
    }

    /// What `harness validate` prints for `path`, by the steps it takes: a file with a
    /// `scenarios` key is checked as a suite.
    fn validated(path: &Path) -> Result<Vec<String>, String> {
        assert!(suite::is_suite_file(path), "{} is a suite", path.display());
        check(path)
            .map(|(_, names)| names)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_line_of_a_scenarios_problems_is_under_the_suite_line() {
        let entry = suite::Entry {
            path: PathBuf::from("scenarios/bad.yaml"),
            expect: Expect::Pass,
            at: At::File {
                name: "scenarios/release.yaml".to_owned(),
                line: 4,
                column: 11,
            },
        };
        let problems = "scenarios/bad.yaml:13:24: load.phases[0].constant.rate: expected a number > 0\n\
                        scenarios/bad.yaml:1:1: requests: required key is missing\n\
                        cannot be read";
        assert_eq!(
            under_suite_line(&entry, 1, problems),
            "scenarios/release.yaml:4:11: scenarios[1].path: scenarios/bad.yaml:13:24: \
             load.phases[0].constant.rate: expected a number > 0\n\
             scenarios/release.yaml:4:11: scenarios[1].path: scenarios/bad.yaml:1:1: \
             requests: required key is missing\n\
             scenarios/release.yaml:4:11: scenarios[1].path: scenarios/bad.yaml: cannot be read"
        );
    }

    #[test]
    fn a_scenario_with_several_problems_has_each_under_the_suite_line() {
        let dir = scratch(
            "problems",
            &[
                (
                    "release.yaml",
                    "name: release\nscenarios:\n  - path: bad.yaml\n",
                ),
                ("bad.yaml", "name: bad\nsystem: {managed: {}}\n"),
            ],
        );
        let error = validated(&dir.join("release.yaml")).expect_err("bad.yaml is incomplete");
        let suite_line = format!(
            "{}:3:11: scenarios[0].path: ",
            dir.join("release.yaml").display()
        );
        let lines: Vec<&str> = error.lines().collect();
        assert!(lines.len() >= 2, "several problems: {error}");
        for line in lines {
            assert!(line.starts_with(&suite_line), "{line} in {error}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_suite_of_no_scenarios_is_validated_as_a_suite() {
        let dir = scratch(
            "empty",
            &[
                ("none.yaml", "name: release\nscenarios:\n"),
                ("empty.yaml", "name: release\nscenarios: []\n"),
            ],
        );
        let none = dir.join("none.yaml");
        assert_eq!(
            validated(&none),
            Err(format!(
                "{}:2:10: scenarios: expected at least one scenario",
                none.display()
            ))
        );
        let empty = dir.join("empty.yaml");
        assert_eq!(
            validated(&empty),
            Err(format!(
                "{}:2:12: scenarios: expected at least one scenario",
                empty.display()
            ))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_release_suite_and_its_scenarios_are_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/release.yaml");
        let (suite, names) = check(&path).expect("the suite and every scenario of it validate");
        assert_eq!(names, ["smoke", "baseline", "overhead", "stall"]);
        let expected: Vec<Expect> = suite.scenarios.iter().map(|s| s.expect).collect();
        assert_eq!(
            expected,
            [Expect::Pass, Expect::Pass, Expect::Pass, Expect::Fail]
        );
    }
}
