//! The `requests:` section: the request kinds, each the bundled API's shorthand (`body:`), a
//! general `http:` or `grpc:` call or a `websocket:` subscription, the values their `{{var}}` placeholders draw from, and the
//! outcome each kind expects.

use super::calls::{Placeholder, grpc, http, json};
use super::checks::sample_share;
use super::model::{Call, Expect, Protocol, RequestKind};
use super::read::{Cx, index, integer, join, mapping, name, sequence, thresholds};
use super::tree::{Node, Value};
use super::vars::{vars, vars_file};

pub(super) fn requests(cx: &mut Cx, node: &Node) -> Option<Vec<RequestKind>> {
    let items = sequence(cx, node, "requests")?;
    if items.is_empty() {
        return cx.expected(node, "requests", "at least one request kind");
    }
    let before = cx.problems.len();
    let mut kinds: Vec<RequestKind> = Vec::with_capacity(items.len());
    let mut explicit: Option<(Protocol, usize)> = None;
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
        if let Some(protocol) = kind.call.protocol() {
            match explicit {
                Some((first, at)) if first != protocol => cx.err(
                    item.origin,
                    &path,
                    format!(
                        "every request kind of a scenario speaks one protocol: this one is {}, \
                         requests[{at}] is {}",
                        protocol.name(),
                        first.name()
                    ),
                ),
                Some(_) => {}
                None => explicit = Some((protocol, i)),
            }
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
        "http",
        "grpc",
        "websocket",
        "vars",
        "vars_file",
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
    let vars = match (fields.get("vars"), fields.get("vars_file")) {
        (Some(_), Some(file)) => {
            cx.err(
                file.origin,
                &fields.path("vars_file"),
                "give vars or vars_file, not both",
            );
            None
        }
        (Some(n), None) => vars(cx, n, &fields.path("vars")),
        (None, Some(n)) => vars_file(cx, n, &fields.path("vars_file")),
        (None, None) => Some(Default::default()),
    };
    let mut placeholders = Vec::new();
    let call = call(cx, node, &fields, path, &mut placeholders);
    let expect = fields.get("expect").map_or(Some(Expect::default()), |n| {
        expect(cx, n, &fields.path("expect"))
    });
    let thresholds = thresholds(cx, fields.get("thresholds"), &fields.path("thresholds"));
    let trace_sample = match fields.get("trace_sample") {
        Some(n) => Some(sample_share(cx, n, &fields.path("trace_sample"))?),
        None => None,
    };

    let call = call?;
    let (vars, var_nodes) = vars?;
    let mut ok = true;
    for Placeholder {
        name: var,
        origin,
        at,
        ..
    } in placeholders
        .iter()
        .filter(|p| !p.env && !p.name.starts_with(super::template::CANARY_PREFIX))
    {
        if !vars.has(var) {
            let source = if fields.has("vars_file") {
                format!("a column {var} in {}", fields.path("vars_file"))
            } else {
                format!("a non-empty {}", join(&fields.path("vars"), var))
            };
            cx.err(*origin, at, format!("\"{{{{{var}}}}}\" needs {source}"));
            ok = false;
        }
    }
    for (origin, var, at) in &var_nodes {
        if !placeholders.iter().any(|p| !p.env && p.name == *var) {
            cx.err(
                *origin,
                at,
                format!("unused: the request has no \"{{{{{var}}}}}\""),
            );
            ok = false;
        }
    }
    let env = placeholders
        .iter()
        .filter(|p| p.env)
        .map(|p| (p.name.clone(), cx.position(p.origin, &p.at)))
        .collect();
    let kind = RequestKind {
        name: name?,
        weight: weight?,
        call,
        vars,
        expect: expect?,
        thresholds,
        trace_sample,
        env,
    };
    ok.then_some((kind, name_node?))
}

/// Exactly one of `body`, `http` and `grpc`.
fn call(
    cx: &mut Cx,
    node: &Node,
    fields: &super::read::Fields<'_>,
    path: &str,
    placeholders: &mut Vec<Placeholder>,
) -> Option<Call> {
    let given: Vec<&str> = ["body", "http", "grpc", "websocket"]
        .into_iter()
        .filter(|key| fields.has(key))
        .collect();
    match given.as_slice() {
        ["body"] => {
            let n = fields.get("body")?;
            if !matches!(n.value, Value::Map(_)) {
                return cx.expected(n, &fields.path("body"), "a mapping (the request as JSON)");
            }
            json(cx, n, &fields.path("body"), placeholders).map(Call::Bundled)
        }
        ["http"] => {
            http(cx, fields.get("http")?, &fields.path("http"), placeholders).map(Call::Http)
        }
        ["grpc"] => {
            grpc(cx, fields.get("grpc")?, &fields.path("grpc"), placeholders).map(Call::Grpc)
        }
        ["websocket"] => super::websocket::websocket(
            cx,
            fields.get("websocket")?,
            &fields.path("websocket"),
            placeholders,
        )
        .map(Call::WebSocket),
        _ => {
            let got = if given.is_empty() {
                "none".to_owned()
            } else {
                given.join(" and ")
            };
            cx.err(
                node.origin,
                path,
                format!("expected exactly one of body, http, grpc, websocket, got {got}"),
            );
            None
        }
    }
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
