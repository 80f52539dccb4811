//! Reading a stored `result.json` for comparison, with errors that name the file and what is wrong
//! with it.

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use crate::result::{self, HistogramError, KindResult, RunResult, SCHEMA_VERSION};

/// A result and its decoded latency histograms (one per kind, in `result.kinds` order).
#[derive(Debug)]
pub struct StoredRun {
    pub(crate) path: PathBuf,
    pub(crate) result: RunResult,
    pub(crate) latency: Vec<Histogram<u64>>,
}

/// Why a stored result cannot be compared. Every variant names the file (`path`, as given on the
/// command line) and, below the top level, the entry of `kinds` at fault; `harness compare` exits
/// 2 on any of them.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: String,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{path}: not JSON: {source}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        source: serde_json::Error,
    },
    /// JSON, but not shaped like a `result.json`.
    #[error("{path}: not a harness result: {problem}")]
    NotAResult {
        /// The file.
        path: String,
        /// The first thing that does not fit, with line and column when the parser gave them.
        problem: String,
    },
    /// A `result.json` of a schema version this harness does not read.
    #[error(
        "{path}: schema_version {found} is not one this harness reads (it reads {SCHEMA_VERSION}); \
         compare it with the harness that wrote it"
    )]
    Schema {
        /// The file.
        path: String,
        /// The `schema_version` value as written, in JSON.
        found: String,
    },
    /// A kind's `latency_histogram` does not decode.
    #[error("{path}: kinds[{index}] ({kind}).latency_histogram: {source}")]
    Histogram {
        /// The file.
        path: String,
        /// The kind's position in `kinds`.
        index: usize,
        /// The kind's name.
        kind: String,
        /// Why the histogram does not decode.
        source: HistogramError,
    },
    /// A kind's counts contradict each other (more completed than sent, more unexpected than
    /// completed, or a histogram that holds a different number of latencies than completed).
    #[error("{path}: kinds[{index}] ({kind}).{field}: {problem}")]
    Count {
        /// The file.
        path: String,
        /// The kind's position in `kinds`.
        index: usize,
        /// The kind's name.
        kind: String,
        /// The field that breaks the rule: `completed`, `unexpected` or `latency_histogram`.
        field: &'static str,
        /// The rule broken, with both numbers.
        problem: String,
    },
    /// Two kinds share a name, so the second could never be matched with the other run's.
    #[error(
        "{path}: kinds[{index}]: the name {name:?} is also kinds[{first}]'s; a result names each \
         request kind once"
    )]
    DuplicateKind {
        /// The file.
        path: String,
        /// The position in `kinds` of the second kind of that name.
        index: usize,
        /// The position of the first.
        first: usize,
        /// The shared name.
        name: String,
    },
}

/// Reads and checks a `result.json`.
pub fn load(path: &Path) -> Result<StoredRun, LoadError> {
    let text =
        crate::bounded::read_text(path, crate::result::MAX_RESULT_BYTES).map_err(|source| {
            LoadError::Read {
                path: path.display().to_string(),
                source,
            }
        })?;
    from_text(path, &text)
}

/// A `result.json`'s text, read from `path` (which errors name), checked as [`load`] checks it.
pub(crate) fn from_text(path: &Path, text: &str) -> Result<StoredRun, LoadError> {
    let name = || path.display().to_string();
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|source| LoadError::Syntax {
            path: name(),
            source,
        })?;
    if !value.is_object() {
        return Err(LoadError::NotAResult {
            path: name(),
            problem: "expected a JSON object at the top level".to_owned(),
        });
    }
    // The version first, so that a foreign file or a newer schema gets its own message rather
    // than the first field that does not fit.
    match value.get("schema_version") {
        None => {
            return Err(LoadError::NotAResult {
                path: name(),
                problem: "no schema_version field".to_owned(),
            });
        }
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(SCHEMA_VERSION)) => {}
        Some(other) => {
            return Err(LoadError::Schema {
                path: name(),
                found: other.to_string(),
            });
        }
    }
    // Parsed again from the text so that a field that does not fit is named with its line and
    // column.
    let result: RunResult = serde_json::from_str(text).map_err(|e| LoadError::NotAResult {
        path: name(),
        problem: e.to_string(),
    })?;
    // Kinds are matched by name: a second of the same name would never be compared.
    for (index, kind) in result.kinds.iter().enumerate() {
        if let Some(first) = result.kinds[..index]
            .iter()
            .position(|k| k.name == kind.name)
        {
            return Err(LoadError::DuplicateKind {
                path: name(),
                index,
                first,
                name: kind.name.clone(),
            });
        }
    }
    let latency = result
        .kinds
        .iter()
        .enumerate()
        .map(|(index, kind)| {
            let count = |(field, problem)| LoadError::Count {
                path: name(),
                index,
                kind: kind.name.clone(),
                field,
                problem,
            };
            check_counts(kind).map_err(count)?;
            let latency = result::decode_histogram(&kind.latency_histogram).map_err(|source| {
                LoadError::Histogram {
                    path: name(),
                    index,
                    kind: kind.name.clone(),
                    source,
                }
            })?;
            if latency.len() != kind.completed {
                return Err(count((
                    "latency_histogram",
                    format!(
                        "holds {} latencies, but completed is {}",
                        latency.len(),
                        kind.completed
                    ),
                )));
            }
            Ok(latency)
        })
        .collect::<Result<_, _>>()?;
    Ok(StoredRun {
        path: path.to_owned(),
        result,
        latency,
    })
}

/// The counts `harness run` keeps of a kind: each request sent may complete, and each completion
/// may be unexpected (`load::recorder`). A field that breaks this is named with what it breaks.
fn check_counts(kind: &KindResult) -> Result<(), (&'static str, String)> {
    if kind.completed > kind.sent {
        return Err((
            "completed",
            format!("{} is more than sent ({})", kind.completed, kind.sent),
        ));
    }
    if kind.unexpected > kind.completed {
        return Err((
            "unexpected",
            format!(
                "{} is more than completed ({}): only a completed request has an outcome",
                kind.unexpected, kind.completed
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../tests/fixtures/results/smoke.json");

    fn load_text(name: &str, text: &str) -> Result<StoredRun, LoadError> {
        let scratch = crate::testing::Scratch::new("compare-input");
        let path = scratch.path().join(name);
        std::fs::write(&path, text).expect("written");
        load(&path)
    }

    fn message(name: &str, text: &str) -> String {
        load_text(name, text).expect_err("refused").to_string()
    }

    #[test]
    fn stored_results_load_with_their_histograms() {
        for name in ["smoke", "stall", "overhead-quick"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/results")
                .join(format!("{name}.json"));
            let run = load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(run.latency.len(), run.result.kinds.len());
            for (kind, h) in run.result.kinds.iter().zip(&run.latency) {
                assert_eq!(h.len(), kind.completed);
            }
        }
    }

    #[test]
    fn each_kind_of_bad_input_is_named_with_the_file() {
        let missing = load(Path::new("/nonexistent/result.json")).expect_err("refused");
        assert!(
            missing
                .to_string()
                .starts_with("/nonexistent/result.json: cannot read:"),
            "{missing}"
        );

        let syntax = message("syntax.json", "{\n  \"schema_version\": 1,\n  oops\n}");
        assert!(syntax.contains("syntax.json: not JSON:"), "{syntax}");
        assert!(syntax.contains("line 3 column 3"), "{syntax}");

        let array = message("array.json", "[1, 2]");
        assert!(
            array.ends_with(
                "array.json: not a harness result: expected a JSON object at the top level"
            ),
            "{array}"
        );

        let foreign = message("foreign.json", r#"{"name": "something else"}"#);
        assert!(
            foreign.ends_with("foreign.json: not a harness result: no schema_version field"),
            "{foreign}"
        );

        let newer = message("newer.json", r#"{"schema_version": 2}"#);
        assert!(
            newer.contains(
                "newer.json: schema_version 2 is not one this harness reads (it reads 1)"
            ),
            "{newer}"
        );

        let truncated = message(
            "truncated.json",
            "{\n\"schema_version\": 1,\n\"kinds\": []\n}",
        );
        assert!(
            truncated.contains("truncated.json: not a harness result: missing field"),
            "{truncated}"
        );
        assert!(truncated.contains("line 4 column 1"), "{truncated}");

        let broken = SAMPLE.replacen(
            "\"latency_histogram\": \"",
            "\"latency_histogram\": \"!!",
            1,
        );
        let histogram = message("histogram.json", &broken);
        assert!(
            histogram.contains(
                "histogram.json: kinds[0] (quote).latency_histogram: histogram is not valid base64"
            ),
            "{histogram}"
        );
    }

    /// The sample with kind `index`'s JSON edited.
    fn edited(index: usize, edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut value: serde_json::Value = serde_json::from_str(SAMPLE).expect("JSON");
        edit(&mut value["kinds"][index]);
        value.to_string()
    }

    #[test]
    fn counts_that_harness_run_cannot_write_are_refused() {
        // The sample: quote 87 sent, 87 completed, none unexpected; bad_symbol 13 of each.
        let unexpected = message(
            "unexpected.json",
            &edited(0, |kind| kind["unexpected"] = u64::MAX.into()),
        );
        assert!(
            unexpected.ends_with(
                "unexpected.json: kinds[0] (quote).unexpected: 18446744073709551615 is more than \
                 completed (87): only a completed request has an outcome"
            ),
            "{unexpected}"
        );

        let completed = message(
            "completed.json",
            &edited(1, |kind| kind["completed"] = 14.into()),
        );
        assert!(
            completed.ends_with(
                "completed.json: kinds[1] (bad_symbol).completed: 14 is more than sent (13)"
            ),
            "{completed}"
        );

        // Sent and completed raised together: the histogram no longer holds every completion.
        let histogram = message(
            "count.json",
            &edited(0, |kind| {
                kind["sent"] = 100.into();
                kind["completed"] = 100.into();
            }),
        );
        assert!(
            histogram.ends_with(
                "count.json: kinds[0] (quote).latency_histogram: holds 87 latencies, but \
                 completed is 100"
            ),
            "{histogram}"
        );

        // Unanswered requests are not an inconsistency.
        let unanswered = edited(0, |kind| {
            kind["sent"] = 100.into();
            kind["unexpected"] = 5.into();
        });
        let run = load_text("unanswered.json", &unanswered).expect("loads");
        assert_eq!(run.result.kinds[0].sent, 100);
    }

    #[test]
    fn a_kind_named_twice_is_refused() {
        let mut value: serde_json::Value = serde_json::from_str(SAMPLE).expect("JSON");
        value["kinds"][1]["name"] = "quote".into();
        let twice = message("twice.json", &value.to_string());
        assert!(
            twice.ends_with(
                "twice.json: kinds[1]: the name \"quote\" is also kinds[0]'s; a result names \
                 each request kind once"
            ),
            "{twice}"
        );
    }
}
