//! The experiment's sweep: one point per value of the swept key, each the scenario file read
//! again with that setting, or the scenario itself when nothing is swept.

use std::path::Path;

use crate::exit::RunError;
use crate::scenario::{At, Located, Problem, Scenario, ScenarioError, Sweep, Sweeping};

/// The experiment at one setting of the swept key (the only one without a sweep).
pub(crate) struct Point {
    /// `KEY=VALUE`.
    pub setting: Option<String>,
    pub scenario: Scenario,
}

/// The points of a scenario's sweep, each the scenario file read again with the user's `--set`s
/// and then the sweep's own; without a sweep, the scenario itself.
pub(crate) fn points(
    path: &Path,
    overrides: &[crate::scenario::Override],
    scenario: &Scenario,
) -> Result<Vec<Point>, RunError> {
    let Some(sweep) = scenario.overhead.as_ref().and_then(|o| o.sweep.as_ref()) else {
        return Ok(vec![Point {
            setting: None,
            scenario: scenario.clone(),
        }]);
    };
    // Read once: each point is the tree again with one more setting.
    let file = Sweeping::read(path, overrides).map_err(|e| RunError::BadInput(e.to_string()))?;
    sweep
        .values
        .iter()
        .map(|value| {
            let setting = format!("{}={}", sweep.key, value.value);
            let invalid = |error: ScenarioError| RunError::BadInput(at_value(error, value, sweep));
            let scenario = file
                .at(&setting.parse().map_err(invalid)?)
                .map_err(invalid)?;
            Ok(Point {
                setting: Some(setting),
                scenario,
            })
        })
        .collect()
}

/// A point's problems, told where the sweep's value was written: a problem with the swept key
/// (which the value supplied, as a `--set` would) is the value's, at its place; any other
/// the value caused elsewhere keeps its place and names the value.
fn at_value(error: ScenarioError, value: &Located<String>, sweep: &Sweep) -> String {
    let ScenarioError::Invalid(problems) = error else {
        return value.problem(error.to_string()).to_string();
    };
    let setting = format!("{}={}", sweep.key, value.value);
    let swept = At::Set(sweep.key.clone());
    problems
        .into_iter()
        .map(|problem| {
            if problem.at == swept {
                let key = if problem.key.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", problem.key)
                };
                value.problem(format!("{setting}: {key}{}", problem.message))
            } else {
                Problem {
                    message: format!(
                        "{} (with {setting}, {} at {})",
                        problem.message, value.key, value.at
                    ),
                    ..problem
                }
            }
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An experiment sweeping the kind's weight over `VALUES`; its sweep is on line 14.
    const SCENARIO: &str = "\
name: sweep
system:
  managed: {}
load:
  protocol: http
  phases:
    - constant: {rate: 50, duration: 2s}
requests:
  - name: quote
    weight: 1
    body: {symbols: [AAPL], source_id: yahoo_finance}
    expect: {status: 200}
overhead:
  sweep: {set: requests.0.weight, values: VALUES}
";

    fn points_of(values: &str, sets: &[&str]) -> Result<Vec<Option<String>>, String> {
        let scratch = crate::testing::Scratch::new("sweep");
        let path = scratch.path().join("x.yaml");
        std::fs::write(&path, SCENARIO.replace("VALUES", values)).expect("write");
        let overrides: Vec<crate::scenario::Override> = sets
            .iter()
            .map(|o| o.parse().expect("override parses"))
            .collect();
        let scenario = crate::scenario::load(&path, &overrides).expect("the base reads");
        let shown = path.display().to_string();
        points(&path, &overrides, &scenario)
            .map(|points| points.into_iter().map(|p| p.setting).collect())
            .map_err(|e| e.to_string().replace(&shown, "x.yaml"))
    }

    #[test]
    fn a_valid_sweep_makes_one_point_per_value() {
        assert_eq!(
            points_of("[1, 3]", &[]),
            Ok(vec![
                Some("requests.0.weight=1".to_owned()),
                Some("requests.0.weight=3".to_owned())
            ])
        );
    }

    #[test]
    fn a_long_sweep_is_read_in_time_proportional_to_its_length() {
        // 3,000 values took over 30 s when each point read the whole file again.
        let values: Vec<String> = (1..=3_000).map(|i| i.to_string()).collect();
        let started = std::time::Instant::now();
        let points = points_of(&format!("[{}]", values.join(", ")), &[]).expect("valid");
        let took = started.elapsed();
        assert_eq!(points.len(), 3_000);
        assert_eq!(points[2_999].as_deref(), Some("requests.0.weight=3000"));
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    }

    #[test]
    fn a_value_that_makes_an_invalid_point_is_reported_where_it_is_written() {
        assert_eq!(
            points_of("[1, 0]", &[]),
            Err(
                "x.yaml:14:47: overhead.sweep.values[1]: requests.0.weight=0: \
                 requests[0].weight: expected an integer > 0, got 0"
                    .to_owned()
            )
        );
    }

    #[test]
    fn a_value_a_set_supplied_is_reported_at_the_set() {
        assert_eq!(
            points_of("[1, 2]", &["overhead.sweep.values.1=-3"]),
            Err("--set overhead.sweep.values.1: overhead.sweep.values[1]: \
                 requests.0.weight=-3: requests[0].weight: expected an integer > 0, got -3"
                .to_owned())
        );
    }

    #[test]
    fn a_problem_the_value_causes_elsewhere_keeps_its_place_and_names_the_value() {
        let text = SCENARIO.replace("requests.0.weight", "requests.0.trace_sample");
        let scratch = crate::testing::Scratch::new("sweep");
        let path = scratch.path().join("elsewhere.yaml");
        std::fs::write(&path, text.replace("VALUES", "[10%]")).expect("write");
        let scenario = crate::scenario::load(&path, &[]).expect("the base reads");
        let error = points(&path, &[], &scenario)
            .err()
            .expect("no verify section");
        let shown = path.display().to_string();
        assert_eq!(
            error.to_string().replace(&shown, "x.yaml"),
            "x.yaml:1:1: requests[0].trace_sample: given, but there is no verify.traces section \
             (with requests.0.trace_sample=10%, overhead.sweep.values[0] at x.yaml:14:50)"
        );
    }
}
