//! Scenario files (`docs/scenario.md`): YAML in, a validated [`Scenario`] out, or errors that say
//! `file:line:col: key.path: what was expected`.
//!
//! Parsing goes through a generic tree that keeps each node's origin, for two reasons: `--set`
//! overrides are applied to that tree before the typed pass (so they are checked exactly like the
//! file, and their errors name the `--set`), and semantic checks after parsing still know where
//! every value came from.

mod calls;
mod checks;
mod error;
mod load;
mod model;
mod overhead;
mod read;
mod requests;
mod system;
pub(crate) mod template;
mod tree;
mod validate;
mod vars;
mod websocket;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

pub(crate) use calls::find_method;
pub(crate) use checks::bundled_trace_checks;
pub(crate) use error::{At, Problem, ScenarioError};
pub(crate) use model::{
    Access, Arm, Arrivals, Call, ChainStep, Claim, ClaimMetric, Equals, ErrorRule, Execution,
    GrpcMethod, HttpBody, Instructions, Load, Located, Managed, MetricRule, MetricsChecks,
    Overhead, PatternSeverity, Phase, PiiChecks, PrometheusSpec, Protocol, Relaunch, RequestKind,
    SampleShare, Scenario, ServiceSpec, StreamChecks, Sweep, System, Template, TraceChecks,
    TraceSourceSpec, Vars, WsMessage,
};

use read::{Cx, index, join};
use serde_saphyr::MessageFormatter;
use tree::{Node, Origin, Value};

/// Reads and validates a scenario file, applying `overrides` first.
pub(crate) fn load(path: &Path, overrides: &[Override]) -> Result<Scenario, ScenarioError> {
    let text = read_file(path)?;
    parse(&path.display().to_string(), &text, overrides)
}

fn read_file(path: &Path) -> Result<String, ScenarioError> {
    let fail = |source| ScenarioError::Read {
        path: path.to_owned(),
        source,
    };
    let bytes = crate::bounded::read_regular(path, MAX_SCENARIO_BYTES).map_err(fail)?;
    String::from_utf8(bytes)
        .map_err(|e| fail(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// The largest scenario file read: hundreds of times any real one, so that a wrong path (a log,
/// a device) fails at once instead of filling memory.
const MAX_SCENARIO_BYTES: u64 = 4 << 20;

/// Validates scenario `text`; `source_name` is the file name used in error positions.
pub(crate) fn parse(
    source_name: &str,
    text: &str,
    overrides: &[Override],
) -> Result<Scenario, ScenarioError> {
    let root = tree_of(source_name, text)?;
    validate_tree(source_name, root, overrides, 0, &override_paths(overrides))
}

fn tree_of(source_name: &str, text: &str) -> Result<Node, ScenarioError> {
    serde_saphyr::from_str_with_options(text, tree::options()).map_err(|err| {
        ScenarioError::Invalid(vec![yaml_problem(&err, |line, column| At::File {
            name: source_name.to_owned(),
            line,
            column,
        })])
    })
}

fn override_paths<'a>(overrides: impl IntoIterator<Item = &'a Override>) -> Vec<String> {
    overrides.into_iter().map(|o| o.path.join(".")).collect()
}

/// Applies `overrides` (the `first`-th onwards of those `override_paths` names) to `root` and
/// validates it.
fn validate_tree(
    source_name: &str,
    mut root: Node,
    overrides: &[Override],
    first: usize,
    override_paths: &[String],
) -> Result<Scenario, ScenarioError> {
    let mut cx = Cx {
        source_name,
        override_paths,
        problems: Vec::new(),
    };
    for (i, o) in overrides.iter().enumerate() {
        o.apply(&mut cx, first + i, &mut root);
    }
    if !cx.problems.is_empty() {
        return Err(ScenarioError::Invalid(cx.problems));
    }
    match validate::scenario(&mut cx, &root) {
        Some(scenario) if cx.problems.is_empty() => Ok(scenario),
        _ => Err(ScenarioError::Invalid(cx.problems)),
    }
}

/// A scenario file read once, with the user's overrides applied, for validating again at each
/// point of its sweep. The sweep's values are cut to the first: each point then costs the size of
/// the rest of the file, not that times the number of values (which made long sweeps quadratic).
pub(crate) struct Sweeping {
    source_name: String,
    overrides: Vec<String>,
    root: Node,
}

impl Sweeping {
    /// Reads `path` and applies `overrides`, which must have validated already.
    pub(crate) fn read(path: &Path, overrides: &[Override]) -> Result<Self, ScenarioError> {
        let source_name = path.display().to_string();
        let text = read_file(path)?;
        let mut root = tree_of(&source_name, &text)?;
        let paths = override_paths(overrides);
        let mut cx = Cx {
            source_name: &source_name,
            override_paths: &paths,
            problems: Vec::new(),
        };
        for (i, o) in overrides.iter().enumerate() {
            o.apply(&mut cx, i, &mut root);
        }
        if !cx.problems.is_empty() {
            return Err(ScenarioError::Invalid(cx.problems));
        }
        cut_sweep_values(&mut root);
        Ok(Sweeping {
            source_name,
            overrides: paths,
            root,
        })
    }

    /// The scenario with `setting` applied after the user's overrides, as `load` with all of
    /// them would read it.
    pub(crate) fn at(&self, setting: &Override) -> Result<Scenario, ScenarioError> {
        let paths: Vec<String> = self
            .overrides
            .iter()
            .cloned()
            .chain(override_paths([setting]))
            .collect();
        validate_tree(
            &self.source_name,
            self.root.clone(),
            std::slice::from_ref(setting),
            self.overrides.len(),
            &paths,
        )
    }
}

/// Keeps only the first of `overhead.sweep.values`, when they are a sequence.
fn cut_sweep_values(root: &mut Node) {
    let mut node = root;
    for key in ["overhead", "sweep", "values"] {
        let Value::Map(entries) = &mut node.value else {
            return;
        };
        let Some((_, value)) = entries
            .iter_mut()
            .find(|(k, _)| matches!(&k.value, Value::Str(s) if s == key))
        else {
            return;
        };
        node = value;
    }
    if let Value::Seq(items) = &mut node.value {
        items.truncate(1);
    }
}

/// A YAML parse error as a problem: the parser's message without its own location suffix, since
/// the position goes in front like every other problem's.
pub(crate) fn yaml_problem(err: &serde_saphyr::Error, at: impl Fn(u64, u64) -> At) -> Problem {
    let mut inner = err;
    while let serde_saphyr::Error::WithSnippet { error, .. }
    | serde_saphyr::Error::AliasError { error, .. } = inner
    {
        inner = error;
    }
    let message = serde_saphyr::UserMessageFormatter.format_message(inner);
    let (line, column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
    Problem {
        at: at(line, column),
        key: String::new(),
        // One problem per line: no control characters from the input.
        message: message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
    }
}

/// A `--set a.b.0.c=value` override: a dotted key path (numeric segments index sequences) and a
/// YAML scalar, applied before validation so the value is checked like one written in the file.
#[derive(Clone, Debug)]
pub(crate) struct Override {
    path: Vec<String>,
    raw: String,
    value: Value,
}

impl Override {
    /// The dotted key path, as written.
    pub(crate) fn path(&self) -> String {
        self.path.join(".")
    }

    fn problem(path: &str, key: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid(vec![Problem {
            at: At::Set(path.to_owned()),
            key: key.to_owned(),
            message: message.into(),
        }])
    }

    /// Sets the value in `root`, creating missing mappings (or sequences, before a numeric
    /// segment) on the way. Whether a created key is allowed is left to the typed pass, which
    /// knows the schema.
    fn apply(&self, cx: &mut Cx, me: usize, root: &mut Node) {
        let origin = Origin::Override(me);
        let mut node = root;
        let mut at = String::new();
        for (depth, segment) in self.path.iter().enumerate() {
            let last = depth + 1 == self.path.len();
            let fresh = || Node {
                origin,
                value: match self.path.get(depth + 1) {
                    None => self.value.clone(),
                    Some(next) if next.parse::<usize>().is_ok() => Value::Seq(Vec::new()),
                    Some(_) => Value::Map(Vec::new()),
                },
            };
            if matches!(node.value, Value::Null) {
                node.value = if segment.parse::<usize>().is_ok() {
                    Value::Seq(Vec::new())
                } else {
                    Value::Map(Vec::new())
                };
            }
            let child = match &mut node.value {
                Value::Map(entries) => {
                    at = join(&at, segment);
                    let found = entries
                        .iter()
                        .position(|(k, _)| matches!(&k.value, Value::Str(s) if s == segment));
                    let i = match found {
                        Some(i) => i,
                        None => {
                            let key = Node {
                                origin,
                                value: Value::Str(segment.clone()),
                            };
                            entries.push((key, fresh()));
                            entries.len() - 1
                        }
                    };
                    &mut entries[i].1
                }
                Value::Seq(items) => {
                    let Ok(i) = segment.parse::<usize>() else {
                        cx.err(
                            origin,
                            &at,
                            format!("expected an index into the sequence, got {segment:?}"),
                        );
                        return;
                    };
                    if i > items.len() {
                        cx.err(
                            origin,
                            &at,
                            format!(
                                "index {i} is out of range: the sequence has {} items ({} appends)",
                                items.len(),
                                items.len()
                            ),
                        );
                        return;
                    }
                    if i == items.len() {
                        items.push(fresh());
                    }
                    at = index(&at, i);
                    &mut items[i]
                }
                other => {
                    let other = other.to_string();
                    cx.err(
                        origin,
                        &at,
                        format!("is {other}, which has no key {segment:?} to set"),
                    );
                    return;
                }
            };
            if last {
                *child = Node {
                    origin,
                    value: self.value.clone(),
                };
            }
            node = child;
        }
    }
}

impl FromStr for Override {
    type Err = ScenarioError;

    /// Parses `a.b.0.c=value`; the value is a YAML scalar, so `500` is a number and `"500"` a
    /// string.
    fn from_str(text: &str) -> Result<Self, ScenarioError> {
        let Some((path, raw)) = text.split_once('=') else {
            return Err(Self::problem(
                text,
                "",
                "expected KEY=VALUE, e.g. load.phases.0.constant.rate=500",
            ));
        };
        let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
        if segments.iter().any(|s| s.is_empty() || s.trim() != s) {
            return Err(Self::problem(
                path,
                "",
                "expected a dotted key path such as load.phases.0.constant.rate",
            ));
        }
        let value = if raw.trim().is_empty() {
            Value::Null
        } else {
            serde_saphyr::from_str_with_options::<Node>(raw, tree::options())
                .map_err(|err| {
                    let problem = yaml_problem(&err, |_, _| At::Set(path.to_owned()));
                    ScenarioError::Invalid(vec![Problem {
                        message: format!("the value is not valid YAML: {}", problem.message),
                        ..problem
                    }])
                })?
                .value
        };
        if !value.is_scalar() {
            return Err(Self::problem(
                path,
                "",
                format!(
                    "expected a YAML scalar value, got {value} (quote a string such as '\"{{{{symbol}}}}\"')"
                ),
            ));
        }
        Ok(Override {
            path: segments,
            raw: raw.to_owned(),
            value,
        })
    }
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.path(), self.raw)
    }
}

#[cfg(test)]
mod tests;
