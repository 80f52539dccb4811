//! The readers the typed pass is built from: a mapping's keys, a sequence's items and every kind
//! of scalar (strings, numbers in range, durations, words, names, URLs), each recording a problem
//! at the node's origin and yielding `None` when the value does not fit. The section modules all
//! read through these, so a kind of value is checked and worded the same wherever it appears.

use std::time::Duration;

use super::error::{At, Problem};
use super::model::{Located, is_name_byte};
use super::tree::{Node, Origin, Value};

/// Context for one validation: where positions point, and the problems found so far.
pub(super) struct Cx<'a> {
    pub source_name: &'a str,
    /// Dotted path of each `--set`, indexed by [`Origin::Override`].
    pub override_paths: &'a [String],
    pub problems: Vec<Problem>,
}

impl Cx<'_> {
    pub(super) fn at(&self, origin: Origin) -> At {
        match origin {
            Origin::File { line, column } => At::File {
                name: self.source_name.to_owned(),
                line,
                column,
            },
            Origin::Override(i) => At::Set(self.override_paths.get(i).cloned().unwrap_or_default()),
        }
    }

    /// A path as written in the scenario, relative to the scenario file's directory.
    pub(super) fn relative(&self, path: &str) -> std::path::PathBuf {
        let path = std::path::Path::new(path);
        match std::path::Path::new(self.source_name).parent() {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_owned(),
        }
    }

    /// `file:line:col: key`, for values checked again when the run starts.
    pub(super) fn position(&self, origin: Origin, key: &str) -> String {
        format!("{}: {key}", self.at(origin))
    }

    /// Reports a problem, for use where a value is expected: always `None`.
    pub(super) fn err_none<T>(
        &mut self,
        origin: Origin,
        key: &str,
        message: impl Into<String>,
    ) -> Option<T> {
        self.err(origin, key, message);
        None
    }

    pub(super) fn err(&mut self, origin: Origin, key: &str, message: impl Into<String>) {
        let at = self.at(origin);
        self.problems.push(Problem {
            at,
            key: key.to_owned(),
            message: message.into(),
        });
    }

    /// `value` with the place of `node` and its key path, for a check made after reading.
    pub(super) fn located<T>(&self, node: &Node, key: &str, value: T) -> Located<T> {
        Located {
            value,
            at: self.at(node.origin),
            key: key.to_owned(),
        }
    }

    /// Records "expected X, got Y" and yields `None`, the shape of most problems.
    pub(super) fn expected<T>(&mut self, node: &Node, key: &str, what: &str) -> Option<T> {
        self.err(
            node.origin,
            key,
            format!("expected {what}, got {}", node.value),
        );
        None
    }
}

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// A mapping's entries after the key checks (string keys, allowed, not repeated).
pub(super) struct Fields<'n> {
    path: String,
    origin: Origin,
    pub(super) entries: Vec<(&'n Node, &'n str, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// A present, non-null value: null means "use the default", as an empty `key:` reads.
    pub(super) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(_, k, value)| *k == key && !matches!(value.value, Value::Null))
            .map(|&(_, _, value)| value)
    }

    /// Whether the key is written at all, even with an empty value.
    pub(super) fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(_, k, _)| *k == key)
    }

    pub(super) fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// `key`'s value as `read` takes it (with the key's path for errors), or `default` when the
    /// key is absent or empty.
    pub(super) fn read_or<T>(
        &self,
        cx: &mut Cx,
        key: &str,
        default: T,
        read: impl FnOnce(&mut Cx, &'n Node, &str) -> Option<T>,
    ) -> Option<T> {
        match self.get(key) {
            Some(node) => read(cx, node, &self.path(key)),
            None => Some(default),
        }
    }

    pub(super) fn required(&self, cx: &mut Cx, key: &str) -> Option<&'n Node> {
        let found = self
            .entries
            .iter()
            .find(|(_, k, _)| *k == key)
            .map(|&(_, _, value)| value);
        if found.is_none() {
            cx.err(self.origin, &self.path(key), "required key is missing");
        }
        found
    }
}

/// Reads a mapping; `allowed` lists the schema's keys (`None`: any key, as for `env` or `vars`).
/// A null node reads as an empty mapping, so `managed:` alone means "all defaults".
pub(super) fn mapping<'n>(
    cx: &mut Cx,
    node: &'n Node,
    path: &str,
    allowed: Option<&[&str]>,
) -> Option<Fields<'n>> {
    let items = match &node.value {
        Value::Map(items) => items.as_slice(),
        Value::Null => &[],
        _ => return cx.expected(node, path, "a mapping"),
    };
    let mut fields = Fields {
        path: path.to_owned(),
        origin: node.origin,
        entries: Vec::with_capacity(items.len()),
    };
    for (key_node, value) in items {
        let Value::Str(key) = &key_node.value else {
            cx.expected::<()>(key_node, path, "string keys");
            continue;
        };
        let key_path = join(path, key);
        if let Some(allowed) = allowed
            && !allowed.contains(&key.as_str())
        {
            cx.err(
                key_node.origin,
                &key_path,
                format!("unknown key; expected one of: {}", allowed.join(", ")),
            );
            continue;
        }
        if let Some((first, _, _)) = fields.entries.iter().find(|(_, k, _)| k == key) {
            let first = cx.at(first.origin);
            cx.err(
                key_node.origin,
                &key_path,
                format!("duplicate key (first at {first})"),
            );
            continue;
        }
        fields.entries.push((key_node, key, value));
    }
    Some(fields)
}

pub(super) fn sequence<'n>(cx: &mut Cx, node: &'n Node, path: &str) -> Option<&'n [Node]> {
    match &node.value {
        Value::Seq(items) => Some(items),
        _ => cx.expected(node, path, "a sequence"),
    }
}

pub(super) fn string(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        _ => cx.expected(node, path, "a string"),
    }
}

/// Any scalar as text, for command-line arguments and environment values where `8080` is as
/// natural as `"8080"`.
pub(super) fn text(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => Some(node.value.to_string()),
        _ => cx.expected(node, path, "a string"),
    }
}

pub(super) fn boolean(cx: &mut Cx, node: &Node, path: &str) -> Option<bool> {
    match node.value {
        Value::Bool(b) => Some(b),
        _ => cx.expected(node, path, "true or false"),
    }
}

/// The highest rate a scenario may ask for, in requests per second: far above what one harness
/// process sends, yet low enough that a schedule's arithmetic stays exact and a run that falls
/// behind still ends on time.
pub(super) const MAX_RATE: f64 = 1_000_000.0;

pub(super) fn rate(cx: &mut Cx, node: &Node, path: &str) -> Option<f64> {
    let value = match node.value {
        Value::Int(i) => i as f64,
        Value::Float(x) => x,
        _ => f64::NAN,
    };
    if !(value.is_finite() && value > 0.0) {
        cx.expected(node, path, "a number > 0")
    } else if value > MAX_RATE {
        cx.expected(node, path, "at most 1000000 requests per second")
    } else {
        Some(value)
    }
}

/// An integer in `min..=max`; the message names the bound that was crossed.
pub(super) fn integer(cx: &mut Cx, node: &Node, path: &str, min: i128, max: i128) -> Option<i128> {
    let lower = if min == 1 {
        "an integer > 0".to_owned()
    } else {
        format!("an integer >= {min}")
    };
    match node.value {
        Value::Int(i) if i > max => cx.expected(node, path, &format!("an integer <= {max}")),
        Value::Int(i) if i >= min => Some(i),
        _ => cx.expected(node, path, &lower),
    }
}

/// An integer in `1..=max`, as a count.
pub(super) fn count(cx: &mut Cx, node: &Node, path: &str, max: usize) -> Option<usize> {
    // usize::MAX fits i128 on every supported target.
    integer(cx, node, path, 1, max as i128).and_then(|i| usize::try_from(i).ok())
}

/// A [`duration`] of at most `max`; the message says the bound as written (e.g. `24h`).
pub(super) fn duration_at_most(
    cx: &mut Cx,
    node: &Node,
    path: &str,
    positive: bool,
    (max, written): (Duration, &str),
) -> Option<Duration> {
    let d = duration(cx, node, path, positive)?;
    if d > max {
        return cx.expected(node, path, &format!("a duration <= {written}"));
    }
    Some(d)
}

pub(super) fn duration(cx: &mut Cx, node: &Node, path: &str, positive: bool) -> Option<Duration> {
    let text = match &node.value {
        Value::Str(s) => s.clone(),
        // A bare number is a duration without its unit: parse_duration explains that.
        Value::Int(_) | Value::Float(_) => node.value.to_string(),
        _ => return cx.expected(node, path, "a duration such as 250ms or 1.5s"),
    };
    match engine::duration::parse_duration(&text) {
        Ok(d) if positive && d.is_zero() => cx.expected(node, path, "a duration > 0"),
        Ok(d) => Some(d),
        Err(message) => {
            cx.err(node.origin, path, message);
            None
        }
    }
}

/// One of a fixed set of words, e.g. `http | grpc`.
pub(super) fn word<T: Copy>(
    cx: &mut Cx,
    node: &Node,
    path: &str,
    choices: &[(&str, T)],
) -> Option<T> {
    if let Value::Str(s) = &node.value
        && let Some(&(_, value)) = choices.iter().find(|(name, _)| name == s)
    {
        return Some(value);
    }
    let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
    cx.expected(node, path, &names.join(" or "))
}

/// An `http(s)://host[:port][/prefix]` base URL for a query API.
pub(super) fn http_url(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    if let Value::Str(s) = &node.value
        && let Ok(uri) = s.parse::<hyper::Uri>()
        && matches!(uri.scheme_str(), Some("http" | "https"))
        && uri.authority().is_some()
        && uri.query().is_none()
    {
        return Some(s.trim_end_matches('/').to_owned());
    }
    cx.expected(node, path, "an http:// URL such as http://127.0.0.1:16686")
}

/// A `[a-z0-9_]+`-style name, with `extra` allowed bytes besides.
pub(super) fn name(cx: &mut Cx, node: &Node, path: &str, extra: &[u8]) -> Option<String> {
    let pattern = if extra.is_empty() {
        "[a-z0-9_]+"
    } else {
        "[a-z0-9_-]+"
    };
    match &node.value {
        Value::Str(s)
            if !s.is_empty() && s.bytes().all(|b| is_name_byte(b) || extra.contains(&b)) =>
        {
            Some(s.clone())
        }
        _ => cx.expected(node, path, &format!("a name matching {pattern}")),
    }
}

/// An optional sequence, each item read by `item`; items that fail are reported and skipped.
pub(super) fn list<T>(
    cx: &mut Cx,
    node: Option<&Node>,
    path: &str,
    item: impl Fn(&mut Cx, &Node, &str) -> Option<T>,
) -> Vec<T> {
    let Some(items) = node.and_then(|node| sequence(cx, node, path)) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, node)| item(cx, node, &index(path, i)))
        .collect()
}

pub(super) fn strings(cx: &mut Cx, node: Option<&Node>, path: &str, scalars: bool) -> Vec<String> {
    list(cx, node, path, |cx, item, at| {
        if scalars {
            text(cx, item, at)
        } else {
            string(cx, item, at)
        }
    })
}

/// The expressions, each kept with its place: their syntax is checked by the threshold module.
pub(super) fn thresholds(cx: &mut Cx, node: Option<&Node>, path: &str) -> Vec<Located<String>> {
    list(cx, node, path, |cx, item, at| match &item.value {
        Value::Str(s) if !s.trim().is_empty() => Some(cx.located(item, at, s.clone())),
        _ => cx.expected(item, at, "a threshold such as \"p(99) < 50ms\""),
    })
}

/// A file a scenario names (a body, a table of values), whole, or what is wrong: at most `max`
/// bytes, so that a wrong path cannot fill memory.
pub(super) fn file_bounded(file: &std::path::Path, max: u64) -> Result<Vec<u8>, String> {
    crate::bounded::read_regular(file, max).map_err(|e| match e.kind() {
        std::io::ErrorKind::FileTooLarge => format!("larger than {max} bytes"),
        _ => format!("cannot read: {e}"),
    })
}
