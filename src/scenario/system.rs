//! The `system:` section: the services the harness launches (`managed`), with their arguments and
//! environment, or the URLs of ones already running (`external`).

use std::collections::BTreeMap;

use hyper::Uri;

use super::model::{External, Managed, ManagedJaeger, Protocol, ServiceSpec, System};
use super::read::{Cx, boolean, join, mapping, string, strings, text};
use super::tree::{Node, Value};
use crate::load::HttpVersion;
use crate::tls::{Identity, TlsSpec};

pub(super) fn system(cx: &mut Cx, node: &Node, protocol: Option<Protocol>) -> Option<System> {
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
        Some(&["tracing", "engine", "gateway", "jaeger", "metrics_auth"]),
    )?;
    let tracing = match fields.get("tracing") {
        Some(node) => boolean(cx, node, &fields.path("tracing")),
        None => Some(true),
    };
    let engine = service(cx, fields.get("engine"), &fields.path("engine"));
    let gateway = service(cx, fields.get("gateway"), &fields.path("gateway"));
    let metrics_auth = fields.read_or(cx, "metrics_auth", false, boolean);
    if let (Some(true), Some(entry)) = (
        metrics_auth,
        fields.entries.iter().find(|e| e.1 == "metrics_auth"),
    ) {
        token_file_unset(
            cx,
            entry.0.origin,
            &fields.path("engine"),
            &engine,
            "ENGINE",
        );
        token_file_unset(
            cx,
            entry.0.origin,
            &fields.path("gateway"),
            &gateway,
            "GATEWAY",
        );
    }
    let jaeger = match fields.get("jaeger") {
        Some(node) => jaeger(cx, node, &fields.path("jaeger")).map(Some),
        // `jaeger:` with nothing after it, as `jaeger: {}`.
        None if fields.has("jaeger") => Some(Some(ManagedJaeger::default())),
        None => Some(None),
    };
    if let (Some(false), Some(Some(_)), Some(entry)) = (
        tracing,
        &jaeger,
        fields.entries.iter().find(|e| e.1 == "jaeger"),
    ) {
        cx.err(
            entry.0.origin,
            &fields.path("jaeger"),
            "needs tracing: the services would send it nothing",
        );
    }
    Some(Managed {
        tracing: tracing?,
        engine: engine?,
        gateway: gateway?,
        jaeger: jaeger?,
        metrics_auth: metrics_auth?,
    })
}

/// With `metrics_auth`, the harness names the token file: a scenario's own would make the
/// services expect a token the harness does not send.
fn token_file_unset(
    cx: &mut Cx,
    origin: super::tree::Origin,
    path: &str,
    spec: &Option<ServiceSpec>,
    prefix: &str,
) {
    let Some(spec) = spec else { return };
    let variable = format!("{prefix}_METRICS_TOKEN_FILE");
    let flag = spec
        .args
        .iter()
        .any(|a| a == "--metrics-token-file" || a.starts_with("--metrics-token-file="));
    if flag || spec.env.contains_key(&variable) {
        cx.err(
            origin,
            path,
            format!(
                "sets --metrics-token-file or {variable}, which metrics_auth: true leaves to \
                 the harness (it makes a token for each run)"
            ),
        );
    }
}

/// `jaeger: {config: FILE}`: a Jaeger v2 launched beside the services.
fn jaeger(cx: &mut Cx, node: &Node, path: &str) -> Option<ManagedJaeger> {
    let fields = mapping(cx, node, path, Some(&["config"]))?;
    let config = match fields.get("config") {
        Some(n) => {
            let name = string(cx, n, &fields.path("config"))?;
            Some(cx.relative(&name))
        }
        None => None,
    };
    Some(ManagedJaeger { config })
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
    const KEYS: &[&str] = &["target", "gateway", "engine", "tls", "http_version"];
    let fields = mapping(cx, node, path, Some(KEYS))?;
    let before = cx.problems.len();
    let target = fields
        .get("target")
        .and_then(|n| url(cx, n, &fields.path("target"), true));
    let gateway = fields
        .get("gateway")
        .and_then(|n| url(cx, n, &fields.path("gateway"), true));
    let engine = fields
        .get("engine")
        .and_then(|n| url(cx, n, &fields.path("engine"), false));
    let tls = fields.read_or(cx, "tls", TlsSpec::default(), tls);
    let http = fields.read_or(cx, "http_version", HttpVersion::Auto, |cx, n, at| {
        // `1.1` and `2` read as numbers in YAML: take any scalar's text.
        match text(cx, n, at)?.as_str() {
            "auto" => Some(HttpVersion::Auto),
            "1.1" => Some(HttpVersion::Http1),
            "2" => Some(HttpVersion::Http2),
            _ => cx.expected(n, at, "auto, 1.1 or 2"),
        }
    });
    if cx.problems.len() != before {
        return None;
    }
    let external = External {
        target,
        gateway,
        engine,
        tls: tls?,
        http: http?,
    };
    if let Some(protocol) = protocol
        && external.base(protocol).is_none()
    {
        let named = match protocol {
            Protocol::Http | Protocol::WebSocket => "gateway",
            Protocol::Grpc => "engine",
        };
        cx.err(
            node.origin,
            &fields.path("target"),
            format!(
                "required when load.protocol is {} (or {})",
                protocol.name(),
                fields.path(named)
            ),
        );
        return None;
    }
    Some(System::External(Box::new(external)))
}

/// `tls:` of the system: what to trust and present on `https://` connections.
pub(super) fn tls(cx: &mut Cx, node: &Node, path: &str) -> Option<TlsSpec> {
    let fields = mapping(cx, node, path, Some(&["ca", "cert", "key", "insecure"]))?;
    let file = |cx: &mut Cx, key: &str| {
        let node = fields.get(key)?;
        string(cx, node, &fields.path(key)).map(|name| cx.relative(&name))
    };
    let ca = file(cx, "ca");
    let cert = file(cx, "cert");
    let key = file(cx, "key");
    let insecure = fields.read_or(cx, "insecure", false, boolean);
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => Some(Identity { cert, key }),
        (None, None) => None,
        _ => {
            cx.err(
                node.origin,
                path,
                "a client certificate needs both cert and key",
            );
            return None;
        }
    };
    Some(TlsSpec {
        ca,
        identity,
        insecure: insecure?,
    })
}

/// An `http(s)://host:port` base URL, with a path prefix when `prefix` allows one.
fn url(cx: &mut Cx, node: &Node, path: &str, prefix: bool) -> Option<Uri> {
    if let Value::Str(s) = &node.value
        && let Ok(uri) = s.parse::<Uri>()
        && matches!(uri.scheme_str(), Some("http" | "https"))
        && uri.authority().is_some()
        && (prefix || matches!(uri.path(), "" | "/"))
        && uri.query().is_none()
    {
        return Some(uri);
    }
    let what = if prefix {
        "an http:// or https:// URL such as https://127.0.0.1:8443 (a path prefix is allowed)"
    } else {
        "an http:// or https:// URL such as http://127.0.0.1:50051"
    };
    cx.expected(node, path, what)
}
