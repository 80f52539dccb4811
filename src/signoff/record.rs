//! `signoff.json`: what a sign-off found, scenario by scenario, and the verdict over all of them.
//! The HTML page and the exit code are derived from this record alone.

use serde::{Deserialize, Serialize};

use super::suite::Expect;
use crate::exit::RunError;
use crate::exit::{EXIT_FAILED, EXIT_INCOMPLETE, EXIT_PASSED};
use crate::result::overhead;
use crate::result::{Environment, RunResult, RunStatus};
use crate::run::Finished;

/// Bumped on any change that an older reader would misread.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole sign-off, as `signoff.json` holds it: the suite, every scenario's outcome and the
/// verdict over them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignoffRecord {
    pub(crate) schema_version: u32,
    pub(crate) suite: SuiteEcho,
    /// Over every scenario, expectations applied.
    pub verdict: Verdict,
    /// The process's exit code, 0, 1 or 3: that of the worst scenario, expectations applied (see
    /// [`ScenarioOutcome::exit_contribution`]).
    pub exit_code: u8,
    pub(crate) started_at_unix_ms: u64,
    pub(crate) duration_s: f64,
    pub(crate) environment: Environment,
    pub(crate) scenarios: Vec<ScenarioOutcome>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SuiteEcho {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) path: String,
}

/// A scenario's verdict, or the sign-off's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Every threshold and check passed (and an overhead claim held).
    Pass,
    /// A threshold or check failed, or an overhead claim did not hold.
    Fail,
    /// An overhead claim the experiment could not decide.
    Inconclusive,
    /// The run did not complete: a service would not start or crashed, the target was
    /// unreachable, or it was interrupted.
    Incomplete,
    /// The sign-off was interrupted before this scenario's turn.
    NotRun,
}

impl Verdict {
    /// As it is shown: `PASS`, `NOT RUN`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "INCONCLUSIVE",
            Verdict::Incomplete => "INCOMPLETE",
            Verdict::NotRun => "NOT RUN",
        }
    }
}

/// One scenario of the sign-off.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioOutcome {
    /// The scenario's `name`: its results are in `<suite dir>/<name>/`.
    pub name: String,
    /// As given to `harness run`.
    pub path: String,
    pub(crate) expect: Expect,
    /// What the scenario's run found, before expectations.
    pub verdict: Verdict,
    /// `harness run`'s exit code for it; `None` when it did not run.
    pub exit_code: Option<u8>,
    /// It counts as passed for the sign-off (a pass, or a failure that was expected).
    pub signed_off: bool,
    /// Why it counts as it does, when that is not plain: "failed as expected", "expected to fail
    /// but passed", the reason a run did not complete.
    pub note: Option<String>,
    pub(crate) duration_s: f64,
    /// Relative to `signoff.json`.
    pub result: Option<String>,
    /// The HTML report, relative to `signoff.json`, when the run wrote one.
    pub report: Option<String>,
    pub(crate) figures: Option<Figures>,
    /// Thresholds that failed, as the summary prints them: `p(99) < 100ms: 969.73ms ✗`.
    pub failed_thresholds: Vec<String>,
}

/// The numbers a reader of the sign-off looks at first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figures {
    pub(crate) target_rate: f64,
    pub(crate) achieved_rate: f64,
    /// Latency from the intended send time, µs; `None` when nothing completed.
    pub p99_us: Option<u64>,
    /// Unexpected outcomes and unanswered requests over requests sent; `None` with none sent.
    pub error_rate: Option<f64>,
    pub(crate) overhead: Option<OverheadFigure>,
}

/// The overhead claim, when the scenario is an experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OverheadFigure {
    pub(crate) verdict: overhead::Verdict,
    pub(crate) bound: f64,
    /// The judged effect of the first point: estimate and 95% interval, relative.
    pub estimate: Option<overhead::Effect>,
}

impl ScenarioOutcome {
    /// A scenario that ran, from what `harness::run::run` returned; `result` and `report` are
    /// left for the caller, who knows what was written.
    pub fn ran(
        name: String,
        path: String,
        expect: Expect,
        outcome: &Result<Finished, RunError>,
        duration_s: f64,
    ) -> Self {
        let (exit_code, reason) = match outcome {
            Ok(finished) => {
                let reason = match &finished.result.status {
                    RunStatus::Completed => None,
                    RunStatus::Interrupted { reason } | RunStatus::Failed { reason } => {
                        Some(reason.clone())
                    }
                };
                (finished.result.exit_code(), reason)
            }
            Err(error) => (error.exit_code(), Some(error.to_string())),
        };
        let result = outcome.as_ref().ok().map(|finished| &finished.result);
        let verdict = match exit_code {
            EXIT_PASSED => Verdict::Pass,
            EXIT_FAILED if result.is_some_and(undecided) => Verdict::Inconclusive,
            EXIT_FAILED => Verdict::Fail,
            _ => Verdict::Incomplete,
        };
        let (signed_off, note) = match (verdict, expect) {
            (Verdict::Pass, Expect::Pass) => (true, None),
            (Verdict::Fail, Expect::Fail) => (true, Some("failed as expected".to_owned())),
            (Verdict::Pass, Expect::Fail) => (false, Some("expected to fail but passed".into())),
            (Verdict::Inconclusive, Expect::Fail) => (
                false,
                Some("expected to fail, but the result could not be decided".into()),
            ),
            _ => (false, reason),
        };
        ScenarioOutcome {
            name,
            path,
            expect,
            verdict,
            exit_code: Some(exit_code),
            signed_off,
            note,
            duration_s,
            result: None,
            report: None,
            figures: result.map(Figures::of),
            failed_thresholds: result
                .map(|r| {
                    r.thresholds
                        .iter()
                        .filter(|t| !t.evaluation.is_pass())
                        .map(|t| format!("[{}] {}", t.scope, t.evaluation))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// A scenario whose turn never came.
    pub fn not_run(name: String, path: String, expect: Expect) -> Self {
        ScenarioOutcome {
            name,
            path,
            expect,
            verdict: Verdict::NotRun,
            exit_code: None,
            signed_off: false,
            note: Some("not run: the sign-off was interrupted".to_owned()),
            duration_s: 0.0,
            result: None,
            report: None,
            figures: None,
            failed_thresholds: Vec::new(),
        }
    }

    /// What this scenario adds to the sign-off's exit code: 0, 1 or 3. Bad input found while
    /// running (a scenario file edited after validation) is an incomplete sign-off, not bad input
    /// to it: the suite was checked and scenarios have run.
    pub fn exit_contribution(&self) -> u8 {
        match (self.signed_off, self.exit_code) {
            (true, _) => EXIT_PASSED,
            (false, Some(EXIT_PASSED | EXIT_FAILED)) => EXIT_FAILED,
            // Not run, not completed, or bad input found while running.
            (false, None | Some(_)) => EXIT_INCOMPLETE,
        }
    }
}

impl Figures {
    fn of(result: &RunResult) -> Self {
        let load = &result.load;
        Figures {
            target_rate: load.target_rate,
            achieved_rate: load.achieved_rate,
            p99_us: (load.latency.count > 0).then_some(load.latency.p99),
            error_rate: (load.sent > 0)
                .then(|| (load.unexpected + load.abandoned) as f64 / load.sent as f64),
            overhead: result.overhead.as_ref().map(|o| OverheadFigure {
                verdict: o.verdict,
                bound: o.claim.bound,
                estimate: o
                    .points
                    .first()
                    .and_then(|p| p.analysis.claim_effect(o.claim.metric)),
            }),
        }
    }
}

/// Every threshold passed and only the overhead claim, undecided, failed the run.
fn undecided(result: &RunResult) -> bool {
    result
        .overhead
        .as_ref()
        .is_some_and(|o| o.verdict == overhead::Verdict::Inconclusive)
        && result.thresholds.iter().all(|t| t.evaluation.is_pass())
}

/// The sign-off's exit code and verdict over its scenarios: the worst scenario wins, incomplete
/// (3) over failed (1) over passed (0), which is their numeric order.
pub fn judge(scenarios: &[ScenarioOutcome]) -> (u8, Verdict) {
    let exit_code = scenarios
        .iter()
        .map(ScenarioOutcome::exit_contribution)
        .max()
        .unwrap_or(EXIT_PASSED);
    let verdict = match exit_code {
        EXIT_PASSED => Verdict::Pass,
        EXIT_FAILED => {
            let undecided = scenarios
                .iter()
                .filter(|s| s.exit_contribution() == EXIT_FAILED)
                .all(|s| s.verdict == Verdict::Inconclusive);
            if undecided {
                Verdict::Inconclusive
            } else {
                Verdict::Fail
            }
        }
        _ => Verdict::Incomplete,
    };
    (exit_code, verdict)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::exit::EXIT_BAD_INPUT;

    fn fixture(name: &str) -> RunResult {
        let text = match name {
            "smoke" => include_str!("../../tests/fixtures/results/smoke.json"),
            "stall" => include_str!("../../tests/fixtures/results/stall.json"),
            "overhead-quick" => {
                include_str!("../../tests/fixtures/results/overhead-quick.json")
            }
            other => panic!("no fixture {other}"),
        };
        serde_json::from_str(text).expect("the fixture is a result.json")
    }

    fn finished(result: RunResult) -> Result<Finished, RunError> {
        Ok(Finished {
            result,
            result_path: PathBuf::from("result.json"),
        })
    }

    fn outcome(expect: Expect, run: Result<Finished, RunError>) -> ScenarioOutcome {
        ScenarioOutcome::ran("s".into(), "s.yaml".into(), expect, &run, 1.0)
    }

    fn interrupted() -> Result<Finished, RunError> {
        let mut result = fixture("smoke");
        result.status = RunStatus::Interrupted {
            reason: "interrupted (SIGINT or SIGTERM)".to_owned(),
        };
        finished(result)
    }

    fn undecided_claim() -> RunResult {
        let mut result = fixture("overhead-quick");
        let overhead = result.overhead.as_mut().expect("an experiment");
        overhead.verdict = overhead::Verdict::Inconclusive;
        result
    }

    #[test]
    fn a_pass_signs_off_and_a_failure_does_not() {
        let pass = outcome(Expect::Pass, finished(fixture("smoke")));
        assert_eq!((pass.verdict, pass.signed_off), (Verdict::Pass, true));
        assert_eq!((pass.exit_code, pass.note), (Some(EXIT_PASSED), None));
        let figures = pass.figures.expect("figures");
        assert_eq!(figures.target_rate, 50.0);
        assert_eq!(figures.error_rate, Some(0.0));

        let fail = outcome(Expect::Pass, finished(fixture("stall")));
        assert_eq!((fail.verdict, fail.signed_off), (Verdict::Fail, false));
        assert_eq!(fail.exit_contribution(), EXIT_FAILED);
        assert_eq!(
            fail.failed_thresholds,
            ["[overall] p(99) < 100ms: 969.73ms ✗"]
        );
    }

    #[test]
    fn an_expected_failure_signs_off_only_when_it_fails() {
        let failed = outcome(Expect::Fail, finished(fixture("stall")));
        assert_eq!((failed.verdict, failed.signed_off), (Verdict::Fail, true));
        assert_eq!(failed.note.as_deref(), Some("failed as expected"));
        assert_eq!(failed.exit_contribution(), EXIT_PASSED);

        let passed = outcome(Expect::Fail, finished(fixture("smoke")));
        assert_eq!((passed.verdict, passed.signed_off), (Verdict::Pass, false));
        assert_eq!(passed.note.as_deref(), Some("expected to fail but passed"));
        assert_eq!(passed.exit_contribution(), EXIT_FAILED);

        // A run that broke is no expected failure: it is incomplete whatever was expected.
        let broke = outcome(Expect::Fail, interrupted());
        assert_eq!(
            (broke.verdict, broke.signed_off),
            (Verdict::Incomplete, false)
        );
        assert_eq!(
            broke.note.as_deref(),
            Some("interrupted (SIGINT or SIGTERM)")
        );
        assert_eq!(broke.exit_contribution(), EXIT_INCOMPLETE);

        // Neither is a claim that could not be decided.
        let undecided = outcome(Expect::Fail, finished(undecided_claim()));
        assert_eq!(
            (undecided.verdict, undecided.signed_off),
            (Verdict::Inconclusive, false)
        );
    }

    #[test]
    fn a_run_that_returned_an_error_keeps_its_exit_code_and_reason() {
        let unreachable = outcome(
            Expect::Pass,
            Err(RunError::Incomplete(anyhow::anyhow!("connection refused"))),
        );
        assert_eq!(unreachable.exit_code, Some(EXIT_INCOMPLETE));
        assert_eq!(unreachable.note.as_deref(), Some("connection refused"));
        assert!(unreachable.figures.is_none());
        let bad = outcome(Expect::Pass, Err(RunError::BadInput("no gateway".into())));
        assert_eq!(
            (bad.verdict, bad.exit_code),
            (Verdict::Incomplete, Some(EXIT_BAD_INPUT))
        );
    }

    #[test]
    fn the_worst_scenario_decides() {
        let pass = || outcome(Expect::Pass, finished(fixture("smoke")));
        let fail = || outcome(Expect::Pass, finished(fixture("stall")));
        let not_run = ScenarioOutcome::not_run("b".into(), "b.yaml".into(), Expect::Pass);
        assert_eq!(judge(&[]), (EXIT_PASSED, Verdict::Pass));
        assert_eq!(
            judge(&[pass(), outcome(Expect::Fail, finished(fixture("stall")))]),
            (EXIT_PASSED, Verdict::Pass)
        );
        assert_eq!(judge(&[fail(), pass()]), (EXIT_FAILED, Verdict::Fail));
        assert_eq!(
            judge(&[outcome(Expect::Pass, interrupted()), fail()]),
            (EXIT_INCOMPLETE, Verdict::Incomplete)
        );
        assert_eq!(
            judge(&[fail(), not_run]),
            (EXIT_INCOMPLETE, Verdict::Incomplete)
        );
        // A scenario that turned out bad while running keeps its own exit 2, but to the sign-off,
        // which has run scenarios by then, it is incomplete: 3, over a failure either side of it.
        let bad = || {
            outcome(
                Expect::Pass,
                Err(RunError::BadInput("edited mid-run".into())),
            )
        };
        assert_eq!(bad().exit_code, Some(EXIT_BAD_INPUT));
        assert_eq!(bad().exit_contribution(), EXIT_INCOMPLETE);
        assert_eq!(
            judge(&[fail(), bad()]),
            (EXIT_INCOMPLETE, Verdict::Incomplete)
        );
        assert_eq!(
            judge(&[bad(), fail(), pass()]),
            (EXIT_INCOMPLETE, Verdict::Incomplete)
        );
        assert_eq!(
            judge(&[outcome(Expect::Pass, interrupted()), bad()]),
            (EXIT_INCOMPLETE, Verdict::Incomplete)
        );
        // Nor does expecting a failure excuse it.
        let bad_expected = outcome(Expect::Fail, Err(RunError::BadInput("edited".into())));
        assert_eq!(
            judge(&[bad_expected]),
            (EXIT_INCOMPLETE, Verdict::Incomplete)
        );
    }

    #[test]
    fn an_undecided_claim_is_inconclusive_not_failed() {
        let undecided = || outcome(Expect::Pass, finished(undecided_claim()));
        assert_eq!(undecided().verdict, Verdict::Inconclusive);
        assert_eq!(
            judge(&[
                outcome(Expect::Pass, finished(fixture("smoke"))),
                undecided()
            ]),
            (EXIT_FAILED, Verdict::Inconclusive)
        );
        assert_eq!(
            judge(&[
                undecided(),
                outcome(Expect::Pass, finished(fixture("stall")))
            ]),
            (EXIT_FAILED, Verdict::Fail)
        );
        // The fixture's own verdict, FAIL, is a failure.
        let failed = outcome(Expect::Pass, finished(fixture("overhead-quick")));
        assert_eq!(failed.verdict, Verdict::Fail);
        let figure = failed.figures.and_then(|f| f.overhead).expect("the claim");
        assert_eq!(figure.verdict, overhead::Verdict::Fail);
        assert!(figure.estimate.is_some_and(|e| e.low > figure.bound));
    }
}
