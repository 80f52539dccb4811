//! Errors that point at the cause: `file:line:col` (or the `--set` that introduced the value), the
//! key path, and what was expected.

use std::fmt;
use std::path::PathBuf;

/// Why a scenario could not be loaded. `Invalid` lists every problem found, one per line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScenarioError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", Lines(.0))]
    Invalid(Vec<Problem>),
}

/// One thing wrong with a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub at: At,
    /// Key path such as `load.phases[0].constant.rate`; empty for the document as a whole.
    pub key: String,
    pub message: String,
}

/// Where a problem's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum At {
    /// A position in the file; `line` 0 when the YAML parser gave none.
    File {
        name: String,
        line: u64,
        column: u64,
    },
    /// A `--set` override, which has no file position; holds its dotted path.
    Set(String),
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::File { name, line: 0, .. } => f.write_str(name),
            At::File { name, line, column } => write!(f, "{name}:{line}:{column}"),
            At::Set(path) => write!(f, "--set {path}"),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.at, self.message)
        } else {
            write!(f, "{}: {}: {}", self.at, self.key, self.message)
        }
    }
}

struct Lines<'a>(&'a [Problem]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}
