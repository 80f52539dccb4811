//! Reading a stored `result.json` for comparison, with errors that name the file and what is wrong
//! with it.

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use crate::result::{self, HistogramError, RunResult, SCHEMA_VERSION};

/// A result and its decoded latency histograms (one per kind, in `result.kinds` order).
#[derive(Debug)]
pub struct StoredRun {
    pub path: PathBuf,
    pub result: RunResult,
    pub latency: Vec<Histogram<u64>>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not JSON: {source}")]
    Syntax {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: not a harness result: {problem}")]
    NotAResult { path: String, problem: String },
    #[error(
        "{path}: schema_version {found} is not one this harness reads (it reads {SCHEMA_VERSION}); \
         compare it with the harness that wrote it"
    )]
    Schema { path: String, found: String },
    #[error("{path}: kinds[{index}] ({kind}).latency_histogram: {source}")]
    Histogram {
        path: String,
        index: usize,
        kind: String,
        source: HistogramError,
    },
}

/// Reads and checks a `result.json`.
pub fn load(path: &Path) -> Result<StoredRun, LoadError> {
    let name = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: name(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| LoadError::Syntax {
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
    let result: RunResult = serde_json::from_str(&text).map_err(|e| LoadError::NotAResult {
        path: name(),
        problem: e.to_string(),
    })?;
    let latency = result
        .kinds
        .iter()
        .enumerate()
        .map(|(index, kind)| {
            result::decode_histogram(&kind.latency_histogram).map_err(|source| {
                LoadError::Histogram {
                    path: name(),
                    index,
                    kind: kind.name.clone(),
                    source,
                }
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(StoredRun {
        path: path.to_owned(),
        result,
        latency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../tests/fixtures/compare/smoke.json");

    fn load_text(name: &str, text: &str) -> Result<StoredRun, LoadError> {
        let dir =
            std::env::temp_dir().join(format!("harness-compare-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("written");
        let loaded = load(&path);
        let _ = std::fs::remove_file(&path);
        loaded
    }

    fn message(name: &str, text: &str) -> String {
        load_text(name, text).expect_err("refused").to_string()
    }

    #[test]
    fn a_stored_result_loads_with_its_histograms() {
        let run = load_text("good.json", SAMPLE).expect("loads");
        assert_eq!(run.latency.len(), run.result.kinds.len());
        for (kind, h) in run.result.kinds.iter().zip(&run.latency) {
            assert_eq!(h.len(), kind.completed);
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
}
