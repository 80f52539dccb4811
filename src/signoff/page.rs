//! `signoff.html` and the summary on stdout: the sign-off record put into words and units for
//! people. Everything here reads only the [`SignoffRecord`].

use std::fmt::Write as _;

use serde::Serialize;

use super::record::{ScenarioOutcome, SignoffRecord, Verdict};
use super::suite::Expect;
use crate::format::{duration_terse, percent_fixed};
use crate::report::{self, ReportError};
use crate::result::Environment;
use crate::summary::effect;

#[derive(Serialize)]
struct Page<'a> {
    title: String,
    suite: &'a super::record::SuiteEcho,
    verdict: &'static str,
    verdict_class: &'static str,
    exit_code: u8,
    signed_off: usize,
    started: String,
    duration: String,
    environment: &'a Environment,
    rows: Vec<Row<'a>>,
}

#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    path: &'a str,
    verdict: &'static str,
    verdict_class: &'static str,
    exit_code: String,
    expect: &'static str,
    signed_off: bool,
    note: Option<&'a str>,
    took: String,
    rate: String,
    p99: String,
    error_rate: String,
    failing: Vec<String>,
    link: Option<&'a str>,
    link_label: &'static str,
}

/// The sign-off page.
pub fn html(record: &SignoffRecord) -> Result<String, ReportError> {
    let page = Page {
        title: format!("Sign-off {}: {}", record.suite.name, record.verdict.label()),
        suite: &record.suite,
        verdict: record.verdict.label(),
        verdict_class: class(record.verdict),
        exit_code: record.exit_code,
        signed_off: record.scenarios.iter().filter(|s| s.signed_off).count(),
        started: started(record.started_at_unix_ms),
        duration: duration(record.duration_s),
        environment: &record.environment,
        rows: record.scenarios.iter().map(row).collect(),
    };
    report::render("signoff.html", page)
}

/// The lines printed when the sign-off ends.
pub fn text(record: &SignoffRecord) -> String {
    let mut out = format!(
        "sign-off {}: {} (exit {}) after {}\n",
        record.suite.name,
        record.verdict.label(),
        record.exit_code,
        duration(record.duration_s)
    );
    let width = record
        .scenarios
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0);
    for scenario in &record.scenarios {
        let _ = write!(
            out,
            "  {} {:<width$}  {:<12}",
            if scenario.signed_off { "✓" } else { "✗" },
            scenario.name,
            scenario.verdict.label(),
        );
        if let Some(note) = &scenario.note {
            let _ = write!(out, "  {note}");
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        for failing in failing(scenario) {
            let _ = writeln!(out, "      {failing}");
        }
    }
    out
}

fn row(scenario: &ScenarioOutcome) -> Row<'_> {
    let figures = scenario.figures.as_ref();
    let (link, link_label) = match (&scenario.report, &scenario.result) {
        (Some(report), _) => (Some(report.as_str()), "report"),
        (None, Some(result)) => (Some(result.as_str()), "result.json"),
        (None, None) => (None, ""),
    };
    Row {
        name: &scenario.name,
        path: &scenario.path,
        verdict: scenario.verdict.label(),
        verdict_class: class(scenario.verdict),
        exit_code: scenario
            .exit_code
            .map_or_else(|| "–".to_owned(), |code| code.to_string()),
        expect: match scenario.expect {
            Expect::Pass => "pass",
            Expect::Fail => "fail",
        },
        signed_off: scenario.signed_off,
        note: scenario.note.as_deref(),
        took: match scenario.verdict {
            Verdict::NotRun => "–".to_owned(),
            _ => duration(scenario.duration_s),
        },
        rate: figures.map_or_else(
            || "–".to_owned(),
            |f| format!("{:.1}/s of {:.1}/s", f.achieved_rate, f.target_rate),
        ),
        p99: figures
            .and_then(|f| f.p99_us)
            .map_or_else(|| "–".to_owned(), duration_terse),
        error_rate: figures
            .and_then(|f| f.error_rate)
            .map_or_else(|| "–".to_owned(), percent_fixed),
        failing: failing(scenario),
        link,
        link_label,
    }
}

/// The failed thresholds, and the overhead claim when it did not pass.
fn failing(scenario: &ScenarioOutcome) -> Vec<String> {
    let mut failing = scenario.failed_thresholds.clone();
    let claim = scenario.figures.as_ref().and_then(|f| f.overhead.as_ref());
    if let Some(claim) = claim.filter(|c| c.verdict != crate::result::overhead::Verdict::Pass) {
        let measured = effect(claim.estimate.as_ref(), percent_fixed);
        failing.push(format!(
            "overhead claim < {}: {measured} {}",
            percent_fixed(claim.bound),
            claim.verdict
        ));
    }
    failing
}

fn class(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Inconclusive => "inconclusive",
        Verdict::Incomplete => "incomplete",
        Verdict::NotRun => "not-run",
    }
}

/// `2026-11-25 02:21:48 UTC`.
fn started(unix_ms: u64) -> String {
    i64::try_from(unix_ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "unknown".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

/// `4.8s`, `5m 12s`.
fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        let whole = seconds.round() as u64;
        format!("{}m {:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::exit::RunError;
    use crate::result::RunResult;
    use crate::run::Finished;
    use crate::signoff::record::{self, SuiteEcho};

    fn ran(fixture: &str, expect: Expect) -> ScenarioOutcome {
        let text = match fixture {
            "smoke" => include_str!("../../tests/fixtures/results/smoke.json"),
            "stall" => include_str!("../../tests/fixtures/results/stall.json"),
            other => panic!("no fixture {other}"),
        };
        let result: RunResult = serde_json::from_str(text).expect("a result.json");
        let name = result.scenario.name.clone();
        let finished = Ok(Finished {
            result,
            result_path: PathBuf::from("result.json"),
        });
        let mut outcome =
            ScenarioOutcome::ran(name.clone(), format!("{name}.yaml"), expect, &finished, 4.2);
        outcome.result = Some(format!("{name}/result.json"));
        outcome
    }

    fn record(scenarios: Vec<ScenarioOutcome>) -> SignoffRecord {
        let (exit_code, verdict) = record::judge(&scenarios);
        SignoffRecord {
            schema_version: record::SCHEMA_VERSION,
            suite: SuiteEcho {
                name: "release".to_owned(),
                description: "before a <release>".to_owned(),
                path: "scenarios/release.yaml".to_owned(),
            },
            verdict,
            exit_code,
            started_at_unix_ms: 1_795_573_638_894,
            duration_s: 372.4,
            environment: Environment {
                harness_version: "0.1.0".to_owned(),
                git_sha: Some("3cd2ca1c".to_owned()),
                cpu_model: Some("AMD EPYC".to_owned()),
                cores: 2,
                kernel: Some("Linux 6.18".to_owned()),
            },
            scenarios,
        }
    }

    /// The row of `scenario` in the page, as written: entities stay escaped (`&#x2f;` for `/`).
    fn row_of<'h>(html: &'h str, scenario: &str) -> &'h str {
        let start = html
            .find(&format!("<tr id=\"scenario-{scenario}\""))
            .unwrap_or_else(|| panic!("no row for {scenario}"));
        let end = html[start..].find("</tr>").expect("the row ends") + start;
        &html[start..end]
    }

    #[test]
    fn a_passing_sign_off_shows_every_row_with_its_link() {
        let record = record(vec![ran("smoke", Expect::Pass), ran("stall", Expect::Fail)]);
        let html = html(&record).expect("renders");
        assert!(
            html.contains("<div id=\"verdict\" class=\"verdict pass\">"),
            "{html}"
        );
        assert!(html.contains("<span class=\"word\">PASS</span>"));
        assert!(html.contains("2 of 2 scenarios signed off; exit code 0"));
        let smoke = row_of(&html, "smoke");
        assert!(smoke.contains("class=\"signed-off\""), "{smoke}");
        assert!(smoke.contains("href=\"smoke&#x2f;result.json\""), "{smoke}");
        assert!(smoke.contains("50.0&#x2f;s of 50.0&#x2f;s"), "{smoke}");
        let stall = row_of(&html, "stall");
        assert!(
            stall.contains("<strong class=\"fail-text\">FAIL</strong>"),
            "{stall}"
        );
        assert!(stall.contains("failed as expected"), "{stall}");
        assert!(stall.contains("p(99) &lt; 100ms: 969.73ms"), "{stall}");
        assert!(html.contains("2026-11-25 02:27:18 UTC"));
        assert!(html.contains("6m 12s"));
        assert!(html.contains("<code>3cd2ca1c</code>"));
        assert!(html.contains("AMD EPYC (2 cores)"));
    }

    #[test]
    fn a_failing_row_and_the_rows_never_run_are_marked() {
        let mut broken = ran("smoke", Expect::Pass);
        broken.verdict = Verdict::Incomplete;
        broken.exit_code = Some(3);
        broken.signed_off = false;
        broken.note = Some("<script>alert(1)</script>".to_owned());
        let record = record(vec![
            ran("stall", Expect::Pass),
            broken,
            ScenarioOutcome::not_run("baseline".into(), "baseline.yaml".into(), Expect::Pass),
        ]);
        let html = html(&record).expect("renders");
        assert!(html.contains("class=\"verdict incomplete\""), "{html}");
        assert!(html.contains("0 of 3 scenarios signed off; exit code 3"));
        let stall = row_of(&html, "stall");
        assert!(stall.contains("class=\"not-signed-off\""), "{stall}");
        assert!(!html.contains("<script>alert"), "the note is escaped");
        let baseline = row_of(&html, "baseline");
        assert!(baseline.contains("NOT RUN"), "{baseline}");
        assert!(baseline.contains("not run: the sign-off was interrupted"));
        assert!(
            baseline.contains("<span class=\"muted\">none</span>"),
            "{baseline}"
        );

        let text = text(&record);
        assert!(text.starts_with("sign-off release: INCOMPLETE (exit 3) after 6m 12s\n"));
        assert!(
            text.contains("✗ stall     FAIL\n      [overall] p(99) < 100ms: 969.73ms ✗\n"),
            "{text}"
        );
        assert!(text.contains("✗ baseline  NOT RUN       not run: the sign-off was interrupted\n"));
    }

    #[test]
    fn an_undecided_claim_is_listed_with_its_interval() {
        let mut outcome = ran("smoke", Expect::Pass);
        let figures = outcome.figures.as_mut().expect("figures");
        figures.overhead = Some(record::OverheadFigure {
            verdict: crate::result::overhead::Verdict::Inconclusive,
            bound: 0.01,
            estimate: crate::overhead::Effect::of(&[0.004, 0.012, 0.02, -0.002, 0.009, 0.015]),
        });
        let failing = failing(&outcome);
        assert_eq!(failing.len(), 1);
        assert!(
            failing[0].starts_with("overhead claim < 1.00%: +"),
            "{failing:?}"
        );
        assert!(failing[0].ends_with(" INCONCLUSIVE"), "{failing:?}");
        // A run that returned an error has no figures to show.
        let error = Err(RunError::Incomplete(anyhow::anyhow!("cannot reach")));
        let outcome = ScenarioOutcome::ran("x".into(), "x.yaml".into(), Expect::Pass, &error, 0.1);
        let row = row(&outcome);
        assert_eq!((row.rate.as_str(), row.p99.as_str()), ("–", "–"));
        assert_eq!(row.link, None);
    }
}
