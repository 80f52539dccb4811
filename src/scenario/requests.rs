//! The `requests:` section: the request kinds, their JSON bodies with `{{var}}` placeholders and
//! the values those draw from, and the outcome each kind expects.

use super::checks::sample_share;
use super::model::{Expect, RequestKind, is_var_byte, placeholder};
use super::read::{Cx, index, integer, join, mapping, name, sequence, string, thresholds};
use super::tree::{Node, Origin, Value};

pub(super) fn requests(cx: &mut Cx, node: &Node) -> Option<Vec<RequestKind>> {
    let items = sequence(cx, node, "requests")?;
    if items.is_empty() {
        return cx.expected(node, "requests", "at least one request kind");
    }
    let before = cx.problems.len();
    let mut kinds: Vec<RequestKind> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = index("requests", i);
        let Some((kind, name_node)) = request(cx, item, &path) else {
            continue;
        };
        if let Some(first) = kinds.iter().position(|k| k.name == kind.name) {
            cx.err(
                name_node.origin,
                &join(&path, "name"),
                format!(
                    "duplicate request name {:?} (also requests[{first}])",
                    kind.name
                ),
            );
        }
        kinds.push(kind);
    }
    (cx.problems.len() == before).then_some(kinds)
}

/// One kind, and the node its name came from (for the uniqueness check).
fn request<'n>(cx: &mut Cx, node: &'n Node, path: &str) -> Option<(RequestKind, &'n Node)> {
    const KEYS: &[&str] = &[
        "name",
        "weight",
        "body",
        "vars",
        "expect",
        "thresholds",
        "trace_sample",
    ];
    let fields = mapping(cx, node, path, Some(KEYS))?;
    let name_node = fields.required(cx, "name");
    let name = name_node.and_then(|n| name(cx, n, &fields.path("name"), b""));
    let weight = fields.required(cx, "weight").and_then(|n| {
        integer(cx, n, &fields.path("weight"), 1, u32::MAX.into())
            .and_then(|i| u32::try_from(i).ok())
    });
    let vars = fields
        .get("vars")
        .map_or(Some(Vec::new()), |n| vars(cx, n, &fields.path("vars")));
    let body = fields.required(cx, "body").and_then(|n| {
        let mut placeholders = Vec::new();
        if !matches!(n.value, Value::Map(_)) {
            return cx.expected(n, &fields.path("body"), "a mapping (the request as JSON)");
        }
        let body = json(cx, n, &fields.path("body"), &mut placeholders)?;
        Some((body, placeholders))
    });
    let expect = fields.get("expect").map_or(Some(Expect::default()), |n| {
        expect(cx, n, &fields.path("expect"))
    });
    let thresholds = thresholds(cx, fields.get("thresholds"), &fields.path("thresholds"));
    let trace_sample = match fields.get("trace_sample") {
        Some(n) => Some(sample_share(cx, n, &fields.path("trace_sample"))?),
        None => None,
    };

    let (body, placeholders) = body?;
    let vars = vars?;
    let mut ok = true;
    for (var, origin, at) in &placeholders {
        if !vars.iter().any(|(_, name, _)| name == var) {
            let vars_path = fields.path("vars");
            cx.err(
                *origin,
                at,
                format!("\"{{{{{var}}}}}\" needs a non-empty {vars_path}.{var}"),
            );
            ok = false;
        }
    }
    for (key_node, var, _) in &vars {
        if !placeholders.iter().any(|(name, _, _)| name == var) {
            cx.err(
                key_node.origin,
                &join(&fields.path("vars"), var),
                format!("unused: the body has no \"{{{{{var}}}}}\""),
            );
            ok = false;
        }
    }
    let kind = RequestKind {
        name: name?,
        weight: weight?,
        body,
        vars: vars
            .into_iter()
            .map(|(_, name, values)| (name, values))
            .collect(),
        expect: expect?,
        thresholds,
        trace_sample,
    };
    ok.then_some((kind, name_node?))
}

/// The `vars` entries with their key nodes, each a non-empty list of strings.
fn vars<'n>(
    cx: &mut Cx,
    node: &'n Node,
    path: &str,
) -> Option<Vec<(&'n Node, String, Vec<String>)>> {
    let fields = mapping(cx, node, path, None)?;
    let before = cx.problems.len();
    let mut vars = Vec::new();
    for &(key_node, var, value) in &fields.entries {
        let var_path = join(path, var);
        if !var.bytes().all(is_var_byte) {
            cx.err(
                key_node.origin,
                &var_path,
                "expected a name matching [A-Za-z0-9_]+",
            );
            continue;
        }
        let values = match &value.value {
            Value::Seq(items) if !items.is_empty() => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| string(cx, item, &index(&var_path, i)))
                .collect(),
            _ => {
                cx.expected::<()>(value, &var_path, "a non-empty sequence of strings");
                continue;
            }
        };
        vars.push((key_node, var.to_owned(), values));
    }
    (cx.problems.len() == before).then_some(vars)
}

fn expect(cx: &mut Cx, node: &Node, path: &str) -> Option<Expect> {
    let fields = mapping(cx, node, path, Some(&["status", "code"]))?;
    let status = fields.get("status").map_or(Some(200), |n| match n.value {
        Value::Int(i @ 100..=599) => u16::try_from(i).ok(),
        _ => cx.expected(n, &fields.path("status"), "an HTTP status from 100 to 599"),
    });
    let code = fields.get("code").map_or(Some(tonic::Code::Ok), |n| {
        if let Value::Str(s) = &n.value
            && let Some(code) = engine::status::code_from_name(s)
        {
            return Some(code);
        }
        cx.expected(
            n,
            &fields.path("code"),
            "a gRPC code name such as OK, INVALID_ARGUMENT or UNAVAILABLE",
        )
    });
    Some(Expect {
        status: status?,
        code: code?,
    })
}

/// A YAML subtree as JSON, collecting `(var, origin, path)` for each `"{{var}}"` string.
fn json(
    cx: &mut Cx,
    node: &Node,
    path: &str,
    placeholders: &mut Vec<(String, Origin, String)>,
) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    Some(match &node.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => {
            if let Ok(i) = i64::try_from(*i) {
                J::from(i)
            } else if let Ok(u) = u64::try_from(*i) {
                J::from(u)
            } else {
                return cx.expected(node, path, "an integer that fits 64 bits");
            }
        }
        Value::Float(x) => match serde_json::Number::from_f64(*x) {
            Some(n) => J::Number(n),
            None => return cx.expected(node, path, "a finite number"),
        },
        Value::Str(s) => {
            if let Some(var) = placeholder(s) {
                placeholders.push((var.to_owned(), node.origin, path.to_owned()));
            } else if s.contains("{{") {
                return cx.expected(
                    node,
                    path,
                    "a whole-string placeholder such as \"{{symbol}}\"",
                );
            }
            J::String(s.clone())
        }
        Value::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match json(cx, item, &index(path, i), placeholders) {
                    Some(v) => out.push(v),
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            J::Array(out)
        }
        Value::Map(_) => {
            let fields = mapping(cx, node, path, None)?;
            let mut out = serde_json::Map::new();
            let mut ok = true;
            for &(_, key, value) in &fields.entries {
                match json(cx, value, &join(path, key), placeholders) {
                    Some(v) => {
                        out.insert(key.to_owned(), v);
                    }
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            J::Object(out)
        }
    })
}
