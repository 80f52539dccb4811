//! The experiment's sweep: one point per value of the swept key, each the scenario file read
//! again with that setting, or the scenario itself when nothing is swept.

use std::path::Path;

use crate::exit::RunError;
use crate::scenario::Scenario;

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
    sweep
        .values
        .iter()
        .map(|value| {
            let setting = format!("{}={value}", sweep.key);
            let mut all = overrides.to_vec();
            all.push(
                setting
                    .parse()
                    .map_err(|e: crate::scenario::ScenarioError| {
                        RunError::BadInput(e.to_string())
                    })?,
            );
            let scenario = crate::scenario::load(path, &all)
                .map_err(|e| RunError::BadInput(format!("overhead.sweep at {setting}: {e}")))?;
            Ok(Point {
                setting: Some(setting),
                scenario,
            })
        })
        .collect()
}
