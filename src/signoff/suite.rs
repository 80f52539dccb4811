//! Suite files: the scenarios a sign-off runs, in order, and which of them exist to fail.
//!
//! ```yaml
//! name: release
//! description: what this suite signs off
//! scenarios:
//!   - path: smoke.yaml          # relative to the suite file
//!   - path: stall.yaml
//!     expect: fail              # shows that the harness catches a stall
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::scenario::{At, Problem};

/// What a scenario of the suite is expected to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Pass: exit 0.
    #[default]
    Pass,
    /// Fail a threshold or check: the scenario demonstrates that the harness catches a fault.
    Fail,
}

/// A validated suite file.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    /// `[a-z0-9_-]+`: results go to `OUT/<name>/`.
    pub name: String,
    pub(crate) description: String,
    pub(crate) scenarios: Vec<Entry>,
}

/// One scenario of a suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Resolved against the suite file's directory.
    pub path: PathBuf,
    pub(crate) expect: Expect,
    /// Where the entry's path is written, for errors about the scenario it names.
    pub at: At,
}

/// Why a suite file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The suite file.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is wrong.
    #[error("{}", problems.iter().map(Problem::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// Every problem found, each naming file:line:col and the field; one per line.
        problems: Vec<Problem>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    /// `None` for `scenarios:` with no value, which is an empty list to the reader.
    scenarios: Spanned<Option<Vec<EntryFile>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    path: Spanned<String>,
    #[serde(default)]
    expect: Expect,
}

/// Whether `text` is meant as a suite rather than a scenario: a mapping with a `scenarios` key,
/// whatever its value. Lets `harness validate scenarios/*.yaml` take the suites that live beside
/// the scenarios, and check them, mistakes included, as `harness signoff` would.
///
/// YAML that does not parse is a suite when a line starts with the key: in block style only a
/// top-level key can start a line, so a syntax error anywhere still gets the suite's messages.
pub fn is_suite(text: &str) -> bool {
    match serde_saphyr::from_str::<HashMap<String, IgnoredAny>>(text) {
        Ok(keys) => keys.contains_key("scenarios"),
        Err(_) => text.lines().any(|line| {
            line.strip_prefix("scenarios")
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        }),
    }
}

/// The most of a suite file that is read: a list of scenario paths and their settings.
const MAX_SUITE_BYTES: u64 = 4 << 20;

/// [`is_suite`] of the file's contents; false when it cannot be read.
pub fn is_suite_file(path: &Path) -> bool {
    crate::bounded::read_text(path, MAX_SUITE_BYTES).is_ok_and(|text| is_suite(&text))
}

/// Reads and validates a suite file.
pub fn load(path: &Path) -> Result<Suite, SuiteError> {
    let text =
        crate::bounded::read_text(path, MAX_SUITE_BYTES).map_err(|source| SuiteError::Read {
            path: path.to_owned(),
            source,
        })?;
    parse(path, &text)
}

/// Validates suite `text` read from `path`, against whose directory scenario paths resolve.
pub fn parse(path: &Path, text: &str) -> Result<Suite, SuiteError> {
    let file_name = path.display().to_string();
    let at = |line, column| At::File {
        name: file_name.clone(),
        line,
        column,
    };
    let file: SuiteFile = serde_saphyr::from_str(text).map_err(|error| SuiteError::Invalid {
        problems: vec![crate::scenario::yaml_problem(&error, at)],
    })?;
    let spanned_at = |location: &serde_saphyr::Location| at(location.line(), location.column());
    let mut problems = Vec::new();
    let mut problem = |at: At, key: String, message: &str| {
        problems.push(Problem {
            at,
            key,
            message: message.to_owned(),
        });
    };
    let name = &file.name.value;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        problem(
            spanned_at(&file.name.referenced),
            "name".to_owned(),
            &format!("expected a name matching [a-z0-9_-]+, got {name:?}"),
        );
    }
    let entries = file.scenarios.value.unwrap_or_default();
    if entries.is_empty() {
        problem(
            spanned_at(&file.scenarios.referenced),
            "scenarios".to_owned(),
            "expected at least one scenario",
        );
    }
    let base = path.parent().unwrap_or(Path::new(""));
    let mut scenarios = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let at = spanned_at(&entry.path.referenced);
        if entry.path.value.trim().is_empty() {
            problem(
                at,
                format!("scenarios[{i}].path"),
                "expected the path of a scenario file",
            );
            continue;
        }
        scenarios.push(Entry {
            path: base.join(&entry.path.value),
            expect: entry.expect,
            at,
        });
    }
    if !problems.is_empty() {
        return Err(SuiteError::Invalid { problems });
    }
    Ok(Suite {
        name: file.name.value,
        description: file.description,
        scenarios,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Suite, String> {
        parse(Path::new("suites/release.yaml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_suite_resolves_paths_against_its_directory() {
        let suite = parsed(
            "name: release\ndescription: before a release\nscenarios:\n  - path: smoke.yaml\n  \
             - path: ../scenarios/stall.yaml\n    expect: fail\n",
        )
        .expect("valid");
        assert_eq!(suite.name, "release");
        assert_eq!(suite.description, "before a release");
        let paths: Vec<_> = suite.scenarios.iter().map(|e| e.path.clone()).collect();
        assert_eq!(
            paths,
            [
                PathBuf::from("suites/smoke.yaml"),
                PathBuf::from("suites/../scenarios/stall.yaml")
            ]
        );
        assert_eq!(suite.scenarios[0].expect, Expect::Pass);
        assert_eq!(suite.scenarios[1].expect, Expect::Fail);
        assert_eq!(
            suite.scenarios[1].at.to_string(),
            "suites/release.yaml:5:11"
        );
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let error = parsed("name: release\nscenarios:\n  - path: a.yaml\n  - path: [b.yaml]\n")
            .expect_err("a sequence is no path");
        assert!(error.starts_with("suites/release.yaml:4:"), "{error}");
    }

    #[test]
    fn unknown_keys_are_rejected_naming_the_known_ones() {
        let error = parsed("name: release\nscenarios:\n  - path: a.yaml\n    expected: fail\n")
            .expect_err("a typo");
        assert_eq!(
            error,
            "suites/release.yaml:4:5: unknown field `expected`, expected one of path, expect"
        );
        let error = parsed("name: release\nscenario:\n  - path: a.yaml\n").expect_err("a typo");
        assert_eq!(
            error,
            "suites/release.yaml:2:1: unknown field `scenario`, expected one of name, description, \
             scenarios"
        );
    }

    #[test]
    fn expect_is_pass_or_fail() {
        let error = parsed("name: release\nscenarios:\n  - path: a.yaml\n    expect: flaky\n")
            .expect_err("not an expectation");
        assert_eq!(
            error,
            "suites/release.yaml:4:13: unknown variant `flaky`, expected one of pass, fail"
        );
    }

    #[test]
    fn a_path_is_required_and_not_empty() {
        let error = parsed("name: release\nscenarios:\n  - expect: fail\n").expect_err("no path");
        assert_eq!(error, "suites/release.yaml:3:5: missing field `path`");
        let error =
            parsed("name: release\nscenarios:\n  - path: \"\"\n").expect_err("an empty path");
        assert_eq!(
            error,
            "suites/release.yaml:3:11: scenarios[0].path: expected the path of a scenario file"
        );
    }

    #[test]
    fn the_name_must_make_a_directory_and_scenarios_must_not_be_empty() {
        let error = parsed("name: ../etc\nscenarios: []\n").expect_err("two problems");
        assert_eq!(
            error,
            "suites/release.yaml:1:7: name: expected a name matching [a-z0-9_-]+, got \"../etc\"\n\
             suites/release.yaml:2:12: scenarios: expected at least one scenario"
        );
        let error = parsed("name: release\nscenarios:\n").expect_err("no value");
        assert_eq!(
            error,
            "suites/release.yaml:2:10: scenarios: expected at least one scenario"
        );
        let error = parsed("scenarios:\n  - path: a.yaml\n").expect_err("no name");
        assert!(error.contains("name"), "{error}");
    }

    #[test]
    fn a_suite_is_told_from_a_scenario_by_its_scenarios_key() {
        assert!(is_suite("name: release\nscenarios:\n  - path: a.yaml\n"));
        let smoke = include_str!("../../scenarios/smoke.yaml");
        assert!(!is_suite(smoke));
        assert!(is_suite(include_str!("../../scenarios/release.yaml")));
        assert!(!is_suite("- a\n- b\n"));
        assert!(!is_suite(""));
        // The key decides, not its value: a suite that lists nothing is still a suite.
        assert!(is_suite("name: release\nscenarios:\n"));
        assert!(is_suite("name: release\nscenarios: []\n"));
        assert!(is_suite("name: release\nscenarios: 3\n"));
        // So do broken suites, before the key or after it.
        assert!(is_suite("name: [broken\nscenarios: []\n"));
        assert!(is_suite(
            "name: release\nscenarios:\n  - path: a.yaml\n  - path: [b\n"
        ));
        assert!(is_suite("name: [broken\nscenarios : []\n"));
        // A broken scenario stays a scenario, even one that mentions suites.
        assert!(!is_suite("name: [broken\ndescription: scenarios: a\n"));
        assert!(!is_suite("name: smoke\n  scenarios: []\nload: [\n"));
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = load(Path::new("/nonexistent/release.yaml")).expect_err("no such file");
        assert!(
            error.to_string().starts_with("/nonexistent/release.yaml: "),
            "{error}"
        );
    }
}
