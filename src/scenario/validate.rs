//! The typed pass: from the position-carrying YAML tree to a [`Scenario`], checking types, ranges
//! and cross-field rules in one walk so that every problem is reported where its value came from.
//! It collects all problems instead of stopping at the first, so `harness validate` shows them all.

use std::collections::BTreeMap;
use std::time::Duration;

use hyper::Uri;

use super::error::{At, Problem};
use super::model::{
    Arrivals, Expect, Load, Managed, Phase, Protocol, RequestKind, Scenario, ServiceSpec, System,
    Verify, is_name_byte, placeholder,
};
use super::tree::{Node, Origin, Value};

/// Context for one validation: where positions point, and the problems found so far.
pub(crate) struct Cx<'a> {
    pub source_name: &'a str,
    /// Dotted path of each `--set`, indexed by [`Origin::Override`].
    pub override_paths: &'a [String],
    pub problems: Vec<Problem>,
}

impl Cx<'_> {
    pub fn at(&self, origin: Origin) -> At {
        match origin {
            Origin::File { line, column } => At::File {
                name: self.source_name.to_owned(),
                line,
                column,
            },
            Origin::Override(i) => At::Set(self.override_paths.get(i).cloned().unwrap_or_default()),
        }
    }

    pub fn err(&mut self, origin: Origin, key: &str, message: impl Into<String>) {
        let at = self.at(origin);
        self.problems.push(Problem {
            at,
            key: key.to_owned(),
            message: message.into(),
        });
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

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn index(path: &str, i: usize) -> String {
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

pub(super) fn rate(cx: &mut Cx, node: &Node, path: &str) -> Option<f64> {
    let value = match node.value {
        Value::Int(i) => i as f64,
        Value::Float(x) => x,
        _ => f64::NAN,
    };
    if value.is_finite() && value > 0.0 {
        Some(value)
    } else {
        cx.expected(node, path, "a number > 0")
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

fn count(cx: &mut Cx, node: &Node, path: &str) -> Option<usize> {
    // usize::MAX fits i128 on every supported target.
    integer(cx, node, path, 1, usize::MAX as i128).and_then(|i| usize::try_from(i).ok())
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

/// A `[a-z0-9_]+`-style name, with `extra` allowed bytes besides.
fn name(cx: &mut Cx, node: &Node, path: &str, extra: &[u8]) -> Option<String> {
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

fn thresholds(cx: &mut Cx, node: Option<&Node>, path: &str) -> Vec<String> {
    list(cx, node, path, |cx, item, at| match &item.value {
        Value::Str(s) if !s.trim().is_empty() => Some(s.clone()),
        _ => cx.expected(item, at, "a threshold such as \"p(99) < 50ms\""),
    })
}

/// The whole document.
pub(crate) fn scenario(cx: &mut Cx, root: &Node) -> Option<Scenario> {
    const KEYS: &[&str] = &[
        "name",
        "description",
        "system",
        "load",
        "requests",
        "thresholds",
        "verify",
        "overhead",
    ];
    if !matches!(root.value, Value::Map(_)) {
        return cx.expected(root, "", "a mapping at the top level");
    }
    let fields = mapping(cx, root, "", Some(KEYS))?;
    let name = fields
        .required(cx, "name")
        .and_then(|n| name(cx, n, "name", b"-"));
    let description = match fields.get("description") {
        Some(node) => string(cx, node, "description"),
        None => Some(String::new()),
    };
    let load = fields.required(cx, "load").and_then(|n| load(cx, n));
    let system = fields
        .required(cx, "system")
        .and_then(|n| system(cx, n, load.as_ref().map(|l| l.protocol)));
    let requests = fields
        .required(cx, "requests")
        .and_then(|n| requests(cx, n));
    let thresholds = thresholds(cx, fields.get("thresholds"), "thresholds");
    // The defaults of the checks depend on the protocol and the kind of system.
    let verify = match (fields.get("verify"), &load, &system) {
        (Some(node), Some(load), Some(system)) => super::verify::verify(
            cx,
            node,
            load.protocol,
            matches!(system, System::Managed(_)),
        ),
        (Some(_), _, _) => None,
        (None, _, _) => Some(Verify::default()),
    };
    let traced = matches!(
        &verify,
        Some(Verify {
            traces: Some(_),
            ..
        })
    );
    if let (false, Some(kinds)) = (traced, &requests) {
        for (i, kind) in kinds.iter().enumerate() {
            if kind.trace_sample.is_some() {
                cx.err(
                    root.origin,
                    &format!("requests[{i}].trace_sample"),
                    "given, but there is no verify.traces section",
                );
            }
        }
    }
    let overhead = fields.get("overhead").and_then(|node| {
        let managed = matches!(system, Some(System::Managed(_)));
        if !managed && system.is_some() {
            cx.err(
                node.origin,
                "overhead",
                "needs system.managed: the harness launches both arms itself",
            );
        }
        // Tracing, its sampler and its destination are what the arms decide.
        if let Some(System::Managed(m)) = &system {
            for (service, spec) in [("engine", &m.engine), ("gateway", &m.gateway)] {
                let decided = |key: &&String| {
                    *key == "OTEL_SDK_DISABLED"
                        || key.starts_with("OTEL_TRACES_SAMPLER")
                        || key.starts_with("OTEL_EXPORTER_OTLP")
                        || *key == "OTEL_TRACES_EXPORTER"
                };
                for key in spec.env.keys().filter(decided) {
                    cx.err(
                        node.origin,
                        &format!("system.managed.{service}.env.{key}"),
                        "decided by the overhead arms; set it under overhead.control, \
                         overhead.treatment or overhead.steps",
                    );
                }
            }
        }
        if fields.has("verify") {
            cx.err(
                node.origin,
                "overhead",
                "cannot be combined with verify: sampled requests would add work to one arm \
                     only; verify tracing in a scenario of its own",
            );
        }
        super::overhead::overhead(cx, node)
    });
    Some(Scenario {
        name: name?,
        description: description?,
        system: system?,
        load: load?,
        requests: requests?,
        thresholds,
        verify: verify?,
        overhead,
    })
}

fn system(cx: &mut Cx, node: &Node, protocol: Option<Protocol>) -> Option<System> {
    let fields = mapping(cx, node, "system", Some(&["managed", "external"]))?;
    match (fields.has("managed"), fields.has("external")) {
        (true, false) => {
            let node = fields.entries.iter().find(|e| e.1 == "managed")?.2;
            managed(cx, node).map(System::Managed)
        }
        (false, true) => {
            let node = fields.entries.iter().find(|e| e.1 == "external")?.2;
            external(cx, node, protocol)
        }
        (both, _) => {
            let got = if both { "both" } else { "neither" };
            cx.err(
                node.origin,
                "system",
                format!("expected exactly one of managed, external, got {got}"),
            );
            None
        }
    }
}

fn managed(cx: &mut Cx, node: &Node) -> Option<Managed> {
    let fields = mapping(
        cx,
        node,
        "system.managed",
        Some(&["tracing", "engine", "gateway"]),
    )?;
    let tracing = match fields.get("tracing") {
        Some(node) => boolean(cx, node, &fields.path("tracing")),
        None => Some(true),
    };
    let engine = service(cx, fields.get("engine"), &fields.path("engine"));
    let gateway = service(cx, fields.get("gateway"), &fields.path("gateway"));
    Some(Managed {
        tracing: tracing?,
        engine: engine?,
        gateway: gateway?,
    })
}

pub(super) fn service(cx: &mut Cx, node: Option<&Node>, path: &str) -> Option<ServiceSpec> {
    let Some(node) = node else {
        return Some(ServiceSpec::default());
    };
    let fields = mapping(cx, node, path, Some(&["args", "env"]))?;
    let before = cx.problems.len();
    let args = strings(cx, fields.get("args"), &fields.path("args"), true);
    let mut env = BTreeMap::new();
    if let Some(node) = fields.get("env") {
        let env_path = fields.path("env");
        if let Some(vars) = mapping(cx, node, &env_path, None) {
            for (_, key, value) in &vars.entries {
                if let Some(value) = text(cx, value, &join(&env_path, key)) {
                    env.insert((*key).to_owned(), value);
                }
            }
        }
    }
    (cx.problems.len() == before).then_some(ServiceSpec { args, env })
}

fn external(cx: &mut Cx, node: &Node, protocol: Option<Protocol>) -> Option<System> {
    let path = "system.external";
    let fields = mapping(cx, node, path, Some(&["gateway", "engine"]))?;
    let gateway = fields
        .get("gateway")
        .map(|n| url(cx, n, &fields.path("gateway")));
    let engine = fields
        .get("engine")
        .map(|n| url(cx, n, &fields.path("engine")));
    let needed = match protocol {
        Some(Protocol::Http) if gateway.is_none() => Some(("gateway", "http")),
        Some(Protocol::Grpc) if engine.is_none() => Some(("engine", "grpc")),
        _ => None,
    };
    if let Some((key, protocol)) = needed {
        cx.err(
            node.origin,
            &fields.path(key),
            format!("required when load.protocol is {protocol}"),
        );
        return None;
    }
    // Outer `Some`: written; inner `None`: invalid, already reported.
    let valid = |url: Option<Option<Uri>>| match url {
        Some(None) => Err(()),
        url => Ok(url.flatten()),
    };
    Some(System::External {
        gateway: valid(gateway).ok()?,
        engine: valid(engine).ok()?,
    })
}

/// An `http://host:port` base URL; TLS is not supported by the load path.
fn url(cx: &mut Cx, node: &Node, path: &str) -> Option<Uri> {
    if let Value::Str(s) = &node.value
        && let Ok(uri) = s.parse::<Uri>()
        && uri.scheme_str() == Some("http")
        && uri.authority().is_some()
        && matches!(uri.path(), "" | "/")
        && uri.query().is_none()
    {
        return Some(uri);
    }
    cx.expected(node, path, "an http:// URL such as http://127.0.0.1:8080")
}

fn load(cx: &mut Cx, node: &Node) -> Option<Load> {
    const KEYS: &[&str] = &[
        "protocol",
        "warmup",
        "phases",
        "arrivals",
        "seed",
        "max_in_flight",
        "timeout",
        "connections",
    ];
    let fields = mapping(cx, node, "load", Some(KEYS))?;
    let protocol = fields.required(cx, "protocol").and_then(|n| {
        word(
            cx,
            n,
            "load.protocol",
            &[("http", Protocol::Http), ("grpc", Protocol::Grpc)],
        )
    });
    let warmup = fields.get("warmup").map_or(Some(Duration::ZERO), |n| {
        duration(cx, n, "load.warmup", false)
    });
    let phases = fields.required(cx, "phases").and_then(|n| phases(cx, n));
    let arrivals = fields.get("arrivals").map_or(Some(Arrivals::Uniform), |n| {
        word(
            cx,
            n,
            "load.arrivals",
            &[
                ("uniform", Arrivals::Uniform),
                ("poisson", Arrivals::Poisson),
            ],
        )
    });
    let seed = fields.get("seed").map_or(Some(1), |n| {
        integer(cx, n, "load.seed", 0, u64::MAX.into()).and_then(|i| u64::try_from(i).ok())
    });
    let max_in_flight = fields
        .get("max_in_flight")
        .map_or(Some(1000), |n| count(cx, n, "load.max_in_flight"));
    let timeout = fields
        .get("timeout")
        .map_or(Some(Duration::from_secs(5)), |n| {
            duration(cx, n, "load.timeout", true)
        });
    let connections = fields
        .get("connections")
        .map_or(Some(2), |n| count(cx, n, "load.connections"));
    Some(Load {
        protocol: protocol?,
        warmup: warmup?,
        phases: phases?,
        arrivals: arrivals?,
        seed: seed?,
        max_in_flight: max_in_flight?,
        timeout: timeout?,
        connections: connections?,
    })
}

fn phases(cx: &mut Cx, node: &Node) -> Option<Vec<Phase>> {
    let items = sequence(cx, node, "load.phases")?;
    if items.is_empty() {
        return cx.expected(node, "load.phases", "at least one phase");
    }
    let before = cx.problems.len();
    let phases: Vec<Phase> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| phase(cx, item, &index("load.phases", i)))
        .collect();
    (cx.problems.len() == before).then_some(phases)
}

fn phase(cx: &mut Cx, node: &Node, path: &str) -> Option<Phase> {
    let fields = mapping(cx, node, path, Some(&["constant", "ramp"]))?;
    let kinds: Vec<_> = fields.entries.iter().map(|e| e.1).collect();
    match kinds.as_slice() {
        ["constant"] => {
            let path = fields.path("constant");
            let node = fields.entries[0].2;
            let f = mapping(cx, node, &path, Some(&["rate", "duration"]))?;
            let rate = f
                .required(cx, "rate")
                .and_then(|n| rate(cx, n, &f.path("rate")));
            let duration = f
                .required(cx, "duration")
                .and_then(|n| duration(cx, n, &f.path("duration"), true));
            Some(Phase::Constant {
                rate: rate?,
                duration: duration?,
            })
        }
        ["ramp"] => {
            let path = fields.path("ramp");
            let node = fields.entries[0].2;
            let f = mapping(cx, node, &path, Some(&["from", "to", "duration"]))?;
            let from = f
                .required(cx, "from")
                .and_then(|n| rate(cx, n, &f.path("from")));
            let to = f
                .required(cx, "to")
                .and_then(|n| rate(cx, n, &f.path("to")));
            let duration = f
                .required(cx, "duration")
                .and_then(|n| duration(cx, n, &f.path("duration"), true));
            Some(Phase::Ramp {
                from: from?,
                to: to?,
                duration: duration?,
            })
        }
        // An unknown key was already reported by `mapping`.
        [] if matches!(&node.value, Value::Map(m) if !m.is_empty()) => None,
        _ => {
            cx.err(node.origin, path, "expected exactly one of constant, ramp");
            None
        }
    }
}

fn requests(cx: &mut Cx, node: &Node) -> Option<Vec<RequestKind>> {
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
        Some(n) => Some(super::verify::sample_share(
            cx,
            n,
            &fields.path("trace_sample"),
        )?),
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
        if !var.bytes().all(super::model::is_var_byte) {
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
